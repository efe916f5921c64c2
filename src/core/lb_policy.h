// Backend selection. One LoadBalancer per worker, its state the worker's own: least_conn weighs
// this worker's own in-flight requests per backend (as Envoy's per-worker least_request does),
// so choosing costs no shared atomic. The inputs shared across workers are the down marks.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "core/backend.h"
#include "core/settings.h"

namespace pp {

class LoadBalancer {
public:
    LoadBalancer(LbPolicy policy, const std::vector<Backend *> &backends, uint64_t seed);
    // A backend added at runtime (its index is the next one).
    void add_backend(Backend *b);
    size_t size() const { return backends_.size(); }

    // Why pick() found no backend.
    enum class NoBackend { none, excluded, unhealthy, breaker_open };

    // Picks a backend whose bit in `excluded` is clear, that active checks hold healthy and
    // whose breaker admits requests, preferring those not marked down (a recent connect
    // failure) at now_ms; when every such candidate is down, picks among them anyway (panic
    // mode: the down mark is a guess, the health and breaker states are not). Returns -1 when
    // none is left, and says why in *why when why is not null.
    int pick(const std::vector<bool> &excluded, uint64_t now_ms, NoBackend *why = nullptr) {
        return pick(policy_, excluded, now_ms, why);
    }
    // The same with another policy (a backend group's own lb).
    int pick(LbPolicy policy, const std::vector<bool> &excluded, uint64_t now_ms, NoBackend *why = nullptr);
    // A session of this worker started / stopped using backend b (least_conn's input).
    void started(int b) { in_flight_[static_cast<size_t>(b)]++; }
    void finished(int b) { in_flight_[static_cast<size_t>(b)]--; }
    int64_t in_flight(int b) const { return in_flight_[static_cast<size_t>(b)]; }

private:
    int pick_round_robin(const std::vector<bool> &eligible);
    int pick_least_conn(const std::vector<bool> &eligible);
    int pick_random(const std::vector<bool> &eligible);

    LbPolicy policy_;
    std::vector<Backend *> backends_;
    std::vector<int64_t> current_weight_;  // smooth weighted round robin state
    std::vector<int64_t> in_flight_;
    std::mt19937_64 rng_;
    // Scratch space reused by every pick, so choosing a backend allocates nothing.
    std::vector<bool> eligible_;
    std::vector<int> candidates_;
};

}  // namespace pp
