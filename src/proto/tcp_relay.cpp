#include <unistd.h>

#include <cstddef>
#include <cstring>

#include "core/clock.h"
#include "core/errors.h"
#include "core/uv_result.h"
#include "core/worker.h"
#include "proto/client_hello.h"
#include "proto/http_hooks.h"
#include "proto/session.h"
#include "proto/sni_routes.h"

namespace pp {

const SniTable &sni_table(Worker &w);  // the tcp protocol's (below)

namespace tcp_relay {

namespace {

// Stop reading a side while the other side has this much unwritten; resume below the low mark.
constexpr size_t kHighWater = 256 * 1024;
constexpr size_t kLowWater = 64 * 1024;

enum Direction { kUp = 0, kDown = 1 };  // up: client -> backend

uv_stream_t *client_stream(Session *s) { return reinterpret_cast<uv_stream_t *>(&s->client); }
uv_stream_t *backend_stream(Session *s) { return reinterpret_cast<uv_stream_t *>(&s->conn->tcp); }

IoBlock *block_of(const uv_buf_t *buf) {
    return reinterpret_cast<IoBlock *>(buf->base - offsetof(IoBlock, data));
}

void on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    Worker *w = static_cast<Worker *>(h->loop->data);
    IoBlock *b = w->buffers().get();
    *buf = uv_buf_init(b->data, IoBlock::kSize);
}

void maybe_finish(Session *s) {
    if (s->client_eof && s->backend_eof && s->shutdowns_pending == 0) session::close(s, session::kBothSidesClosed);
}

void on_shutdown(uv_shutdown_t *req, int status) {
    auto *s = static_cast<Session *>(req->data);
    s->shutdowns_pending--;
    if (s->state == Session::State::closing) {
        session::maybe_delete(s);
        return;
    }
    if (status < 0 && status != UV_ENOTCONN) {
        session::close(s, "shutdown failed");
        return;
    }
    maybe_finish(s);
}

bool start_reading(Session *s, int dir);

void on_write(uv_write_t *req, int status) {
    IoBlock *b = reinterpret_cast<IoBlock *>(reinterpret_cast<char *>(req) - offsetof(IoBlock, req));
    auto *s = static_cast<Session *>(b->owner);
    Worker *w = s->worker;
    int dir = b->direction;
    w->buffers().put(b);
    if (!session::write_done(s, status)) return;
    // Backpressure release: the side we stopped reading may go on once its peer drained.
    if (dir == kUp && s->client_read_paused && backend_stream(s)->write_queue_size <= kLowWater) {
        s->client_read_paused = false;
        if (!s->client_eof && !start_reading(s, kUp)) return;
    }
    if (dir == kDown && s->backend_read_paused && client_stream(s)->write_queue_size <= kLowWater) {
        s->backend_read_paused = false;
        if (!s->backend_eof) start_reading(s, kDown);
    }
}

void relay(Session *s, IoBlock *b, size_t len, int dir);
void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
void on_backend_read(PooledConn *conn, ssize_t nread, const uv_buf_t *buf);

void stop_reading(Session *s, int dir) {
    if (dir == kDown) {
        BackendPool::stop_reading(s->conn);
    } else if (s->relay->client_reading) {
        io::read_stop(client_stream(s), s->tls.get());
        s->relay->client_reading = false;
    }
}

// false: the side cannot be read, and the session is closed (a relay that stopped reading one
// side would otherwise hang until its idle timeout).
// The backend's read goes through its pool (BackendPool::start_reading), which keeps it armed
// from the connect on and passes what comes to conn->on_read: so taking a connection costs no
// epoll change. The client's read stays armed from begin() on (on_client_read passes what comes
// early to on_client_read_early).
bool start_reading(Session *s, int dir) {
    if (dir == kUp && s->relay->client_reading) return true;
    const int rc = dir == kUp ? io::read_start(client_stream(s), s->tls.get(), on_alloc, on_client_read)
                              : BackendPool::start_reading(s->conn);
    if (dir == kUp && rc == 0) s->relay->client_reading = true;
    if (rc == 0) return true;
    warn_uv_failure(s->worker->shared().logger,
                    dir == kUp ? "tcp relay: cannot read the client" : "tcp relay: cannot read the backend", rc);
    session::close(s, uv_strerror(rc));
    return false;
}

// A half-close passed on with a shutdown. UV_ENOTCONN: that side is already shut or gone, as
// on_shutdown accepts too; anything else ends the session.
bool start_shutdown(Session *s, uv_shutdown_t *req, uv_stream_t *to) {
    TlsConn *tls = to == client_stream(s) ? s->tls.get() : s->conn->tls.get();
    int rc = session::shutdown_now(to, tls);
    if (rc == UV_EAGAIN) {  // what was read is not all written yet: shut down after it
        req->data = s;
        rc = io::shutdown(req, to, tls, on_shutdown);
        if (rc == 0) s->shutdowns_pending++;
    }
    if (rc == 0 || rc == UV_ENOTCONN) return true;
    session::close(s, uv_strerror(rc));
    return false;
}

// Writes one block to the other side; pauses the reading side when the target backs up. The
// socket is tried at once: usually it takes everything, which costs no write request, no
// callback and no epoll change (as in http mode). Only what it does not take is queued.
void relay(Session *s, IoBlock *b, size_t len, int dir) {
    uv_stream_t *to = dir == kUp ? backend_stream(s) : client_stream(s);
    WorkerCounters &c = s->worker->counters();
    (dir == kUp ? c.bytes_up : c.bytes_down).add(len);
    (dir == kUp ? s->bytes_in : s->bytes_out) += len;
    s->last_activity_ms = uv_now(s->worker->loop());
    b->owner = s;
    b->direction = dir;
    b->len = len;
    uv_buf_t out = uv_buf_init(b->data, static_cast<unsigned>(len));
    TlsConn *tls = dir == kUp ? s->conn->tls.get() : s->tls.get();
    int rc = io::try_write(to, tls, &out, 1);  // UV_EAGAIN while earlier writes are still queued
    if (rc == static_cast<int>(len)) {
        s->worker->buffers().put(b);
        return;
    }
    if (rc < 0 && rc != UV_EAGAIN) {
        s->worker->buffers().put(b);
        session::close(s, uv_strerror(rc));
        return;
    }
    if (rc > 0) out = uv_buf_init(b->data + rc, static_cast<unsigned>(len - static_cast<size_t>(rc)));
    rc = io::write(&b->req, to, tls, &out, 1, on_write);
    if (rc != 0) {
        s->worker->buffers().put(b);
        session::close(s, uv_strerror(rc));
        return;
    }
    s->writes_pending++;
    if (to->write_queue_size > kHighWater) {
        stop_reading(s, dir);
        (dir == kUp ? s->client_read_paused : s->backend_read_paused) = true;
    }
}

void on_read(Session *s, ssize_t nread, const uv_buf_t *buf, int dir) {
    if (nread > 0) {
        relay(s, block_of(buf), static_cast<size_t>(nread), dir);
        return;
    }
    if (buf->base) s->worker->buffers().put(block_of(buf));
    if (nread == 0) return;
    if (nread != UV_EOF) {
        session::close(s, uv_strerror(static_cast<int>(nread)));
        return;
    }
    // Half-close: pass the EOF on with a shutdown once what was read is written.
    uv_stream_t *to = dir == kUp ? backend_stream(s) : client_stream(s);
    (dir == kUp ? s->client_eof : s->backend_eof) = true;
    if (s->client_eof && s->backend_eof && to->write_queue_size == 0 && s->shutdowns_pending == 0) {
        // The second EOF, with everything written: the close's own FIN ends the other side as
        // the shutdown would, one system call fewer on every session that ends cleanly.
        session::close(s, session::kBothSidesClosed);
        return;
    }
    uv_shutdown_t *req = &s->relay->shutdown[dir == kUp ? 0 : 1];
    stop_reading(s, dir);
    if (start_shutdown(s, req, to)) maybe_finish(s);
}

void on_client_read_early(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *s = static_cast<Session *>(stream->data);
    if (!s->relay->attached) {
        on_client_read_early(stream, nread, buf);
        return;
    }
    on_read(s, nread, buf, kUp);
}

void on_backend_read(PooledConn *conn, ssize_t nread, const uv_buf_t *buf) { on_read(session::of(conn->owner), nread, buf, kDown); }

void on_idle_timer(uv_timer_t *t) {
    auto *s = static_cast<Session *>(t->data);
    const uint64_t timeout = s->relay->timeout_ms;
    uint64_t idle_for = uv_now(s->worker->loop()) - s->last_activity_ms;
    if (idle_for >= timeout) {
        const bool tunnel = s->worker->settings().mode == static_cast<int64_t>(Mode::http);
        session::close(s, tunnel ? "tunnel_timeout" : "idle_timeout");
        return;
    }
    PP_UV_MUST(uv_timer_start(t, on_idle_timer, timeout - idle_for, 0));
}

// Passes a client's EOF on toward the backend once what was read is written (half-close).
void pass_client_eof(Session *s) {
    if (start_shutdown(s, &s->relay->shutdown[0], backend_stream(s))) maybe_finish(s);
}

// Before the backend connection is ready (waiting in the queue, connecting): the client's read
// stays armed so that a client that resets is noticed at once (its exchange abandoned, its
// queue place or half-open probe given back). What it sends meanwhile is held for the backend:
// what fits in one block (a request, a greeting reply) keeps the read armed, so that attaching
// costs no epoll change; more pauses the read until then. Its EOF is passed on once attached.
// SNI routes: the group of the first route matching `name`, else the one it has (the default,
// or the connect hook's choice).
void route_by_name(Session *s, const std::string &name) {
    const int g = sni_table(*s->worker).match(name);
    if (g >= 0) s->group = static_cast<int16_t>(g);
    s->worker->shared().logger.log(PP_LOG_DEBUG, "worker %d: sni '%s': group %d", s->worker->index(), name.c_str(),
                                   static_cast<int>(s->group));
}

// Waiting for a ClientHello (sni_route without termination): what came so far is looked at;
// once it is whole (or cannot be one), the group is picked and the session asks for its
// backend connection, the bytes held for it as any early bytes are.
void sni_step(Session *s, bool last) {
    RelayExtras &r = *s->relay;
    std::string name;
    const HelloRead got = r.early_up ? read_client_hello(reinterpret_cast<const uint8_t *>(r.early_up->data),
                                                         r.early_up->len, &name)
                                     : HelloRead::incomplete;
    if (got == HelloRead::incomplete && !last && !r.early_more && (!r.early_up || r.early_up->len < IoBlock::kSize)) return;
    r.sni_pending = false;
    s->worker->clear_deadline(s);
    if (got == HelloRead::found) route_by_name(s, name);
    session::acquire_or_wait(s);
}

void on_client_read_early(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *s = static_cast<Session *>(stream->data);
    RelayExtras &r = *s->relay;
    if (nread > 0) {
        IoBlock *b = block_of(buf);
        b->len = static_cast<size_t>(nread);
        if (!r.early_up) {
            r.early_up = b;
        } else if (r.early_up->len + b->len <= IoBlock::kSize) {
            std::memcpy(r.early_up->data + r.early_up->len, b->data, b->len);
            r.early_up->len += b->len;
            s->worker->buffers().put(b);
        } else {
            r.early_more = b;  // a second block: enough until the backend is there
            stop_reading(s, kUp);
        }
        if (r.sni_pending) sni_step(s, false);
        return;
    }
    if (buf->base) s->worker->buffers().put(block_of(buf));
    if (nread == 0) return;
    if (nread == UV_EOF) {
        s->client_eof = true;
        stop_reading(s, kUp);
        if (r.sni_pending) sni_step(s, true);
        return;
    }
    session::close(s, uv_strerror(static_cast<int>(nread)));
}

}  // namespace

// The session has its backend connection: relay in both directions.
// (session::on_connected has already bound the two: s->conn, conn->owner, the states.)
void attach(Session *s, PooledConn *conn) {
    Worker &w = *s->worker;
    // tcp: reaching the backend is the attempt's success (an upgraded http exchange recorded
    // its 101 already: then this is a no-op).
    session::outcome(s, session::Outcome::done, "connected", 0, false);
    s->last_activity_ms = uv_now(w.loop());
    const bool tunnel = w.settings().mode == static_cast<int64_t>(Mode::http);
    const int64_t idle = tunnel ? w.settings().tunnel_timeout : w.settings().idle_timeout;
    if (!s->relay) s->relay = new RelayExtras;
    s->relay->timeout_ms = static_cast<uint64_t>(idle);
    if (idle > 0) {
        if (!s->relay->timer_open) {
            PP_UV_MUST(uv_timer_init(w.loop(), &s->relay->idle_timer));
            s->relay->idle_timer.data = s;
            s->relay->timer_open = true;
            s->open_handles++;
        }
        PP_UV_MUST(uv_timer_start(&s->relay->idle_timer, on_idle_timer, static_cast<uint64_t>(idle), 0));
    }
    s->relay->attached = true;  // from here on on_client_read relays
    conn->on_read = on_backend_read;
    if (!s->client_eof && !start_reading(s, kUp)) return;
    if (!start_reading(s, kDown)) return;
    if (IoBlock *early = conn->early) {  // a server-first greeting that arrived while idle
        conn->early = nullptr;
        relay(s, early, early->len, kDown);
        if (s->state == Session::State::closing) return;
    }
    for (IoBlock **held : {&s->relay->early_up, &s->relay->early_more}) {  // what the client sent meanwhile
        if (IoBlock *up = *held) {
            *held = nullptr;
            relay(s, up, up->len, kUp);
            if (s->state == Session::State::closing) return;
        }
    }
    if (s->client_eof) pass_client_eof(s);
}

namespace {

// tcp mode: the connect hook picks the group or rejects the connection. False: closed.
bool run_connect_hook(Session *s) {
    Worker &w = *s->worker;
    const Callbacks &cb = w.settings().callbacks;
    pp_exchange ex;
    ex.kind = pp_exchange::Kind::connect;
    ex.shared = &w.shared();
    ex.worker = w.index();
    pp_connect_info info{};
    info.struct_size = sizeof info;
    info.client = s->peer.c_str();
    info.worker = w.index();
    const int rc = cb.connect_hook(cb.connect_hook_userdata, &ex, &info);
    ex.magic = 0;
    if (!ex.failure.empty()) {
        thread_local uint64_t t_last_ms = 0;
        if (quiet_long_enough(&t_last_ms, 1000)) {
            w.shared().logger.log(PP_LOG_WARN, "worker %d: connect hook: %s: connection closed", w.index(), ex.failure.c_str());
        }
        session::close(s, "the connect hook picked no existing group");
        return false;
    }
    if (rc != 0) {
        session::close(s, "rejected by the connect hook");
        return false;
    }
    if (ex.group >= 0) s->group = static_cast<int16_t>(ex.group);
    return true;
}

}  // namespace

void begin(Session *s) {
    if (s->worker->settings().callbacks.connect_hook && !run_connect_hook(s)) return;
    s->exchange = Session::Exchange::open;  // tcp: the session is the exchange
    if (!s->relay) s->relay = new RelayExtras;
    const SniTable &sni = sni_table(*s->worker);
    if (!sni.empty() && s->tls) {  // terminated here: the handshake told the name
        if (const char *name = s->tls->server_name()) {
            std::string n(name);
            for (char &c : n) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
            route_by_name(s, n);
        }
    } else if (!sni.empty()) {  // passed through: its ClientHello first, within tls_handshake_timeout
        s->relay->sni_pending = true;
        s->worker->set_deadline(s, session::kTlsHandshakeDeadline,
                                static_cast<uint64_t>(s->worker->settings().tls_handshake_timeout));
    }
    const int rc = io::read_start(client_stream(s), s->tls.get(), on_alloc, on_client_read);
    if (rc != 0) {
        session::close(s, uv_strerror(rc));
        return;
    }
    s->relay->client_reading = true;
    if (!s->relay->sni_pending) session::acquire_or_wait(s);
}

}  // namespace tcp_relay

namespace {

// Queue timeouts this far apart are separate bursts, each warned about once.
constexpr uint64_t kQueueWarnQuietMs = 10000;

// tcp mode: the session is its client connection relayed to one backend connection, its
// bytes opaque.
class TcpProtocol final : public ModeProtocol {
public:
    explicit TcpProtocol(const Settings &settings) : ModeProtocol(sizeof(TcpSession), true) {
        const auto group_id = [&settings](std::string_view name) { return configured_group_id(settings, name); };
        std::string why;
        if (!sni_.build(settings.sni_routes, group_id, &why)) throw Error(PP_EBADVALUE, why);
    }
    SniTable sni_;
    Session *make() const override { return new TcpSession; }
    bool needs_peer(const Worker &w) const override { return w.settings().callbacks.connect_hook != nullptr; }
    void begin(Session *s) const override { tcp_relay::begin(s); }
    void attach(Session *s, PooledConn *conn) const override { tcp_relay::attach(s, conn); }
    void give_up(Session *s, int, const char *why) const override { session::close(s, why); }
    // No deadline of its own (idle_timeout is the relay's timer); a drain lets each session
    // end when its peers end it (or at the drain deadline); nothing parks a tcp session.
    void deadline(Session *, int) const override {}
    void drain_session(Session *) const override {}
    void resume(Session *) const override {}
    void warn_queue_timeout(Worker &w) const override {
        // A client session holds its backend connection for its whole life, so pool_max caps
        // concurrent sessions per backend: say so once per burst (per worker), as the clients
        // themselves are only closed.
        thread_local uint64_t t_last_timeout_ms = 0;
        if (first_of_burst(&t_last_timeout_ms, kQueueWarnQuietMs)) {
            const Settings &st = w.settings();
            w.shared().logger.log(PP_LOG_WARN,
                                  "worker %d: tcp clients are being closed after queue_timeout (%lldms): every "
                                  "backend is at pool_max (%lld), which in tcp mode caps concurrent client "
                                  "sessions per backend; raise pool_max or queue_timeout",
                                  w.index(), static_cast<long long>(st.queue_timeout),
                                  static_cast<long long>(st.pool_max));
        }
    }
    ExchangeView view(const Session *) const override { return {}; }
    void destroy(Session *s) const override { delete static_cast<TcpSession *>(s); }
};

}  // namespace

std::unique_ptr<Protocol> make_tcp_protocol(const Settings &settings) { return std::make_unique<TcpProtocol>(settings); }

const SniTable &sni_table(Worker &w) { return static_cast<const TcpProtocol &>(*w.shared().protocol).sni_; }

}  // namespace pp
