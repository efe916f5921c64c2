// The breaker and health-check state machines, driven by a fake clock.
#include <gtest/gtest.h>

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
    EXPECT_EQ(b.record(false, false, 0), T::none);
    EXPECT_EQ(b.record(false, false, 0), T::none);
    EXPECT_EQ(b.record(true, false, 0), T::none);  // a success resets the count
    EXPECT_EQ(b.record(false, false, 0), T::none);
    EXPECT_EQ(b.record(false, false, 0), T::none);
    EXPECT_EQ(b.state(), State::closed);
    EXPECT_EQ(b.record(false, false, 10), T::opened);
    EXPECT_EQ(b.state(), State::open);
    EXPECT_EQ(b.open_until_ms(), 1010u);
    EXPECT_EQ(b.record(false, false, 20), T::none);  // late failures while open change nothing
    EXPECT_EQ(b.transitions(), 1u);
}

TEST(CircuitBreaker, OpenRefusesUntilItsTimeThenAdmitsProbes) {
    CircuitBreaker b(cfg(1, 1000, 8000, 2));
    EXPECT_EQ(b.record(false, false, 0), T::opened);
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
    EXPECT_EQ(b.record(true, true, 1003), T::closed);  // a probe's success closes it
    EXPECT_EQ(b.state(), State::closed);
    EXPECT_EQ(b.record(true, true, 1004), T::none);  // the other probe's late success: nothing
    EXPECT_TRUE(b.admit(1005).allowed);
    EXPECT_FALSE(b.admit(1005).probe);
}

TEST(CircuitBreaker, FailedProbeReopensForDoubleTheTimeUpToTheMax) {
    CircuitBreaker b(cfg(1, 1000, 3000, 1));
    uint64_t now = 0;
    EXPECT_EQ(b.record(false, false, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 1000u);
    now = b.open_until_ms();
    ASSERT_TRUE(b.admit(now).probe);
    EXPECT_EQ(b.record(false, true, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 2000u);
    now = b.open_until_ms();
    ASSERT_TRUE(b.admit(now).probe);
    EXPECT_EQ(b.record(false, true, now), T::opened);
    EXPECT_EQ(b.current_open_ms(), 3000u);  // 4000 capped at breaker_max_open_time
    now = b.open_until_ms();
    ASSERT_TRUE(b.admit(now).probe);
    EXPECT_EQ(b.record(true, true, now), T::closed);
    // Closing forgets the doubling: the next opening lasts open_ms again.
    EXPECT_EQ(b.record(false, false, now + 1), T::opened);
    EXPECT_EQ(b.current_open_ms(), 1000u);
    EXPECT_EQ(b.transitions(), 8u);  // 4 opens, 3 half-opens, 1 close
}

TEST(CircuitBreaker, NonProbeResultsDoNotDecideHalfOpen) {
    CircuitBreaker b(cfg(1, 100, 100, 1));
    b.record(false, false, 0);
    ASSERT_TRUE(b.admit(100).probe);
    EXPECT_EQ(b.record(false, false, 101), T::none);  // admitted before it opened
    EXPECT_EQ(b.record(true, false, 101), T::none);
    EXPECT_EQ(b.state(), State::half_open);
}

TEST(CircuitBreaker, ZeroFailuresMeansOff) {
    CircuitBreaker b(cfg(0, 100, 100, 1));
    for (int i = 0; i < 100; i++) EXPECT_EQ(b.record(false, false, 0), T::none);
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
