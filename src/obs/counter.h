// Counters written by exactly one thread and read by any: a relaxed load+store instead of an
// atomic read-modify-write, so the writer pays no locked instruction on the hot path.
#pragma once
#include <atomic>
#include <cstdint>

namespace pp {

class Counter {
public:
    void add(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(uint64_t n = 1) { v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
    uint64_t get() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<uint64_t> v_{0};
};

// Written by several threads (e.g. the acceptor adds, a worker subtracts).
class SharedGauge {
public:
    void add(int64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
    // Adds and returns the new value: a limit two threads check at once holds exactly.
    int64_t add_fetch(int64_t n = 1) { return v_.fetch_add(n, std::memory_order_relaxed) + n; }
    void sub(int64_t n = 1) { v_.fetch_sub(n, std::memory_order_relaxed); }
    int64_t get() const { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<int64_t> v_{0};
};

}  // namespace pp
