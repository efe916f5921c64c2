// One direction of an HTTP/1.x connection, parsed with llhttp: the head of each message,
// where its body ends, and the smuggling checks a proxy needs. Pure logic, no sockets.
//
// feed() stops at the end of a message head and at the end of each message (pipelined
// messages are taken one at a time). After a message that asks to switch protocols
// (Step::upgraded), a caller that switches stops feeding; one that feeds again has declined
// the switch, and parsing goes on as HTTP/1.1. So a Step is either a head (its bytes are rewritten, not
// forwarded) or raw message bytes after the head: the `consumed` bytes, chunk framing and
// trailers included, which a proxy forwards verbatim without copying. After a head, call
// feed() again even with no input, so that a message without a body can end.
#pragma once
#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pp {

struct HttpHeader {
    std::string name;
    std::string value;
};

struct HttpHead {
    // Requests.
    std::string method;
    std::string target;
    // Responses.
    int status = 0;
    std::string reason;
    // Both.
    int http_major = 1;
    int http_minor = 1;
    std::vector<HttpHeader> headers;
    bool keep_alive = true;      // what the message itself allows (version and Connection)
    bool chunked = false;
    bool has_content_length = false;
    uint64_t content_length = 0;
    bool upgrade = false;        // an Upgrade the parser will switch on
    bool expect_continue = false;

    // Value of the first header with this name (case-insensitive), or nullptr.
    const std::string *find(const char *name) const;
};

class HttpStream {
public:
    enum class Role { request, response };

    struct Limits {
        size_t max_header_size = 64 * 1024;  // whole head; beyond: 431
        // Field lines of a message, its head and trailers together; beyond: 431 (a request) or
        // 502 (a response). HAProxy's tune.http.maxhdr is 101.
        size_t max_header_fields = 100;
        size_t max_target = 8 * 1024;        // request target; beyond: 414
        uint64_t max_body_size = 0;          // 0: no limit; beyond: 413
    };

    // What one feed() call found.
    struct Step {
        size_t consumed = 0;     // input bytes used; feed the rest again later
        bool head_done = false;  // head() holds a complete head; consumed = the head's bytes
        bool message_done = false;
        bool upgraded = false;   // the connection switches protocol after this message
        // The decoded body payload within the input (chunk framing removed), filled only when
        // collect_body(true), for checks and tests; a proxy forwards the raw `consumed` region.
        std::vector<std::pair<const char *, size_t>> body;
        int error_status = 0;    // 400, 413, 414, 431, 505 (request) or 502 (response); 0: none
        std::string error;       // why, for logs
    };

    HttpStream(Role role, Limits limits);
    HttpStream(const HttpStream &) = delete;
    HttpStream &operator=(const HttpStream &) = delete;

    Step feed(const char *data, size_t len);
    // The peer closed: ends a message framed by the connection's end (HTTP/1.0 style).
    Step finish();
    // Ready for a new connection's first message.
    void reset();
    const HttpHead &head() const { return head_; }
    // For a hook that changes fields (proto/http_hooks.h keeps the framing fields as they are).
    HttpHead &mutable_head() { return head_; }
    // Responses only: the request this response answers was HEAD (no body follows).
    void expect_head_response(bool yes) { response_to_head_ = yes; }
    // Fill Step::body (off by default: a proxy needs only the raw bytes, and this allocates).
    void collect_body(bool yes) { collect_body_ = yes; }
    // Bytes of field objects and strings kept for reuse between messages (for tests): reset()
    // brings it back under a bound however large the last head was.
    size_t retained_bytes() const;

private:
    static int on_message_begin(llhttp_t *p);
    static int on_url(llhttp_t *p, const char *at, size_t len);
    static int on_status(llhttp_t *p, const char *at, size_t len);
    static int on_header_field(llhttp_t *p, const char *at, size_t len);
    static int on_header_value(llhttp_t *p, const char *at, size_t len);
    static int on_header_value_complete(llhttp_t *p);
    static int on_headers_complete(llhttp_t *p);
    static int on_body(llhttp_t *p, const char *at, size_t len);
    static int on_message_complete(llhttp_t *p);
    int reject(int status, const char *why);
    bool no_bare_cr(const char *from, const char *to);
    void clear_head();
    void trim_spares();

    Role role_;
    Limits limits_;
    llhttp_t parser_{};
    llhttp_settings_t settings_{};
    HttpHead head_;
    size_t head_size_ = 0;  // bytes of the current head so far, for the 431 limit
    bool field_done_ = true;  // the next field callback starts a new header
    size_t fields_parsed_ = 0;  // field lines the parser stored for this message (head and trailers)
    bool response_to_head_ = false;
    bool collect_body_ = false;
    // Header objects of earlier messages, kept with their string capacity so that parsing the
    // next head allocates nothing.
    std::vector<HttpHeader> spare_;
    size_t spare_bytes_ = 0;       // string capacity held by spare_, kept up to date as it changes
    uint64_t body_seen_ = 0;
    Step *step_ = nullptr;         // the Step being filled by the current feed()
    const char *data_ = nullptr;   // the input of the current feed()
    char last_fed_byte_ = '\n';    // the byte before data_, from the previous feed()
    bool after_head_ = false;      // paused at a head: the next feed() may have no input
    const char *scan_from_ = nullptr;  // framing bytes from here on are not checked for bare CR yet
    bool cr_pending_ = false;      // the last framing byte fed was a CR: an LF must follow
    bool upgrade_paused_ = false;  // llhttp stopped at an Upgrade; feeding again declines it
};

// A request whose backend connection died (the keep-alive race on a reused connection, or a
// reset or close on a fresh one): may it be sent again, on another connection or backend?
// Only when processing it twice does no harm (RFC 9110 9.2.2) and the proxy still has it: no
// response byte arrived, the request was sent whole, its method is idempotent, it had no body
// (bodies stream through and are not kept), and a retry is left.
struct RetryFacts {
    bool response_started;
    bool request_complete;
    bool idempotent_method;
    bool has_body;
    bool retries_exhausted;
};
bool may_retry(const RetryFacts &f);

// Whether a backend connection may go back to the pool when its response ended: the request
// complete, the response keep-alive, and none of the request's bytes still on their way (a
// backend may answer in full before reading the body). The pool may move an idle connection
// to another worker as a bare socket, which drops libuv's write queue; and a connection with
// a write in flight is still the session's.
struct ReuseFacts {
    bool request_complete;
    bool response_keep_alive;
    size_t bytes_queued;  // the stream's write_queue_size
    int writes_pending;   // writes issued on the connection whose callbacks have not run
};
bool may_reuse(const ReuseFacts &f);
bool is_idempotent(const std::string &method);

// Options for rewriting a head on its way through the proxy.
struct HeadRewrite {
    bool add_forwarded = true;  // X-Forwarded-For / X-Forwarded-Proto on requests
    std::string_view client_ip; // appended to X-Forwarded-For
    std::string proto = "http";
    std::string via;            // "" = no Via; else e.g. "poolproxy"
    bool keep_alive = true;     // what this hop should say about the connection
    bool keep_upgrade = false;  // a protocol switch is being forwarded: keep Upgrade
    bool http10_peer = false;   // the next hop speaks HTTP/1.0: keep-alive must be explicit
    bool drop_transfer_encoding = false;  // the body goes on decoded (to an HTTP/1.0 client)
    std::string_view target;    // requests: sent instead of the head's own target when not empty (a route's strip_prefix)
};

// Serializes a head for the next hop: HTTP/1.1 start line, hop-by-hop fields removed
// (Connection and every field it names, Keep-Alive, Proxy-Connection, TE, Upgrade), forwarding
// fields added. A request's TE goes on as "TE: trailers" (with "Connection: te", RFC 9112 7.4)
// when it accepts trailers and comes from an HTTP/1.1 client, and not at all otherwise. Trailer is end-to-end (RFC 9110 6.6.2) and
// goes on, unless the body is decoded for an HTTP/1.0 peer (no trailer section then). Linear in
// the head: the Connection tokens are collected once (at most kMaxConnectionTokens of them).
// Appends to *out (a reused buffer).
constexpr size_t kMaxConnectionTokens = 32;
void write_request_head(const HttpHead &head, const HeadRewrite &rw, std::string *out);
void write_response_head(const HttpHead &head, const HeadRewrite &rw, std::string *out);

// What a reverse proxy does with a request's target and Host before routing it (RFC 9112
// 3.2): more than one Host field is refused, and an absolute-form target ("http://a.example/x")
// becomes origin-form ("/x") with its authority as the one Host field, which the target
// overrides (3.2.2), so that routes, hooks and the backend all see the same host. Returns
// 0, or 400 with *why.
int normalize_request_target(HttpHead &head, const char **why);
// How many fields of the head are named `name` (case-insensitive).
size_t count_fields(const HttpHead &head, std::string_view name);

// Removes the fields a Connection field names (they are for this hop only) and the names from
// Connection, as write_*_head would drop them: what a hook then adds under such a name goes on.
// Framing fields stay (write_fields never drops them). Linear in the head.
void drop_connection_named(HttpHead &head);

// Sets the Host field of a serialized request head (write_request_head's output) to `host`:
// its value replaced, or the field added after the start line when there is none; an empty
// `host` removes the field. Linear in the head.
void replace_host(std::string *head, std::string_view host);

}  // namespace pp
