#include "core/pool.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/clock.h"
#include "core/uv_result.h"
#include "core/worker.h"
#include "core/breaker_report.h"
#include "core/protocol.h"
#include "core/stream_io.h"
#include "core/tls_client.h"

namespace pp {

namespace {
constexpr int kWarmConnectsInFlight = 2;  // bounded refill rate (pgbouncer#300's stampede)
constexpr uint64_t kRefillBackoffMs = 1000;
constexpr uint64_t kShortLivedMs = 1000;  // closed this soon after opening, unused: see closed_unused
constexpr uint64_t kDownMs = 1000;  // a backend that refused is skipped this long when others exist
}  // namespace

BackendPool::BackendPool(Worker &worker, Backend &backend, int64_t warm_share, bool probe_at_start, bool counted)
    : worker_(worker), backend_(backend), warm_share_(warm_share), probe_pending_(probe_at_start),
      probe_counted_(probe_at_start && counted) {}

BackendPool::~BackendPool() { SSL_SESSION_free(tls_session_); }

void BackendPool::settle_probe(PooledConn *conn) {
    if (conn) {
        if (!conn->start_probe) return;
        conn->start_probe = false;
    }
    if (probe_counted_) {
        probe_counted_ = false;
        worker_.shared().start_probes.fetch_sub(1, std::memory_order_release);
    }
}

// The most recently used connection first: its state is warm in caches, and the least used
// ones age at the front until pool_idle_timeout retires them, so the pool shrinks to the load.
PooledConn *BackendPool::take_idle() {
    PooledConn *conn = idle_.pop_back();
    if (!conn) return nullptr;
    counters_.idle.sub();
    worker_.idle_changed(backend_.group, -1);
    conn->state = PooledConn::State::in_use;
    worker_.schedule_deferred();  // a refill may be due
    return conn;
}

// A connection object with its two handles set up on this worker's loop, counted as open.
PooledConn *BackendPool::new_conn(uint64_t created_ms) {
    auto *conn = new PooledConn;
    conn->pool = this;
    conn->created_ms = created_ms;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->connect_req.data = conn;
    // Neither opens anything yet (the socket comes with the connect or uv_tcp_open): they fail
    // only on bad arguments.
    PP_UV_MUST(uv_tcp_init(worker_.loop(), &conn->tcp));
    PP_UV_MUST(uv_timer_init(worker_.loop(), &conn->timer));
    conn->open_handles = 2;
    counters_.open.add();
    return conn;
}

namespace {
// Errors of this process, not of the backend: connecting again elsewhere would fail the same.
// (Not EADDRNOTAVAIL: local ports run out per destination, so another backend may still do.)
bool local_failure(int rc) { return rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM; }
}  // namespace

PooledConn *BackendPool::open(ClientBase *owner, bool *local) {
    const Settings &st = *backend_.gs;  // its group's options
    if (local) *local = false;
    PooledConn *conn = new_conn(mono_ms());
    conn->owner = owner;
    conn->warm = (owner == nullptr);
    if (conn->warm) warm_connecting_++;
    conn->connect_start_ns = uv_hrtime();
    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, backend_.addr.sa(), on_connect);
    if (rc != 0) {
        conn->owner = nullptr;  // the caller learns of the failure from the returned nullptr
        if (!local_failure(rc)) {
            connect_failed(conn, uv_strerror(rc), owner != nullptr);
            return nullptr;
        }
        // Not counted in the backend's connect_failures, nor by its breaker: it never saw it.
        if (quiet_long_enough(&last_local_warn_ms_, 1000)) {
            worker_.shared().logger.log(PP_LOG_WARN, "backend %s: cannot connect: %s (this process's limit, not the "
                                        "backend's fault)", backend_.name.c_str(), uv_strerror(rc));
        }
        abandon_connect(conn);
        if (local) *local = true;
        return nullptr;
    }
    PP_UV_MUST(uv_timer_start(&conn->timer, on_connect_timeout, static_cast<uint64_t>(st.connect_timeout), 0));
    // The read is armed now, beside the connect's POLLOUT: libuv registers both in one
    // epoll_ctl and changes it once when the connect completes. Armed after the connect, it
    // costs two (libuv forgot the registration: an ADD that fails EEXIST, then a MOD). libuv
    // reports the connect before any read, and a failed connect closes the handle first. If
    // this fails, arming again after the connect (make_idle, the session) reports it. (With
    // backend_tls, the TLS layer arms it once the connect is done.)
    if (!backend_.tls) (void)start_reading(conn);
    return conn;
}

void BackendPool::on_connect(uv_connect_t *req, int status) {
    auto *conn = static_cast<PooledConn *>(req->data);
    if (conn->state == PooledConn::State::closing) return;  // timed out or drained meanwhile
    BackendPool &pool = *conn->pool;
    uv_timer_stop(&conn->timer);
    // Requests are small and latency-bound: a socket that cannot take TCP_NODELAY is not one
    // we serve on. It fails like a connect (counted, the backend marked down, the session
    // retried elsewhere), naming the cause.
    const int nodelay = status < 0 ? 0 : uv_tcp_nodelay(&conn->tcp, 1);
    // (A failure settles it in close(); with backend_tls the handshake must pass too: a refused
    // certificate is reported at start like an unreachable backend.)
    if (status >= 0 && nodelay == 0 && !pool.backend_.tls) pool.settle_probe(conn);
    if (status < 0) {
        pool.connect_failed(conn, uv_strerror(status));
        return;
    }
    if (nodelay != 0) {
        const std::string why = std::string("cannot set TCP_NODELAY: ") + uv_strerror(nodelay);
        pool.connect_failed(conn, why.c_str());
        return;
    }
    if (pool.backend_.tls) {
        // The connect's own time (the handshake has its histogram).
        pool.worker_.counters().connect_time.record((uv_hrtime() - conn->connect_start_ns) / 1000);
        pool.start_tls(conn);
        return;
    }
    pool.connected(conn);
}

namespace {
// A TLS connection's own reads (TlsConn decrypts them) and the sessions its handshakes give.
void on_tls_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) { static_cast<PooledConn *>(h->data)->tls->on_raw_alloc(buf); }
void on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    static_cast<PooledConn *>(s->data)->tls->on_raw_read(nread, buf);
}
}  // namespace

// backend_tls: the handshake, within connect_timeout again; the connection is usable once it
// is done (verified, with backend_tls_verify), resumed from this worker's last session of the
// backend when the backend takes it.
void BackendPool::start_tls(PooledConn *conn) {
    SSL *ssl = backend_.tls->new_ssl(backend_.tls_host());
    if (!ssl) {
        connect_failed(conn, "tls: out of memory");
        return;
    }
    if (tls_session_) SSL_set_session(ssl, tls_session_);
    tls_session_slot(ssl, &tls_session_);
    conn->tls = std::make_unique<TlsConn>(ssl, reinterpret_cast<uv_stream_t *>(&conn->tcp), on_tls_alloc, on_tls_read,
                                          on_tls_handshaken);
    PP_UV_MUST(uv_timer_start(&conn->timer, on_connect_timeout, static_cast<uint64_t>(backend_.gs->connect_timeout), 0));
    conn->tls_start_ns = uv_hrtime();
    if (const int rc = conn->tls->start_handshake()) connect_failed(conn, uv_strerror(rc));
}

void BackendPool::on_tls_handshaken(uv_stream_t *s, int status) {
    auto *conn = static_cast<PooledConn *>(s->data);
    BackendPool &pool = *conn->pool;
    uv_timer_stop(&conn->timer);
    WorkerCounters &c = pool.worker_.counters();
    if (status < 0) {
        (conn->tls->failure() == TlsConn::Failure::verify ? c.tls_backend_failed_verify : c.tls_backend_failed_protocol).add();
        const std::string why = "tls: " + conn->tls->failure_text();
        pool.connect_failed(conn, why.c_str());
        return;
    }
    c.tls_backend_handshakes.add();
    if (conn->tls->resumed()) c.tls_backend_resumed.add();
    c.tls_backend_handshake_time.record((uv_hrtime() - conn->tls_start_ns) / 1000);
    pool.settle_probe(conn);
    pool.connected(conn);
}

void BackendPool::connected(PooledConn *conn) {
    BackendPool &pool = *this;
    pool.counters_.opened.add();
    if (!conn->tls) pool.worker_.counters().connect_time.record((uv_hrtime() - conn->connect_start_ns) / 1000);
    if (!pool.backend_.up.exchange(true)) {
        pool.backend_.transitions.fetch_add(1, std::memory_order_relaxed);
        pool.worker_.shared().logger.event(PP_EVENT_BACKEND_UP, pool.backend_.id, pool.backend_.name,
                                           "connect succeeded");
        pool.worker_.shared().logger.log(PP_LOG_INFO, "backend %s is up again", pool.backend_.name.c_str());
    }
    pool.backend_.down_until_ms.store(0, std::memory_order_relaxed);
    if (conn->owner) {
        pool.worker_.shared().protocol->attached(conn->owner, conn);
    } else {
        pool.warm_connecting_--;
        conn->warm = false;
        pool.make_idle(conn);
    }
}

void BackendPool::on_connect_timeout(uv_timer_t *timer) {
    auto *conn = static_cast<PooledConn *>(timer->data);
    if (conn->tls) conn->pool->worker_.counters().tls_backend_failed_timeout.add();
    conn->pool->connect_failed(conn, conn->tls ? "tls handshake timed out (connect_timeout)" : "connect timed out");
}

void BackendPool::connect_failed(PooledConn *conn, const char *reason, bool owner_records) {
    counters_.connect_failures.add();
    backend_.down_until_ms.store(mono_ms() + kDownMs, std::memory_order_relaxed);
    const Shared &sh = worker_.shared();
    if (backend_.up.exchange(false)) {
        backend_.transitions.fetch_add(1, std::memory_order_relaxed);
        sh.logger.event(PP_EVENT_BACKEND_DOWN, backend_.id, backend_.name, reason);
        sh.logger.log(PP_LOG_WARN, "backend %s: %s", backend_.name.c_str(), reason);
    } else {
        sh.logger.log(PP_LOG_DEBUG, "backend %s: %s", backend_.name.c_str(), reason);
    }
    ClientBase *owner = conn->owner;
    // A session's connect is an attempt of its exchange: the session records it (with its
    // probe) through session::outcome. Here only connects nobody waits for: warm ones, and
    // those whose session left while they were opening.
    if (!owner && !owner_records) record_attempt(worker_.shared().logger, backend_, false, false, 0, reason);
    abandon_connect(conn);
    if (owner) worker_.shared().protocol->connect_failed(owner, backend_.id, reason);
}

// A connect that will not complete: a warm one stops counting as in flight and refills back off.
void BackendPool::abandon_connect(PooledConn *conn) {
    if (conn->warm && conn->state == PooledConn::State::connecting) {
        warm_connecting_--;
        refill_after_ms_ = mono_ms() + kRefillBackoffMs;
    }
    conn->owner = nullptr;
    close(conn);
}

void BackendPool::make_idle(PooledConn *conn, bool may_move) {
    if (!backend_.takes_requests()) {  // drained or removed meanwhile: nobody will reuse it
        close(conn);
        return;
    }
    // Fair waiting: while anyone waits, a free connection goes to the oldest waiter: moved to
    // its worker, or kept in our idle list for our waiters alone (a later request queues
    // behind them) until the deferred pass hands it over. Otherwise (the keep-alive path
    // under no pressure) this costs one relaxed load.
    if (backend_.group_waiting->get() > 0 &&
        worker_.hand_to_waiter(*this, conn, may_move)) {
        return;
    }
    conn->state = PooledConn::State::idle;
    conn->idle_since_ms = mono_ms();
    idle_.push_back(conn);
    counters_.idle.add();
    worker_.idle_changed(backend_.group, +1);
    // Keep a read armed while idle: a backend's close is noticed at once, and bytes a
    // server-first protocol sends (a greeting) are kept for the session that takes it.
    conn->on_read = nullptr;
    if (const int rc = start_reading(conn)) {
        // Without a read armed a backend's close goes unnoticed until a request finds it.
        warn_uv_failure(worker_.shared().logger, ("backend " + backend_.name + ": cannot watch an idle connection").c_str(),
                        rc);
        counters_.closed_error.add();
        close(conn);
    }
    worker_.schedule_deferred();  // a waiter takes it there; or a refill may be due
}

int BackendPool::start_reading(PooledConn *conn) {
    if (conn->reading) return 0;
    const int rc = io::read_start(reinterpret_cast<uv_stream_t *>(&conn->tcp), conn->tls.get(), on_alloc, on_read);
    if (rc == 0) conn->reading = true;
    return rc;
}

void BackendPool::stop_reading(PooledConn *conn) {
    if (!conn->reading) return;
    io::read_stop(reinterpret_cast<uv_stream_t *>(&conn->tcp), conn->tls.get());
    conn->reading = false;
}

void BackendPool::on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    auto *conn = static_cast<PooledConn *>(h->data);
    IoBlock *b = conn->pool->worker_.buffers().get();
    b->refs = 1;
    *buf = uv_buf_init(b->data, IoBlock::kSize);
}

void BackendPool::on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    auto *conn = static_cast<PooledConn *>(s->data);
    if (conn->state == PooledConn::State::in_use && conn->on_read) {
        conn->on_read(conn, nread, buf);
        return;
    }
    IoBlock *b = buf->base ? reinterpret_cast<IoBlock *>(buf->base - offsetof(IoBlock, data)) : nullptr;
    conn->pool->on_idle_read(conn, nread, b);
}

// A connection that never carried anything is closed because of what the backend did: if the
// backend does that right after accepting, pre-warming would reopen it at once, again and again
// (a backend at its maxclients, one that closes what it accepts). Refills pause instead, and
// the cause is said once a second.
void BackendPool::closed_unused(PooledConn *conn, const char *why) {
    const uint64_t now = mono_ms();
    if (conn->requests != 0 || now - conn->created_ms >= kShortLivedMs) return;
    refill_after_ms_ = now + kRefillBackoffMs;
    if (quiet_long_enough(&last_unused_warn_ms_, 1000)) {
        worker_.shared().logger.log(PP_LOG_WARN, "backend %s: a pooled connection was %s right after it opened; "
                                    "pausing pre-warming for %llums", backend_.name.c_str(), why,
                                    static_cast<unsigned long long>(kRefillBackoffMs));
    }
}

void BackendPool::on_idle_read(PooledConn *conn, ssize_t nread, IoBlock *b) {
    BackendPool &pool = *this;
    if (nread > 0 && pool.worker_.settings().mode == static_cast<int64_t>(Mode::http)) {
        // An HTTP server may not speak unasked: whatever this is, the connection is unusable.
        pool.worker_.buffers().put(b);
        pool.counters_.closed_by_backend.add();
        pool.closed_unused(conn, "sent bytes unasked (an HTTP server may not)");
        pool.close(conn);
        return;
    }
    if (nread > 0) {
        size_t have = conn->early ? conn->early->len : 0;
        if (!conn->early) {
            b->len = static_cast<size_t>(nread);
            conn->early = b;
            return;
        }
        if (have + static_cast<size_t>(nread) <= IoBlock::kSize) {
            std::memcpy(conn->early->data + have, b->data, static_cast<size_t>(nread));
            conn->early->len += static_cast<size_t>(nread);
            pool.worker_.buffers().put(b);
            return;
        }
        // More unsolicited bytes than one block: not a greeting we can hold; drop it.
        pool.worker_.buffers().put(b);
        pool.counters_.closed_error.add();
        pool.closed_unused(conn, "closed: its greeting is larger than a buffer (16 KiB)");
        pool.close(conn);
        return;
    }
    if (b) pool.worker_.buffers().put(b);
    if (nread < 0) {
        pool.counters_.closed_by_backend.add();
        pool.closed_unused(conn, "closed by the backend");
        pool.close(conn);
    }
}

void BackendPool::close_handles(PooledConn *conn) {
    if (conn->state == PooledConn::State::idle) {
        idle_.remove(conn);
        counters_.idle.sub();
        worker_.idle_changed(backend_.group, -1);
    }
    conn->state = PooledConn::State::closing;
    if (conn->early) {
        worker_.buffers().put(conn->early);
        conn->early = nullptr;
    }
    uv_timer_stop(&conn->timer);
    conn->reading = false;  // uv_close stops it
    uv_close(reinterpret_cast<uv_handle_t *>(&conn->tcp), on_handle_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&conn->timer), on_handle_closed);
    counters_.open.sub();
}

void BackendPool::close(PooledConn *conn) {
    settle_probe(conn);
    if (conn->state == PooledConn::State::closing) return;
    close_handles(conn);
    // The slot is free as soon as the close is under way: the fd goes with this loop turn.
    // It goes to the oldest waiter if there is one (Worker::slot_freed), else back to the cap.
    worker_.slot_freed(*this);
}

bool BackendPool::give_away_idle(Moving *out) {
    PooledConn *conn = idle_.front();
    return conn && give_away(conn, out);
}

bool BackendPool::give_away(PooledConn *conn, Moving *out) {
    if (conn->early) return false;  // a tcp server's greeting is tied to this handle
    if (conn->tls) return false;    // its TLS state lives here, not in the socket
    // Request bytes still queued would be dropped with the handle (the copy keeps the socket
    // only): the next request would land inside the old one. http never pools such a one.
    if (conn->writes_pending != 0 || conn->tcp.write_queue_size != 0) return false;
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t *>(&conn->tcp), &fd) != 0) return false;
    int copy = dup(fd);  // the handle's close below must not close the socket itself
    if (copy < 0) return false;
    *out = Moving{copy, conn->created_ms, conn->requests};
    close_handles(conn);  // the cap slot is not released: it moves with the socket
    return true;
}

void BackendPool::adopt(const Moving &m) {
    PooledConn *conn = new_conn(m.created_ms);
    conn->requests = m.requests;
    if (const int rc = uv_tcp_open(&conn->tcp, m.fd)) {
        warn_uv_failure(worker_.shared().logger, ("backend " + backend_.name + ": cannot adopt a lent connection").c_str(),
                        rc);
        counters_.closed_error.add();
        ::close(m.fd);
        conn->state = PooledConn::State::connecting;
        close(conn);
        return;
    }
    make_idle(conn, false);  // moved once: it stays here (no ping-pong between workers)
}

void BackendPool::on_handle_closed(uv_handle_t *h) {
    auto *conn = static_cast<PooledConn *>(h->data);
    if (--conn->open_handles == 0) delete conn;
}

void BackendPool::finish_session(PooledConn *conn, bool failed) {
    (failed ? counters_.closed_error : counters_.closed_session_end).add();
    close(conn);
}

void BackendPool::recycle(PooledConn *conn) {
    const Settings &st = *backend_.gs;  // its group's options
    conn->owner = nullptr;
    conn->on_read = nullptr;  // the read stays armed: make_idle's handler takes over
    if (st.max_requests_per_conn > 0 && conn->requests >= static_cast<uint64_t>(st.max_requests_per_conn)) {
        counters_.closed_max_requests.add();
        close(conn);
        return;
    }
    if (st.max_conn_lifetime > 0 && mono_ms() - conn->created_ms >= static_cast<uint64_t>(st.max_conn_lifetime)) {
        counters_.closed_lifetime.add();
        close(conn);
        return;
    }
    if (worker_.draining() || !backend_.takes_requests()) {
        close(conn);
        return;
    }
    counters_.reused.add();
    make_idle(conn);
}

void BackendPool::adopt_connecting(PooledConn *conn) {
    conn->owner = nullptr;
    if (backend_.pool_max == 0) {  // no pooling: nobody will reuse it
        close(conn);
        return;
    }
    conn->warm = true;
    warm_connecting_++;
}

void BackendPool::refill() {
    if (probe_pending_) {
        // The connection stays pooled (the first request reuses it) and takes a slot under
        // pool_max like any other; a failed connect reports the backend down at once. A probe
        // not made (draining, no room, or a connect that could not even start) is settled now.
        probe_pending_ = false;
        PooledConn *probe = nullptr;
        if (!worker_.draining() && backend_.takes_requests() && backend_.pool_max != 0 && idle_.empty() &&
            warm_connecting_ == 0 && backend_.try_reserve(backend_.pool_max)) {
            probe = open(nullptr);
        }
        if (probe) probe->start_probe = true;
        else settle_probe(nullptr);
    }
    if (warm_share_ == 0 || worker_.draining() || !backend_.takes_requests()) return;
    if (mono_ms() < refill_after_ms_) return;
    if (backend_.group_waiting->get() > 0) return;  // a waiting session needs the slot more
    while (static_cast<int64_t>(idle_.size()) + warm_connecting_ < warm_share_ &&
           warm_connecting_ < kWarmConnectsInFlight) {
        if (!backend_.try_reserve(backend_.pool_max)) return;
        if (!open(nullptr)) return;
    }
}

void BackendPool::sweep(uint64_t now_ms) {
    const Settings &st = *backend_.gs;  // its group's options
    // Rotate through the list once; close() unlinks, so no iterator is held across it.
    size_t n = idle_.size();
    for (size_t i = 0; i < n; i++) {
        PooledConn *conn = idle_.pop_front();
        bool too_old = st.max_conn_lifetime > 0 &&
                       now_ms - conn->created_ms >= static_cast<uint64_t>(st.max_conn_lifetime);
        bool idle_too_long = st.pool_idle_timeout > 0 &&
                             now_ms - conn->idle_since_ms >= static_cast<uint64_t>(st.pool_idle_timeout);
        idle_.push_back(conn);
        if (too_old) {
            counters_.closed_lifetime.add();
            close(conn);
        } else if (idle_too_long) {
            counters_.closed_idle_timeout.add();
            close(conn);
        }
    }
    refill();
}

void BackendPool::close_idle(size_t max_count) {
    while (max_count-- > 0 && !idle_.empty()) close(idle_.front());
}

}  // namespace pp
