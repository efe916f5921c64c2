// A worker accepting client connections for itself. Each worker polls its own dup of the
// shared listening socket while Balancer::may_accept holds for it (below half its capacity,
// not far busier than the least busy worker, not above its share of the sessions), and starts
// the sessions it accepts on its own loop: no other thread, hand-off queue, lock or wake-up is
// involved in the common case. When no worker may accept, the acceptor thread polls the
// listener and its tiers (a worker, the overflow queue, rejection) decide, as before.
//
// Why a dup: a descriptor registered in several epoll sets must not be closed while others
// still poll it (its number could be reused under them); each worker closes its own copy, on
// its own thread, when its drain begins. Why a poll and our own accept4 rather than a libuv
// server handle: polling can stop and start again (a server handle cannot stop listening),
// and accept4 hands us the peer's address, which saves a getpeername per connection.
//
// One connection, one wake-up: every worker polling the same listener would be woken by each
// connection, and all but one would find nothing (the thundering herd). EPOLLEXCLUSIVE makes
// the kernel wake one worker blocked in epoll_wait, as nginx does; libuv cannot set it, so the
// worker registers the listener in its loop's epoll set itself (uv_backend_fd), tagged with the
// descriptor of an eventfd that a uv_poll watches: libuv finds the watcher by that tag and calls
// on_listener_readable; the eventfd itself never becomes readable. The registration is added
// while the worker accepts and deleted when it stops (EPOLLEXCLUSIVE cannot be modified), and
// always deleted before the eventfd's watcher stops: libuv, finding no watcher for a tag,
// deletes the tag, not the listener, and the level-triggered listener would then wake the loop
// for ever. (A kernel before 4.5 ignores the flag: every accepting worker is woken, as before.)
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/acceptor.h"
#include "core/clock.h"
#include "core/uv_result.h"
#include "core/worker.h"

namespace pp {

namespace {
// Connections taken per readiness event, at most. One per loop pass made new connections wait
// behind every other event of the loop under churn; a batch (HAProxy's tune.maxaccept is 64)
// measured 3-6% more requests a second and a lower p99 (docs/BENCHMARKS.md). With several
// workers the share test runs again after each connection, so a batch never takes a worker
// past its share; the batch ends at EAGAIN.
constexpr int kAcceptPerEvent = 16;

}  // namespace

int Worker::open_listener(std::string *why) {
    const std::string what = "worker " + std::to_string(index_);
    // exact_balance: the acceptor hands every connection out. No listener of our own: none to poll.
    if (shared_.listen_fd < 0 || shared_.settings.exact_balance) return PP_OK;
    listen_fd_ = fcntl(shared_.listen_fd, F_DUPFD_CLOEXEC, 0);
    if (listen_fd_ < 0) {
        *why = what + ": cannot share the listener: " + uv_strerror(uv_translate_sys_error(errno));
        return PP_ESYS;
    }
    listen_tag_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (listen_tag_fd_ < 0) {
        *why = what + ": cannot make an eventfd: " + uv_strerror(uv_translate_sys_error(errno));
        return PP_ESYS;  // join() closes the descriptors
    }
    int rc = LoopThread::check(uv_poll_init(&loop_, &listen_poll_, listen_tag_fd_), what + ": cannot watch the listener", why);
    if (rc != PP_OK) return rc;
    listen_poll_.data = this;
    listen_ready_ = true;
    rc = LoopThread::check(uv_poll_start(&listen_poll_, UV_READABLE, on_listener_readable),
                           what + ": cannot watch the listener", why);
    if (rc != PP_OK) return rc;
    update_accepting();
    return PP_OK;
}

// Adds (on) or deletes the listener's registration in this loop's epoll set. 0 or an errno.
int Worker::register_listener(bool on) {
    const int epfd = uv_backend_fd(&loop_);
    if (!on) return epoll_ctl(epfd, EPOLL_CTL_DEL, listen_fd_, nullptr) == 0 ? 0 : errno;
    epoll_event ev{};
    ev.events = listen_exclusive_ ? static_cast<uint32_t>(EPOLLIN | EPOLLEXCLUSIVE) : static_cast<uint32_t>(EPOLLIN);
    ev.data.fd = listen_tag_fd_;  // libuv dispatches by this: listen_poll_'s watcher
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd_, &ev) == 0) return 0;
    if (errno != EINVAL || !listen_exclusive_) return errno;
    listen_exclusive_ = false;  // a kernel before 4.5: every polling worker is woken
    ev.events = EPOLLIN;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, listen_fd_, &ev) == 0 ? 0 : errno;
}

void Worker::update_accepting() {
    bool want = listen_ready_ && !draining_ && !finished_ && !accept_backing_off_;
    if (want) {
        for (size_t w = 0; w < loads_.size(); w++) {
            loads_[w] = static_cast<int>(w) == index_ ? load() : shared_.workers[w]->load();
        }
        want = balancer_.may_accept(loads_, index_);
    }
    set_accepting(want);
}

void Worker::set_accepting(bool on) {
    if (on == accepting_) return;
    if (on) {
        if (const int err = register_listener(true)) {  // the acceptor polls while no worker does
            warn_uv_failure(shared_.logger, "worker: cannot watch the listener", uv_translate_sys_error(err));
            return;
        }
        accepting_ = true;
        if (shared_.accepting_workers.fetch_add(1, std::memory_order_acq_rel) == 0 && shared_.acceptor) {
            shared_.acceptor->workers_changed();  // the first one to start: the acceptor stops polling
        }
        return;
    }
    if (const int err = register_listener(false)) {
        // Deleting a registration we added, on our own epoll set, does not fail; if it did, the
        // listener would keep waking this loop (see above). Say so loudly.
        shared_.logger.log(PP_LOG_ERROR, "worker: cannot stop watching the listener: %s", std::strerror(err));
    }
    accepting_ = false;
    if (shared_.accepting_workers.fetch_sub(1, std::memory_order_acq_rel) == 1 && shared_.acceptor) {
        shared_.acceptor->workers_changed();  // the last one to stop: the acceptor takes over
    }
}

void Worker::on_listener_readable(uv_poll_t *p, int status, int) {
    auto *w = static_cast<Worker *>(p->data);
    if (status < 0) {
        // An error on the listener (libuv has stopped the watcher): stop accepting here, so that
        // the acceptor takes over if no worker is left, and look again after the pause.
        w->pause_after_listener_error(status);
        return;
    }
    if (!w->accepting_) return;  // a wake-up from before the registration was deleted
    w->accept_some();
    w->update_accepting();
}

void Worker::pause_after_listener_error(int status) {
    warn_uv_failure(shared_.logger, "worker: the listener reported an error; pausing accepts", status);
    set_accepting(false);
    uv_poll_stop(&listen_poll_);
    listen_poll_stopped_ = true;
    accept_backing_off_ = true;
    PP_UV_MUST(uv_timer_start(&accept_backoff_timer_, on_accept_backoff_over, kAcceptPauseMs, 0));
}

void Worker::accept_some() {
    for (int i = 0; i < kAcceptPerEvent && accepting_; i++) {
        sockaddr_storage peer;
        socklen_t len = sizeof peer;
        const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr *>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const AcceptFailure f = accept_failed(errno, counters_.accept_errors, shared_.logger,
                                                  thread_.name().c_str(), &last_accept_error_log_ms_);
            if (f == AcceptFailure::again) continue;
            if (f == AcceptFailure::drained) {
                if (i == 0) counters_.accepts_empty.add();  // woken for nothing
                return;
            }
            accept_backing_off_ = true;
            set_accepting(false);
            PP_UV_MUST(uv_timer_start(&accept_backoff_timer_, on_accept_backoff_over, kAcceptPauseMs, 0));
            return;
        }
        counters_.accepted.add();
        if (shared_.open_connections.add_fetch() > shared_.settings.max_connections) {
            shared_.open_connections.sub();
            counters_.rejected_max.add();
            ::close(fd);
            continue;
        }
        shared_.protocol->start(*this, fd, reinterpret_cast<const sockaddr *>(&peer), len);
        if (shared_.worker_count > 1) update_accepting();  // still below its share?
    }
}

void Worker::on_accept_backoff_over(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    w->accept_backing_off_ = false;
    if (!w->listen_ready_) return;  // closed meanwhile (a drain)
    if (w->listen_poll_stopped_) {
        const int rc = uv_poll_start(&w->listen_poll_, UV_READABLE, on_listener_readable);
        if (rc != 0) {
            w->pause_after_listener_error(rc);
            return;
        }
        w->listen_poll_stopped_ = false;
    }
    w->update_accepting();
}

void Worker::close_listener() {
    if (!listen_ready_) return;
    set_accepting(false);
    uv_timer_stop(&accept_backoff_timer_);  // its callback would start the closed poll again
    listen_poll_stopped_ = false;
    uv_close(reinterpret_cast<uv_handle_t *>(&listen_poll_), nullptr);  // stops watching the fd at once
    listen_ready_ = false;
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::close(listen_tag_fd_);  // libuv's watcher of it is closed: nothing polls it any more
    listen_tag_fd_ = -1;
}

}  // namespace pp
