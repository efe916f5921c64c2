// One thread running one libuv loop: what the acceptor, each worker, the health checker, the
// DNS watcher and the admin server share, so that none of them gets the start, the wake-up,
// the thread context or the teardown subtly different (their copies had drifted: unchecked
// init results, no thread context on some, a wake-up sent to a handle never initialised).
//
// Life: init() on the controlling thread (loop and wake-up handle, every result checked), the
// owner adds its handles, start() runs the loop on a new thread marked with the proxy's thread
// context and name. The loop thread ends when no handle is left: the owner closes them all
// with close_all(), either by itself (a worker after its drain) or in the on_stop hook that
// stop() runs there. join() then joins and closes the loop, so its descriptors are back; it
// does the same for a loop that never ran (start failed part-way), and is idempotent.
#pragma once
#include <pthread.h>
#include <uv.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

namespace pp {

struct Shared;

class LoopThread {
public:
    // `name`: the thread's name (at most 15 characters). `context`: the proxy whose threads
    // refuse pp_proxy_stop/free from a callback (ThreadContext).
    LoopThread(std::string name, const Shared *context) : name_(std::move(name)), context_(context) {}
    const std::string &name() const { return name_; }
    ~LoopThread() { join(); }
    LoopThread(const LoopThread &) = delete;
    LoopThread &operator=(const LoopThread &) = delete;

    // Caller's thread. Creates the loop and its wake-up handle. on_wake runs on the loop thread
    // after wake() (several wakes may run it once); on_stop when stop() asks, before every
    // handle is closed (it may close some itself). On failure: PP_ESYS, *why names `what` and
    // the cause, and nothing is left open.
    int init(const std::string &what, std::function<void()> on_wake, std::function<void()> on_stop, std::string *why);
    bool ready() const { return ready_; }
    uv_loop_t *loop() { return &loop_; }

    // Caller's thread, after init. Runs the loop on a new thread until no handle is left.
    int start(std::string *why);
    bool started() const { return running_; }

    // Any thread. A no-op before init and once the handles are closed, so that a sender racing
    // the end (or a loop that was never set up) touches nothing.
    void wake();
    // Any thread but the loop's: runs on_stop and close_all() on the loop thread, then join().
    // A loop that never ran is torn down here. Idempotent.
    void stop();
    // Joins the thread (when it ran), closes what is left open and the loop. Idempotent.
    void join();

    // Loop thread (or a loop that never ran). Closes every handle not closing yet: first each
    // one goes to `each` (which may close it with its own callback, e.g. a connection that must
    // tell its owner), then those still open are closed plainly, the wake-up handle last.
    void close_all(const std::function<void(uv_handle_t *)> &each = nullptr);

    // A libuv result: 0 stays PP_OK; an error becomes PP_ESYS with "what: cause" in *why.
    static int check(int uv_rc, const std::string &what, std::string *why);

private:
    static void on_async(uv_async_t *a);
    static void *thread_main(void *self);

    const std::string name_;
    const Shared *const context_;
    std::string what_;
    uv_loop_t loop_{};
    uv_async_t async_{};
    bool ready_ = false;
    std::function<void()> on_wake_;
    std::function<void()> on_stop_;
    std::atomic<bool> stop_requested_{false};
    std::mutex mu_;          // orders wake() against the close of the wake-up handle
    bool async_open_ = false;  // guarded by mu_
    // pthread rather than std::thread: creating one reports an error code instead of throwing,
    // and involves no polymorphic object (UBSan's vptr check needs a free descriptor itself).
    pthread_t thread_{};
    bool running_ = false;  // thread_ was created and not joined yet (the controlling thread's)
};

}  // namespace pp
