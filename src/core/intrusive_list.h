// A doubly linked list threaded through its elements: O(1) unlink without allocation.
#pragma once
#include <cstddef>

namespace pp {

struct ListHook {
    ListHook *prev = nullptr;
    ListHook *next = nullptr;
    bool linked() const { return next != nullptr; }
};

template <typename T, ListHook T::*Hook>
class IntrusiveList {
public:
    IntrusiveList() { head_.prev = head_.next = &head_; }
    IntrusiveList(const IntrusiveList &) = delete;
    IntrusiveList &operator=(const IntrusiveList &) = delete;

    bool empty() const { return head_.next == &head_; }
    size_t size() const { return size_; }

    void push_back(T *item) {
        ListHook *h = &(item->*Hook);
        h->prev = head_.prev;
        h->next = &head_;
        head_.prev->next = h;
        head_.prev = h;
        size_++;
    }
    void remove(T *item) {
        ListHook *h = &(item->*Hook);
        if (!h->linked()) return;
        h->prev->next = h->next;
        h->next->prev = h->prev;
        h->prev = h->next = nullptr;
        size_--;
    }
    T *front() const { return empty() ? nullptr : owner(head_.next); }
    // The element after `item` (which must be linked here), or nullptr at the end.
    T *next(const T *item) const {
        const ListHook *n = (item->*Hook).next;
        return n == &head_ ? nullptr : owner(n);
    }
    // The element before `item` (which must be linked here), or nullptr at the front.
    T *prev(const T *item) const {
        const ListHook *p = (item->*Hook).prev;
        return p == &head_ ? nullptr : owner(p);
    }
    // Links `item` right after `pos` (linked here), or first when pos is nullptr.
    void insert_after(T *pos, T *item) {
        ListHook *p = pos ? &(pos->*Hook) : &head_;
        ListHook *h = &(item->*Hook);
        h->prev = p;
        h->next = p->next;
        p->next->prev = h;
        p->next = h;
        size_++;
    }
    T *back() const { return empty() ? nullptr : owner(head_.prev); }
    T *pop_front() {
        T *item = front();
        if (item) remove(item);
        return item;
    }
    T *pop_back() {
        T *item = back();
        if (item) remove(item);
        return item;
    }

private:
    static T *owner(const ListHook *h) {
        // offsetof-free container_of: the hook's offset within T.
        const size_t off = reinterpret_cast<size_t>(&(static_cast<T *>(nullptr)->*Hook));
        return reinterpret_cast<T *>(reinterpret_cast<char *>(const_cast<ListHook *>(h)) - off);
    }
    ListHook head_;
    size_t size_ = 0;
};

}  // namespace pp
