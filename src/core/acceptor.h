// The acceptor: one thread that owns the listening socket, accepts with accept4(2) and hands
// each socket to a worker chosen by the Balancer, or to the overflow queue, or rejects it.
// It takes raw fds (not libuv handles) so a socket can move to another loop with uv_tcp_open.
#pragma once
#include <uv.h>

#include <string>
#include <vector>

#include "core/balancer.h"
#include "core/loop_thread.h"
#include "core/shared.h"

namespace pp {

class Acceptor {
public:
    explicit Acceptor(Shared &shared);
    ~Acceptor();
    Acceptor(const Acceptor &) = delete;
    Acceptor &operator=(const Acceptor &) = delete;

    // Binds and listens (caller's thread), so the bound address is known when this returns.
    int bind(std::string *why);
    // Runs the accept loop on its own thread.
    int start(std::string *why);
    // Closes the listener and drops connections still waiting in the overflow queue; also when
    // start() failed or never ran (a start that failed part-way leaves no listener). Idempotent.
    void stop();

    const Address &bound() const { return bound_; }

private:
    static void on_readable(uv_poll_t *p, int status, int events);
    void on_stop();  // the loop thread (or the caller's, when it never ran)
    static void on_backoff_over(uv_timer_t *t);
    static void on_overflow_sweep(uv_timer_t *t);

    void accept_batch();
    void dispatch(int fd);
    void reject(int fd, Counter &reason);

    Shared &shared_;
    Balancer balancer_;
    std::vector<WorkerLoad> loads_;
    int listen_fd_ = -1;
    Address bound_;
    uv_poll_t poll_{};
    bool poll_ready_ = false;
    uv_timer_t backoff_timer_{};
    uv_timer_t overflow_timer_{};
    uint64_t last_error_log_ms_ = 0;
    LoopThread thread_;
};

}  // namespace pp
