// A table that only grows, read by many threads while one writer appends: owned slots in
// fixed chunks and a published count. A reader sees every slot below size() fully built (the
// count is stored with release after the slot and its chunk); a slot, once added, never moves or
// goes away until the table does. Chunks are allocated as the table grows, so a large capacity
// costs only its directory until used. Backends (added at runtime) and each worker's pools use
// it, so that readers on other threads take no lock.
#pragma once
#include <atomic>
#include <cstddef>
#include <memory>

namespace pp {

template <typename T, size_t Capacity>
class SlotTable {
public:
    static constexpr size_t kCapacity = Capacity;
    static constexpr size_t kChunk = 64;

    SlotTable() : chunks_(new std::unique_ptr<std::unique_ptr<T>[]>[(Capacity + kChunk - 1) / kChunk]) {}
    SlotTable(const SlotTable &) = delete;
    SlotTable &operator=(const SlotTable &) = delete;

    size_t size() const { return count_.load(std::memory_order_acquire); }
    bool full() const { return size() == Capacity; }
    // Writers must be serialized by the caller. Returns the new slot's index.
    size_t add(std::unique_ptr<T> item) {
        size_t i = count_.load(std::memory_order_relaxed);
        std::unique_ptr<std::unique_ptr<T>[]> &chunk = chunks_[i / kChunk];
        if (!chunk) chunk.reset(new std::unique_ptr<T>[kChunk]);
        chunk[i % kChunk] = std::move(item);
        count_.store(i + 1, std::memory_order_release);
        return i;
    }
    T &operator[](size_t i) const { return *chunks_[i / kChunk][i % kChunk]; }

private:
    std::unique_ptr<std::unique_ptr<std::unique_ptr<T>[]>[]> chunks_;
    std::atomic<size_t> count_{0};
};

}  // namespace pp
