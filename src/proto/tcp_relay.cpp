#include <unistd.h>

#include <cstddef>

#include "core/clock.h"
#include "core/uv_result.h"
#include "core/worker.h"
#include "proto/session.h"

namespace pp {
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
void on_backend_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

// false: the side cannot be read, and the session is closed (a relay that stopped reading one
// side would otherwise hang until its idle timeout).
bool start_reading(Session *s, int dir) {
    uv_stream_t *stream = dir == kUp ? client_stream(s) : backend_stream(s);
    const int rc = uv_read_start(stream, on_alloc, dir == kUp ? on_client_read : on_backend_read);
    if (rc == 0) return true;
    warn_uv_failure(s->worker->shared().logger,
                    dir == kUp ? "tcp relay: cannot read the client" : "tcp relay: cannot read the backend", rc);
    session::close(s, uv_strerror(rc));
    return false;
}

// A half-close passed on with a shutdown. UV_ENOTCONN: that side is already shut or gone, as
// on_shutdown accepts too; anything else ends the session.
bool start_shutdown(Session *s, uv_shutdown_t *req, uv_stream_t *to) {
    req->data = s;
    const int rc = uv_shutdown(req, to, on_shutdown);
    if (rc == 0) s->shutdowns_pending++;
    if (rc == 0 || rc == UV_ENOTCONN) return true;
    session::close(s, uv_strerror(rc));
    return false;
}

// Writes one block to the other side; pauses the reading side when the target backs up. The
// socket is tried at once: usually it takes everything, which costs no write request, no
// callback and no epoll change (as in http mode). Only what it does not take is queued.
void relay(Session *s, IoBlock *b, size_t len, int dir) {
    uv_stream_t *to = dir == kUp ? backend_stream(s) : client_stream(s);
    uv_stream_t *from = dir == kUp ? client_stream(s) : backend_stream(s);
    WorkerCounters &c = s->worker->counters();
    (dir == kUp ? c.bytes_up : c.bytes_down).add(len);
    (dir == kUp ? s->bytes_in : s->bytes_out) += len;
    s->last_activity_ms = uv_now(s->worker->loop());
    b->owner = s;
    b->direction = dir;
    b->len = len;
    uv_buf_t out = uv_buf_init(b->data, static_cast<unsigned>(len));
    int rc = uv_try_write(to, &out, 1);  // UV_EAGAIN while earlier writes are still queued
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
    rc = uv_write(&b->req, to, &out, 1, on_write);
    if (rc != 0) {
        s->worker->buffers().put(b);
        session::close(s, uv_strerror(rc));
        return;
    }
    s->writes_pending++;
    if (to->write_queue_size > kHighWater) {
        uv_read_stop(from);
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
    uv_stream_t *from = dir == kUp ? client_stream(s) : backend_stream(s);
    uv_stream_t *to = dir == kUp ? backend_stream(s) : client_stream(s);
    if (!s->relay) s->relay = new RelayExtras;
    uv_shutdown_t *req = &s->relay->shutdown[dir == kUp ? 0 : 1];
    uv_read_stop(from);
    (dir == kUp ? s->client_eof : s->backend_eof) = true;
    if (start_shutdown(s, req, to)) maybe_finish(s);
}

void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    on_read(static_cast<Session *>(stream->data), nread, buf, kUp);
}

void on_backend_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *conn = static_cast<PooledConn *>(stream->data);
    on_read(conn->owner, nread, buf, kDown);
}

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
    if (!s->relay) s->relay = new RelayExtras;
    if (start_shutdown(s, &s->relay->shutdown[0], backend_stream(s))) maybe_finish(s);
}

// Before the backend connection is ready (waiting in the queue, connecting): the client's read
// stays armed so that a client that resets is noticed at once (its exchange abandoned, its
// queue place or half-open probe given back). What it sends meanwhile, one block at most, is
// held for the backend; its EOF is passed on once attached.
void on_client_read_early(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *s = static_cast<Session *>(stream->data);
    if (nread > 0) {
        IoBlock *b = block_of(buf);
        b->len = static_cast<size_t>(nread);
        s->relay->early_up = b;
        uv_read_stop(stream);
        return;
    }
    if (buf->base) s->worker->buffers().put(block_of(buf));
    if (nread == 0) return;
    if (nread == UV_EOF) {
        s->client_eof = true;
        uv_read_stop(stream);
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
    uv_read_stop(client_stream(s));  // the early read (tcp mode), if it is still armed
    if (!s->client_eof && !start_reading(s, kUp)) return;
    if (!start_reading(s, kDown)) return;
    if (IoBlock *early = conn->early) {  // a server-first greeting that arrived while idle
        conn->early = nullptr;
        relay(s, early, early->len, kDown);
        if (s->state == Session::State::closing) return;
    }
    if (IoBlock *up = s->relay->early_up) {  // what the client sent while we connected
        s->relay->early_up = nullptr;
        relay(s, up, up->len, kUp);
        if (s->state == Session::State::closing) return;
    }
    if (s->client_eof) pass_client_eof(s);
}

void begin(Session *s) {
    if (!s->relay) s->relay = new RelayExtras;
    const int rc = uv_read_start(client_stream(s), on_alloc, on_client_read_early);
    if (rc != 0) {
        session::close(s, uv_strerror(rc));
        return;
    }
    session::acquire_or_wait(s);
}

}  // namespace tcp_relay
}  // namespace pp
