#include "core/acceptor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/clock.h"
#include "core/thread_context.h"
#include "core/worker.h"
#include "core/uv_result.h"

namespace pp {

namespace {
constexpr int kAcceptBatch = 64;          // per readiness event, so one busy listener can't starve the loop
constexpr uint64_t kOverflowSweepMs = 100;
}  // namespace

AcceptFailure accept_failed(int err, Counter &errors, const Logger &logger, const char *who, uint64_t *last_log_ms) {
    // accept(2): Linux passes errors already pending on the new connection on through
    // accept; they are the connection's, not the listener's, and are retried at once. EPERM:
    // a firewall refused this one connection.
    switch (err) {
    case EINTR: case ECONNABORTED: case EPROTO: case ENOPROTOOPT: case ENETDOWN: case EHOSTDOWN:
    case ENONET: case EHOSTUNREACH: case EOPNOTSUPP: case ENETUNREACH: case EPERM:
        return AcceptFailure::again;
    default: break;
    }
    if (err == EAGAIN || err == EWOULDBLOCK) return AcceptFailure::drained;
    errors.add();
    if (quiet_long_enough(last_log_ms, 1000)) {  // at most one line a second under a storm
        logger.log(PP_LOG_WARN, "%s: accept failed: %s; pausing accepts for %llums", who, std::strerror(err),
                   static_cast<unsigned long long>(kAcceptPauseMs));
    }
    return AcceptFailure::pause;
}

Acceptor::Acceptor(Shared &shared)
    : shared_(shared),
      balancer_(shared.worker_count, shared.worker_capacity, shared.settings.overflow_max,
                shared.settings.max_connections),
      loads_(static_cast<size_t>(shared.worker_count)), thread_("pp-acceptor", &shared) {}

Acceptor::~Acceptor() { stop(); }

int Acceptor::bind(std::string *why) {
    const Address &addr = shared_.settings.listen;
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *why = std::string("cannot create a socket: ") + std::strerror(errno);
        return PP_ESYS;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, addr.sa(), addr.len) != 0 || ::listen(fd, static_cast<int>(shared_.settings.listen_backlog)) != 0) {
        *why = "cannot listen on " + addr.to_string() + ": " + std::strerror(errno);
        ::close(fd);
        return PP_EBIND;
    }
    bound_ = Address{};
    bound_.len = sizeof bound_.storage;
    getsockname(fd, reinterpret_cast<sockaddr *>(&bound_.storage), &bound_.len);
    listen_fd_ = fd;
    shared_.listen_fd = fd;
    // Set once here, inherited by every accepted socket (Linux copies it from the listener).
    shared_.listener_nodelay = setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
    return PP_OK;
}

int Acceptor::start(std::string *why) {
    int rc = thread_.init("acceptor", [this] { update_polling(); }, [this] { on_stop(); }, why);
    if (rc != PP_OK) return rc;
    uv_loop_t *loop = thread_.loop();
    rc = LoopThread::check(uv_poll_init(loop, &poll_, listen_fd_), "acceptor: cannot watch the listener", why);
    poll_ready_ = rc == PP_OK;
    for (uv_timer_t *t : {&backoff_timer_, &overflow_timer_}) {
        if (rc == PP_OK) rc = LoopThread::check(uv_timer_init(loop, t), "acceptor: timer", why);
    }
    poll_.data = backoff_timer_.data = overflow_timer_.data = this;
    if (rc == PP_OK && shared_.accepting_workers.load(std::memory_order_acquire) == 0) {
        // No worker accepts for itself (all full, or none could poll): the acceptor does.
        rc = LoopThread::check(uv_poll_start(&poll_, UV_READABLE, on_readable), "acceptor: listener", why);
        polling_ = rc == PP_OK;
    }
    if (rc == PP_OK) {
        rc = LoopThread::check(uv_timer_start(&overflow_timer_, on_overflow_sweep, kOverflowSweepMs, kOverflowSweepMs),
                               "acceptor: overflow timer", why);
    }
    if (rc == PP_OK) rc = thread_.start(why);
    return rc;  // on failure the caller's stop() closes the listener and what was set up
}

void Acceptor::stop() {
    thread_.stop();  // runs on_stop: on the loop thread, or here if it never ran
    if (listen_fd_ >= 0) {  // start() never set the loop up
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
}

void Acceptor::on_stop() {
    // The poll stops watching before its descriptor goes (close_all closes the handles next).
    if (poll_ready_) uv_poll_stop(&poll_);
    polling_ = false;
    // Stop accepting: once the workers' copies close too (at the start of their drain, which
    // the proxy posts next), the kernel refuses new connections.
    ::close(listen_fd_);
    listen_fd_ = -1;
    for (int fd : shared_.overflow.take_older_than(UINT64_MAX)) {
        reject(fd, shared_.accept.rejected_overflow);
        shared_.open_connections.sub();
    }
}

void Acceptor::on_readable(uv_poll_t *p, int status, int) {
    auto *self = static_cast<Acceptor *>(p->data);
    if (status < 0) {  // libuv has stopped the watcher: look again after the pause
        self->shared_.logger.log(PP_LOG_ERROR, "acceptor: the listener reported an error: %s; pausing accepts",
                                 uv_strerror(status));
        self->polling_ = false;
        self->backing_off_ = true;
        PP_UV_MUST(uv_timer_start(&self->backoff_timer_, on_backoff_over, kAcceptPauseMs, 0));
        return;
    }
    self->accept_batch();
    self->update_polling();  // a worker that has room again accepts for itself
}

void Acceptor::update_polling() {
    if (!poll_ready_ || listen_fd_ < 0) return;
    const bool want = !backing_off_ && shared_.accepting_workers.load(std::memory_order_acquire) == 0;
    if (want == polling_) return;
    if (!want) {
        uv_poll_stop(&poll_);
        polling_ = false;
        return;
    }
    const int rc = uv_poll_start(&poll_, UV_READABLE, on_readable);
    if (rc != 0) {  // the listener can no longer be watched: say so loudly, and try again later
        shared_.logger.log(PP_LOG_ERROR, "acceptor: cannot watch the listener: %s", uv_strerror(rc));
        backing_off_ = true;
        PP_UV_MUST(uv_timer_start(&backoff_timer_, on_backoff_over, kAcceptPauseMs, 0));
        return;
    }
    polling_ = true;
}

void Acceptor::accept_batch() {
    for (int i = 0; i < kAcceptBatch; i++) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            dispatch(fd);
            continue;
        }
        const AcceptFailure f = accept_failed(errno, shared_.accept.accept_errors, shared_.logger,
                                              thread_.name().c_str(), &last_error_log_ms_);
        if (f == AcceptFailure::again) continue;
        if (f == AcceptFailure::drained) return;
        uv_poll_stop(&poll_);
        polling_ = false;
        backing_off_ = true;
        PP_UV_MUST(uv_timer_start(&backoff_timer_, on_backoff_over, kAcceptPauseMs, 0));
        return;
    }
}

void Acceptor::on_backoff_over(uv_timer_t *t) {
    auto *self = static_cast<Acceptor *>(t->data);
    self->backing_off_ = false;
    self->update_polling();
}

void Acceptor::reject(int fd, Counter &reason) {
    reason.add();
    ::close(fd);
}

void Acceptor::dispatch(int fd) {
    shared_.accept.accepted.add();
    for (size_t w = 0; w < loads_.size(); w++) loads_[w] = shared_.workers[w]->load();
    // Counted before the decision, as a worker accepting for itself counts (add_fetch): the two
    // may accept at once, and a check before the count would let both pass at the last place.
    const int64_t open_before = shared_.open_connections.add_fetch() - 1;
    Balancer::Decision d = balancer_.pick(loads_, open_before, shared_.overflow.size());
    if (d.kind != Balancer::Kind::worker && d.kind != Balancer::Kind::overflow) shared_.open_connections.sub();
    switch (d.kind) {
    case Balancer::Kind::worker:
        shared_.workers[static_cast<size_t>(d.worker)]->post_handoff(fd);
        return;
    case Balancer::Kind::overflow:
        if (!shared_.overflow.push(fd, mono_ms())) {
            shared_.open_connections.sub();
            reject(fd, shared_.accept.rejected_overflow);
            return;
        }
        shared_.accept.overflow_queued.add();
        // Every worker with room is told, not only the least loaded: in a burst one worker
        // alone drains the queue too slowly, and the queue (overflow_max) fills and refuses
        // connections while others have room. The posts coalesce (one wake-up per worker loop).
        for (size_t w = 0; w < loads_.size(); w++) {
            if (static_cast<int>(w) == d.worker || loads_[w].total() < shared_.worker_capacity) {
                shared_.workers[w]->post_overflow_ready();
            }
        }
        return;
    case Balancer::Kind::reject_max_connections:
        reject(fd, shared_.accept.rejected_max);
        return;
    case Balancer::Kind::reject_overflow_full:
        reject(fd, shared_.accept.rejected_overflow);
        return;
    }
}

// A connection may wait in the overflow queue for queue_timeout at most, like any wait.
void Acceptor::on_overflow_sweep(uv_timer_t *t) {
    auto *self = static_cast<Acceptor *>(t->data);
    uint64_t now = mono_ms();
    uint64_t timeout = static_cast<uint64_t>(self->shared_.settings.queue_timeout);
    if (now < timeout) return;
    for (int fd : self->shared_.overflow.take_older_than(now - timeout)) {
        self->reject(fd, self->shared_.accept.rejected_overflow);
        self->shared_.open_connections.sub();
    }
}

}  // namespace pp
