// Marks the proxy's own threads, so pp_proxy_stop/free called from inside a callback can be
// refused instead of deadlocking on a join of the calling thread.
#pragma once

namespace pp {

struct Shared;

// Names the calling thread (at most 15 characters) for top -H, perf and debuggers:
// pp-worker-N, pp-acceptor, pp-health, pp-dns, pp-admin.
void name_this_thread(const char *name);

class ThreadContext {
public:
    explicit ThreadContext(const Shared *shared) : prev_(current_) { current_ = shared; }
    ~ThreadContext() { current_ = prev_; }
    ThreadContext(const ThreadContext &) = delete;
    ThreadContext &operator=(const ThreadContext &) = delete;

    static const Shared *current() { return current_; }

private:
    const Shared *prev_;
    static thread_local const Shared *current_;
};

}  // namespace pp
