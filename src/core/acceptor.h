// The acceptor: one thread that owns the listening socket. Workers below their share accept
// from it themselves (Worker's listener poll, Balancer::may_accept); while none does, the
// acceptor polls it, accepts with accept4(2) and hands each socket to a worker chosen by the
// Balancer, or to the overflow queue, or rejects it. So the hand-off, a wake-up of another
// thread per connection, is the exception (every worker busy or full), not the rule. It takes
// raw fds (not libuv handles) so a socket can move to another loop with uv_tcp_open.
#pragma once
#include <uv.h>

#include <string>
#include <vector>

#include "core/balancer.h"
#include "core/loop_thread.h"
#include "core/shared.h"

namespace pp {

// How both accept loops (the acceptor's and a worker's) treat a failed accept4(2).
constexpr uint64_t kAcceptPauseMs = 100;  // out of descriptors: pause accepting instead of spinning
enum class AcceptFailure {
    again,    // EINTR, ECONNABORTED, the new connection's own network errors (accept(2)): try the next one
    drained,  // EAGAIN: nothing left (or another thread was faster)
    pause,    // EMFILE, ENFILE, ENOBUFS...: the listener stays readable, so polling again would
              // spin; the caller stops polling for kAcceptPauseMs. Counted and warned about
              // (at most one line a second, per caller, whose clock is *last_log_ms).
};
AcceptFailure accept_failed(int err, Counter &errors, const Logger &logger, const char *who, uint64_t *last_log_ms);

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

    // Any thread: the number of workers accepting for themselves dropped to 0 or rose from 0,
    // so the acceptor looks whether it must poll the listener.
    void workers_changed() { thread_.wake(); }

private:
    static void on_readable(uv_poll_t *p, int status, int events);
    void on_stop();  // the loop thread (or the caller's, when it never ran)
    // Polls the listener while no worker accepts for itself and no EMFILE back-off runs.
    void update_polling();
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
    bool polling_ = false;
    bool backing_off_ = false;
    uv_timer_t backoff_timer_{};
    uv_timer_t overflow_timer_{};
    uint64_t last_error_log_ms_ = 0;
    LoopThread thread_;
};

}  // namespace pp
