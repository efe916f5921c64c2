// http mode: an HTTP/1.1 reverse proxy over pooled keep-alive backend connections.
//
// Per client connection, one exchange at a time (pipelined requests wait in the input block):
// read a request head (client_header_timeout) -> get a pooled connection (idle one reused, or
// a new one, or wait) -> send the rewritten head and forward the raw body bytes -> parse the
// response (response_timeout until its first byte), forward its rewritten head and raw bytes
// -> when it ends cleanly and both sides allow it, the backend connection goes back to the
// pool. A reused connection that dies before any response byte is retried (up to `retries`
// times, on another backend when one is left) when the request is idempotent and had no body
// (the keep-alive race). Every outcome feeds the backend's circuit breaker.
#include <strings.h>

#include <cstddef>
#include <cstdio>
#include <string>
#include <vector>

#include "core/uv_result.h"
#include "core/worker.h"
#include "core/clock.h"
#include "proto/http_hooks.h"
#include "proto/http_stream.h"
#include "proto/route_table.h"
#include "proto/session.h"

namespace pp {

struct HttpState {
    HttpState(const HttpStream::Limits &req_limits, const HttpStream::Limits &resp_limits)
        : req(HttpStream::Role::request, req_limits), resp(HttpStream::Role::response, resp_limits) {}

    // lingering: the last answer is out and the connection half-closed; what the client still
    // sends is read and discarded until it closes its side (see linger()).
    enum class Phase { idle, head, waiting, exchange, closing, tunnel, lingering };

    HttpStream req;
    HttpStream resp;
    Phase phase = Phase::idle;
    IoBlock *in = nullptr;  // client bytes read but not parsed yet: [in_off, in->len)
    size_t in_off = 0;
    IoBlock *pending_block = nullptr;  // holds `pending` alive until the backend is ready
    std::vector<std::pair<const char *, size_t>> pending;  // request bytes parsed before that
    std::string head;  // the rewritten request head, kept for a retry
    std::string resp_head;  // the rewritten response head (a buffer reused for every response)
    // Host: a route rewrote it (then it stays), or a backend's host= is in `head` (the Host
    // that backend gets; "" = the request's own).
    bool route_host = false;
    std::string backend_host;
    const Route *route = nullptr;  // the route the request matched, in route_gen's table
    RouteGen *route_gen = nullptr;  // held while route is set (a reload may retire it meanwhile)
    // The target sent upstream when it is not the request's own (a route's strip_prefix, the
    // request hook's), and the request hook's pause (the token under which the session is
    // parked in Shared::parking, 0 when not paused; how many times it was resumed).
    bool hook_target_set = false;
    std::string hook_target;
    bool route_applied = false;  // the route's rewrites are in the head (made before the hook)
    std::string client_host;     // the request's Host as the client sent it (for the hook)
    uint64_t park_token = 0;
    uint64_t resumed_by = 0;
    uint32_t resumes = 0;
    bool req_done = false;
    bool has_body = false;
    bool idempotent = false;
    bool resp_any = false;        // a response byte arrived
    bool resp_head_sent = false;  // the final response head went to the client
    bool resp_in_body = false;    // past a response head: bytes now are the message's own
    bool wants_upgrade = false;   // the request asked to switch protocols (WebSocket)
    bool dechunk = false;         // a chunked response to an HTTP/1.0 client: payload only
    uint64_t t_first_byte = 0;    // uv_hrtime of the first response byte
    int sent_status = 0;          // the status of the response head sent to the client (0: none)
    bool client_keep_alive = true;
    bool client_said_close = false;  // the request itself ended the connection (see linger())
    bool http10 = false;
    bool processing = false;
    uint64_t linger_since_ms = 0;  // loop time lingering began
    uint64_t linger_bytes = 0;     // read and discarded since
    uv_shutdown_t linger_shutdown;  // the half-close (the state outlives it: see maybe_delete)

    // Ready for a new connection's first request (a state taken from the worker's spares). The
    // streams' reset() gives back what a huge head made them hold; so do the head buffers here,
    // or each cached state would keep the largest head it ever rewrote.
    void reset() {
        req.reset();
        resp.reset();
        constexpr size_t kKeepHeadBytes = 16 * 1024;
        if (head.capacity() > kKeepHeadBytes) std::string().swap(head);
        if (resp_head.capacity() > kKeepHeadBytes) std::string().swap(resp_head);
        if (pending.capacity() > 64) std::vector<std::pair<const char *, size_t>>().swap(pending);
        phase = Phase::idle;
        in = pending_block = nullptr;
        in_off = 0;
        pending.clear();
        head.clear();
        resp_head.clear();
        req_done = has_body = idempotent = resp_any = resp_head_sent = resp_in_body = false;
        wants_upgrade = dechunk = http10 = processing = client_said_close = route_host = hook_target_set = false;
        route_applied = false;
        client_host.clear();
        backend_host.clear();
        hook_target.clear();
        route = nullptr;
        park_token = resumed_by = 0;
        resumes = 0;
        client_keep_alive = true;
        t_first_byte = 0;
        sent_status = 0;
        linger_since_ms = linger_bytes = 0;
    }
};

namespace http_session {

using session::Outcome;
using session::kHeaderDeadline;
using session::kResponseDeadline;
using session::kIdleDeadline;
using session::kClientIoDeadline;
using session::kBackendIoDeadline;

namespace {

constexpr size_t kHighWater = 256 * 1024;
constexpr size_t kSpareStates = 64;  // exchange states a worker keeps for reuse, at most

// Exchange states given back by idle connections, per worker thread (each worker serves one
// proxy, so every state here was built with that proxy's limits). An idle keep-alive client
// holds none: its memory is its Session alone.
struct SpareStates {
    std::vector<HttpState *> free;
    ~SpareStates() {
        for (HttpState *h : free) delete h;
    }
};
thread_local SpareStates t_spares;

HttpState *take_state(const Settings &st) {
    if (!t_spares.free.empty()) {
        HttpState *h = t_spares.free.back();
        t_spares.free.pop_back();
        return h;
    }
    HttpStream::Limits req_limits;
    req_limits.max_header_size = static_cast<size_t>(st.max_header_size);
    req_limits.max_header_fields = static_cast<size_t>(st.max_header_fields);
    req_limits.max_body_size = static_cast<uint64_t>(st.max_body_size);
    HttpStream::Limits resp_limits;
    resp_limits.max_header_size = static_cast<size_t>(st.max_header_size);
    resp_limits.max_header_fields = static_cast<size_t>(st.max_header_fields);
    return new HttpState(req_limits, resp_limits);
}

void drop_route(HttpState *h) {
    if (h->route_gen) RouteGen::release(h->route_gen);
    h->route_gen = nullptr;
    h->route = nullptr;
}

void give_back_state(HttpState *h) {
    drop_route(h);
    if (t_spares.free.size() >= kSpareStates) {
        delete h;
        return;
    }
    h->reset();
    t_spares.free.push_back(h);
}

// What is left of a write the socket did not take at once: the unsent part of a head (copied)
// and/or a slice of a read block (referenced). Only backpressure gets here.
struct WriteOp {
    uv_write_t req;
    HttpSession *s;
    IoBlock *block;
    PooledConn *conn;  // toward the backend: the connection it was written on
    std::string text;
    bool to_client;
};

uv_stream_t *client_stream(HttpSession *s) { return reinterpret_cast<uv_stream_t *>(&s->client); }
uv_stream_t *backend_stream(HttpSession *s) { return reinterpret_cast<uv_stream_t *>(&s->conn->tcp); }
const Settings &settings(HttpSession *s) { return s->worker->settings(); }

void unref(HttpSession *s, IoBlock *b) {
    if (b && --b->refs == 0) s->worker->buffers().put(b);
}

void process(HttpSession *s);
void update_reads(HttpSession *s);
void linger(HttpSession *s, const char *why);
void finish_exchange(HttpSession *s);
void backend_failed(HttpSession *s, const char *why);
void stop_timer(HttpSession *s);

// A response with Connection: close is fully written: the client connection ends.
void close_if_done(HttpSession *s) {
    if (s->state != Session::State::closing && s->http && s->http->phase == HttpState::Phase::closing &&
        client_stream(s)->write_queue_size == 0 && s->writes_pending == 0) {
        linger(s, "response sent, connection: close");
    }
}

// Nothing of the client's is on its way: no unsent response bytes.
bool client_flushed(HttpSession *s) { return client_stream(s)->write_queue_size == 0 && s->writes_pending == 0; }

void on_write(uv_write_t *req, int status) {
    auto *op = reinterpret_cast<WriteOp *>(req);
    HttpSession *s = op->s;
    // A write on a backend connection the session has let go of (an error answer closed it
    // mid-body, a retry moved to another) is cancelled: nothing failed that the session has.
    if (status < 0 && !op->to_client && op->conn != s->conn) status = 0;
    // The connection outlives its writes' callbacks (libuv runs them, cancelled, before its
    // close callback frees it).
    if (!op->to_client) op->conn->writes_pending--;
    unref(s, op->block);
    delete op;
    if (!session::write_done(s, status)) return;
    close_if_done(s);
    if (s->state != Session::State::closing) update_reads(s);
}

// Sends `text` (a head, may be empty) followed by `len` bytes of `block`, in one writev. The
// socket is tried at once: usually it takes everything, which costs no request object, no
// callback and no epoll change. Whatever it does not take is queued behind uv_write, and
// libuv's own queue keeps later sends in order (uv_try_write refuses while it is non-empty).
// Returns false when the caller must stop: the write failed and the session was closed, or
// (toward the backend) handed to backend_failed, which may already have retried.
bool send(HttpSession *s, bool to_client, const std::string &text, IoBlock *block, const char *data, size_t len) {
    uv_stream_t *stream = to_client ? client_stream(s) : backend_stream(s);
    uv_buf_t bufs[2];
    unsigned n = 0;
    if (!text.empty()) bufs[n++] = uv_buf_init(const_cast<char *>(text.data()), static_cast<unsigned>(text.size()));
    if (len > 0) bufs[n++] = uv_buf_init(const_cast<char *>(data), static_cast<unsigned>(len));
    if (n == 0) return true;
    size_t total = text.size() + len;
    (to_client ? s->worker->counters().bytes_down : s->worker->counters().bytes_up).add(total);
    // The access log's bytes_out; its bytes_in are the request bytes read (process()), not the
    // rewritten head sent upstream (once per retry).
    if (to_client) s->bytes_out += total;
    TlsConn *tls = to_client ? s->tls.get() : s->conn->tls.get();
    int rc = io::try_write(stream, tls, bufs, n);
    size_t sent = rc > 0 ? static_cast<size_t>(rc) : 0;
    if (rc < 0 && rc != UV_EAGAIN) {
        if (to_client) session::close(s, uv_strerror(rc));
        else backend_failed(s, uv_strerror(rc));
        return false;
    }
    if (sent == total) return true;
    auto *op = new WriteOp;
    op->s = s;
    op->block = nullptr;
    op->conn = to_client ? nullptr : s->conn;
    op->to_client = to_client;
    n = 0;
    if (sent < text.size()) {
        op->text.assign(text, sent, std::string::npos);
        bufs[n++] = uv_buf_init(&op->text[0], static_cast<unsigned>(op->text.size()));
        sent = 0;
    } else {
        sent -= text.size();
    }
    if (sent < len) {
        op->block = block;
        block->refs++;
        bufs[n++] = uv_buf_init(const_cast<char *>(data + sent), static_cast<unsigned>(len - sent));
    }
    rc = io::write(&op->req, stream, tls, bufs, n, on_write);
    if (rc != 0) {
        unref(s, op->block);
        delete op;
        session::close(s, uv_strerror(rc));
        return false;
    }
    s->writes_pending++;
    if (!to_client) s->conn->writes_pending++;
    return true;
}

bool send_text(HttpSession *s, bool to_client, const std::string &text) { return send(s, to_client, text, nullptr, nullptr, 0); }

bool send_bytes(HttpSession *s, bool to_client, IoBlock *block, const char *data, size_t len) {
    static const std::string none;
    return send(s, to_client, none, block, data, len);
}

// The decoded body slices of a step (chunk framing and trailers left out), to the client.
bool send_payload(HttpSession *s, IoBlock *block, const HttpStream::Step &step) {
    for (const auto &piece : step.body) {
        if (!send_bytes(s, true, block, piece.first, piece.second)) return false;
    }
    return true;
}

const char *status_text(int status) {
    switch (status) {
    case 400: return "Bad Request";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 500: return "Internal Server Error";
    case 431: return "Request Header Fields Too Large";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

// Answers the client with `text` (a whole response, ending with Connection: close) and closes
// once it is written: no client is left hanging. `o`: whose doing it was (the backend's for
// 502/504 on a connection: a reset, an invalid response, no response in time; else the
// client's, the proxy's own refusal, or a hook's answer).
void answer(HttpSession *s, int status, const std::string &text, const char *why, Outcome o) {
    if (!s->http) {  // between requests: nothing was asked, nothing to answer
        session::close(s, why);
        return;
    }
    HttpState &h = *s->http;
    s->worker->shared().logger.log(PP_LOG_DEBUG, "worker %d: http %d: %s", s->worker->index(), status, why);
    // A head that failed (400, 408, 431) is an exchange too: it gets its entry.
    if (h.phase != HttpState::Phase::idle && s->exchange == Session::Exchange::none &&
        h.phase != HttpState::Phase::closing) {
        s->exchange = Session::Exchange::open;
    }
    if (h.resp_head_sent || h.phase == HttpState::Phase::closing) {  // too late for an answer
        session::outcome(s, o, why, h.sent_status, true);
        session::close(s, why);
        return;
    }
    h.sent_status = status;
    h.phase = HttpState::Phase::closing;
    stop_timer(s);
    s->worker->dequeue_waiter(s);
    // The backend's attempt counts now (its breaker); the exchange once the answer is on its
    // way, so that its entry has the answer's bytes (a write that fails closes the session,
    // whose entry then says so). The backend connection goes after: the entry names it.
    session::outcome(s, o, why, status, false);
    if (!send_text(s, true, text)) return;
    session::outcome(s, o, why, status, true);
    if (s->conn) session::close_conn(s, true);  // mid-exchange: the backend connection is not reusable
    close_if_done(s);
    if (s->state != Session::State::closing) update_reads(s);
}

// The proxy's own error answers: a status line and a line of text.
void respond_error(HttpSession *s, int status, const char *why, Outcome o) {
    char body[160];
    int blen = std::snprintf(body, sizeof body, "%d %s\n", status, status_text(status));
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
    text += "Content-Type: text/plain\r\nContent-Length: " + std::to_string(blen) + "\r\n";
    if (status == 503) text += "Retry-After: 1\r\n";
    text += "Connection: close\r\n\r\n";
    text.append(body, static_cast<size_t>(blen));
    answer(s, status, text, why, o);
}

void respond_error(HttpSession *s, int status, const char *why) {
    const bool backends_fault = s->conn && (status == 502 || status == 504);
    respond_error(s, status, why, backends_fault ? Outcome::failed : Outcome::abandoned);
}

// Each phase has a deadline (header, response, idle). They live in the worker's deadline lists,
// one per kind, so that moving between phases costs no timer-heap operation and an idle
// connection no timer of its own.
void arm_timer(HttpSession *s, int kind) {
    const Settings &st = settings(s);
    int64_t ms = st.client_idle_timeout;
    switch (kind) {
    case kHeaderDeadline: ms = st.client_header_timeout; break;
    case kResponseDeadline: ms = s->worker->shared().groups[static_cast<size_t>(s->group)].settings.response_timeout; break;
    case kClientIoDeadline: ms = st.client_io_timeout; break;
    case kBackendIoDeadline: ms = st.backend_io_timeout; break;
    case session::kLingerDeadline: ms = st.lingering_timeout; break;
    default: break;
    }
    s->worker->set_deadline(s, kind, static_cast<uint64_t>(ms));
}

// The body phase's inactivity timeouts (HAProxy's timeout client / timeout server, nginx's
// send_timeout / proxy_read_timeout): called whenever bytes moved, it restarts the deadline of
// the side the exchange now waits on. The client, while its request body is still to come or
// while it is not taking the response (its unsent bytes above the high-water mark, so that the
// backend's read is paused); else the backend. Bytes that keep moving keep pushing the deadline
// back, so a stream that flows (server-sent events, a slow steady download) is never cut.
// Until the first response byte of a complete request, response_timeout runs instead.
void watch_io(HttpSession *s) {
    HttpState *h = s->http;
    if (!h || s->state == Session::State::closing) return;
    if (h->phase == HttpState::Phase::closing) {  // a last response still being written
        if (!client_flushed(s)) arm_timer(s, kClientIoDeadline);
        return;
    }
    if (h->phase != HttpState::Phase::exchange || !s->conn) return;
    if (!h->resp_any) {
        if (h->req_done) return;  // response_timeout
        const bool backend_backed_up = backend_stream(s)->write_queue_size > kHighWater;
        arm_timer(s, backend_backed_up ? kBackendIoDeadline : kClientIoDeadline);
        return;
    }
    const bool client_backed_up = client_stream(s)->write_queue_size > kHighWater;
    arm_timer(s, client_backed_up ? kClientIoDeadline : kBackendIoDeadline);
}

void clear_deadline(HttpSession *s) { s->worker->clear_deadline(s); }

// For good (an error answer, a tunnel that sets its own).
void stop_timer(HttpSession *s) { s->worker->clear_deadline(s); }

}  // namespace

void deadline_passed(HttpSession *s, int kind) {
    if (s->state == Session::State::closing) return;
    WorkerCounters &c = s->worker->counters();
    switch (kind) {
    case kIdleDeadline: session::close(s, "client idle timeout"); return;
    case kHeaderDeadline: respond_error(s, 408, "client_header_timeout"); return;
    case kResponseDeadline:
        if (s->http && s->http->park_token) {  // the request hook paused it and nobody resumed it in time
            s->worker->shared().parking.forget(s->http->park_token);
            s->http->park_token = 0;
            respond_error(s, 504, "paused by the request hook past response_timeout", Outcome::abandoned);
            return;
        }
        respond_error(s, 504, "response_timeout", Outcome::failed);
        return;
    case kBackendIoDeadline:
        // Mid-response: the client sees its connection end; before a whole head: 504.
        c.backend_io_timeouts.add();
        respond_error(s, 504, "backend_io_timeout", Outcome::failed);
        return;
    case session::kLingerDeadline: session::close(s, "lingering_timeout"); return;
    case kClientIoDeadline:
        // The client stalled its request body (408), or stopped taking the response (too late
        // to answer: both connections close). Not the backend's doing.
        c.client_io_timeouts.add();
        respond_error(s, 408, "client_io_timeout", Outcome::abandoned);
        return;
    default: return;
    }
}

void drain(HttpSession *s) {
    if (s->state == Session::State::closing) return;
    HttpState *h = s->http;
    if (h && h->phase == HttpState::Phase::lingering) {  // answered already: a stop waits for nothing more
        session::close(s, "draining: lingering connection");
        return;
    }
    if (!h || h->phase == HttpState::Phase::idle) {
        if (client_flushed(s)) {
            session::close(s, "draining: idle client connection");
            return;
        }
        // The last response is still being written: close once it is out.
        if (!h) h = s->http = take_state(settings(s));
        h->phase = HttpState::Phase::closing;
        watch_io(s);
        return;
    }
    if (h->park_token) {  // a hook's pause would hold the stop to its deadline: answer it now
        s->worker->shared().parking.forget(h->park_token);
        h->park_token = 0;
        respond_error(s, 503, "draining while paused by the request hook", Outcome::abandoned);
        return;
    }
    // In flight (or a head arriving): its response says Connection: close, then it closes.
    h->client_keep_alive = false;
}

ModeProtocol::ExchangeView view(const HttpSession *s) {
    ModeProtocol::ExchangeView v;
    if (const HttpState *h = s->http) {
        v.method = h->req.head().method.c_str();
        v.target = h->req.head().target.c_str();
        v.sent_status = h->sent_status;
        v.first_byte_ns = h->t_first_byte;
    }
    return v;
}

namespace {

void on_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    Worker *w = static_cast<Worker *>(h->loop->data);
    IoBlock *b = w->buffers().get();
    b->refs = 1;
    *buf = uv_buf_init(b->data, IoBlock::kSize);
}

IoBlock *block_of(const uv_buf_t *buf) { return reinterpret_cast<IoBlock *>(buf->base - offsetof(IoBlock, data)); }

void on_linger_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

void on_client_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *s = static_cast<HttpSession *>(static_cast<Session *>(stream->data));
    if (s->http && s->http->phase == HttpState::Phase::lingering) {
        on_linger_read(stream, nread, buf);
        return;
    }
    if (nread <= 0) {
        if (buf->base) unref(s, block_of(buf));
        if (nread == 0) return;
        if (nread == UV_EOF && s->http && s->http->req_done &&
            (s->http->phase == HttpState::Phase::waiting || s->http->phase == HttpState::Phase::exchange)) {
            // Half-closed after a whole request: answer it, then close.
            s->http->client_keep_alive = false;
            s->client_eof = true;
            io::read_stop(stream, s->tls.get());
            s->httpc.reading = false;
            return;
        }
        // The client went away (or reset): nothing to answer.
        session::close(s, nread == UV_EOF ? "client closed" : uv_strerror(static_cast<int>(nread)));
        return;
    }
    IoBlock *b = block_of(buf);
    b->len = static_cast<size_t>(nread);
    if (!s->http) s->http = take_state(settings(s));  // a request begins
    s->http->in = b;
    s->http->in_off = 0;
    process(s);
}

void start_exchange(HttpSession *s, const HttpStream::Step &step) {
    HttpState &h = *s->http;
    const HttpHead &head = h.req.head();
    const Settings &st = settings(s);
    s->httpc.requests++;
    s->t_start = uv_hrtime();
    s->t_acquire = s->t_connect = s->t_ready = s->queue_wait_ns = 0;  // (bytes: since the head began)
    h.t_first_byte = 0;
    h.http10 = head.http_major == 1 && head.http_minor == 0;
    h.client_said_close = !head.keep_alive;
    h.client_keep_alive = head.keep_alive && !s->worker->draining() &&
                          (st.max_client_requests == 0 || s->httpc.requests < st.max_client_requests);
    h.has_body = head.chunked || head.content_length > 0;
    h.idempotent = is_idempotent(head.method);
    h.wants_upgrade = head.upgrade;
    // Routes pick the group (and may rewrite the target and Host); without any, every request
    // goes to the default group and nothing is looked at.
    drop_route(&h);  // the previous request's
    RouteGen *gen = http_session::routes(*s->worker);
    const RouteTable &table = *gen->table;
    h.route = table.size() ? table.match(head) : nullptr;
    if (h.route) {
        RouteGen::hold(gen);
        h.route_gen = gen;
    }
    s->group = static_cast<int16_t>(h.route ? h.route->group : table.default_group());
    s->forced_backend = -1;
    h.hook_target_set = false;
    h.route_applied = false;
    h.resumes = 0;
    h.req_done = step.message_done;
    h.resp.reset();
    h.resp.expect_head_response(head.method == "HEAD");
    h.dechunk = false;
    h.resp.collect_body(false);
    h.resp_any = h.resp_head_sent = h.resp_in_body = false;
    s->retries_used = 0;
    s->clear_failed();  // each request may use every backend again
    h.phase = HttpState::Phase::waiting;
    h.sent_status = 0;
    s->exchange = Session::Exchange::open;
    clear_deadline(s);
}

// The request goes upstream: its head rewritten for the backend (with what a route or the
// request hook changed), then a connection for it.
void forward(HttpSession *s) {
    HttpState &h = *s->http;
    const HttpHead &head = h.req.head();
    const Settings &st = settings(s);
    HeadRewrite rw;
    rw.add_forwarded = st.add_forwarded != 0;
    rw.client_ip = s->peer_ip();
    rw.via = st.via ? "poolproxy" : "";
    rw.keep_alive = true;  // toward the backend we always ask to keep the connection
    rw.keep_upgrade = head.upgrade;  // a protocol switch is the backend's to accept or refuse
    if (!h.hook_target_set && h.route && h.route->strip_prefix && !h.route_applied) {
        h.hook_target = RouteTable::rewritten_target(*h.route, head.target);  // (kept: the target sent upstream)
        h.hook_target_set = true;
    }
    if (h.hook_target_set) rw.target = h.hook_target;
    h.head.clear();
    write_request_head(head, rw, &h.head);
    if (!h.route_applied) {  // (with a request hook the route's Host is in the head already)
        h.route_host = h.route && !h.route->host_rewrite.empty();
        if (h.route_host) replace_host(&h.head, h.route->host_rewrite);
    }
    h.backend_host.clear();
    session::acquire_or_wait(s);  // may attach at once (idle connection)
}

// A hook's failure (a negative return, an unknown group or backend): 500, and a log line that
// says which, at most once a second per worker.
void hook_failed(HttpSession *s, const char *hook, const std::string &why) {
    thread_local uint64_t t_last_ms = 0;
    if (quiet_long_enough(&t_last_ms, 1000)) {
        s->worker->shared().logger.log(PP_LOG_WARN, "worker %d: %s: %s: answered 500", s->worker->index(), hook,
                                       why.c_str());
    }
    respond_error(s, 500, why.c_str(), Outcome::abandoned);
}

// The request hook's turn (http_hooks.h has the handle). True when the request goes on to a
// backend; false when the hook answered, paused or failed (each handled here).
bool run_request_hook(HttpSession *s) {
    HttpState &h = *s->http;
    const Callbacks &cb = settings(s).callbacks;
    Shared &sh = s->worker->shared();
    HttpHead &head = h.req.mutable_head();
    if (!h.route_applied) {
        // The hook sees the head as it will go upstream, and its changes win: the fields
        // Connection names (this hop's only) go now, not after the hook, and the route's
        // rewrites are made first (the client's own target and Host stay in the info).
        h.route_applied = true;
        const std::string *host = head.find("host");
        h.client_host = host ? *host : std::string();
        drop_connection_named(head);
        if (h.route && h.route->strip_prefix) {
            h.hook_target = RouteTable::rewritten_target(*h.route, head.target);
            h.hook_target_set = true;
        }
        if (h.route && !h.route->host_rewrite.empty()) {
            std::string why;
            head_set_field(head, "Host", h.route->host_rewrite.c_str(), 0, &why);
            h.route_host = true;
        }
    }
    pp_exchange ex;
    ex.kind = pp_exchange::Kind::request;
    ex.head = &head;
    ex.max_head_bytes = static_cast<size_t>(settings(s).max_header_size);
    ex.shared = &sh;
    ex.client = static_cast<ClientBase *>(s);
    ex.worker = s->worker->index();
    pp_request_info info{};
    info.struct_size = sizeof info;
    info.method = ex.head->method.c_str();
    info.target = ex.head->target.c_str();
    info.http_minor = ex.head->http_minor;
    info.client = s->peer.c_str();
    info.worker = ex.worker;
    info.resumes = h.resumes;
    info.token = h.resumed_by;
    info.group = sh.groups[static_cast<size_t>(s->group)].name.c_str();
    info.upstream_target = h.hook_target_set ? h.hook_target.c_str() : ex.head->target.c_str();
    info.host = h.client_host.c_str();
    const int rc = cb.request_hook(cb.request_hook_userdata, &ex, &info);
    ex.magic = 0;  // (what the hook kept of it is refused by magic and thread while this frame lasts)
    if (rc >= 0 && ex.failure.empty()) {
        // Whatever the hook did to the fields, one Host at most goes upstream.
        if (count_fields(head, "host") > 1) ex.failure = "the hook left more than one Host field";
    }
    if (ex.host_set) h.route_host = true;  // the hook's Host wins over a backend's host=
    if (rc < 0 || !ex.failure.empty()) {
        if (ex.paused) sh.parking.forget(ex.token);
        hook_failed(s, "request hook", !ex.failure.empty() ? ex.failure : "it returned " + std::to_string(rc));
        return false;
    }
    if (ex.group >= 0) s->group = static_cast<int16_t>(ex.group);
    if (ex.backend >= 0) s->forced_backend = ex.backend;
    if (ex.target_set) {
        h.hook_target = std::move(ex.target);
        h.hook_target_set = true;
    }
    if (ex.responded) {
        if (ex.paused) sh.parking.forget(ex.token);
        if (h.req.head().method == "HEAD") ex.response.resize(ex.response.find("\r\n\r\n") + 4);
        answer(s, ex.status, ex.response, "answered by the request hook", Outcome::abandoned);
        return false;
    }
    if (ex.paused) {
        // Bound by response_timeout, like a backend that does not answer.
        h.park_token = ex.token;
        arm_timer(s, kResponseDeadline);
        return false;
    }
    return true;
}

// The response hook's turn, before the final response head is written: false when it failed
// (the client got a 500 instead).
bool run_response_hook(HttpSession *s) {
    HttpState &h = *s->http;
    const Callbacks &cb = settings(s).callbacks;
    pp_exchange ex;
    ex.kind = pp_exchange::Kind::response;
    ex.head = &h.resp.mutable_head();
    drop_connection_named(*ex.head);  // this hop's only: gone now, so the hook's fields of those names stay
    ex.max_head_bytes = static_cast<size_t>(settings(s).max_header_size);
    ex.shared = &s->worker->shared();
    ex.worker = s->worker->index();
    pp_response_info info{};
    info.struct_size = sizeof info;
    info.status = ex.head->status;
    info.method = h.req.head().method.c_str();
    info.target = h.hook_target_set ? h.hook_target.c_str() : h.req.head().target.c_str();
    info.backend_id = s->backend_id;
    const int rc = cb.response_hook(cb.response_hook_userdata, &ex, &info);
    ex.magic = 0;
    if (rc < 0) {
        hook_failed(s, "response hook", "it returned " + std::to_string(rc));
        return false;
    }
    return true;
}

// After the head (and the body bytes read with it): the request hook, if any, then upstream.
void dispatch(HttpSession *s) {
    if (settings(s).callbacks.request_hook && !run_request_hook(s)) return;
    forward(s);
}

// Sends what was parsed so far to the backend: the rewritten head, then raw request bytes.
void flush_to_backend(HttpSession *s) {
    HttpState &h = *s->http;
    if (h.pending.empty()) {
        if (!send_text(s, false, h.head)) return;
    } else {
        // The head and the body bytes read with it leave in one writev.
        if (!send(s, false, h.head, h.pending_block, h.pending[0].first, h.pending[0].second)) return;
        for (size_t i = 1; i < h.pending.size(); i++) {
            if (!send_bytes(s, false, h.pending_block, h.pending[i].first, h.pending[i].second)) return;
        }
    }
    h.pending.clear();
    unref(s, h.pending_block);
    h.pending_block = nullptr;
}

// Parses client bytes as far as the current exchange allows.
void process(HttpSession *s) {
    HttpState &h = *s->http;
    if (h.processing) return;
    h.processing = true;
    while (h.in && s->state != Session::State::closing && h.phase != HttpState::Phase::closing &&
           h.phase != HttpState::Phase::lingering) {
        if (h.phase == HttpState::Phase::waiting) break;
        if (h.phase == HttpState::Phase::exchange && h.req_done) break;  // pipelined: after the response
        if (h.phase == HttpState::Phase::idle) {
            h.phase = HttpState::Phase::head;
            arm_timer(s, kHeaderDeadline);
            s->bytes_in = s->bytes_out = 0;  // the access log's, for this request and its answer
        }
        const char *data = h.in->data + h.in_off;
        size_t avail = h.in->len - h.in_off;
        HttpStream::Step step = h.req.feed(data, avail);
        if (step.error_status) {
            s->bytes_in += avail;  // read for the request it refuses
            respond_error(s, step.error_status, step.error.c_str());
            break;
        }
        h.in_off += step.consumed;
        s->bytes_in += step.consumed;
        if (step.head_done) {
            const char *bad = nullptr;
            if (const int status = normalize_request_target(h.req.mutable_head(), &bad)) {
                respond_error(s, status, bad);
                break;
            }
            start_exchange(s, step);
            if (!step.message_done) {
                // Let the body's first bytes (or a bodiless end) show up before connecting.
                HttpStream::Step rest = h.req.feed(h.in->data + h.in_off, h.in->len - h.in_off);
                if (rest.error_status) {
                    s->bytes_in += h.in->len - h.in_off;
                    respond_error(s, rest.error_status, rest.error.c_str());
                    break;
                }
                if (rest.consumed > 0) {
                    h.pending.emplace_back(h.in->data + h.in_off, rest.consumed);
                    h.in_off += rest.consumed;
                    s->bytes_in += rest.consumed;
                }
                h.req_done = rest.message_done;
            }
            if (!h.pending.empty()) {
                h.pending_block = h.in;
                h.in->refs++;
            }
            dispatch(s);
            continue;
        }
        if (h.phase == HttpState::Phase::exchange && step.consumed > 0) {
            if (!send_bytes(s, false, h.in, data, step.consumed)) break;
        }
        if (step.message_done && !h.req_done) {
            h.req_done = true;
            // The whole request is on its way: response_timeout runs until its first byte.
            if (h.phase == HttpState::Phase::exchange && !h.resp_any) arm_timer(s, kResponseDeadline);
        }
        if (step.consumed == 0 && !step.message_done) break;
        if (h.in_off >= h.in->len) break;
    }
    if (h.in && h.in_off >= h.in->len) {
        unref(s, h.in);
        h.in = nullptr;
    }
    h.processing = false;
    if (s->state != Session::State::closing) update_reads(s);
}

void on_backend_read(PooledConn *conn, ssize_t nread, const uv_buf_t *buf);
void start_tunnel(HttpSession *s, IoBlock *b, size_t off);

void update_reads(HttpSession *s) {
    HttpState *h = s->http;
    const HttpState::Phase phase = h ? h->phase : HttpState::Phase::idle;
    if (s->state == Session::State::closing || phase == HttpState::Phase::tunnel ||
        phase == HttpState::Phase::lingering) {
        return;
    }
    bool attached = s->conn && s->conn->state == PooledConn::State::in_use;
    // The client's read stays armed through the exchange (re-arming costs epoll changes); a
    // pipelined request read meanwhile is held in `in`, which pauses it: one block at most.
    bool backend_backed_up = attached && backend_stream(s)->write_queue_size > kHighWater;
    bool want_client = !(h && h->in) && !s->client_eof && !backend_backed_up && phase != HttpState::Phase::closing;
    if (want_client && !s->httpc.reading) {
        if (const int rc = io::read_start(client_stream(s), s->tls.get(), on_alloc, on_client_read)) {
            warn_uv_failure(s->worker->shared().logger, "http: cannot read the client", rc);
            session::close(s, uv_strerror(rc));
            return;
        }
        s->httpc.reading = true;
    } else if (!want_client && s->httpc.reading) {
        io::read_stop(client_stream(s), s->tls.get());
        s->httpc.reading = false;
    }
    if (attached) {
        if (phase == HttpState::Phase::exchange && client_stream(s)->write_queue_size <= kHighWater) {
            if (const int rc = BackendPool::start_reading(s->conn)) {
                warn_uv_failure(s->worker->shared().logger, "http: cannot read the backend", rc);
                backend_failed(s, uv_strerror(rc));
                return;
            }
        } else {
            BackendPool::stop_reading(s->conn);
        }
    }
    watch_io(s);  // called whenever bytes moved
}

// The backend connection failed before any response byte: retry when that is safe (a reused
// connection, an idempotent request without a body, a retry left), on another backend when
// one is left; else 502.
void backend_failed(HttpSession *s, const char *why) {
    HttpState &h = *s->http;
    if (h.resp_any) {
        // Mid-response the client sees its connection end; within a head it gets 502.
        respond_error(s, 502, why, Outcome::failed);
        return;
    }
    Worker &w = *s->worker;
    const bool retries_left = s->retries_used < w.shared().groups[static_cast<size_t>(s->group)].settings.retries;
    if (may_retry({h.resp_any, h.req_done, h.idempotent, h.has_body, !retries_left})) {
        s->retries_used++;
        s->worker->counters().retries.add();
        s->worker->shared().logger.log(PP_LOG_DEBUG, "worker %d: reused connection failed (%s), retrying",
                                       s->worker->index(), why);
        session::outcome(s, Outcome::failed, why, 0, false);  // this attempt; the exchange goes on
        // Another backend of its group if one is left (none when a hook picked this one);
        // else this one again, on a fresh connection.
        size_t others = 0;
        const std::vector<bool> &outside = w.outside_group(s->group);
        for (size_t i = 0; i < outside.size() && s->forced_backend < 0; i++) {
            others += (!outside[i] && !s->has_failed(i) && static_cast<int>(i) != s->backend_id);
        }
        if (others > 0) s->mark_failed(static_cast<size_t>(s->backend_id));
        session::close_conn(s, true);
        h.phase = HttpState::Phase::waiting;
        h.pending.clear();
        session::acquire_or_wait(s);
        return;
    }
    respond_error(s, 502, why);
}

void on_backend_read(PooledConn *conn, ssize_t nread, const uv_buf_t *buf) {
    HttpSession *s = static_cast<HttpSession *>(conn->owner);
    HttpState &h = *s->http;
    if (nread <= 0) {
        if (buf->base) unref(s, block_of(buf));
        if (nread == 0) return;
        if (nread == UV_EOF && h.resp_any) {
            HttpStream::Step end = h.resp.finish();  // a body framed by the connection's end
            if (!end.error_status && end.message_done) {
                h.client_keep_alive = false;
                finish_exchange(s);
                return;
            }
        }
        backend_failed(s, nread == UV_EOF ? "backend closed the connection" : uv_strerror(static_cast<int>(nread)));
        return;
    }
    IoBlock *b = block_of(buf);
    b->len = static_cast<size_t>(nread);
    if (!h.resp_any) {
        h.resp_any = true;  // response_timeout is over: the body-phase timeouts follow (watch_io)
        h.t_first_byte = uv_hrtime();
    }
    size_t off = 0;
    while (off < b->len && s->state != Session::State::closing) {
        HttpStream::Step step = h.resp.feed(b->data + off, b->len - off);
        if (step.error_status) {
            unref(s, b);
            respond_error(s, 502, step.error.c_str());
            return;
        }
        const char *data = b->data + off;
        off += step.consumed;
        if (step.head_done && h.resp.head().status == 101) {
            if (h.wants_upgrade) {
                start_tunnel(s, b, off);
            } else {  // RFC 9110 15.2.2: only an answer to an Upgrade request may switch
                unref(s, b);
                respond_error(s, 502, "101 Switching Protocols without an Upgrade request");
            }
            return;
        }
        if (step.head_done) {
            const HttpHead &rh = h.resp.head();
            // HTTP/1.0 has no chunked coding (RFC 9112 7.1): such a client gets the decoded
            // payload, ended by closing its connection. Rare, so this path may collect slices.
            h.dechunk = h.http10 && rh.chunked && rh.status >= 200;
            h.resp.collect_body(h.dechunk);
            if (rh.status >= 200) {
                bool framed = (rh.has_content_length || rh.chunked || step.message_done) && !h.dechunk;
                // An answer before the whole request arrived (nginx's 405/413/401 do not wait
                // for the body): the rest of the body must never reach a request parser at a
                // message boundary, or a body holding a request is forwarded as one (a CL.0
                // desync). So the connection ends after this answer, and the lingering close
                // reads and discards the rest of the body (bounded by the lingering_* options).
                h.client_keep_alive = h.client_keep_alive && framed && h.req_done;
            }
            if (rh.status >= 200 && settings(s).callbacks.response_hook && !run_response_hook(s)) {
                unref(s, b);
                return;
            }
            h.resp_head.clear();
            if (rh.status >= 200 || !h.http10) {  // no interim responses to HTTP/1.0 clients
                HeadRewrite rw;
                rw.via = settings(s).via ? "poolproxy" : "";
                rw.keep_alive = rh.status < 200 || h.client_keep_alive;
                rw.http10_peer = h.http10;
                rw.drop_transfer_encoding = h.dechunk;
                write_response_head(rh, rw, &h.resp_head);
            }
            HttpStream::Step rest;
            if (!step.message_done) {
                rest = h.resp.feed(b->data + off, b->len - off);  // bodiless end
                if (rest.error_status) {
                    unref(s, b);
                    respond_error(s, 502, rest.error.c_str());
                    return;
                }
                step.message_done = rest.message_done;
            }
            // Only now is the head on its way: a failure found in the bytes read with it (a
            // trailer over max_header_fields, an invalid chunk) still gets its 502 above.
            if (rh.status >= 200) {
                h.resp_head_sent = true;
                h.sent_status = rh.status;
            }
            const size_t body = rest.consumed;
            if (h.dechunk) {
                if (!send_text(s, true, h.resp_head) || !send_payload(s, b, rest)) {
                    unref(s, b);
                    return;
                }
            } else if (!send(s, true, h.resp_head, body ? b : nullptr, b->data + off, body)) {
                // (the head and the body bytes that came with it leave in one writev)
                unref(s, b);
                return;
            }
            off += body;
            h.resp_in_body = !step.message_done;
        } else if (step.consumed > 0 && h.resp_in_body) {
            // Raw message bytes (a head split across reads is not: it is rewritten when done).
            bool ok = h.dechunk ? send_payload(s, b, step) : send_bytes(s, true, b, data, step.consumed);
            if (!ok) {
                unref(s, b);
                return;
            }
        }
        if (step.message_done) {
            h.resp_in_body = false;
            if (h.resp.head().status < 200) continue;  // interim: the final response follows
            if (off < b->len) h.client_keep_alive = false;  // bytes past the response: not ours
            unref(s, b);
            finish_exchange(s);
            return;
        }
        if (step.consumed == 0) break;
    }
    unref(s, b);
    update_reads(s);
}

// 101 Switching Protocols: from here on the connection is a tunnel (the tcp relay), and its
// backend connection is never pooled. Bytes already read past either head go through first.
void start_tunnel(HttpSession *s, IoBlock *b, size_t off) {
    HttpState &h = *s->http;
    HeadRewrite rw;
    rw.keep_upgrade = true;
    rw.via = settings(s).via ? "poolproxy" : "";
    h.resp_head.clear();
    write_response_head(h.resp.head(), rw, &h.resp_head);
    BackendPool::stop_reading(s->conn);
    if (s->httpc.reading) io::read_stop(client_stream(s), s->tls.get());
    s->httpc.reading = false;
    s->conn->on_read = nullptr;
    stop_timer(s);
    h.phase = HttpState::Phase::tunnel;
    // The backend answered the exchange (a success for its breaker); the exchange itself is
    // counted and logged when the tunnel ends (session::close), with its bytes and duration.
    h.sent_status = 101;
    session::outcome(s, Outcome::done, "101 Switching Protocols", 101, false);
    s->exchange = Session::Exchange::tunnel;
    // Its connection holds a pool_max slot for the tunnel's life: counted, so that requests
    // timing out in the queue behind tunnels get a warning that says so.
    s->holds_tunnel = true;
    s->worker->pool(static_cast<size_t>(s->backend_id)).backend().tunnels.fetch_add(1, std::memory_order_relaxed);
    bool ok = send(s, true, h.resp_head, b, b->data + off, b->len - off);
    unref(s, b);
    if (!ok) return;
    if (h.in && h.in_off < h.in->len) {  // the client's first tunnel bytes, read with its head
        s->bytes_in += h.in->len - h.in_off;
        if (!send_bytes(s, false, h.in, h.in->data + h.in_off, h.in->len - h.in_off)) return;
    }
    if (h.in) unref(s, h.in);
    h.in = nullptr;
    s->worker->shared().logger.log(PP_LOG_DEBUG, "worker %d: upgraded to a tunnel", s->worker->index());
    tcp_relay::attach(s, s->conn);
}

// The response ended: the backend connection goes back to the pool when the exchange was clean,
// and the client connection goes on (keep-alive, pipelined requests) or closes.
void finish_exchange(HttpSession *s) {
    HttpState &h = *s->http;
    // Never idle with a request unfinished: the rest of its body would be parsed as a request.
    if (!h.req_done) h.client_keep_alive = false;
    // Not while request bytes are still on their way (the backend answered before reading
    // them all): pooled, the connection could move to another worker without them.
    bool reusable = s->conn && may_reuse({h.req_done, h.resp.head().keep_alive, backend_stream(s)->write_queue_size,
                                          s->conn->writes_pending});
    const int status = h.resp.head().status;
    const bool backends_fault = s->backend_id >= 0 && s->worker->pool(static_cast<size_t>(s->backend_id)).backend().gs->breaker_on_5xx &&
                                status >= 500;
    session::outcome(s, backends_fault ? Outcome::failed : Outcome::done, "5xx response", status, true);
    if (s->conn) {  // its read stays armed: the pool's idle handler takes over
        if (reusable) session::give_back_conn(s);
        else session::close_conn(s, false);
    }
    if (!h.client_keep_alive) {
        h.phase = HttpState::Phase::closing;
        clear_deadline(s);
        if (client_flushed(s)) linger(s, "connection: close");
        else watch_io(s);  // the client must take the rest within client_io_timeout
        return;
    }
    h.phase = HttpState::Phase::idle;
    arm_timer(s, kIdleDeadline);
    process(s);  // a pipelined request may be waiting in the input
    if (s->state != Session::State::closing && h.phase == HttpState::Phase::idle && !h.in) {
        give_back_state(s->http);  // idle between requests: nothing of the exchange is needed
        s->http = nullptr;
    }
    update_reads(s);
}

// ---- lingering close -------------------------------------------------------------------------
// Closing a socket with unread bytes in its receive buffer (or with more still arriving) makes
// the kernel answer with a reset, and a client still sending its request (a 70 KB head refused
// at its first 16 KB, an upload refused with 413) then gets ECONNRESET instead of the answer
// sitting in its own receive buffer. So, as nginx (lingering_close) and HAProxy 3.0 (draining
// the request) do, and as RFC 9112 9.6 asks: once the last answer is written, half-close, read
// and discard until the client closes its side, then close. Bounded: lingering_timeout of
// silence, lingering_time in all, lingering_max_bytes read. The exchange's outcome is recorded
// and the backend connection let go before: a lingering client holds only its socket and its
// exchange state, and a drain or stop closes it at once.

void on_linger_shutdown(uv_shutdown_t *req, int) {
    auto *s = static_cast<HttpSession *>(static_cast<Session *>(req->data));
    s->shutdowns_pending--;
    if (s->state == Session::State::closing) session::maybe_delete(s);
}

void on_linger_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    auto *s = static_cast<HttpSession *>(static_cast<Session *>(stream->data));
    if (buf->base) unref(s, block_of(buf));
    if (nread == 0) return;
    if (nread < 0) {  // the client closed its side (or reset): it has read what it wanted
        session::close(s, nread == UV_EOF ? "client closed after the answer" : uv_strerror(static_cast<int>(nread)));
        return;
    }
    HttpState &h = *s->http;
    const Settings &st = settings(s);
    h.linger_bytes += static_cast<uint64_t>(nread);
    const uint64_t now = uv_now(s->worker->loop());
    const uint64_t until = h.linger_since_ms + static_cast<uint64_t>(st.lingering_time);
    if (h.linger_bytes > static_cast<uint64_t>(st.lingering_max_bytes)) {
        session::close(s, "lingering_max_bytes");
        return;
    }
    if (now >= until) {
        session::close(s, "lingering_time");
        return;
    }
    // Bytes came: lingering_timeout starts again, unless it would end past lingering_time; then
    // the deadline set before stands (due by `until`), as every deadline of a kind has one length.
    if (now + static_cast<uint64_t>(st.lingering_timeout) <= until) arm_timer(s, session::kLingerDeadline);
}

// The last answer on a connection that closes is written (nothing of the client's is on its way).
void linger(HttpSession *s, const char *why) {
    HttpState *h = s->http;
    const Settings &st = settings(s);
    if (!h || s->client_eof || st.lingering_timeout <= 0 || s->worker->draining()) {
        session::close(s, why);  // nothing more can come, or nobody may wait for it
        return;
    }
    // The client asked for the close (Connection: close, or HTTP/1.0 without keep-alive), its
    // request is read to the end and nothing of its is left unparsed: it has nothing more to
    // send, so no reset can hide the answer, and closing now spares the half-close, the read of
    // its FIN and a loop pass on every short connection (nginx's lingering_close on does the
    // same). Bytes a client sends after its own close are a protocol error it gets reset for.
    if (h->client_said_close && h->req_done && (!h->in || h->in_off >= h->in->len)) {
        session::close(s, why);
        return;
    }
    session::let_go(s, why);  // its outcome (if still open), its backend connection
    s->worker->shared().logger.log(PP_LOG_DEBUG, "worker %d: lingering after the answer: %s", s->worker->index(), why);
    h->phase = HttpState::Phase::lingering;
    if (h->in) {  // a pipelined request nobody will serve
        unref(s, h->in);
        h->in = nullptr;
    }
    h->linger_since_ms = uv_now(s->worker->loop());
    h->linger_bytes = 0;
    uv_stream_t *c = client_stream(s);
    int rc = session::shutdown_now(c, s->tls.get());
    if (rc == UV_EAGAIN) {  // the answer's last bytes are still queued: shut down after them
        h->linger_shutdown.data = s;
        rc = io::shutdown(&h->linger_shutdown, c, s->tls.get(), on_linger_shutdown);
        if (rc == 0) s->shutdowns_pending++;
    }
    if (rc != 0) {
        session::close(s, why);
        return;
    }
    // A read still armed stays so: on_client_read passes what comes to on_linger_read. Stopping
    // and starting it again would cost two epoll_ctl calls on every connection that closes.
    if (!s->httpc.reading) {
        rc = io::read_start(c, s->tls.get(), on_alloc, on_client_read);
        if (rc != 0) {
            session::close(s, why);
            return;
        }
        s->httpc.reading = true;
    }
    arm_timer(s, session::kLingerDeadline);
}

}  // namespace

void begin(HttpSession *s) {
    arm_timer(s, kHeaderDeadline);
    update_reads(s);
}

void attach(HttpSession *s, PooledConn *conn) {
    HttpState &h = *s->http;
    // A backend with its own Host (host=) gets it, unless a route rewrote the Host; a retry
    // on a backend without one puts the request's own back.
    if (!h.route_host) {
        const std::string &want = s->worker->pool(static_cast<size_t>(s->backend_id)).backend().host_header;
        if (want != h.backend_host) {
            const std::string *own = h.req.head().find("host");
            replace_host(&h.head, !want.empty() ? std::string_view(want) : own ? std::string_view(*own) : std::string_view());
            h.backend_host = want;
        }
    }
    conn->requests++;
    conn->on_read = on_backend_read;
    h.phase = HttpState::Phase::exchange;
    if (h.req_done) arm_timer(s, kResponseDeadline);
    else arm_timer(s, kClientIoDeadline);  // the body is still to come from the client
    flush_to_backend(s);
    if (s->state == Session::State::closing) return;
    // More request body may be waiting in the input. When attach runs inside process() (an
    // idle connection was at hand), this returns at once and the outer pass updates the reads:
    // updating them here, with the input still held, would stop and re-arm the client's read.
    process(s);
}

void no_backend(HttpSession *s, int status, const char *why) { respond_error(s, status, why); }

void resumed(HttpSession *s) {
    HttpState *h = s->http;
    if (s->state == Session::State::closing || !h || !h->park_token) return;  // ended meanwhile
    h->resumed_by = h->park_token;
    h->park_token = 0;
    h->resumes++;
    clear_deadline(s);
    if (run_request_hook(s)) forward(s);
    if (s->state != Session::State::closing && s->http) process(s);  // a body part, a pipelined request
}

void destroy(HttpSession *s) {
    HttpState *h = s->http;
    if (!h) return;
    if (h->park_token) s->worker->shared().parking.forget(h->park_token);  // resumed too late: nothing to resume
    if (h->in) unref(s, h->in);
    if (h->pending_block) unref(s, h->pending_block);
    h->in = h->pending_block = nullptr;
    give_back_state(h);
    s->http = nullptr;
}

namespace {

// Queue timeouts this far apart are separate bursts, each warned about once.
constexpr uint64_t kQueueWarnQuietMs = 10000;

// http: a request timed out in the queue. When upgraded tunnels hold connections of a backend
// (each keeps its pool_max slot until it ends, as HAProxy counts tunnels in maxconn), that is
// likely why: say so once per burst (per worker), naming the backend with the most.
void warn_tunnels_hold_slots(Worker &w) {
    const Backend *most = nullptr;
    int64_t most_tunnels = 0;
    for (size_t i = 0; i < w.lb().size(); i++) {
        const Backend &b = w.pool(i).backend();
        const int64_t n = b.tunnels.load(std::memory_order_relaxed);
        if (n > most_tunnels) {
            most = &b;
            most_tunnels = n;
        }
    }
    if (!most) return;
    thread_local uint64_t t_last_ms = 0;
    if (first_of_burst(&t_last_ms, kQueueWarnQuietMs)) {
        const Settings &st = w.settings();
        w.shared().logger.log(PP_LOG_WARN,
                              "worker %d: http requests are being answered 503 after queue_timeout (%lldms) while "
                              "%lld upgraded tunnel%s (WebSocket) hold%s connections of backend %s: a tunnel keeps "
                              "its pool_max (%lld) slot until it closes or is idle for tunnel_timeout (%lldms); "
                              "raise pool_max or lower tunnel_timeout",
                              w.index(), static_cast<long long>(st.queue_timeout), static_cast<long long>(most_tunnels),
                              most_tunnels == 1 ? "" : "s", most_tunnels == 1 ? "s" : "", most->name.c_str(),
                              static_cast<long long>(most->pool_max), static_cast<long long>(st.tunnel_timeout));
    }
}

// http mode: each request of a client connection is an exchange over a pooled keep-alive
// backend connection; the proxy's routes pick each request's group.
class HttpProtocol final : public ModeProtocol {
public:
    explicit HttpProtocol(RouteTable table)
        : ModeProtocol(sizeof(HttpSession), false), staged_(std::make_shared<const RouteTable>(std::move(table))),
          workers_(new RouteGen *[kMaxWorkers]()) {}
    ~HttpProtocol() override {
        // The workers are gone, and with them every session that held a table.
        for (int i = 0; i < kMaxWorkers; i++) delete workers_[i];
    }

    // The worker's current table (its thread only); the staged one the first time.
    RouteGen *routes_of(Worker &w) const {
        RouteGen *&g = workers_[w.index()];
        if (!g) g = new RouteGen{staged_routes(), 0, false};
        return g;
    }
    void reconfigure(Worker &w) const override {
        RouteGen *&g = workers_[w.index()];
        std::shared_ptr<const RouteTable> next = staged_routes();
        if (g && g->table == next) return;
        if (g) {
            g->retired = true;
            if (g->users == 0) delete g;
        }
        g = new RouteGen{std::move(next), 0, false};
    }
    bool stage_routes(const Settings &next, const std::function<int(std::string_view)> &group_id, bool commit,
                      std::string *why) const override {
        auto table = std::make_shared<RouteTable>();
        if (!build_routes(next, group_id, table.get(), why)) return false;
        if (commit) {
            std::lock_guard<std::mutex> lock(staged_mu_);
            staged_ = std::move(table);
        }
        return true;
    }

    static HttpSession *of(Session *s) { return static_cast<HttpSession *>(s); }
    Session *make() const override { return new HttpSession; }
    bool needs_peer(const Worker &) const override { return true; }  // X-Forwarded-For, hooks
    void begin(Session *s) const override { http_session::begin(of(s)); }
    void attach(Session *s, PooledConn *conn) const override { http_session::attach(of(s), conn); }
    void give_up(Session *s, int status, const char *why) const override { http_session::no_backend(of(s), status, why); }
    void deadline(Session *s, int kind) const override { http_session::deadline_passed(of(s), kind); }
    void drain_session(Session *s) const override { http_session::drain(of(s)); }
    void resume(Session *s) const override { http_session::resumed(of(s)); }
    void plaintext_on_tls(Session *s) const override {
        // As nginx: a plain answer a person can read, sent once and not waited for (the
        // connection closes next); counted, not logged, as a client's mistake.
        static const char kAnswer[] =
            "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 43\r\nConnection: close\r\n\r\n"
            "This port speaks TLS: use https:// for it.\n";
        uv_buf_t b = uv_buf_init(const_cast<char *>(kAnswer), sizeof kAnswer - 1);
        const int rc = uv_try_write(reinterpret_cast<uv_stream_t *>(&s->client), &b, 1);
        (void)rc;  // not taken whole: the client learns it from the close
    }
    void warn_queue_timeout(Worker &w) const override { warn_tunnels_hold_slots(w); }
    ExchangeView view(const Session *s) const override { return http_session::view(static_cast<const HttpSession *>(s)); }
    void destroy(Session *s) const override {
        http_session::destroy(of(s));
        delete of(s);
    }

private:
    static constexpr int kMaxWorkers = 256;  // the workers option's maximum
    std::shared_ptr<const RouteTable> staged_routes() const {
        std::lock_guard<std::mutex> lock(staged_mu_);
        return staged_;
    }
    // The latest table (a reload's); each worker copies it in reconfigure, on its own thread.
    mutable std::mutex staged_mu_;
    mutable std::shared_ptr<const RouteTable> staged_;
    std::unique_ptr<RouteGen *[]> workers_;  // by worker index; each touched by its worker only
};

}  // namespace

RouteGen *routes(Worker &w) { return static_cast<const HttpProtocol *>(w.shared().protocol)->routes_of(w); }

}  // namespace http_session

std::unique_ptr<Protocol> make_http_protocol(RouteTable routes) {
    return std::make_unique<http_session::HttpProtocol>(std::move(routes));
}

}  // namespace pp
