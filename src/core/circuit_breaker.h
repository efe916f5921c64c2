// A backend's circuit breaker, shared by every worker (Envoy's outlier ejection and Hystrix's
// breaker in one): closed -> open after `failures` consecutive failures; open for open_ms,
// doubling on each re-open up to max_open_ms; then half-open, admitting `half_open_requests`
// probes at once: a probe's success closes it, a failure opens it again.
//
// The per-request path takes no lock and, while closed and healthy, writes nothing shared:
// admit() reads one atomic, and a success only writes when failures were being counted.
// Transitions take the mutex; each is returned exactly once, to the caller that made it, so
// events fire once. Time is passed in (a monotonic ms clock), so tests drive it.
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
    void release_probe() { probes_in_flight_.fetch_sub(1, std::memory_order_relaxed); }
    // The outcome of a request (or connect). `probe` as admit() said.
    Transition record(bool success, bool probe, uint64_t now_ms);

    State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
    uint64_t open_until_ms() const { return open_until_.load(std::memory_order_relaxed); }
    uint64_t current_open_ms() const;  // how long the last opening lasts
    uint64_t transitions() const { return transitions_.load(std::memory_order_relaxed); }

private:
    Transition open_locked(uint64_t now_ms);

    Config cfg_;
    std::mutex mu_;
    std::atomic<int> state_{static_cast<int>(State::closed)};
    std::atomic<int> consecutive_failures_{0};
    std::atomic<uint64_t> open_until_{0};
    std::atomic<int> probes_in_flight_{0};
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
    HealthState(int rise, int fall) : rise_(rise), fall_(fall) {}
    Transition record(bool ok);
    bool healthy() const { return healthy_; }

private:
    int rise_, fall_;
    bool healthy_ = true;
    int streak_ = 0;  // consecutive results against the current state
};

}  // namespace pp
