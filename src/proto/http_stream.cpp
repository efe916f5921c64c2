#include "proto/http_stream.h"

#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace pp {

namespace {

bool iequals(const char *a, size_t alen, const char *b, size_t blen) {
    return alen == blen && strncasecmp(a, b, alen) == 0;
}
template <size_t N>
bool is(const std::string &name, const char (&lower)[N]) {
    return iequals(name.data(), name.size(), lower, N - 1);
}

void trim_trailing_ows(std::string *v) {
    while (!v->empty() && (v->back() == ' ' || v->back() == '\t')) v->pop_back();
}

HttpStream &self(llhttp_t *p) { return *static_cast<HttpStream *>(p->data); }

// No Transfer-Encoding at all, or one field whose (trimmed) value is "chunked", as llhttp read it.
bool transfer_encoding_is_plain_chunked(const HttpHead &h) {
    int fields = 0;
    bool plain = false;
    for (const HttpHeader &f : h.headers) {
        if (!iequals(f.name.data(), f.name.size(), "transfer-encoding", 17)) continue;
        fields++;
        plain = iequals(f.value.data(), f.value.size(), "chunked", 7);
    }
    return fields == 0 || (fields == 1 && plain && h.chunked);
}

// Fixed per-line overhead counted toward max_header_size (": " and CRLF).
constexpr size_t kLineOverhead = 4;

// What a stream keeps for reuse once a connection or exchange is over (reset()): enough field
// objects and string capacity for ordinary heads, so that parsing them allocates nothing, but
// not the thousands of fields or the megabyte of one hostile head, which would otherwise stay
// with every exchange state the worker caches.
constexpr size_t kKeepFields = 64;
constexpr size_t kKeepFieldBytes = 16 * 1024;  // string capacity of the kept fields, together
constexpr size_t kKeepStringBytes = 1024;      // method, target, reason: each

size_t capacity_of(const HttpHeader &h) { return h.name.capacity() + h.value.capacity(); }

void release_if_large(std::string *s) {
    if (s->capacity() > kKeepStringBytes) std::string().swap(*s);
}

}  // namespace

const std::string *HttpHead::find(const char *name) const {
    const size_t len = std::strlen(name);
    for (const HttpHeader &h : headers) {
        if (iequals(h.name.data(), h.name.size(), name, len)) return &h.value;
    }
    return nullptr;
}

HttpStream::HttpStream(Role role, Limits limits) : role_(role), limits_(limits) {
    llhttp_settings_init(&settings_);
    settings_.on_message_begin = on_message_begin;
    settings_.on_url = on_url;
    settings_.on_status = on_status;
    settings_.on_header_field = on_header_field;
    settings_.on_header_value = on_header_value;
    settings_.on_header_value_complete = on_header_value_complete;
    settings_.on_headers_complete = on_headers_complete;
    settings_.on_body = on_body;
    settings_.on_message_complete = on_message_complete;
    // Strict parsing: no lenient flag is ever set (they are the smuggling vectors).
    llhttp_init(&parser_, role == Role::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
    parser_.data = this;
}

int HttpStream::reject(int status, const char *why) {
    step_->error_status = status;
    step_->error = why;
    return -1;
}

void HttpStream::clear_head() {
    // Kept for the next head's fields, up to kKeepFields: fields a hook added are not the
    // parser's, and keeping each would grow the spares by one per request until every reset
    // trimmed them (a reallocation per request).
    for (HttpHeader &h : head_.headers) {
        if (spare_.size() >= kKeepFields) break;
        spare_bytes_ += capacity_of(h);
        spare_.push_back(std::move(h));
    }
    head_.headers.clear();
    head_.method.clear();
    head_.target.clear();
    head_.reason.clear();
    head_.status = 0;
    head_.http_major = head_.http_minor = 1;
    head_.keep_alive = true;
    head_.chunked = head_.has_content_length = head_.upgrade = head_.expect_continue = false;
    head_.content_length = 0;
}

int HttpStream::on_message_begin(llhttp_t *p) {
    HttpStream &s = self(p);
    s.clear_head();
    s.head_size_ = 0;
    s.field_done_ = true;
    s.fields_parsed_ = 0;
    s.body_seen_ = 0;
    return 0;
}

int HttpStream::on_url(llhttp_t *p, const char *at, size_t len) {
    HttpStream &s = self(p);
    s.head_.target.append(at, len);
    s.head_size_ += len;
    if (s.head_.target.size() > s.limits_.max_target) return s.reject(414, "request target too long");
    if (s.head_size_ > s.limits_.max_header_size) return s.reject(431, "header block too large");
    return 0;
}

int HttpStream::on_status(llhttp_t *p, const char *at, size_t len) {
    HttpStream &s = self(p);
    s.head_.reason.append(at, len);
    s.head_size_ += len;
    if (s.head_size_ > s.limits_.max_header_size) return s.reject(502, "response head too large");
    return 0;
}

int HttpStream::on_header_field(llhttp_t *p, const char *at, size_t len) {
    HttpStream &s = self(p);
    if (s.field_done_) {
        // Counted before anything is stored: a head of many tiny fields costs a few bytes each
        // on the wire but a field object each here (and a lookup each when rewritten).
        // (Counted apart from the head's size: a hook may have added fields to it.)
        if (s.fields_parsed_ >= s.limits_.max_header_fields) {
            return s.reject(s.role_ == Role::request ? 431 : 502, "too many header fields (max_header_fields)");
        }
        if (s.spare_.empty()) {
            s.head_.headers.emplace_back();
        } else {
            s.spare_bytes_ -= capacity_of(s.spare_.back());
            s.head_.headers.push_back(std::move(s.spare_.back()));
            s.spare_.pop_back();
            s.head_.headers.back().name.clear();
            s.head_.headers.back().value.clear();
        }
        s.head_size_ += kLineOverhead;
        s.fields_parsed_++;
        s.field_done_ = false;
    }
    s.head_.headers.back().name.append(at, len);
    s.head_size_ += len;
    if (s.head_size_ > s.limits_.max_header_size) {
        return s.reject(s.role_ == Role::request ? 431 : 502, "header block too large");
    }
    return 0;
}

int HttpStream::on_header_value(llhttp_t *p, const char *at, size_t len) {
    HttpStream &s = self(p);
    // llhttp 8 hands a folded (obs-fold) line on as one more value chunk, without its CRLF: a
    // value chunk that starts right after a line feed is such a line. (A chunk split by the
    // read boundary starts after a value byte instead.)
    if (len == 0) return 0;  // an empty value ("Name:" CRLF) is a value, not a folded line
    char before = at == s.data_ ? s.last_fed_byte_ : at[-1];
    if (before == '\n') return s.reject(s.role_ == Role::request ? 400 : 502, "obs-fold header line folding");
    s.head_.headers.back().value.append(at, len);
    s.head_size_ += len;
    if (s.head_size_ > s.limits_.max_header_size) {
        return s.reject(s.role_ == Role::request ? 431 : 502, "header block too large");
    }
    return 0;
}

// The two checks llhttp 8 leaves to us (RFC 9112 5.1 and 5.2): whitespace between a field name
// and its colon, and obs-fold line folding. Both let two parsers disagree on a header.
int HttpStream::on_header_value_complete(llhttp_t *p) {
    HttpStream &s = self(p);
    HttpHeader &h = s.head_.headers.back();
    s.field_done_ = true;
    int bad = s.role_ == Role::request ? 400 : 502;
    if (!h.name.empty() && (h.name.back() == ' ' || h.name.back() == '\t')) {
        return s.reject(bad, "whitespace between header name and colon");
    }
    // (memchr, not find_first_of: libstdc++'s walks the value once per character of the set
    // with a call each, which cost every request a few thousand instructions.)
    if (std::memchr(h.value.data(), '\r', h.value.size()) || std::memchr(h.value.data(), '\n', h.value.size())) {
        return s.reject(bad, "obs-fold header line folding");
    }
    trim_trailing_ows(&h.value);
    return 0;
}

int HttpStream::on_headers_complete(llhttp_t *p) {
    HttpStream &s = self(p);
    HttpHead &h = s.head_;
    h.http_major = p->http_major;
    h.http_minor = p->http_minor;
    if (s.role_ == Role::request) h.method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    else h.status = p->status_code;
    h.keep_alive = llhttp_should_keep_alive(p) != 0;
    h.chunked = (p->flags & F_CHUNKED) != 0;
    h.has_content_length = (p->flags & F_CONTENT_LENGTH) != 0;
    h.content_length = h.has_content_length ? p->content_length : 0;
    h.upgrade = p->upgrade != 0;
    const std::string *expect = h.find("expect");
    h.expect_continue = expect && strcasecmp(expect->c_str(), "100-continue") == 0;
    s.step_->head_done = true;
    // HTTP/1.0 and 1.1 only: llhttp 8 takes "PRI /1.1" for an HTTP/0.9 request line, which the
    // next hop, sent "HTTP/1.1", would read as something else (found by fuzz_http_request).
    if (h.http_major != 1 || h.http_minor > 1) {
        return s.reject(s.role_ == Role::request ? 505 : 502, "HTTP version other than 1.0 or 1.1");
    }
    // Three digits (RFC 9110 15): llhttp 8 takes "HTTP/1.0 1" for status 1, an interim answer.
    if (s.role_ == Role::response && (h.status < 100 || h.status > 599)) {
        return s.reject(502, "status code outside 100..599");
    }
    // Transfer-Encoding: exactly one field, exactly "chunked", or the message is refused. llhttp 8
    // misses chunked behind a trailing HTAB ("chunked\t": a response body then runs to the
    // close) which the next hop reads as chunked once trimmed, and lets "chunked" twice through
    // when one of them has trailing whitespace (found by fuzz_http_response/_request). Other
    // codings are too rare to be worth a framing the proxy and the next hop might disagree on.
    if (!transfer_encoding_is_plain_chunked(h)) {
        return s.reject(s.role_ == Role::request ? 400 : 502, "Transfer-Encoding other than one plain 'chunked'");
    }
    if (s.limits_.max_body_size > 0 && h.has_content_length && h.content_length > s.limits_.max_body_size) {
        return s.reject(s.role_ == Role::request ? 413 : 502, "body larger than max_body_size");
    }
    // A response to HEAD, and any 1xx, 204 or 304, has no body whatever its framing headers
    // say (RFC 9110 6.4.1). llhttp 8 would read a 304's Content-Length as a body and desync.
    if (s.role_ == Role::response &&
        (s.response_to_head_ || h.status < 200 || h.status == 204 || h.status == 304)) {
        return 1;  // no body: the message ends right here, in this same step
    }
    return HPE_PAUSED;  // the head ends here: the caller learns exactly where
}

int HttpStream::on_body(llhttp_t *p, const char *at, size_t len) {
    HttpStream &s = self(p);
    if (!s.no_bare_cr(s.scan_from_, at)) return s.reject(s.role_ == Role::request ? 400 : 502, "bare CR");
    s.scan_from_ = at + len;  // payload bytes may be anything
    if (s.collect_body_) s.step_->body.emplace_back(at, len);
    s.body_seen_ += len;
    if (s.limits_.max_body_size > 0 && s.body_seen_ > s.limits_.max_body_size) {
        return s.reject(s.role_ == Role::request ? 413 : 502, "body larger than max_body_size");
    }
    return 0;
}

int HttpStream::on_message_complete(llhttp_t *p) {
    HttpStream &s = self(p);
    s.step_->message_done = true;
    return HPE_PAUSED;  // one message at a time: pipelined ones wait for the next feed()
}

// RFC 9112 2.2: a CR not followed by LF makes the element invalid. llhttp 8 lets some through
// (an empty value followed by CR SP LF ends the head there), which would let the proxy and a
// backend disagree on where a head ends. Scans every byte but body payload; allocation-free.
bool HttpStream::no_bare_cr(const char *from, const char *to) {
    const char *p = from;
    if (cr_pending_ && p < to) {
        if (*p != '\n') return false;
        cr_pending_ = false;
        p++;
    }
    while (p < to && (p = static_cast<const char *>(std::memchr(p, '\r', static_cast<size_t>(to - p)))) != nullptr) {
        if (p + 1 == to) {
            cr_pending_ = true;  // its LF comes with the next input
            return true;
        }
        if (p[1] != '\n') return false;
        p += 2;
    }
    return true;
}

HttpStream::Step HttpStream::finish() {
    Step step;
    step_ = &step;
    llhttp_errno_t err = llhttp_finish(&parser_);
    if (step.error_status == 0 && err != HPE_OK && err != HPE_PAUSED) {
        step.error_status = role_ == Role::request ? 400 : 502;
        step.error = llhttp_errno_name(err);
    }
    return step;
}

// Brings what reset() keeps back under the kKeep* bounds. Cheap when nothing grew past them
// (a few comparisons), so it may run on every reset().
void HttpStream::trim_spares() {
    if (head_.headers.capacity() > kKeepFields) std::vector<HttpHeader>().swap(head_.headers);  // empty here
    release_if_large(&head_.method);
    release_if_large(&head_.target);
    release_if_large(&head_.reason);
    if (spare_.size() <= kKeepFields && spare_bytes_ <= kKeepFieldBytes && spare_.capacity() <= 2 * kKeepFields) {
        return;
    }
    if (spare_.size() > kKeepFields) spare_.resize(kKeepFields);
    spare_bytes_ = 0;
    for (HttpHeader &h : spare_) {
        if (h.name.capacity() > kKeepStringBytes) std::string().swap(h.name);
        if (h.value.capacity() > kKeepStringBytes) std::string().swap(h.value);
        spare_bytes_ += capacity_of(h);
    }
    while (spare_bytes_ > kKeepFieldBytes) {  // many fields just under the per-string bound
        spare_bytes_ -= capacity_of(spare_.back());
        spare_.pop_back();
    }
    spare_.shrink_to_fit();
}

size_t HttpStream::retained_bytes() const {
    size_t n = spare_bytes_ + (spare_.capacity() + head_.headers.capacity()) * sizeof(HttpHeader);
    for (const HttpHeader &h : head_.headers) n += capacity_of(h);
    return n + head_.method.capacity() + head_.target.capacity() + head_.reason.capacity();
}

void HttpStream::reset() {
    after_head_ = false;
    llhttp_init(&parser_, role_ == Role::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
    parser_.data = this;
    clear_head();
    trim_spares();
    last_fed_byte_ = '\n';
    cr_pending_ = false;
    upgrade_paused_ = false;
    response_to_head_ = false;
}

HttpStream::Step HttpStream::feed(const char *data, size_t len) {
    Step step;
    step_ = &step;
    if (len == 0 && !after_head_) return step;
    after_head_ = false;
    if (upgrade_paused_) {
        // Fed again after an Upgrade: the switch did not happen (the backend answered
        // without 101), so the connection goes on as HTTP/1.1 (RFC 9110 7.8). Without this,
        // llhttp would answer every later call with the same pause and consume nothing.
        upgrade_paused_ = false;
        llhttp_resume_after_upgrade(&parser_);
    }
    data_ = data;
    scan_from_ = data;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (step.error_status != 0) return step;  // one of our checks refused it
    switch (err) {
    case HPE_OK:
        step.consumed = len;
        break;
    case HPE_PAUSED:
        step.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        llhttp_resume(&parser_);
        after_head_ = step.head_done && !step.message_done;
        break;
    case HPE_PAUSED_UPGRADE:
        step.consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        step.upgraded = true;
        step.message_done = true;
        upgrade_paused_ = true;
        break;
    default:
        step.error_status = role_ == Role::request ? 400 : 502;
        step.error = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : llhttp_errno_name(err);
        break;
    }
    if (step.error_status == 0 && !no_bare_cr(scan_from_, data + step.consumed)) {
        step.error_status = role_ == Role::request ? 400 : 502;
        step.error = "bare CR";
    }
    if (step.consumed > 0) last_fed_byte_ = data[step.consumed - 1];
    return step;
}

bool may_retry(const RetryFacts &f) {
    return !f.response_started && f.request_complete && f.idempotent_method && !f.has_body && !f.retries_exhausted;
}

bool may_reuse(const ReuseFacts &f) {
    return f.request_complete && f.response_keep_alive && f.bytes_queued == 0 && f.writes_pending == 0;
}

bool is_idempotent(const std::string &method) {
    static const char *methods[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};  // RFC 9110 9.2.2
    for (const char *m : methods) {
        if (method == m) return true;
    }
    return false;
}

// ---- rewriting --------------------------------------------------------------------------------

namespace {

// Hop-by-hop fields (RFC 9110 7.6.1) plus the ones the proxy sets itself. Not Trailer: it
// announces trailer fields to the recipient of the message (RFC 9110 6.6.2), end to end.
bool is_hop_by_hop(const char *name, size_t len) {
    switch (len) {
    case 2: return iequals(name, len, "te", 2);
    case 7: return iequals(name, len, "upgrade", 7);
    case 10: return iequals(name, len, "connection", 10) || iequals(name, len, "keep-alive", 10);
    case 16: return iequals(name, len, "proxy-connection", 16);
    default: return false;
    }
}
bool is_hop_by_hop(const std::string &name) { return is_hop_by_hop(name.data(), name.size()); }

// The fields that frame the body as the proxy forwards it (RFC 9112 6).
bool is_framing(const char *name, size_t len) {
    return iequals(name, len, "content-length", 14) || iequals(name, len, "transfer-encoding", 17);
}

// Calls f(token, length) for each element of a comma-separated list (RFC 9110 5.6.1), OWS
// trimmed and empty elements skipped, until f returns false. One pass, no allocation.
template <typename F>
bool for_each_element(const std::string &value, F f) {
    const char *p = value.data();
    const char *end = p + value.size();
    while (p < end) {
        const char *comma = static_cast<const char *>(std::memchr(p, ',', static_cast<size_t>(end - p)));
        const char *stop = comma ? comma : end;
        const char *a = p, *b = stop;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (a < b && !f(a, static_cast<size_t>(b - a))) return false;
        p = stop + 1;
    }
    return true;
}

// The field names a head's Connection fields declare hop-by-hop (RFC 9110 7.6.1), collected in
// one pass over the head so that the rewrite asks a small fixed set per field instead of
// rescanning every Connection value (a head of 7,000 fields and a 20,000-comma Connection once
// cost 0.75 s of CPU). Names that are dropped anyway (hop-by-hop), never dropped (framing) or
// no field's ("close") are not kept; beyond kMaxConnectionTokens names the rest are not considered (their fields go
// on), which no real client reaches.
class ConnectionTokens {
public:
    explicit ConnectionTokens(const HttpHead &head) {
        for (const HttpHeader &h : head.headers) {
            if (!is(h.name, "connection")) continue;
            bool room = for_each_element(h.value, [this](const char *t, size_t len) {
                // "close" is an option, not a field ("Close" is a reserved field name, RFC 9110
                // 16.3.2.2).
                if (is_hop_by_hop(t, len) || is_framing(t, len) || iequals(t, len, "close", 5)) return true;
                tokens_[n_++] = std::string_view(t, len);
                return n_ < kMaxConnectionTokens;
            });
            if (!room) break;
        }
    }
    bool empty() const { return n_ == 0; }
    bool names(const std::string &name) const {
        for (size_t i = 0; i < n_; i++) {
            if (iequals(name.data(), name.size(), tokens_[i].data(), tokens_[i].size())) return true;
        }
        return false;
    }

private:
    std::string_view tokens_[kMaxConnectionTokens];
    size_t n_ = 0;
};

// Does a TE value accept trailers? Its elements are t-codings ("trailers", or a coding with
// parameters such as "gzip;q=0.5"), and only the bare "trailers" says so (RFC 9110 10.1.4).
bool te_accepts_trailers(const std::string &value) {
    return !for_each_element(value, [](const char *t, size_t len) { return !iequals(t, len, "trailers", 8); });
}

void append_field(std::string *out, const std::string &name, const std::string &value) {
    out->append(name).append(": ", 2).append(value).append("\r\n", 2);
}

void append_field(std::string *out, const std::string &name, const std::string &value, const char *extra,
                  size_t extra_len) {
    out->append(name).append(": ", 2).append(value).append(", ", 2).append(extra, extra_len).append("\r\n", 2);
}

// Requests go on as HTTP/1.1, except an HTTP/1.0 one without Host: HTTP/1.1 requires Host
// (RFC 9112 3.2) and a backend answers 400 without it, while the client's own request is valid.
// It goes on as HTTP/1.0, with Connection: keep-alive so that the backend connection stays.
bool goes_as_http10(const HttpHead &head) {
    return head.http_major == 1 && head.http_minor == 0 && !head.find("host");
}

void write_fields(const HttpHead &head, const HeadRewrite &rw, bool request, std::string *out) {
    bool had_xff = false, had_via = false;
    char via_entry[96];
    size_t via_len = 0;
    if (!rw.via.empty()) {
        int n = std::snprintf(via_entry, sizeof via_entry, "%d.%d %s", head.http_major, head.http_minor, rw.via.c_str());
        via_len = n > 0 ? std::min(static_cast<size_t>(n), sizeof via_entry - 1) : 0;
    }
    const bool forwarded = request && rw.add_forwarded;
    const ConnectionTokens named(head);
    bool te_trailers = false;
    // An HTTP/1.0 client gets a chunked response decoded and without its trailers: its TE
    // cannot speak for it (RFC 9110 10.1.4: an intermediary's "trailers" means every client
    // downstream takes them).
    const bool te_allowed = request && !(head.http_major == 1 && head.http_minor == 0);
    for (const HttpHeader &h : head.headers) {
        if (rw.keep_upgrade && is(h.name, "upgrade")) {
            append_field(out, h.name, h.value);
            continue;
        }
        // TE is hop-by-hop, but gRPC over HTTP/1.1 and Envoy need a backend to learn that the
        // client takes trailers: that one value goes on (below), the codings do not (the proxy
        // does not decode them).
        if (request && is(h.name, "te")) {
            te_trailers = te_trailers || (te_allowed && te_accepts_trailers(h.value));
            continue;
        }
        // A Connection header may name framing fields too; dropping those would make the next
        // hop frame the message differently (a body taken for the next request). The proxy
        // forwards the body as framed, so the framing fields always go with it (the token set
        // never holds them).
        if (is_hop_by_hop(h.name) || named.names(h.name)) continue;
        if (rw.drop_transfer_encoding && is(h.name, "transfer-encoding")) continue;
        if (rw.drop_transfer_encoding && is(h.name, "trailer")) continue;  // decoded: no trailers follow
        if (forwarded && is(h.name, "x-forwarded-proto")) continue;  // ours replaces it
        if (forwarded && is(h.name, "x-forwarded-for")) {
            append_field(out, h.name, h.value, rw.client_ip.data(), rw.client_ip.size());
            had_xff = true;
            continue;
        }
        if (via_len && is(h.name, "via")) {
            append_field(out, h.name, h.value, via_entry, via_len);
            had_via = true;
            continue;
        }
        append_field(out, h.name, h.value);
    }
    if (forwarded) {
        if (!had_xff) out->append("X-Forwarded-For: ").append(rw.client_ip).append("\r\n", 2);
        out->append("X-Forwarded-Proto: ").append(rw.proto).append("\r\n", 2);
    }
    if (via_len && !had_via) out->append("Via: ", 5).append(via_entry, via_len).append("\r\n", 2);
    const char *option = rw.keep_upgrade ? "upgrade"
                         : !rw.keep_alive ? "close"
                         : rw.http10_peer || (request && goes_as_http10(head)) ? "keep-alive"
                                                                             : nullptr;
    if (te_trailers) {
        // RFC 9112 7.4: a sender of TE also lists it in Connection, so that a hop that does
        // not know TE drops it instead of passing it on.
        out->append("TE: trailers\r\nConnection: ");
        if (option) out->append(option).append(", ", 2);
        out->append("te\r\n", 4);
    } else if (option) {
        out->append("Connection: ").append(option).append("\r\n", 2);
    }
    out->append("\r\n", 2);
}

}  // namespace

void write_request_head(const HttpHead &head, const HeadRewrite &rw, std::string *out) {
    out->append(head.method).append(" ", 1);
    if (rw.target.empty()) out->append(head.target);
    else out->append(rw.target.data(), rw.target.size());
    out->append(goes_as_http10(head) ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n", 11);
    write_fields(head, rw, true, out);
}

size_t count_fields(const HttpHead &head, std::string_view name) {
    size_t n = 0;
    for (const HttpHeader &h : head.headers) n += iequals(h.name.data(), h.name.size(), name.data(), name.size()) ? 1 : 0;
    return n;
}

int normalize_request_target(HttpHead &head, const char **why) {
    if (count_fields(head, "host") > 1) {
        *why = "more than one Host field";
        return 400;
    }
    const std::string &t = head.target;
    size_t scheme = 0;
    if (t.size() > 7 && iequals(t.data(), 7, "http://", 7)) scheme = 7;
    else if (t.size() > 8 && iequals(t.data(), 8, "https://", 8)) scheme = 8;
    if (scheme == 0) return 0;
    const size_t end = t.find_first_of("/?#", scheme);
    std::string authority = t.substr(scheme, end == std::string::npos ? std::string::npos : end - scheme);
    if (authority.empty() || authority.find('@') != std::string::npos) {
        *why = "an absolute-form target without a host, or with userinfo";
        return 400;
    }
    std::string path = end == std::string::npos ? "/" : t.substr(end);
    if (path[0] != '/') path.insert(path.begin(), '/');
    bool set = false;
    for (HttpHeader &h : head.headers) {
        if (is(h.name, "host")) {
            h.value = authority;
            set = true;
        }
    }
    if (!set) head.headers.push_back({"Host", authority});
    head.target = std::move(path);
    return 0;
}

void drop_connection_named(HttpHead &head) {
    const ConnectionTokens named(head);
    if (named.empty()) return;  // (the usual case: Connection says keep-alive or close, or nothing)
    size_t out = 0;
    for (size_t i = 0; i < head.headers.size(); i++) {
        HttpHeader &h = head.headers[i];
        if (!is_framing(h.name.data(), h.name.size()) && named.names(h.name)) continue;
        if (out != i) head.headers[out] = std::move(h);
        out++;
    }
    head.headers.resize(out);
    // What Connection still says is only its options (close, keep-alive, upgrade, te), already
    // read by the parser: the field itself is dropped on the way out.
    for (HttpHeader &h : head.headers) {
        if (!is(h.name, "connection")) continue;
        std::string kept;
        for_each_element(h.value, [&kept](const char *t, size_t len) {
            if (is_hop_by_hop(t, len) || iequals(t, len, "close", 5)) {
                if (!kept.empty()) kept += ", ";
                kept.append(t, len);
            }
            return true;
        });
        h.value = kept;
    }
}

void replace_host(std::string *head, std::string_view host) {
    const size_t first = head->find("\r\n");
    if (first == std::string::npos) return;  // not a serialized head
    // Each line after the start line is a field we wrote: the one named Host is the field.
    size_t line = first + 2;
    while (line < head->size()) {
        const size_t end = head->find("\r\n", line);
        if (end == std::string::npos || end == line) break;  // the blank line ends the head
        if (end - line >= 5 && iequals(head->data() + line, 5, "host:", 5)) {
            if (host.empty()) head->erase(line, end + 2 - line);
            else head->replace(line, end - line, std::string("Host: ").append(host.data(), host.size()));
            return;
        }
        line = end + 2;
    }
    if (!host.empty()) head->insert(first + 2, std::string("Host: ").append(host.data(), host.size()).append("\r\n"));
}

void write_response_head(const HttpHead &head, const HeadRewrite &rw, std::string *out) {
    char status[16];
    int n = std::snprintf(status, sizeof status, "%d ", head.status);
    out->append(rw.http10_peer ? "HTTP/1.0 " : "HTTP/1.1 ", 9).append(status, static_cast<size_t>(n));
    out->append(head.reason).append("\r\n", 2);
    write_fields(head, rw, false, out);
}

}  // namespace pp
