#include "core/loop_thread.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

#include "core/thread_context.h"
#include "poolproxy.h"
#include "core/uv_result.h"

namespace pp {

int LoopThread::check(int uv_rc, const std::string &what, std::string *why) {
    if (uv_rc == 0) return PP_OK;
    *why = what + ": " + uv_strerror(uv_rc);
    if (uv_rc == UV_EMFILE) *why += " (the descriptor limit, ulimit -n, is too low for this configuration)";
    return PP_ESYS;
}

int LoopThread::init(const std::string &what, std::function<void()> on_wake, std::function<void()> on_stop,
                     std::string *why) {
    what_ = what;
    loop_.backend_fd = -1;
    int rc = uv_loop_init(&loop_);
    if (rc != 0) {
        // libuv before 1.51 leaks the loop's epoll descriptor when uv_loop_init fails after
        // creating it (out of descriptors for its signal pipe or wake-up eventfd; libuv#4755,
        // fixed by libuv#4757). The failed loop is never used: close it here, only on those
        // versions, since a fixed libuv closes it itself and the number may be reused.
        if (uv_version() < 0x013300 && loop_.backend_fd >= 0) ::close(loop_.backend_fd);
        return check(rc, what + ": cannot create an event loop", why);
    }
    // The wake-up handle needs a descriptor of its own (libuv opens it with the loop's first
    // async handle): with few descriptors left, this is where a start fails part-way.
    rc = uv_async_init(&loop_, &async_, on_async);
    if (rc != 0) {
        PP_UV_MUST(uv_loop_close(&loop_));  // nothing on it yet: this cannot fail
        return check(rc, what + ": cannot create its wake-up handle", why);
    }
    async_.data = this;
    on_wake_ = std::move(on_wake);
    on_stop_ = std::move(on_stop);
    ready_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    async_open_ = true;
    return PP_OK;
}

void *LoopThread::thread_main(void *arg) {
    auto *self = static_cast<LoopThread *>(arg);
    name_this_thread(self->name_.c_str());
    ThreadContext ctx(self->context_);  // callbacks here may not stop or free the proxy
    uv_run(&self->loop_, UV_RUN_DEFAULT);
    return nullptr;
}

int LoopThread::start(std::string *why) {
    int rc = pthread_create(&thread_, nullptr, thread_main, this);
    if (rc != 0) {
        *why = what_ + ": cannot start a thread: " + std::strerror(rc);
        return PP_ESYS;
    }
    running_ = true;
    return PP_OK;
}

void LoopThread::wake() {
    std::lock_guard<std::mutex> lock(mu_);
    // uv_async_send fails only on a handle that is not an open async one, which async_open_
    // rules out.
    if (async_open_) PP_UV_MUST(uv_async_send(&async_));
}

void LoopThread::on_async(uv_async_t *a) {
    auto *self = static_cast<LoopThread *>(a->data);
    if (self->stop_requested_.load(std::memory_order_acquire)) {
        if (self->on_stop_) self->on_stop_();
        self->close_all();
        return;
    }
    if (self->on_wake_) self->on_wake_();
}

void LoopThread::stop() {
    if (!ready_) return;
    if (running_) {
        stop_requested_.store(true, std::memory_order_release);
        wake();
    } else if (on_stop_) {
        on_stop_();  // the loop never ran: its owner winds down here, on the only thread there is
    }
    join();
}

void LoopThread::join() {
    if (running_) {
        pthread_join(thread_, nullptr);  // fails only for a thread that is not joinable: not ours
        running_ = false;
    }
    if (!ready_) return;
    // What is still open: every handle of a loop that never ran, or inactive handles (a stopped
    // timer does not keep uv_run going). Close them and let their close callbacks run.
    close_all();
    uv_run(&loop_, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop_);
    if (rc != 0) {  // a handle or request outlived its owner: a bug, not a condition to handle
        std::fprintf(stderr, "poolproxy: %s: event loop still busy at close: %s\n", what_.c_str(), uv_strerror(rc));
        std::abort();
    }
    ready_ = false;
}

void LoopThread::close_all(const std::function<void(uv_handle_t *)> &each) {
    struct Pass {
        LoopThread *self;
        const std::function<void(uv_handle_t *)> *each;
    } pass{this, &each};
    // uv_walk is safe to close handles from (they leave the loop's queue only after their close
    // callbacks have run).
    if (each) {
        uv_walk(
            &loop_,
            [](uv_handle_t *h, void *arg) {
                auto *p = static_cast<Pass *>(arg);
                if (h != reinterpret_cast<uv_handle_t *>(&p->self->async_) && !uv_is_closing(h)) (*p->each)(h);
            },
            &pass);
    }
    uv_walk(
        &loop_,
        [](uv_handle_t *h, void *arg) {
            auto *p = static_cast<Pass *>(arg);
            if (h != reinterpret_cast<uv_handle_t *>(&p->self->async_) && !uv_is_closing(h)) uv_close(h, nullptr);
        },
        &pass);
    std::lock_guard<std::mutex> lock(mu_);
    if (async_open_) {
        async_open_ = false;  // from here on wake() touches nothing
        uv_close(reinterpret_cast<uv_handle_t *>(&async_), nullptr);
    }
}

}  // namespace pp
