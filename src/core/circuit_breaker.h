// A backend's circuit breaker, shared by every worker (Envoy's outlier ejection and Hystrix's
// breaker in one): closed -> open after `failures` consecutive failures; open for open_ms,
// doubling on each re-open up to max_open_ms; then half-open, admitting `half_open_requests`
// probes at once: a probe's success closes it, a failure opens it again.
//
// The per-request path takes no lock and, while closed and healthy, writes nothing shared:
// admit() reads one atomic, and a success only writes when failures were being counted.
// Transitions take the mutex; each is returned exactly once, to the caller that made it, so
// events fire once. Time is passed in (a monotonic ms clock), so tests drive it.
//
// Each transition starts a new epoch, and a probe belongs to the half-open period (epoch) that
// admitted it: a probe still in flight when its period ended (another probe failed and it
// re-opened) may neither give its slot back to, nor decide, a later period. The epoch and the
// count of probes in flight share one atomic word, so a release checks and decrements both in
// one compare-exchange, without the mutex.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>

namespace pp {

class CircuitBreaker {
public:
    enum class State : int { closed = 0, open = 1, half_open = 2 };
    enum class Transition { none, opened, half_opened, closed };

    struct Config {
        int failures = 5;  // 0: the breaker never opens
        uint64_t open_ms = 5000;
        uint64_t max_open_ms = 60000;
        int half_open_requests = 1;
    };

    struct Admission {
        bool allowed = false;
        bool probe = false;  // a half-open probe: report its outcome with probe = true
        uint32_t epoch = 0;  // a probe's half-open period: pass it to release_probe / record
        Transition transition = Transition::none;  // open -> half-open happened in this call
    };

    CircuitBreaker() = default;
    explicit CircuitBreaker(const Config &c) : cfg_(c) {}
    void configure(const Config &c) { cfg_ = c; }  // before any use

    // May a request go to the backend at now_ms?
    Admission admit(uint64_t now_ms);
    // Would admit() allow a request (without reserving a probe)? For choosing among backends.
    bool available(uint64_t now_ms) const;
    // An admitted probe that was not sent after all (its backend had no free connection slot).
    // A probe of an earlier period (`epoch` is not the current one) changes nothing, and the
    // count never goes below 0.
    void release_probe(uint32_t epoch);
    // The outcome of a request (or connect). `probe` and `epoch` as admit() said (a non-probe
    // passes 0); a probe of an earlier half-open period counts as a late non-probe result.
    Transition record(bool success, bool probe, uint32_t epoch, uint64_t now_ms);

    State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
    uint64_t open_until_ms() const { return open_until_.load(std::memory_order_relaxed); }
    uint64_t current_open_ms() const;  // how long the last opening lasts
    uint64_t transitions() const { return transitions_.load(std::memory_order_relaxed); }

private:
    Transition open_locked(uint64_t now_ms);
    // A new epoch with no probe in flight (every transition; under mu_).
    void next_epoch_locked();
    static uint32_t epoch_of(uint64_t w) { return static_cast<uint32_t>(w >> 32); }
    static uint32_t count_of(uint64_t w) { return static_cast<uint32_t>(w); }
    // A probe of the half-open period now running (under mu_: no transition can intervene).
    bool current_probe_locked(uint32_t epoch) const {
        return epoch_of(probes_.load(std::memory_order_relaxed)) == epoch;
    }

    Config cfg_;
    std::mutex mu_;
    std::atomic<int> state_{static_cast<int>(State::closed)};
    std::atomic<int> consecutive_failures_{0};
    std::atomic<uint64_t> open_until_{0};
    std::atomic<uint64_t> probes_{0};  // epoch << 32 | probes in flight in that epoch
    std::atomic<uint64_t> transitions_{0};
    std::atomic<uint64_t> last_open_ms_{0};
    int reopenings_ = 0;  // opens since it last closed: the open time doubles with each
};

const char *breaker_state_name(CircuitBreaker::State s);

// Active health: HAProxy's rise/fall. A backend starts healthy; `fall` consecutive failed
// checks make it unhealthy, `rise` consecutive good ones healthy again.
class HealthState {
public:
    enum class Transition { none, went_down, went_up };
    HealthState(int rise, int fall, bool healthy = true) : rise_(rise), fall_(fall), healthy_(healthy) {}
    Transition record(bool ok);
    bool healthy() const { return healthy_; }

private:
    int rise_, fall_;
    bool healthy_;
    int streak_ = 0;  // consecutive results against the current state
};

}  // namespace pp
