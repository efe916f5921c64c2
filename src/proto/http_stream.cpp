#include "proto/http_stream.h"

#include <strings.h>

#include <cstring>

namespace pp {

namespace {

bool iequals(const std::string &a, const char *b) { return strcasecmp(a.c_str(), b) == 0; }

void trim_trailing_ows(std::string *v) {
    while (!v->empty() && (v->back() == ' ' || v->back() == '\t')) v->pop_back();
}

HttpStream &self(llhttp_t *p) { return *static_cast<HttpStream *>(p->data); }

// Fixed per-line overhead counted toward max_header_size (": " and CRLF).
constexpr size_t kLineOverhead = 4;

}  // namespace

const std::string *HttpHead::find(const char *name) const {
    for (const HttpHeader &h : headers) {
        if (iequals(h.name, name)) return &h.value;
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

int HttpStream::on_message_begin(llhttp_t *p) {
    HttpStream &s = self(p);
    s.head_ = HttpHead{};
    s.head_size_ = 0;
    s.field_done_ = true;
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
        s.head_.headers.emplace_back();
        s.head_size_ += kLineOverhead;
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
    if (h.value.find_first_of("\r\n") != std::string::npos) return s.reject(bad, "obs-fold header line folding");
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
    s.step_->body.emplace_back(at, len);
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

void HttpStream::reset() {
    after_head_ = false;
    llhttp_init(&parser_, role_ == Role::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings_);
    parser_.data = this;
    head_ = HttpHead{};
    last_fed_byte_ = '\n';
    response_to_head_ = false;
}

HttpStream::Step HttpStream::feed(const char *data, size_t len) {
    Step step;
    step_ = &step;
    if (len == 0 && !after_head_) return step;
    after_head_ = false;
    data_ = data;
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
        break;
    default:
        step.error_status = role_ == Role::request ? 400 : 502;
        step.error = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : llhttp_errno_name(err);
        break;
    }
    if (step.consumed > 0) last_fed_byte_ = data[step.consumed - 1];
    return step;
}

bool may_retry(const RetryFacts &f) {
    return f.reused_connection && !f.response_started && f.request_complete && f.idempotent_method && !f.has_body &&
           !f.already_retried;
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

// Hop-by-hop fields (RFC 9110 7.6.1) plus the ones the proxy sets itself.
bool is_hop_by_hop(const std::string &name) {
    static const char *names[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"};
    for (const char *n : names) {
        if (iequals(name, n)) return true;
    }
    return false;
}

// Lower-cased tokens listed in every Connection field.
std::vector<std::string> connection_tokens(const HttpHead &head) {
    std::vector<std::string> tokens;
    for (const HttpHeader &h : head.headers) {
        if (!iequals(h.name, "connection")) continue;
        size_t i = 0;
        while (i <= h.value.size()) {
            size_t comma = h.value.find(',', i);
            if (comma == std::string::npos) comma = h.value.size();
            std::string t = h.value.substr(i, comma - i);
            size_t a = t.find_first_not_of(" \t"), b = t.find_last_not_of(" \t");
            if (a != std::string::npos) {
                t = t.substr(a, b - a + 1);
                for (char &c : t) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
                tokens.push_back(t);
            }
            i = comma + 1;
        }
    }
    return tokens;
}

bool named_by_connection(const std::string &name, const std::vector<std::string> &tokens) {
    for (const std::string &t : tokens) {
        if (iequals(name, t.c_str())) return true;
    }
    return false;
}

void write_fields(const HttpHead &head, const HeadRewrite &rw, bool request, std::string *out) {
    std::vector<std::string> tokens = connection_tokens(head);
    bool had_xff = false, had_via = false;
    std::string via_entry;
    if (!rw.via.empty()) {
        via_entry = std::to_string(head.http_major) + "." + std::to_string(head.http_minor) + " " + rw.via;
    }
    for (const HttpHeader &h : head.headers) {
        if (rw.keep_upgrade && iequals(h.name, "upgrade")) {
            *out += h.name + ": " + h.value + "\r\n";
            continue;
        }
        if (is_hop_by_hop(h.name) || named_by_connection(h.name, tokens)) continue;
        if (request && rw.add_forwarded && iequals(h.name, "x-forwarded-proto")) continue;  // ours replaces it
        if (request && rw.add_forwarded && iequals(h.name, "x-forwarded-for")) {
            *out += h.name + ": " + h.value + ", " + rw.client_ip + "\r\n";
            had_xff = true;
            continue;
        }
        if (!via_entry.empty() && iequals(h.name, "via")) {
            *out += h.name + ": " + h.value + ", " + via_entry + "\r\n";
            had_via = true;
            continue;
        }
        *out += h.name + ": " + h.value + "\r\n";
    }
    if (request && rw.add_forwarded) {
        if (!had_xff) *out += "X-Forwarded-For: " + rw.client_ip + "\r\n";
        *out += "X-Forwarded-Proto: " + rw.proto + "\r\n";
    }
    if (!via_entry.empty() && !had_via) *out += "Via: " + via_entry + "\r\n";
    if (rw.keep_upgrade) *out += "Connection: upgrade\r\n";
    else if (!rw.keep_alive) *out += "Connection: close\r\n";
    else if (rw.http10_peer) *out += "Connection: keep-alive\r\n";
    *out += "\r\n";
}

}  // namespace

void write_request_head(const HttpHead &head, const HeadRewrite &rw, std::string *out) {
    *out += head.method + " " + head.target + " HTTP/1.1\r\n";
    write_fields(head, rw, true, out);
}

void write_response_head(const HttpHead &head, const HeadRewrite &rw, std::string *out) {
    *out += (rw.http10_peer ? "HTTP/1.0 " : "HTTP/1.1 ") + std::to_string(head.status) + " " + head.reason + "\r\n";
    write_fields(head, rw, false, out);
}

}  // namespace pp
