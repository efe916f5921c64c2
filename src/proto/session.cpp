// The part of a session both modes share: getting a pooled backend connection (idle one, new
// one, or a place in the waiting queue), trying another backend when one fails, and closing.
#include "proto/session.h"
#include "proto/protocols.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <cstring>

#include "core/breaker_report.h"
#include "core/errors.h"
#include "proto/route_table.h"
#include "core/clock.h"
#include "core/uv_result.h"
#include "core/tls_server.h"
#include "core/worker.h"

namespace pp {
namespace session {

namespace {

// The session's mode: what the proxy was made with (protocol_for).
const ModeProtocol &mode(const Session *s) { return static_cast<const ModeProtocol &>(*s->worker->shared().protocol); }

// No backend can take the session: the mode says what the client gets.
void give_up(Session *s, int status, const char *why) { mode(s).give_up(s, status, why); }

void on_handle_closed(uv_handle_t *h) {
    auto *s = static_cast<Session *>(h->data);
    s->open_handles--;
    maybe_delete(s);
}

}  // namespace

// A session outlives its handles until every write and shutdown it issued has called back:
// closing the backend connection cancels those, and libuv may run them after our handles close.
void maybe_delete(Session *s) {
    if (s->open_handles == 0 && s->writes_pending == 0 && s->shutdowns_pending == 0) {
        delete s->relay;
        s->relay = nullptr;
        mode(s).destroy(s);  // the mode's type, with its own state
    }
}

// Every exchange's outcome comes through here (see session.h): nothing else writes to the
// breaker on a session's behalf, counts a request or writes an access-log entry.
void outcome(Session *s, Outcome o, const char *why, int status, bool ends) {
    Worker &w = *s->worker;
    if (s->attempt_pending && s->backend_id >= 0) {
        s->attempt_pending = false;
        Backend &b = w.pool(static_cast<size_t>(s->backend_id)).backend();
        if (o == Outcome::abandoned) {
            // Not the backend's doing: it counts neither way, and a probe frees its slot so
            // that the next request probes instead (else the breaker stays half-open forever).
            if (s->probe) b.breaker.release_probe(s->probe_epoch);
        } else {
            record_attempt(w.shared().logger, b, o == Outcome::done, s->probe, s->probe_epoch, why);
        }
        s->probe = false;
        s->probe_epoch = 0;
    }
    if (!ends || s->exchange == Session::Exchange::none) return;
    s->exchange = Session::Exchange::none;
    const ModeProtocol &m = mode(s);
    WorkerCounters &c = w.counters();
    const uint64_t now = uv_hrtime();
    const uint64_t total_us = s->t_start && now > s->t_start ? (now - s->t_start) / 1000 : 0;
    // `requests` counts what was answered (http) or ended (tcp), so that the status classes add
    // up to it; an http exchange the client left before any answer is only logged.
    if (m.whole_session || status > 0) {
        c.requests.add();
        if (status >= 100 && status < 600) c.responses[status / 100 - 1].add();
        c.request_latency.record(total_us);
        if (s->backend_id >= 0) {
            PoolCounters &pc = w.pool(static_cast<size_t>(s->backend_id)).counters_mut();
            pc.requests.add();
            if (status >= 500) pc.responses_5xx.add();
        }
    }
    const Logger &log = w.shared().logger;
    if (!log.access_enabled()) return;
    const ModeProtocol::ExchangeView v = m.view(s);
    pp_access_entry e{};
    e.struct_size = sizeof e;
    e.worker = w.index();
    e.backend_id = s->backend_id;
    std::string backend = s->backend_id >= 0 ? w.pool(static_cast<size_t>(s->backend_id)).backend().name : "";
    e.backend = backend.c_str();
    e.client = s->peer.c_str();
    e.method = v.method;
    e.target = v.target;
    e.status = status;
    e.reused = s->reused_conn ? 1 : 0;
    e.bytes_in = s->bytes_in;
    e.bytes_out = s->bytes_out;
    e.queue_wait_us = s->queue_wait_ns / 1000;
    e.connect_us = s->t_connect && s->t_ready > s->t_connect ? (s->t_ready - s->t_connect) / 1000 : 0;
    const uint64_t fb = v.first_byte_ns;
    e.first_byte_us = fb && s->t_ready && fb > s->t_ready ? (fb - s->t_ready) / 1000 : 0;
    e.total_us = total_us;
    e.reason = o == Outcome::done || !why ? "" : why;
    log.access(e);
}

int shutdown_now(uv_stream_t *stream, TlsConn *tls) {
    if (stream->write_queue_size > 0) return UV_EAGAIN;
    if (tls && !tls->notify_close()) return UV_EAGAIN;  // its close_notify is queued: shut down after it
    uv_os_fd_t fd;
    if (const int rc = uv_fileno(reinterpret_cast<uv_handle_t *>(stream), &fd)) return rc;
    return ::shutdown(fd, SHUT_WR) == 0 ? 0 : uv_translate_sys_error(errno);
}

bool write_done(Session *s, int status) {
    s->writes_pending--;
    if (s->state == Session::State::closing) {
        maybe_delete(s);
        return false;
    }
    if (status < 0) {
        close(s, uv_strerror(status));
        return false;
    }
    return true;
}

namespace {

// The client stream's own reads while TLS is on: TlsConn decrypts them.
void on_tls_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) { static_cast<Session *>(h->data)->tls->on_raw_alloc(buf); }
void on_tls_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
    static_cast<Session *>(st->data)->tls->on_raw_read(nread, buf);
}

void on_tls_handshaken(uv_stream_t *st, int status) {
    auto *s = static_cast<Session *>(st->data);
    Worker &w = *s->worker;
    WorkerCounters &c = w.counters();
    TlsConn &t = *s->tls;
    if (status < 0) {
        const char *why = "tls handshake failed";
        switch (t.failure()) {
        case TlsConn::Failure::plaintext:
            c.tls_failed_plaintext.add();
            why = "tls: plaintext on the TLS port";
            break;
        case TlsConn::Failure::closed:
            c.tls_failed_closed.add();
            why = "tls: the client left during the handshake";
            break;
        default:
            c.tls_failed_protocol.add();
            break;
        }
        w.shared().logger.log(PP_LOG_DEBUG, "worker %d: tls handshake with %s failed: %s", w.index(),
                              s->peer.empty() ? "a client" : s->peer.c_str(), t.failure_text().c_str());
        if (t.failure() == TlsConn::Failure::plaintext) mode(s).plaintext_on_tls(s);
        close(s, why);
        return;
    }
    c.tls_handshakes.add();
    if (t.resumed()) c.tls_resumed.add();
    c.tls_handshake_time.record((uv_hrtime() - s->t_start) / 1000);
    w.clear_deadline(s);
    mode(s).begin(s);
}

}  // namespace

void start_tls(Session *s, const TlsServer &server) {
    Worker &w = *s->worker;
    SSL *ssl = server.new_ssl();
    if (ssl) {
        s->tls = std::make_unique<TlsConn>(ssl, reinterpret_cast<uv_stream_t *>(&s->client), on_tls_alloc, on_tls_read,
                                           on_tls_handshaken);
    }
    const int rc = ssl ? s->tls->start_handshake() : UV_ENOMEM;
    if (rc != 0) {
        warn_uv_failure(w.shared().logger, "client connection: cannot start its TLS handshake", rc);
        close(s, "cannot start the TLS handshake");
        return;
    }
    w.set_deadline(s, kTlsHandshakeDeadline, static_cast<uint64_t>(w.settings().tls_handshake_timeout));
}

void start(Worker &w, int fd, const sockaddr *peer, socklen_t peer_len) {
    const ModeProtocol &m = static_cast<const ModeProtocol &>(*w.shared().protocol);
    Session *s = m.make();
    s->t_start = uv_hrtime();
    s->worker = &w;
    s->client.data = s;
    PP_UV_MUST(uv_tcp_init(w.loop(), &s->client));  // opens nothing yet: fails only on bad arguments
    s->open_handles = 1;
    w.session_started(s);
    if (const int rc = uv_tcp_open(&s->client, fd)) {
        ::close(fd);
        warn_uv_failure(w.shared().logger, "client connection: cannot adopt the socket", rc);
        close(s, "cannot adopt socket");
        return;
    }
    // Responses are small and latency-bound: a client socket that cannot take TCP_NODELAY is
    // closed (counted as a finished session) rather than served slowly without anyone knowing.
    // Sockets accepted from our listener have it already (inherited).
    if (!w.shared().listener_nodelay) {
        if (const int rc = uv_tcp_nodelay(&s->client, 1)) {
            warn_uv_failure(w.shared().logger, "client connection: cannot set TCP_NODELAY", rc);
            close(s, "cannot set TCP_NODELAY");
            return;
        }
    }
    if (m.needs_peer(w) || w.shared().logger.access_enabled()) {  // read now: once the client is gone it cannot be
        Address a;
        bool known = false;
        if (peer && peer_len > 0 && static_cast<size_t>(peer_len) <= sizeof a.storage) {
            std::memcpy(&a.storage, peer, static_cast<size_t>(peer_len));
            a.len = peer_len;
            known = true;
        } else {
            int len = sizeof a.storage;
            known = uv_tcp_getpeername(&s->client, reinterpret_cast<sockaddr *>(&a.storage), &len) == 0;
            a.len = static_cast<socklen_t>(len);
        }
        if (known) {
            s->peer = a.to_string();
            // "1.2.3.4:5678" or "[::1]:5678": the address alone, for X-Forwarded-For
            const size_t colon = s->peer.rfind(':');
            const bool v6 = !s->peer.empty() && s->peer.front() == '[';
            s->peer_ip_off = v6 ? 1 : 0;
            s->peer_ip_len = static_cast<uint8_t>(colon == std::string::npos ? 0 : colon - (v6 ? 2 : 0));
        }
    }
    if (const TlsServer *tls = w.shared().tls.load(std::memory_order_acquire)) {  // the mode begins once the handshake is done
        start_tls(s, *tls);
        return;
    }
    m.begin(s);
}

void acquire_or_wait(Session *s) {
    if (!try_acquire(s) && !s->worker->enqueue_waiter(s)) give_up(s, 503, "waiting queue full");
}

namespace {

// The session gets backend b (and `conn`, or a slot to open one with): counted as started
// there; its wait, if it waited, ends here (Worker::dequeue_waiter records it).
void bind(Session *s, BackendPool &pool, int b, PooledConn *conn, const CircuitBreaker::Admission &admission) {
    Worker &w = *s->worker;
    s->probe = admission.probe;
    s->probe_epoch = admission.epoch;
    s->attempt_pending = true;  // outcome() tells the breaker how the attempt went
    s->holds_request_slot = pool.backend().gs->backend_max_requests > 0;
    w.dequeue_waiter(s);
    (conn ? w.counters().pool_hits : w.counters().pool_misses).add();
    s->backend_id = b;
    w.lb().started(b);
    pool.counters_mut().sessions.add();
    pool.counters_mut().sessions_active.add();
}

}  // namespace

namespace {
bool try_acquire_once(Session *s, bool may_catch_up);
}  // namespace

bool try_acquire(Session *s) { return try_acquire_once(s, true); }

namespace {

bool try_acquire_once(Session *s, bool may_catch_up) {
    Worker &w = *s->worker;
    if (!s->wait_link.linked()) {
        // A group a reload replaced (a route or hook chose it just before): its successor. A
        // waiting session is moved by its worker instead (Worker::sync_backends), its queue
        // being the old group's.
        s->group = static_cast<int16_t>(w.shared().live_group(s->group));
        w.know_group(s->group);
    }
    const Group &group = w.shared().groups[static_cast<size_t>(s->group)];
    const Settings &st = group.settings;  // the group's limits
    // Only the backends of the session's group; of those, the ones that failed for this
    // session stay excluded, and those found full are skipped only within this attempt (the
    // worker's scratch set, reused to allocate nothing).
    std::vector<bool> &skip = w.lb_scratch();
    skip = w.outside_group(s->group);
    if (s->forced_backend >= 0) {  // a request hook picked it: no other
        for (size_t b = 0; b < skip.size(); b++) skip[b] = b != static_cast<size_t>(s->forced_backend);
    }
    if (s->any_failed()) {
        for (size_t b = 0; b < skip.size(); b++) skip[b] = skip[b] || s->has_failed(b);
    }
    bool any_full = false;
    const uint64_t now = mono_ms();
    if (!s->t_acquire) s->t_acquire = uv_hrtime();
    // Fair waiting: while any session of any worker waits for a connection, a request that is
    // not queued yet finds every backend full and queues behind them (HAProxy serves a
    // server's queue before new requests the same way). One relaxed load of a counter that
    // only moves when sessions start or stop waiting.
    const bool behind = !s->wait_link.linked() && group.waiting.get() > 0;
    LoadBalancer::NoBackend why = LoadBalancer::NoBackend::none;
    bool refused_by_breaker = false, over_limit = false;
    std::vector<int> &full = w.full_scratch();
    full.clear();
    for (;;) {
        int b = w.lb().pick(static_cast<LbPolicy>(st.lb), skip, now, &why);
        if (b < 0) break;
        BackendPool &pool = w.pool(static_cast<size_t>(b));
        Backend &backend = pool.backend();
        CircuitBreaker::Admission admission = backend.breaker.admit(now);
        if (admission.transition != CircuitBreaker::Transition::none) {
            report_breaker(w.shared().logger, backend, admission.transition, "breaker_open_time passed");
        }
        if (!admission.allowed) {  // half-open with its probes taken by other requests
            skip[b] = true;
            refused_by_breaker = true;
            continue;
        }
        if (st.backend_max_requests > 0 && !Backend::take_below(backend.requests_in_flight, st.backend_max_requests)) {
            if (admission.probe) backend.breaker.release_probe(admission.epoch);
            skip[b] = true;
            over_limit = true;
            continue;
        }
        // An idle connection, a slot handed to this worker's waiters (Worker::slot_freed), or
        // a slot of its own under pool_max.
        PooledConn *conn = behind ? nullptr : pool.take_idle();
        if (!conn && (behind || (!pool.take_reserved_slot() && !backend.try_reserve(backend.pool_max)))) {
            if (admission.probe) backend.breaker.release_probe(admission.epoch);
            if (st.backend_max_requests > 0) backend.requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
            skip[b] = true;
            any_full = true;
            full.push_back(b);
            continue;
        }
        bind(s, pool, b, conn, admission);
        if (conn) {
            on_connected(s, conn);
            return true;
        }
        s->state = Session::State::connecting;
        s->t_connect = uv_hrtime();
        bool local = false;
        s->conn = pool.open(s, &local);
        if (s->conn) return true;
        // The connect could not even start. Out of descriptors or memory here (local): no
        // backend is to blame and none would do better now, so the attempt is abandoned (a
        // probe gives its slot back) and the client answered at once. Otherwise this backend
        // has failed for the session.
        outcome(s, local ? Outcome::abandoned : Outcome::failed,
                local ? "connect could not start: out of local resources" : "connect could not start", 0, false);
        leave_backend(s);
        s->backend_id = -1;
        s->state = Session::State::acquiring;
        if (local) {
            w.dequeue_waiter(s);
            give_up(s, 503, "out of local resources (descriptors or memory)");
            return true;
        }
        s->mark_failed(b);
        skip[b] = true;
    }
    if (any_full) {
        // It will wait for a slot: counted as pending on the full backend with the fewest,
        // unless each is at backend_max_pending (then 503 now, Envoy's pending overflow).
        if (s->pending_backend >= 0 &&
            !w.shared().backends[static_cast<size_t>(s->pending_backend)].takes_requests()) {
            // Counted on a backend removed (or drained) since: counted again among those left.
            w.shared().backends[static_cast<size_t>(s->pending_backend)].pending.fetch_sub(1, std::memory_order_relaxed);
            s->pending_backend = -1;
        }
        if (st.backend_max_pending <= 0 || s->pending_backend >= 0) return false;
        int best = -1;
        int64_t least = st.backend_max_pending;
        for (int b : full) {
            int64_t p = w.shared().backends[static_cast<size_t>(b)].pending.load(std::memory_order_relaxed);
            if (p < least) {
                least = p;
                best = b;
            }
        }
        if (best >= 0 && Backend::take_below(w.shared().backends[static_cast<size_t>(best)].pending,
                                             st.backend_max_pending)) {
            s->pending_backend = best;
            return false;
        }
        over_limit = true;
    }
    // Refused: unless a reload this worker has not taken up yet explains it (a backend
    // removed whose replacement has no pool here yet, or the session waits in a group that
    // was replaced). Then once more, as things are now (once: a reload is taken up whole).
    if (may_catch_up && w.catch_up()) return try_acquire_once(s, false);
    w.dequeue_waiter(s);
    if (over_limit) {
        w.counters().no_backend_limits.add();
        w.counters().rejected_no_backend.add();
        give_up(s, 503, "backend_max_requests or backend_max_pending reached");
        return true;
    }
    if (refused_by_breaker || why == LoadBalancer::NoBackend::breaker_open) {
        w.counters().no_backend_breaker_open.add();
    } else if (why == LoadBalancer::NoBackend::unhealthy) {
        w.counters().no_backend_unhealthy.add();
    }
    w.counters().rejected_no_backend.add();
    give_up(s, 503, "no backend available");
    return true;
}

}  // namespace

// The session stops counting against its backend (in flight, least_conn, the request limit).
void leave_backend(Session *s) {
    Worker &w = *s->worker;
    w.lb().finished(s->backend_id);
    BackendPool &pool = w.pool(static_cast<size_t>(s->backend_id));
    pool.counters_mut().sessions_active.sub();
    if (s->holds_request_slot) {
        pool.backend().requests_in_flight.fetch_sub(1, std::memory_order_relaxed);
        s->holds_request_slot = false;
    }
    if (s->holds_tunnel) {
        pool.backend().tunnels.fetch_sub(1, std::memory_order_relaxed);
        s->holds_tunnel = false;
    }
}

void on_connected(Session *s, PooledConn *conn) {
    s->reused_conn = conn->state == PooledConn::State::in_use;  // take_idle marks it so
    s->t_ready = uv_hrtime();
    s->conn = conn;
    conn->owner = s;
    conn->state = PooledConn::State::in_use;
    s->state = Session::State::relaying;
    mode(s).attach(s, conn);
}

void on_connect_failed(Session *s, int backend_id, const char *why) {
    Worker &w = *s->worker;
    outcome(s, Outcome::failed, why, 0, false);  // the attempt, with its probe
    leave_backend(s);
    s->conn = nullptr;
    s->backend_id = -1;
    s->state = Session::State::acquiring;
    s->mark_failed(static_cast<size_t>(backend_id));
    if (s->retries_used >= w.shared().groups[static_cast<size_t>(s->group)].settings.retries) {
        give_up(s, 503, "backend connect failed, no retry left");
        return;
    }
    s->retries_used++;
    w.counters().retries.add();
    acquire_or_wait(s);
}

// The session stops using its backend connection: the in-flight counts drop, and the
// connection goes back to its pool (a clean keep-alive exchange) or is closed.
static void release_conn(Session *s, bool reuse, bool failed) {
    if (s->backend_id < 0 || !s->conn) return;
    BackendPool &pool = s->worker->pool(static_cast<size_t>(s->backend_id));
    leave_backend(s);
    if (reuse) pool.recycle(s->conn);
    else pool.finish_session(s->conn, failed);
    s->conn = nullptr;
    s->backend_id = -1;
    s->state = Session::State::acquiring;
}

void give_back_conn(Session *s) { release_conn(s, true, false); }

void close_conn(Session *s, bool failed) { release_conn(s, false, failed); }

const char *const kBothSidesClosed = "both sides closed";

void let_go(Session *s, const char *why) {
    Worker &w = *s->worker;
    // Whatever was still under way ends here: a tunnel (or a tcp session that reached its
    // backend) is done; an exchange the client left, or one cut by a timeout or a drain, is
    // abandoned (a probe gives its slot back). Its entry says what the client had got.
    if (s->exchange != Session::Exchange::none || s->attempt_pending) {
        // (A relay's attempt was recorded when it attached: here only the entry's reason differs.)
        const ModeProtocol &m = mode(s);
        const bool relayed = s->exchange == Session::Exchange::tunnel ||
                             (m.whole_session && s->state == Session::State::relaying);
        const int status = m.view(s).sent_status;
        outcome(s, relayed && why == kBothSidesClosed ? Outcome::done : Outcome::abandoned, why, status, true);
    }
    w.dequeue_waiter(s);
    if (s->backend_id >= 0) {
        BackendPool &pool = w.pool(static_cast<size_t>(s->backend_id));
        leave_backend(s);
        if (s->conn && s->conn->state == PooledConn::State::connecting) {
            pool.adopt_connecting(s->conn);  // still useful: it becomes an idle pooled connection
        } else if (s->conn) {
            pool.finish_session(s->conn);
        }
        s->conn = nullptr;
        s->backend_id = -1;
    }
    if (s->relay) {
        for (IoBlock **held : {&s->relay->early_up, &s->relay->early_more}) {
            if (*held) w.buffers().put(*held);
            *held = nullptr;
        }
    }
}

void close(Session *s, const char *why) {
    if (s->state == Session::State::closing) return;
    Worker &w = *s->worker;
    w.shared().logger.log(PP_LOG_DEBUG, "worker %d: session closed: %s", w.index(), why);
    let_go(s, why);
    s->state = Session::State::closing;
    if (s->tls) s->tls->notify_close();  // a close_notify, if the socket takes it now
    uv_close(reinterpret_cast<uv_handle_t *>(&s->client), on_handle_closed);
    if (s->relay && s->relay->timer_open) uv_close(reinterpret_cast<uv_handle_t *>(&s->relay->idle_timer), on_handle_closed);
    w.clear_deadline(s);
    w.session_closed(s);
}

void waited_too_long(Session *s) {
    mode(s).warn_queue_timeout(*s->worker);
    give_up(s, 503, "queue timeout");
}

void deadline_passed(Session *s, int kind) {
    if (kind == kTlsHandshakeDeadline) {  // no mode's yet: it begins after the handshake
        s->worker->counters().tls_failed_timeout.add();
        close(s, "tls: handshake timeout");
        return;
    }
    mode(s).deadline(s, kind);
}

void drain(Session *s) {
    if (s->tls && !s->tls->handshake_done()) {  // nothing begun: closed at once
        close(s, "draining");
        return;
    }
    mode(s).drain_session(s);
}

}  // namespace session

// The core's calls: the same for both modes.
void ModeProtocol::start(Worker &w, int fd, const sockaddr *peer, socklen_t peer_len) const {
    session::start(w, fd, peer, peer_len);
}
bool ModeProtocol::try_acquire(ClientBase *c) const { return session::try_acquire(session::of(c)); }
void ModeProtocol::waited_too_long(ClientBase *c) const { session::waited_too_long(session::of(c)); }
void ModeProtocol::attached(ClientBase *c, PooledConn *conn) const { session::on_connected(session::of(c), conn); }
void ModeProtocol::connect_failed(ClientBase *c, int backend_id, const char *why) const {
    session::on_connect_failed(session::of(c), backend_id, why);
}
void ModeProtocol::deadline_passed(ClientBase *c, int kind) const { session::deadline_passed(session::of(c), kind); }
void ModeProtocol::drain(ClientBase *c) const { session::drain(session::of(c)); }
void ModeProtocol::close(ClientBase *c, const char *why) const { session::close(session::of(c), why); }
void ModeProtocol::resumed(ClientBase *c) const { resume(session::of(c)); }

bool build_routes(const Settings &settings, const std::function<int(std::string_view)> &group_id, RouteTable *table,
                  std::string *why) {
    for (const std::string &text : settings.routes) {
        Route r;
        std::string reason;
        if (!parse_route(text, group_id, &r, &reason) || !table->add(std::move(r), &reason)) {
            *why = "option 'route' '" + text + "': " + reason;
            return false;
        }
    }
    table->set_default_group(group_id("default"));
    return true;
}

// The proxy's protocol by mode; http's with its route table.
int configured_group_id(const Settings &settings, std::string_view name) {
    if (name == "default") return 0;
    for (size_t g = 0; g < settings.groups.size(); g++) {
        if (settings.groups[g].name == name) return static_cast<int>(g + 1);
    }
    return -1;
}

std::unique_ptr<Protocol> protocol_for(const Settings &settings) {
    if (settings.mode != static_cast<int64_t>(Mode::http)) return make_tcp_protocol(settings);
    if (!settings.sni_routes.empty()) {
        throw Error(PP_EBADVALUE, "option 'sni_route': tcp mode only (http mode routes with option 'route', host=)");
    }
    const auto group_id = [&settings](std::string_view name) { return configured_group_id(settings, name); };
    RouteTable table;
    std::string why;
    if (!build_routes(settings, group_id, &table, &why)) throw Error(PP_EBADVALUE, why);
    return make_http_protocol(std::move(table));
}

}  // namespace pp
