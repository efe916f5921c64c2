// The breaker and health-check state machines, driven by a fake clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "core/circuit_breaker.h"

using pp::CircuitBreaker;
using pp::HealthState;
using State = CircuitBreaker::State;
using T = CircuitBreaker::Transition;

namespace {

CircuitBreaker::Config cfg(int failures, uint64_t open_ms, uint64_t max_open_ms, int probes) {
    CircuitBreaker::Config c;
    c.failures = failures;
    c.open_ms = open_ms;
    c.max_open_ms = max_open_ms;
    c.half_open_requests = probes;
    return c;
}

}  // namespace

TEST(CircuitBreaker, OpensAfterConsecutiveFailuresOnly) {
    CircuitBreaker b(cfg(3, 1000, 8000, 1));
    EXPECT_EQ(b.record(false, false, 0, 0), T::none);
    EXPECT_EQ(b.record(false, false, 0, 0), T::none);
    EXPECT_EQ(b.record(true, false, 0, 0), T::none);  // a success resets the count
    EXPECT_EQ(b.record(false, false, 0, 0), T::none);
    EXPECT_EQ(b.record(false, false, 0, 0), T::none);
    EXPECT_EQ(b.state(), State::closed);
    EXPECT_EQ(b.record(false, false, 0, 10), T::opened);
    EXPECT_EQ(b.state(), State::open);
    EXPECT_EQ(b.open_until_ms(), 1010u);
    EXPECT_EQ(b.record(false, false, 0, 20), T::none);  // late failures while open change nothing
    EXPECT_EQ(b.transitions(), 1u);
}

TEST(CircuitBreaker, OpenRefusesUntilItsTimeThenAdmitsProbes) {
    CircuitBreaker b(cfg(1, 1000, 8000, 2));
    EXPECT_EQ(b.record(false, false, 0, 0), T::opened);
    EXPECT_FALSE(b.admit(999).allowed);
    EXPECT_FALSE(b.available(999));
    EXPECT_TRUE(b.available(1000));
    CircuitBreaker::Admission a1 = b.admit(1000);
    EXPECT_TRUE(a1.allowed);
    EXPECT_TRUE(a1.probe);
    EXPECT_EQ(a1.transition, T::half_opened);  // reported once, to this caller
    EXPECT_EQ(b.state(), State::half_open);
    CircuitBreaker::Admission a2 = b.admit(1001);
    EXPECT_TRUE(a2.allowed && a2.probe);
    EXPECT_EQ(a2.transition, T::none);
    EXPECT_FALSE(b.admit(1002).allowed);  // half_open_requests = 2 in flight already
    EXPECT_FALSE(b.available(1002));
    EXPECT_EQ(b.record(true, true, a1.epoch, 1003), T::closed);  // a probe's success closes it
    EXPECT_EQ(b.state(), State::closed);
    EXPECT_EQ(b.record(true, true, a2.epoch, 1004), T::none);  // the other probe's late success: nothing
    EXPECT_TRUE(b.admit(1005).allowed);
    EXPECT_FALSE(b.admit(1005).probe);
}

TEST(CircuitBreaker, FailedProbeReopensForDoubleTheTimeUpToTheMax) {
    CircuitBreaker b(cfg(1, 1000, 3000, 1));
    uint64_t now = 0;
    EXPECT_EQ(b.record(false, false, 0, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 1000u);
    now = b.open_until_ms();
    CircuitBreaker::Admission p0 = b.admit(now);
    ASSERT_TRUE(p0.probe);
    EXPECT_EQ(b.record(false, true, p0.epoch, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 2000u);
    now = b.open_until_ms();
    CircuitBreaker::Admission p1 = b.admit(now);
    ASSERT_TRUE(p1.probe);
    EXPECT_EQ(b.record(false, true, p1.epoch, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 3000u);  // 4000 capped at breaker_max_open_time
    now = b.open_until_ms();
    CircuitBreaker::Admission p2 = b.admit(now);
    ASSERT_TRUE(p2.probe);
    EXPECT_EQ(b.record(true, true, p2.epoch, now), T::closed);
    // Closing forgets the doubling: the next opening lasts open_ms again.
    EXPECT_EQ(b.record(false, false, 0, now + 1), T::opened);
    EXPECT_EQ(b.current_open_ms(), 1000u);
    EXPECT_EQ(b.transitions(), 8u);  // 4 opens, 3 half-opens, 1 close
}

TEST(CircuitBreaker, NonProbeResultsDoNotDecideHalfOpen) {
    CircuitBreaker b(cfg(1, 100, 100, 1));
    b.record(false, false, 0, 0);
    ASSERT_TRUE(b.admit(100).probe);
    EXPECT_EQ(b.record(false, false, 0, 101), T::none);  // admitted before it opened
    EXPECT_EQ(b.record(true, false, 0, 101), T::none);
    EXPECT_EQ(b.state(), State::half_open);
}

// Two probes in one half-open period; A fails and re-opens it while B is in flight. B then ends
// in the next half-open period: neither its abandonment (its client left) nor its late result
// may touch that period, whose probes are its own.
TEST(CircuitBreaker, ProbeOfAnEarlierHalfOpenPeriodIsIgnored) {
    CircuitBreaker b(cfg(1, 100, 1000, 2));
    b.record(false, false, 0, 0);
    CircuitBreaker::Admission a = b.admit(100), bb = b.admit(100);
    ASSERT_TRUE(a.probe && bb.probe);
    EXPECT_EQ(b.record(false, true, a.epoch, 110), T::opened);  // A fails: open again, for 200 ms
    CircuitBreaker::Admission c = b.admit(310);  // the next half-open period
    ASSERT_TRUE(c.probe);
    b.release_probe(bb.epoch);  // B's client leaves now
    int admitted = 0;
    for (int i = 0; i < 5; i++) admitted += b.admit(311).allowed;
    EXPECT_EQ(admitted, 1);  // half_open_requests 2: C and one more
    EXPECT_EQ(b.record(true, true, bb.epoch, 312), T::none);  // B's late success decides nothing
    EXPECT_EQ(b.state(), State::half_open);
}

// Released more often than admitted (a caller's mistake): the count stays at 0, so no period
// admits more than half_open_requests probes.
TEST(CircuitBreaker, ReleasesNeverPushTheProbeCountBelowZero) {
    CircuitBreaker b(cfg(1, 100, 1000, 1));
    b.record(false, false, 0, 0);
    CircuitBreaker::Admission a = b.admit(100);
    ASSERT_TRUE(a.probe);
    b.release_probe(a.epoch);
    b.release_probe(a.epoch);
    int admitted = 0;
    for (int i = 0; i < 5; i++) admitted += b.admit(101).allowed;
    EXPECT_EQ(admitted, 1);
}

// Workers admit, release and fail probes at once while the breaker re-opens and half-opens
// under them (run under TSan too). Whatever the interleaving, once every probe has ended the
// next half-open period admits exactly half_open_requests probes: no slot leaked, none freed
// twice, no count below zero.
TEST(CircuitBreaker, ConcurrentProbesAcrossPeriodsKeepTheCountExact) {
    constexpr int kProbes = 3;
    CircuitBreaker b(cfg(1, 1, 1, kProbes));
    b.record(false, false, 0, 0);
    std::atomic<uint64_t> clock{10};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) {
        threads.emplace_back([&, t] {
            std::vector<CircuitBreaker::Admission> held;
            for (int i = 0; i < 20000; i++) {
                const uint64_t now = clock.load(std::memory_order_relaxed);
                CircuitBreaker::Admission a = b.admit(now);
                if (a.probe) held.push_back(a);
                if (held.size() >= 2 || (i % 7 == 0 && !held.empty())) {
                    CircuitBreaker::Admission p = held.front();
                    held.erase(held.begin());
                    if ((i + t) % 5 == 0) b.record(false, true, p.epoch, now);  // re-opens its period
                    else b.release_probe(p.epoch);
                }
                if (t == 0 && i % 3 == 0) clock.fetch_add(2, std::memory_order_relaxed);
            }
            for (const auto &p : held) b.release_probe(p.epoch);
        });
    }
    for (auto &th : threads) th.join();
    const uint64_t later = std::max(clock.load(), b.open_until_ms()) + 10;
    if (b.state() == State::closed) b.record(false, false, 0, later);
    int admitted = 0;
    const uint64_t next = b.open_until_ms() > later ? b.open_until_ms() : later;
    for (int i = 0; i < 2 * kProbes; i++) admitted += b.admit(next).allowed;
    EXPECT_EQ(b.state(), State::half_open);
    EXPECT_EQ(admitted, kProbes);
}

TEST(CircuitBreaker, ZeroFailuresMeansOff) {
    CircuitBreaker b(cfg(0, 100, 100, 1));
    for (int i = 0; i < 100; i++) EXPECT_EQ(b.record(false, false, 0, 0), T::none);
    EXPECT_TRUE(b.admit(0).allowed);
}

TEST(HealthState, FallThenRiseLikeHAProxy) {
    HealthState h(2, 3);  // rise 2, fall 3
    EXPECT_TRUE(h.healthy());
    EXPECT_EQ(h.record(false), HealthState::Transition::none);
    EXPECT_EQ(h.record(false), HealthState::Transition::none);
    EXPECT_EQ(h.record(true), HealthState::Transition::none);  // the streak restarts
    EXPECT_EQ(h.record(false), HealthState::Transition::none);
    EXPECT_EQ(h.record(false), HealthState::Transition::none);
    EXPECT_EQ(h.record(false), HealthState::Transition::went_down);
    EXPECT_FALSE(h.healthy());
    EXPECT_EQ(h.record(false), HealthState::Transition::none);
    EXPECT_EQ(h.record(true), HealthState::Transition::none);
    EXPECT_EQ(h.record(false), HealthState::Transition::none);  // restarts the rise
    EXPECT_EQ(h.record(true), HealthState::Transition::none);
    EXPECT_EQ(h.record(true), HealthState::Transition::went_up);
    EXPECT_TRUE(h.healthy());
}
