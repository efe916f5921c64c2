#include "proto/http_hooks.h"

#include <strings.h>

#include <cstring>

namespace pp {

namespace {

constexpr size_t kMaxName = 256;
constexpr size_t kMaxValue = 8192;
constexpr size_t kMaxFields = 1024;  // what a hook may grow a head to

bool is_tchar(unsigned char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-': case '.':
    case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

// The proxy frames each message and speaks for its own hops: a hook changing these would let
// the body be read differently by the next hop than by the proxy (a desync).
bool reserved(const char *name) {
    static const char *const kReserved[] = {"content-length", "transfer-encoding", "connection", "keep-alive",
                                            "upgrade",        "te",                "trailer",    "proxy-connection"};
    for (const char *r : kReserved) {
        if (strcasecmp(name, r) == 0) return true;
    }
    return false;
}

const char *reason_phrase(int status) {
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
    }
}

}  // namespace

int check_hook_field(const char *name, const char *value, std::string *why) {
    const size_t nlen = std::strlen(name);
    if (nlen == 0 || nlen > kMaxName) {
        *why = "a field name is 1 to " + std::to_string(kMaxName) + " bytes";
        return PP_EINVAL;
    }
    for (size_t i = 0; i < nlen; i++) {
        if (!is_tchar(static_cast<unsigned char>(name[i]))) {
            *why = "field name '" + std::string(name) + "' is not an HTTP token";
            return PP_EINVAL;
        }
    }
    if (reserved(name)) {
        *why = "field '" + std::string(name) + "' frames the message or is hop-by-hop: the proxy sets it";
        return PP_EINVAL;
    }
    if (value) {
        const size_t vlen = std::strlen(value);
        if (vlen > kMaxValue) {
            *why = "a field value is at most " + std::to_string(kMaxValue) + " bytes";
            return PP_EINVAL;
        }
        if (std::strpbrk(value, "\r\n")) {
            *why = "field '" + std::string(name) + "': a value may not hold CR or LF";
            return PP_EINVAL;
        }
    }
    return PP_OK;
}

namespace {

// Whether `add` more bytes (and `fields` more fields) still fit the head.
int fits(const HttpHead &head, size_t add, size_t fields, size_t max_bytes, std::string *why) {
    if (head.headers.size() + fields > kMaxFields) {
        *why = "a head has at most " + std::to_string(kMaxFields) + " fields";
        return PP_EINVAL;
    }
    size_t bytes = add;
    for (const HttpHeader &h : head.headers) bytes += h.name.size() + h.value.size() + 4;
    if (max_bytes && bytes > max_bytes) {
        *why = "the head would pass max_header_size (" + std::to_string(max_bytes) + " bytes)";
        return PP_EINVAL;
    }
    return PP_OK;
}

}  // namespace

int head_set_field(HttpHead &head, const char *name, const char *value, size_t max_bytes, std::string *why) {
    const std::string *old = head.find(name);
    const size_t vlen = std::strlen(value);
    if (!old || vlen > old->size()) {
        const size_t add = old ? vlen - old->size() : std::strlen(name) + vlen + 4;
        if (int rc = fits(head, add, old ? 0 : 1, max_bytes, why)) return rc;
    }
    bool done = false;
    for (size_t i = 0; i < head.headers.size();) {
        if (strcasecmp(head.headers[i].name.c_str(), name) != 0) {
            i++;
            continue;
        }
        if (!done) {
            head.headers[i].value = value;
            done = true;
            i++;
        } else {
            head.headers.erase(head.headers.begin() + static_cast<std::ptrdiff_t>(i));
        }
    }
    if (!done) head.headers.push_back({name, value});
    return PP_OK;
}

int head_add_field(HttpHead &head, const char *name, const char *value, size_t max_bytes, std::string *why) {
    if (int rc = fits(head, std::strlen(name) + std::strlen(value) + 4, 1, max_bytes, why)) return rc;
    head.headers.push_back({name, value});
    return PP_OK;
}

size_t head_remove_field(HttpHead &head, const char *name) {
    size_t before = head.headers.size(), out = 0;
    for (size_t i = 0; i < before; i++) {
        if (strcasecmp(head.headers[i].name.c_str(), name) == 0) continue;
        if (out != i) head.headers[out] = std::move(head.headers[i]);
        out++;
    }
    head.headers.resize(out);
    return before - out;
}

int serialize_answer(int status, const char *const *fields, const char *body, size_t body_len, std::string *out,
                     std::string *why) {
    if (status < 200 || status > 599) {
        *why = "status " + std::to_string(status) + " is not in 200..599";
        return PP_EINVAL;
    }
    if (body_len > 0 && !body) {
        *why = "body is NULL with body_len " + std::to_string(body_len);
        return PP_EINVAL;
    }
    if (body_len > 0 && (status == 204 || status == 304)) {
        *why = "a " + std::to_string(status) + " answer has no body";
        return PP_EINVAL;
    }
    std::string text = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) + "\r\n";
    for (size_t i = 0; fields && fields[i]; i += 2) {
        if (i >= 2 * kMaxFields) {
            *why = "at most " + std::to_string(kMaxFields) + " fields";
            return PP_EINVAL;
        }
        if (!fields[i + 1]) {
            *why = "field '" + std::string(fields[i]) + "' has no value (fields are name, value pairs, then NULL)";
            return PP_EINVAL;
        }
        if (int rc = check_hook_field(fields[i], fields[i + 1], why)) return rc;
        text.append(fields[i]).append(": ").append(fields[i + 1]).append("\r\n");
    }
    if (status != 204 && status != 304) text += "Content-Length: " + std::to_string(body_len) + "\r\n";
    text += "Connection: close\r\n\r\n";
    if (body_len) text.append(body, body_len);
    *out = std::move(text);
    return PP_OK;
}

}  // namespace pp
