#include "core/circuit_breaker.h"

#include <algorithm>

namespace pp {

CircuitBreaker::Admission CircuitBreaker::admit(uint64_t now_ms) {
    Admission a;
    State s = state();
    if (s == State::closed) {
        a.allowed = true;
        return a;
    }
    if (s == State::open && now_ms < open_until_ms()) return a;
    std::lock_guard<std::mutex> lock(mu_);
    s = state();
    if (s == State::open) {
        if (now_ms < open_until_ms()) return a;
        state_.store(static_cast<int>(State::half_open), std::memory_order_release);
        next_epoch_locked();
        transitions_.fetch_add(1, std::memory_order_relaxed);
        a.transition = Transition::half_opened;
        s = State::half_open;
    }
    if (s == State::closed) {  // closed by another thread meanwhile
        a.allowed = true;
        return a;
    }
    // Under mu_ no transition can intervene; a release (lock-free) may: hence the CAS loop.
    uint64_t w = probes_.load(std::memory_order_relaxed);
    while (static_cast<int64_t>(count_of(w)) < cfg_.half_open_requests) {
        if (probes_.compare_exchange_weak(w, w + 1, std::memory_order_relaxed)) {
            a.allowed = true;
            a.probe = true;
            a.epoch = epoch_of(w);
            break;
        }
    }
    return a;
}

void CircuitBreaker::release_probe(uint32_t epoch) {
    uint64_t w = probes_.load(std::memory_order_relaxed);
    while (epoch_of(w) == epoch && count_of(w) > 0) {
        if (probes_.compare_exchange_weak(w, w - 1, std::memory_order_relaxed)) return;
    }
}

void CircuitBreaker::next_epoch_locked() {
    uint32_t e = epoch_of(probes_.load(std::memory_order_relaxed)) + 1;
    if (e == 0) e = 1;  // 0 is what a non-probe passes: never a period's epoch
    probes_.store(static_cast<uint64_t>(e) << 32, std::memory_order_relaxed);
}

bool CircuitBreaker::available(uint64_t now_ms) const {
    switch (state()) {
    case State::closed: return true;
    case State::open: return now_ms >= open_until_ms();
    case State::half_open:
        return static_cast<int64_t>(count_of(probes_.load(std::memory_order_relaxed))) < cfg_.half_open_requests;
    }
    return true;
}

CircuitBreaker::Transition CircuitBreaker::open_locked(uint64_t now_ms) {
    uint64_t dur = cfg_.open_ms;
    for (int i = 0; i < reopenings_ && dur < cfg_.max_open_ms; i++) dur *= 2;
    dur = std::min(dur, std::max(cfg_.max_open_ms, cfg_.open_ms));
    reopenings_++;
    last_open_ms_ = dur;
    open_until_.store(now_ms + dur, std::memory_order_relaxed);
    consecutive_failures_.store(0, std::memory_order_relaxed);
    next_epoch_locked();
    state_.store(static_cast<int>(State::open), std::memory_order_release);
    transitions_.fetch_add(1, std::memory_order_relaxed);
    return Transition::opened;
}

CircuitBreaker::Transition CircuitBreaker::record(bool success, bool probe, uint32_t epoch, uint64_t now_ms) {
    if (cfg_.failures <= 0) return Transition::none;
    State s = state();
    if (success) {
        if (s == State::closed) {
            // Written only while failures are being counted: steady success writes nothing.
            if (consecutive_failures_.load(std::memory_order_relaxed) != 0) {
                consecutive_failures_.store(0, std::memory_order_relaxed);
            }
            return Transition::none;
        }
        if (!probe) return Transition::none;  // a request admitted before it opened
        std::lock_guard<std::mutex> lock(mu_);
        if (state() != State::half_open || !current_probe_locked(epoch)) return Transition::none;
        state_.store(static_cast<int>(State::closed), std::memory_order_release);
        consecutive_failures_.store(0, std::memory_order_relaxed);
        next_epoch_locked();
        reopenings_ = 0;
        transitions_.fetch_add(1, std::memory_order_relaxed);
        return Transition::closed;
    }
    if (s == State::closed) {
        if (consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1 < cfg_.failures) return Transition::none;
        std::lock_guard<std::mutex> lock(mu_);
        if (state() != State::closed) return Transition::none;  // another thread opened it
        return open_locked(now_ms);
    }
    if (s == State::half_open && probe) {
        std::lock_guard<std::mutex> lock(mu_);
        if (state() != State::half_open || !current_probe_locked(epoch)) return Transition::none;
        return open_locked(now_ms);
    }
    return Transition::none;  // open already, or a late non-probe result
}

uint64_t CircuitBreaker::current_open_ms() const { return last_open_ms_.load(std::memory_order_relaxed); }

const char *breaker_state_name(CircuitBreaker::State s) {
    switch (s) {
    case CircuitBreaker::State::closed: return "closed";
    case CircuitBreaker::State::open: return "open";
    case CircuitBreaker::State::half_open: return "half-open";
    }
    return "?";
}

HealthState::Transition HealthState::record(bool ok) {
    if (ok == healthy_) {
        streak_ = 0;
        return Transition::none;
    }
    if (++streak_ < (healthy_ ? fall_ : rise_)) return Transition::none;
    healthy_ = !healthy_;
    streak_ = 0;
    return healthy_ ? Transition::went_up : Transition::went_down;
}

}  // namespace pp
