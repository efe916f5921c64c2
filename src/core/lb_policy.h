// Backend selection. One LoadBalancer per worker (its state is the worker's own); the inputs
// shared across workers are the backends' atomics.
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

    // Picks a backend whose bit in `excluded` is clear, preferring those not marked down at
    // now_ms; when every candidate is down, picks among them anyway (panic mode) rather than
    // refusing. Returns -1 when every backend is excluded.
    int pick(const std::vector<bool> &excluded, uint64_t now_ms);

private:
    int pick_round_robin(const std::vector<bool> &eligible);
    int pick_least_conn(const std::vector<bool> &eligible);
    int pick_random(const std::vector<bool> &eligible);

    LbPolicy policy_;
    std::vector<Backend *> backends_;
    std::vector<int64_t> current_weight_;  // smooth weighted round robin state
    std::mt19937_64 rng_;
    // Scratch space reused by every pick, so choosing a backend allocates nothing.
    std::vector<bool> eligible_;
    std::vector<int> candidates_;
};

}  // namespace pp
