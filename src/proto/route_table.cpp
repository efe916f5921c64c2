#include "proto/route_table.h"

#include <cstring>

#include <cctype>

namespace pp {

namespace {

bool valid_name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == ':' || c == '[' ||
           c == ']';
}

// The path of a request target: origin-form "/p?q" -> "/p"; absolute-form "http://h/p?q" ->
// "/p"; anything else (authority-form, "*") has no path to match.
std::string_view path_of(std::string_view target) {
    if (target.empty()) return {};
    if (target[0] != '/') {
        const size_t scheme = target.find("://");
        if (scheme == std::string_view::npos) return {};
        const size_t slash = target.find('/', scheme + 3);
        if (slash == std::string_view::npos) return "/";
        target.remove_prefix(slash);
    }
    const size_t q = target.find_first_of("?#");
    return q == std::string_view::npos ? target : target.substr(0, q);
}

bool host_matches(const std::string &pattern, const std::string &host) {
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        const size_t n = pattern.size() - 1;  // ".example.com"
        return host.size() > n && host.compare(host.size() - n, n, pattern, 1, n) == 0;
    }
    return host == pattern;
}

}  // namespace

std::string normalized_host(std::string_view v) {
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (!v.empty() && v.front() == '[') {
        const size_t close = v.find(']');
        if (close != std::string_view::npos) v = v.substr(0, close + 1);
    } else {
        const size_t colon = v.rfind(':');
        if (colon != std::string_view::npos) v = v.substr(0, colon);
    }
    if (!v.empty() && v.back() == '.') v.remove_suffix(1);
    std::string out(v);
    for (char &c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool RouteTable::add(Route r, std::string *why) {
    if (routes_.size() >= kMaxRoutes) {
        *why = "at most " + std::to_string(kMaxRoutes) + " routes";
        return false;
    }
    for (const std::string *s : {&r.host, &r.path_prefix, &r.method, &r.header, &r.header_value, &r.host_rewrite}) {
        if (s->size() > kMaxText) {
            *why = "a route's strings are at most " + std::to_string(kMaxText) + " bytes";
            return false;
        }
    }
    if (!r.host.empty()) {
        std::string_view name(r.host);
        if (name.size() > 2 && name[0] == '*' && name[1] == '.') name.remove_prefix(2);
        bool ok = !name.empty();
        for (char c : name) ok = ok && valid_name_char(c) && c != '*';
        if (!ok) {
            *why = "host '" + r.host + "': expected a name such as api.example.com or *.example.com";
            return false;
        }
        r.host = normalized_host(r.host);
        if (r.host.empty() || (r.host[0] == '*' && r.host.size() < 3)) {
            *why = "host pattern '" + r.host + "' names nothing";
            return false;
        }
    }
    if (!r.path_prefix.empty() && r.path_prefix[0] != '/') {
        *why = "path prefix '" + r.path_prefix + "' must start with '/'";
        return false;
    }
    if (r.strip_prefix && r.path_prefix.empty()) {
        *why = "strip_prefix needs a path prefix";
        return false;
    }
    if (r.has_header_value && r.header.empty()) {
        *why = "a header value needs a header name";
        return false;
    }
    const auto token = [](const std::string &t) {  // RFC 9110 5.6.2
        bool ok = !t.empty();
        for (char c : t) {
            ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
        }
        return ok;
    };
    if (!r.header.empty() && !token(r.header)) {
        *why = "header '" + r.header + "' is not a field name (an HTTP token)";
        return false;
    }
    if (!r.method.empty()) {
        bool upper = token(r.method);
        for (char c : r.method) upper = upper && !(c >= 'a' && c <= 'z');
        if (!upper) {
            *why = "method '" + r.method + "': methods are case-sensitive tokens such as GET or POST";
            return false;
        }
    }
    if (!r.host_rewrite.empty()) {  // a Host value: host or host:port, [v6] included
        bool ok = true;
        for (char c : r.host_rewrite) ok = ok && (valid_name_char(c) || c == ':' || c == '[' || c == ']');
        if (!ok) {
            *why = "host_rewrite '" + r.host_rewrite + "': expected a host or host:port";
            return false;
        }
    }
    routes_.push_back(std::move(r));
    return true;
}

const Route *RouteTable::match(const HttpHead &head) const {
    if (routes_.empty()) return nullptr;
    // Looked up once, whatever the number of routes.
    std::string host;
    bool host_known = false;
    const std::string_view path = path_of(head.target);
    for (const Route &r : routes_) {
        if (!r.method.empty() && r.method != head.method) continue;
        if (!r.path_prefix.empty() && path.compare(0, r.path_prefix.size(), r.path_prefix) != 0) continue;
        if (!r.host.empty()) {
            if (!host_known) {
                const std::string *h = head.find("host");
                host = h ? normalized_host(*h) : std::string();
                host_known = true;
            }
            if (!host_matches(r.host, host)) continue;
        }
        if (!r.header.empty()) {
            const std::string *v = head.find(r.header.c_str());  // the name case-insensitively
            if (!v || (r.has_header_value && *v != r.header_value)) continue;  // the value exactly
        }
        return &r;
    }
    return nullptr;
}

bool parse_route(std::string_view spec, const std::function<int(std::string_view)> &group_id, Route *out,
                 std::string *why) {
    if (spec.size() > 4 * RouteTable::kMaxText) {
        *why = "a route is at most " + std::to_string(4 * RouteTable::kMaxText) + " bytes";
        return false;
    }
    const size_t arrow = spec.find("->");
    if (arrow == std::string_view::npos) {
        *why = "expected '... -> GROUP'";
        return false;
    }
    std::string_view group = spec.substr(arrow + 2);
    while (!group.empty() && group.front() == ' ') group.remove_prefix(1);
    while (!group.empty() && group.back() == ' ') group.remove_suffix(1);
    if (group.empty() || group.find(' ') != std::string_view::npos) {
        *why = "expected one group name after '->'";
        return false;
    }
    Route r;
    r.group = group_id(group);
    if (r.group < 0) {
        *why = "no backend group named '" + std::string(group) + "'";
        return false;
    }
    std::string_view rest = spec.substr(0, arrow);
    while (!rest.empty()) {
        const size_t sp = rest.find(' ');
        std::string_view word = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
        if (word.empty()) continue;
        const size_t eq = word.find('=');
        const std::string_view key = word.substr(0, eq);
        const std::string_view value = eq == std::string_view::npos ? std::string_view() : word.substr(eq + 1);
        const bool has_value = eq != std::string_view::npos && !value.empty();
        if (key == "strip_prefix" && eq == std::string_view::npos) {
            r.strip_prefix = true;
        } else if (!has_value) {
            *why = "'" + std::string(word) + "': expected host=, path=, method=, header=, host_rewrite= or strip_prefix";
            return false;
        } else if (key == "host") {
            r.host = std::string(value);
        } else if (key == "path") {
            r.path_prefix = std::string(value);
        } else if (key == "method") {
            r.method = std::string(value);
        } else if (key == "host_rewrite") {
            r.host_rewrite = std::string(value);
        } else if (key == "header") {
            const size_t colon = value.find(':');
            r.header = std::string(value.substr(0, colon));
            if (colon != std::string_view::npos) {
                r.header_value = std::string(value.substr(colon + 1));
                r.has_header_value = true;
            }
            if (r.header.empty()) {
                *why = "'" + std::string(word) + "': the header needs a name";
                return false;
            }
        } else {
            *why = "'" + std::string(word) + "': expected host=, path=, method=, header=, host_rewrite= or strip_prefix";
            return false;
        }
    }
    *out = std::move(r);
    return true;
}

std::string RouteTable::rewritten_target(const Route &r, std::string_view target) {
    if (!r.strip_prefix) return std::string(target);
    // Origin-form only, and only when it starts with the prefix (compared there, not searched for).
    if (target.empty() || target[0] != '/' || target.compare(0, r.path_prefix.size(), r.path_prefix) != 0) {
        return std::string(target);
    }
    std::string out(target.substr(r.path_prefix.size()));
    if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
    return out;
}

}  // namespace pp
