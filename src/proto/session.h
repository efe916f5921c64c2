// A client session: the client socket and the backend connection it holds. What is common to
// both modes (acquiring a pooled connection, waiting, retrying another backend, closing) is in
// session.cpp; tcp_relay.cpp and http_session.cpp do the rest.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/backend.h"
#include "core/client.h"
#include "core/intrusive_list.h"
#include "core/protocol.h"
#include "core/stream_io.h"

namespace pp {

class Worker;
class TlsServer;
class BackendPool;
class RouteTable;
struct RouteGen;
struct PooledConn;
struct HttpState;
struct IoBlock;

// What only a tcp relay needs (tcp mode, and an http connection upgraded to a tunnel),
// allocated when it first does.
struct RelayExtras {
    uv_timer_t idle_timer;      // idle_timeout (tcp) or tunnel_timeout (an upgraded http connection)
    uint64_t timeout_ms = 0;    // which of the two
    bool timer_open = false;    // initialized (a handle the session must close)
    uv_shutdown_t shutdown[2];  // half-closes: [0] toward the backend, [1] toward the client
    // tcp: the client's first bytes, read while the session waits for or opens its backend
    // connection (the read stays armed then so that a client that resets is noticed at once).
    IoBlock *early_up = nullptr;
    IoBlock *early_more = nullptr;  // a second block; the read pauses after it
    bool attached = false;          // the backend connection is there: reads are relayed
    bool client_reading = false;    // the client's read is armed
    bool sni_pending = false;       // sni_route: its ClientHello is read before a backend is asked for
};

// Laid out with the small fields together: an idle keep-alive client costs its Session and
// little else, so every padding byte counts (bench/idle_memory.py).
// What the core keeps (worker, lists, the deadline: no timer of its own, as a libuv timer is 152
// bytes; what waiting needs) is in ClientBase.
struct Session : ClientBase {
    enum class State : uint8_t { acquiring, connecting, relaying, closing };

    uv_tcp_t client;
    // The client's TLS, when the listener has it (after `client`: freed before it).
    std::unique_ptr<TlsConn> tls;
    RelayExtras *relay = nullptr;
    PooledConn *conn = nullptr;
    uint64_t last_activity_ms = 0;
    // Access-log timing (uv_hrtime ns): when the current request (tcp: session) began, when it
    // started waiting for / opening a connection, when the connection was ready.
    uint64_t t_start = 0;
    uint64_t t_acquire = 0;
    uint64_t t_connect = 0;
    uint64_t t_ready = 0;
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    // The client's "ip:port" ("[ip]:port" for IPv6), read once at accept: in http mode (for
    // X-Forwarded-For) and when access logging is on; peer_ip() is the address alone.
    std::string peer;
    std::string_view peer_ip() const { return std::string_view(peer).substr(peer_ip_off, peer_ip_len); }

    int backend_id = -1;
    int writes_pending = 0;
    int16_t open_handles = 0;
    int16_t retries_used = 0;      // of the `retries` option, for the current request
    int8_t shutdowns_pending = 0;
    State state = State::acquiring;
    uint8_t peer_ip_off = 0;
    uint8_t peer_ip_len = 0;
    bool client_eof = false;
    bool backend_eof = false;
    bool client_read_paused = false;
    bool backend_read_paused = false;
    bool reused_conn = false;      // the connection came from the idle pool
    bool probe = false;            // the request is a half-open breaker's probe: report its outcome
    uint32_t probe_epoch = 0;      // the probe's half-open period (CircuitBreaker::Admission::epoch)
    bool attempt_pending = false;  // the breaker has not been told how the attempt on backend_id went
    // An exchange (http: a request; tcp: the session) whose outcome is not recorded yet; a
    // tunnel is an upgraded http exchange, recorded when the tunnel ends.
    enum class Exchange : uint8_t { none, open, tunnel };
    Exchange exchange = Exchange::none;
    bool holds_request_slot = false;  // counted in its backend's requests_in_flight
    bool holds_tunnel = false;        // counted in its backend's tunnels (an upgraded http connection)
};

// tcp mode's session: the common part is all it needs (the relay's own state is RelayExtras).
using TcpSession = Session;

// http mode's session.
struct HttpSession : Session {
    HttpState *http = nullptr;     // while an exchange (or its input) is under way
    // What outlives one exchange (the rest is in `http`, which an idle connection gives back
    // to its worker, so that idle keep-alive clients cost little memory).
    struct HttpConn {
        int requests = 0;          // requests begun on this connection (max_client_requests)
        bool reading = false;      // the client's read is armed
    } httpc;
};

// What the worker and the pools call, whatever the mode.
namespace session {

// Deadline kinds (kMaxDeadlineKinds at most): each has one length for the whole proxy, except
// response_timeout, which a backend group may set for itself.
enum Deadline : int {
    kHeaderDeadline = 0,     // client_header_timeout
    kResponseDeadline = 1,   // response_timeout: the request is sent, no response byte yet
    kIdleDeadline = 2,       // client_idle_timeout: a keep-alive client between requests
    kClientIoDeadline = 3,   // client_io_timeout: the exchange waits on the client (body phase)
    kBackendIoDeadline = 4,  // backend_io_timeout: the exchange waits on the backend (body phase)
    kLingerDeadline = 5,     // lingering_timeout: answered, half-closed, the client sends nothing
    kTlsHandshakeDeadline = 6,  // tls_handshake_timeout: accepted, the TLS handshake not done yet
    kDeadlineKinds = 7
};
static_assert(kDeadlineKinds <= kMaxDeadlineKinds, "the worker keeps kMaxDeadlineKinds deadline lists");
inline Session *of(ClientBase *c) { return static_cast<Session *>(c); }

// What of a session depends on its mode: one subclass per mode (TcpProtocol in tcp_relay.cpp,
// HttpProtocol in http_session.cpp). The core's calls (Protocol) are the same for both and
// live in session.cpp; where the modes differ, session.cpp asks the session's ModeProtocol.
class ModeProtocol : public Protocol {
public:
    // whole_session: the session is one exchange relayed to its end (tcp); else each request
    // is one (http), and one the client left before any answer is only logged, not counted.
    ModeProtocol(size_t client_bytes, bool whole_session) : Protocol(client_bytes), whole_session(whole_session) {}
    const bool whole_session;

    // Protocol, for sessions of either mode (session.cpp).
    void start(Worker &w, int fd, const sockaddr *peer, socklen_t peer_len) const final;
    bool try_acquire(ClientBase *c) const final;
    void waited_too_long(ClientBase *c) const final;
    void attached(ClientBase *c, PooledConn *conn) const final;
    void connect_failed(ClientBase *c, int backend_id, const char *why) const final;
    void deadline_passed(ClientBase *c, int kind) const final;
    void drain(ClientBase *c) const final;
    void close(ClientBase *c, const char *why) const final;
    void resumed(ClientBase *c) const final;

    // The mode's own.
    virtual Session *make() const = 0;  // a new session of the mode's type
    // Whether the client's address is needed whatever the access log wants (X-Forwarded-For).
    virtual bool needs_peer(const Worker &w) const = 0;
    virtual void begin(Session *s) const = 0;                      // right after accept
    virtual void attach(Session *s, PooledConn *conn) const = 0;   // its backend connection is ready
    // No backend can take it: http answers (the client learns why); tcp closes.
    virtual void give_up(Session *s, int status, const char *why) const = 0;
    virtual void deadline(Session *s, int kind) const = 0;
    virtual void drain_session(Session *s) const = 0;             // see session::drain
    virtual void resume(Session *s) const = 0;                    // a parked session goes on
    // The client sent plaintext to the TLS listener; the connection closes after this (http
    // answers 400 in plaintext, as nginx does, so that a person sees why).
    virtual void plaintext_on_tls(Session *) const {}
    // queue_timeout passed for it: what to tell the operator (once per burst).
    virtual void warn_queue_timeout(Worker &w) const = 0;
    // What the access log says of its current exchange (valid while it lives).
    struct ExchangeView {
        const char *method = "";
        const char *target = "";
        int sent_status = 0;         // the status of the response head the client got (0: none)
        uint64_t first_byte_ns = 0;  // uv_hrtime of the first response byte (0: none)
    };
    virtual ExchangeView view(const Session *s) const = 0;
    virtual void destroy(Session *s) const = 0;  // frees it, with its mode's state
};

// The worker's deadline timer: this session's deadline of `kind` came.
void deadline_passed(Session *s, int kind);
// The worker starts draining: an idle client connection closes now; one with an exchange in
// flight closes after its response (which says Connection: close).
void drain(Session *s);

// How an exchange, or one attempt of it on a backend, ended.
enum class Outcome : uint8_t {
    done,       // answered (tcp: the backend was reached); the breaker counts a success
    failed,     // the backend failed it (connect error, reset, timeout, invalid answer)
    abandoned,  // the client left or stalled, or the proxy refused it: the backend is not to
                // blame, and a half-open probe gives its slot back without counting
};
// THE place an outcome is recorded, on every path (answered, failed, retried, client gone,
// timed out, upgraded, drained): the breaker (with the probe's slot), the counters, the latency
// histogram and the access log are fed from here only. Recording twice is harmless: each part
// is recorded once. `status`: http, what the client got (0: nothing); `why`: the access log's
// reason (for outcomes other than done). `ends`: false when only the attempt on the current
// backend ended (a retry follows, or a 101 tunnel goes on).
void outcome(Session *s, Outcome o, const char *why, int status, bool ends);

// Starts a session for an accepted client fd (closes the fd on failure).
// `peer`: the client's address as accept4 gave it (len bytes), or nullptr to ask the socket.
void start(Worker &w, int fd, const sockaddr *peer = nullptr, socklen_t peer_len = 0);
// Tries to give a session a backend connection now. Returns false when every eligible backend
// is at its cap (the caller queues it); true when it got one, is connecting, or was closed.
bool try_acquire(Session *s);
// Queues the session for a connection; closes it if the queue is full.
void acquire_or_wait(Session *s);
// The listener speaks TLS: the handshake first (bounded by tls_handshake_timeout), then the
// mode's begin().
void start_tls(Session *s, const TlsServer &server);
// The connection opened for the session is ready, or failed.
void on_connected(Session *s, PooledConn *conn);
void on_connect_failed(Session *s, int backend_id, const char *why);
// The reason a relay (tcp, or a tunnel) gives when both peers ended it: a clean end.
extern const char *const kBothSidesClosed;
// Closes the session; its backend connection is closed too unless give_back_conn().
void close(Session *s, const char *why);
// What close() does except closing the client socket: the exchange still under way gets its
// outcome, the session leaves the waiting queue and its backend (the connection is closed, or
// adopted by its pool while still connecting). A lingering http connection starts with this.
void let_go(Session *s, const char *why);
// The session stops counting against its backend (in flight, least_conn, request limit).
void leave_backend(Session *s);
// The session is done with its connection and it may be reused (http keep-alive).
void give_back_conn(Session *s);
// The session is done with its connection and it must not be reused (`failed`: because the
// exchange on it failed, which the pool counts apart).
void close_conn(Session *s, bool failed);
// A write the session issued has called back. Returns false when the caller must stop: the
// session is closing (and may now be deleted) or the write failed (the session is closed).
bool write_done(Session *s, int status);
// Half-closes `stream` at once when everything written to it has reached the socket: one
// shutdown(2), where uv_shutdown would also arm and disarm the write watcher (two epoll_ctl
// calls). 0: done; UV_EAGAIN: writes are still queued (use uv_shutdown, which waits for
// them); another error: the socket's, e.g. UV_ENOTCONN.
int shutdown_now(uv_stream_t *stream, TlsConn *tls = nullptr);
// Called by the protocol when every handle of the session has closed.
void maybe_delete(Session *s);
// queue_timeout passed while the session waited for a connection.
void waited_too_long(Session *s);

}  // namespace session

using session::ModeProtocol;

// The relay (tcp_relay.cpp): a tcp session's, and an http connection's once upgraded.
namespace tcp_relay {
void attach(Session *s, PooledConn *conn);  // the backend connection is ready: relay both ways
}  // namespace tcp_relay

// The modes' protocols (tcp_relay.cpp, http_session.cpp); http's holds the routes.
// A route's (or SNI route's) group as configured: "default" is the unnamed one (id 0), a named
// group i + 1 (its place in settings.groups), -1 for none: the ids a proxy starts with.
int configured_group_id(const Settings &settings, std::string_view name);

std::unique_ptr<Protocol> make_tcp_protocol(const Settings &settings);  // throws Error on a bad sni_route
std::unique_ptr<Protocol> make_http_protocol(RouteTable routes);

// The routes of `settings` into *table, with `group_id` naming the groups ("default"
// included). False, with *why naming the route, when one does not parse.
bool build_routes(const Settings &settings, const std::function<int(std::string_view)> &group_id, RouteTable *table,
                  std::string *why);

namespace http_session {
// The worker's routes (empty: every request goes to the default group); its thread only.
RouteGen *routes(Worker &w);
}  // namespace http_session

}  // namespace pp
