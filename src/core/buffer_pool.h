// Fixed-size I/O blocks recycled per worker, so relaying bytes allocates nothing in steady
// state. Each block carries its own uv_write_t, so a read buffer becomes a write request as is.
#pragma once
#include <uv.h>

#include <cstddef>
#include <vector>

namespace pp {

struct IoBlock {
    static constexpr size_t kSize = 16 * 1024;
    uv_write_t req;
    void *owner;      // who to notify when the write completes
    int direction;    // which way the bytes go (owner-defined)
    size_t len;       // bytes filled
    int refs;         // http: writes still using data (the block returns to the pool at 0)
    char data[kSize];
};

class BufferPool {
public:
    explicit BufferPool(size_t keep_max) : keep_max_(keep_max) {}
    ~BufferPool() {
        for (IoBlock *b : free_) delete b;
    }
    BufferPool(const BufferPool &) = delete;
    BufferPool &operator=(const BufferPool &) = delete;

    IoBlock *get() {
        if (free_.empty()) return new IoBlock;
        IoBlock *b = free_.back();
        free_.pop_back();
        return b;
    }
    void put(IoBlock *b) {
        if (free_.size() < keep_max_) free_.push_back(b);
        else delete b;
    }
    size_t cached() const { return free_.size(); }

private:
    size_t keep_max_;
    std::vector<IoBlock *> free_;
};

}  // namespace pp
