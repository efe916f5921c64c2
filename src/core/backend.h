// A backend as all workers share it: its address and the few atomics that must be global, none
// of them touched per request (the connection cap, pool_max, moves only when a connection opens
// or closes). Everything counted per request lives in the per-worker pool and balancer.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "core/address.h"
#include "core/circuit_breaker.h"
#include "obs/counter.h"

namespace pp {

class TlsClient;

struct Settings;

struct Backend {
    int id = 0;
    // Its backend group (Shared::groups), fixed for its life, and what it reads of its group's
    // options (pool limits, timeouts, checks): never the top level's directly.
    int group = 0;
    const Settings *gs = nullptr;
    const TlsClient *tls = nullptr;  // its group's backend_tls (nullptr: plaintext); lives as long as the group
    SharedGauge *group_waiting = nullptr;  // its group's Group::waiting
    int64_t pool_max = 0;     // its cap: its own pool_max= or its group's
    int64_t own_pool_max = -1;  // its own pool_max= (-1: none), what a reload compares
    bool from_name = false;   // made from a host name's DNS answer (DnsWatcher), not configured as an address
    std::string host_header;  // "" = the request's Host goes on; else the Host sent to it
    Address addr;
    std::string name;  // "host:port" as configured; a DNS answer's: "name:port/ip:port"
    std::string authority;  // "host:port" as configured (never a '/'): the Host of health checks
    std::atomic<int> weight{1};  // may change at runtime (pp_proxy_set_backend_weight)
    // Its configured host, without port or brackets: the name backend_tls sends and checks
    // when backend_tls_name is not set.
    std::string tls_host() const {
        const size_t colon = authority.rfind(':');
        std::string h = colon == std::string::npos ? authority : authority.substr(0, colon);
        if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
        return h;
    }

    // Administrative state, set from any thread: a draining or removed backend gets no new
    // requests; those in flight finish, and its idle pooled connections are closed.
    enum Admin : int { active = 0, draining = 1, removed = 2 };
    std::atomic<int> admin{active};
    // Acquire: a worker that sees a removal sees what its reload did before it (the epoch bump
    // Worker::catch_up reads). Free on x86, one ordered load per pick elsewhere.
    bool takes_requests() const { return admin.load(std::memory_order_acquire) == active; }

    // Connections open or being opened, across all workers; never above pool_max when capped.
    std::atomic<int64_t> open{0};
    // Not chosen before this monotonic time (ms) after a failed connect, unless all are down.
    std::atomic<uint64_t> down_until_ms{0};
    // false after a failed connect, true again after a successful one (events fire on change).
    std::atomic<bool> up{true};
    std::atomic<uint64_t> transitions{0};  // up <-> down changes
    // Active health checks (the checker thread writes; selection reads).
    std::atomic<bool> healthy{true};
    std::atomic<uint64_t> health_checks_failed{0};
    // Passive checks: fed by every worker's request outcomes.
    CircuitBreaker breaker;

    // Envoy-style limits (backend_max_requests, backend_max_pending), counted only when set,
    // so the default request path touches no shared counter.
    std::atomic<int64_t> requests_in_flight{0};
    std::atomic<int64_t> pending{0};  // sessions waiting for a connection, attributed here
    // Connections held by upgraded http tunnels (WebSocket), across all workers: each keeps its
    // pool_max slot until the tunnel ends. Moves only when a tunnel starts or ends; read when a
    // request times out in the queue, to say why (session::waited_too_long).
    std::atomic<int64_t> tunnels{0};
    static bool take_below(std::atomic<int64_t> &v, int64_t limit) {
        int64_t cur = v.load(std::memory_order_relaxed);
        while (cur < limit) {
            if (v.compare_exchange_weak(cur, cur + 1, std::memory_order_relaxed)) return true;
        }
        return false;
    }

    // Takes one connection slot if fewer than cap are in use (cap 0 = unlimited).
    bool try_reserve(int64_t cap) {
        if (cap == 0) {
            open.fetch_add(1, std::memory_order_seq_cst);
            return true;
        }
        int64_t cur = open.load(std::memory_order_seq_cst);
        while (cur < cap) {
            if (open.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) return true;
        }
        return false;
    }

    void release() { open.fetch_sub(1, std::memory_order_seq_cst); }
};

}  // namespace pp
