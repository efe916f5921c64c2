// Declarative routes (http mode, issue 17): the first route whose every condition matches a
// request's head picks its backend group; a request no route matches goes to the default
// group. Conditions: the Host (exact, or "*.suffix" for any name below suffix), a path prefix,
// the method, and a header field's presence or exact value. A route may strip its path prefix
// from the target and rewrite the Host sent upstream.
//
// Matching is linear in the routes and, per route, in the request's fields (Host is looked up
// and normalized once per request; a named header once per route that names one); the table
// and every string in it are capped (kMaxRoutes, kMaxText), so a request's cost is bounded.
// Built once from the configuration, then read-only: shared by the workers without a lock.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proto/http_stream.h"

namespace pp {

struct Route {
    // Conditions; an empty one matches anything.
    std::string host;         // "api.example.com" (exact) or "*.example.com" (any name below it)
    std::string path_prefix;  // "/api/": the target's path starts with it
    std::string method;       // "GET" (case-sensitive, as methods are)
    std::string header;       // a field name (case-insensitive) that must be present...
    std::string header_value;  // ...with exactly this value, if has_header_value
    bool has_header_value = false;
    // What it does.
    int group = 0;               // the backend group it picks
    bool strip_prefix = false;   // the target loses path_prefix (what is left starts with "/")
    std::string host_rewrite;    // "" keeps the client's Host
};

class RouteTable {
public:
    static constexpr size_t kMaxRoutes = 1024;
    static constexpr size_t kMaxText = 1024;

    // Adds a route after the others. False, with *why, if it is invalid (a host pattern that is
    // not a name or "*.name", a prefix that does not start with "/", strings too long, a table
    // full, strip_prefix without a prefix).
    bool add(Route route, std::string *why);
    void set_default_group(int group) { default_group_ = group; }
    size_t size() const { return routes_.size(); }

    // The route the request matches, or nullptr (then default_group()).
    const Route *match(const HttpHead &head) const;
    int default_group() const { return default_group_; }
    // The group for this request: its route's, or the default.
    int group_for(const HttpHead &head) const {
        const Route *r = match(head);
        return r ? r->group : default_group_;
    }

    // The target to send upstream under `route`: with the prefix stripped when asked.
    static std::string rewritten_target(const Route &route, std::string_view target);

private:
    std::vector<Route> routes_;
    int default_group_ = 0;
};

// A route table as one worker runs it. A reload stages a new table; each worker takes it up on
// its own thread (HttpProtocol::reconfigure) and retires its old one, which lives on while a
// request of that worker still uses one of its routes: `users` is the worker's own count (no
// atomic, no lock on the request path), and the last user frees a retired table.
struct RouteGen {
    std::shared_ptr<const RouteTable> table;
    int64_t users = 0;
    bool retired = false;
    static void hold(RouteGen *g) { g->users++; }
    static void release(RouteGen *g) {
        if (--g->users == 0 && g->retired) delete g;
    }
};

// A route as the config file and the CLI write it: space-separated conditions and actions, then
// "->" and the group's name:
//   host=*.example.com path=/api/ method=GET header=X-Env:canary strip_prefix host_rewrite=api.internal -> api
// `header=NAME` asks for presence, `header=NAME:VALUE` for that exact value. `group_id` maps a
// group's name to its id, or -1 if there is no such group. False, with *why naming the word.
bool parse_route(std::string_view spec, const std::function<int(std::string_view)> &group_id, Route *out,
                 std::string *why);

// The host of a Host field value, lower-cased, without its port or a trailing dot; IPv6
// literals keep their brackets ("[::1]:8080" -> "[::1]").
std::string normalized_host(std::string_view value);

}  // namespace pp
