#include "core/lb_policy.h"

namespace pp {

LoadBalancer::LoadBalancer(LbPolicy policy, const std::vector<Backend *> &backends, uint64_t seed)
    : policy_(policy), backends_(backends), current_weight_(backends.size(), 0), in_flight_(backends.size(), 0), rng_(seed),
      eligible_(backends.size(), false) {
    candidates_.reserve(backends.size());
}

void LoadBalancer::add_backend(Backend *b) {
    backends_.push_back(b);
    current_weight_.push_back(0);
    in_flight_.push_back(0);
    eligible_.push_back(false);
    candidates_.reserve(backends_.size());
}

int LoadBalancer::pick(LbPolicy policy, const std::vector<bool> &excluded, uint64_t now_ms, NoBackend *why) {
    const size_t n = backends_.size();
    std::vector<bool> &eligible = eligible_;
    eligible.assign(n, false);
    bool any = false, any_up = false, saw_unhealthy = false, saw_open = false;
    for (size_t i = 0; i < n; i++) {
        if (excluded[i]) continue;
        const Backend &b = *backends_[i];
        if (!b.takes_requests()) continue;  // draining or removed: not even in panic mode
        if (!b.healthy.load(std::memory_order_relaxed)) {
            saw_unhealthy = true;
            continue;
        }
        if (!b.breaker.available(now_ms)) {
            saw_open = true;
            continue;
        }
        any = true;
        if (b.down_until_ms.load(std::memory_order_relaxed) <= now_ms) {
            eligible[i] = true;
            any_up = true;
        }
    }
    if (!any) {
        if (why) *why = saw_open ? NoBackend::breaker_open : saw_unhealthy ? NoBackend::unhealthy : NoBackend::excluded;
        return -1;
    }
    if (!any_up) {  // panic mode: every candidate recently failed to connect; try them anyway
        for (size_t i = 0; i < n; i++) {
            const Backend &b = *backends_[i];
            eligible[i] = !excluded[i] && b.takes_requests() && b.healthy.load(std::memory_order_relaxed) &&
                          b.breaker.available(now_ms);
        }
    }
    switch (policy) {
    case LbPolicy::least_conn: return pick_least_conn(eligible);
    case LbPolicy::random: return pick_random(eligible);
    case LbPolicy::round_robin: break;
    }
    return pick_round_robin(eligible);
}

// nginx's smooth weighted round robin: spreads a backend's turns evenly instead of in bursts.
int LoadBalancer::pick_round_robin(const std::vector<bool> &eligible) {
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < backends_.size(); i++) {
        if (!eligible[i]) continue;
        current_weight_[i] += backends_[i]->weight.load(std::memory_order_relaxed);
        total += backends_[i]->weight.load(std::memory_order_relaxed);
        if (best < 0 || current_weight_[i] > current_weight_[best]) best = static_cast<int>(i);
    }
    current_weight_[best] -= total;
    return best;
}

// Power of two choices over this worker's in-flight counts, weighted: two distinct candidates,
// the one with fewer outstanding sessions per unit of weight wins.
int LoadBalancer::pick_least_conn(const std::vector<bool> &eligible) {
    std::vector<int> &cands = candidates_;
    cands.clear();
    for (size_t i = 0; i < backends_.size(); i++) {
        if (eligible[i]) cands.push_back(static_cast<int>(i));
    }
    if (cands.size() == 1) return cands[0];
    std::uniform_int_distribution<size_t> first(0, cands.size() - 1);
    std::uniform_int_distribution<size_t> second(0, cands.size() - 2);
    size_t a = first(rng_);
    size_t b = second(rng_);
    if (b >= a) b++;  // never the same backend twice
    const Backend *ba = backends_[cands[a]];
    const Backend *bb = backends_[cands[b]];
    int64_t la = in_flight_[static_cast<size_t>(cands[a])] * bb->weight.load(std::memory_order_relaxed);
    int64_t lb = in_flight_[static_cast<size_t>(cands[b])] * ba->weight.load(std::memory_order_relaxed);
    return la <= lb ? cands[a] : cands[b];
}

int LoadBalancer::pick_random(const std::vector<bool> &eligible) {
    int64_t total = 0;
    for (size_t i = 0; i < backends_.size(); i++) {
        if (eligible[i]) total += backends_[i]->weight.load(std::memory_order_relaxed);
    }
    std::uniform_int_distribution<int64_t> dist(0, total - 1);
    int64_t r = dist(rng_);
    for (size_t i = 0; i < backends_.size(); i++) {
        if (!eligible[i]) continue;
        if (r < backends_[i]->weight.load(std::memory_order_relaxed)) return static_cast<int>(i);
        r -= backends_[i]->weight.load(std::memory_order_relaxed);
    }
    for (size_t i = backends_.size(); i-- > 0;) {  // a weight changed between the two reads
        if (eligible[i]) return static_cast<int>(i);
    }
    return -1;
}

}  // namespace pp
