// Accepted client sockets that no worker could take at once. The acceptor pushes; any worker
// with spare capacity pops ("steals"). A mutex is fine here: this path is taken only when every
// worker is above half its capacity, and once per connection, never per request.
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace pp {

class OverflowQueue {
public:
    explicit OverflowQueue(int64_t max) : max_(max) {}

    bool push(int fd, uint64_t now_ms) {
        std::lock_guard<std::mutex> lock(mu_);
        if (static_cast<int64_t>(items_.size()) >= max_) return false;
        items_.push_back({fd, now_ms});
        size_.store(static_cast<int64_t>(items_.size()), std::memory_order_relaxed);
        return true;
    }
    // -1 when empty.
    int pop() {
        if (size() == 0) return -1;
        std::lock_guard<std::mutex> lock(mu_);
        if (items_.empty()) return -1;
        int fd = items_.front().fd;
        items_.pop_front();
        size_.store(static_cast<int64_t>(items_.size()), std::memory_order_relaxed);
        return fd;
    }
    // Removes entries queued at or before `cutoff_ms` (all when cutoff is UINT64_MAX).
    std::vector<int> take_older_than(uint64_t cutoff_ms) {
        std::vector<int> out;
        std::lock_guard<std::mutex> lock(mu_);
        while (!items_.empty() && items_.front().since_ms <= cutoff_ms) {
            out.push_back(items_.front().fd);
            items_.pop_front();
        }
        size_.store(static_cast<int64_t>(items_.size()), std::memory_order_relaxed);
        return out;
    }
    int64_t size() const { return size_.load(std::memory_order_relaxed); }

private:
    struct Item {
        int fd;
        uint64_t since_ms;
    };
    int64_t max_;
    std::mutex mu_;
    std::deque<Item> items_;
    std::atomic<int64_t> size_{0};
};

}  // namespace pp
