// The acceptor's worker choice, without sockets.
#include <gtest/gtest.h>

#include "core/balancer.h"

using pp::Balancer;
using pp::WorkerLoad;

namespace {
std::vector<WorkerLoad> loads(std::initializer_list<int64_t> sessions) {
    std::vector<WorkerLoad> v;
    for (int64_t s : sessions) v.push_back({s, 0});
    return v;
}
}  // namespace

TEST(Balancer, RoundRobinAmongWorkersBelowHalf) {
    Balancer b(3, 10, 8, 1000);
    auto l = loads({0, 0, 0});
    EXPECT_EQ(b.pick(l, 0, 0).worker, 0);
    EXPECT_EQ(b.pick(l, 0, 0).worker, 1);
    EXPECT_EQ(b.pick(l, 0, 0).worker, 2);
    EXPECT_EQ(b.pick(l, 0, 0).worker, 0);
}

// A few long-lived busy sessions load one worker while the counts stay even: new sessions go
// to the worker whose loop has time, until the two are within kBusySkew of each other.
TEST(Balancer, PassesOverAWorkerFarBusierThanTheLeastBusy) {
    Balancer b(2, 100, 8, 1000);
    std::vector<WorkerLoad> l = {{10, 0, 900}, {10, 0, 400}};
    for (int i = 0; i < 4; i++) EXPECT_EQ(b.pick(l, 0, 0).worker, 1);
    l[0].busy_permille = 400 + Balancer::kBusySkew;  // close enough: round robin again
    EXPECT_EQ(b.pick(l, 0, 0).worker, 0);
    EXPECT_EQ(b.pick(l, 0, 0).worker, 1);
    // The less busy worker at half capacity does not count: the busy one still takes sessions.
    std::vector<WorkerLoad> full = {{10, 0, 900}, {50, 0, 100}};
    EXPECT_EQ(b.pick(full, 0, 0).worker, 0);
}

TEST(Balancer, SkipsWorkersAtOrAboveHalfCapacity) {
    Balancer b(3, 10, 8, 1000);
    auto l = loads({5, 4, 9});  // capacity 10: half is 5, so only worker 1 qualifies
    for (int i = 0; i < 5; i++) {
        Balancer::Decision d = b.pick(l, 0, 0);
        EXPECT_EQ(d.kind, Balancer::Kind::worker);
        EXPECT_EQ(d.worker, 1);
    }
}

TEST(Balancer, QueuedHandoffsCountAsLoad) {
    Balancer b(2, 10, 8, 1000);
    std::vector<WorkerLoad> l = {{1, 4}, {2, 0}};  // worker 0: 1 active + 4 queued = 5
    EXPECT_EQ(b.pick(l, 0, 0).worker, 1);
    EXPECT_EQ(b.pick(l, 0, 0).worker, 1);
}

TEST(Balancer, OverflowWhenAllAboveHalfAndWakesLeastLoadedWithRoom) {
    Balancer b(3, 10, 8, 1000);
    auto l = loads({7, 6, 10});
    Balancer::Decision d = b.pick(l, 0, 0);
    EXPECT_EQ(d.kind, Balancer::Kind::overflow);
    EXPECT_EQ(d.worker, 1);  // the least loaded worker that still has room
}

TEST(Balancer, OverflowWithNoWorkerToWakeWhenAllFull) {
    Balancer b(2, 4, 8, 1000);
    auto l = loads({4, 5});
    Balancer::Decision d = b.pick(l, 0, 3);
    EXPECT_EQ(d.kind, Balancer::Kind::overflow);
    EXPECT_EQ(d.worker, -1);
    EXPECT_FALSE(b.has_spare(l[0]));
    EXPECT_TRUE(b.has_spare({3, 0}));
}

TEST(Balancer, RejectsWhenOverflowFull) {
    Balancer b(2, 4, 8, 1000);
    auto l = loads({3, 3});
    EXPECT_EQ(b.pick(l, 0, 8).kind, Balancer::Kind::reject_overflow_full);
    EXPECT_EQ(b.pick(l, 0, 7).kind, Balancer::Kind::overflow);
}

TEST(Balancer, RejectsAtMaxConnectionsEvenWithIdleWorkers) {
    Balancer b(2, 100, 8, 50);
    auto l = loads({0, 0});
    EXPECT_EQ(b.pick(l, 50, 0).kind, Balancer::Kind::reject_max_connections);
    EXPECT_EQ(b.pick(l, 49, 0).kind, Balancer::Kind::worker);
}

TEST(Balancer, CapacityOfOneTakesOnlyIdleWorkers) {
    Balancer b(2, 1, 4, 100);
    EXPECT_EQ(b.pick(loads({1, 0}), 0, 0).worker, 1);
    EXPECT_EQ(b.pick(loads({1, 1}), 0, 0).kind, Balancer::Kind::overflow);
}

TEST(Balancer, SpreadsEvenlyUnderUniformLoad) {
    Balancer b(4, 1000, 8, 100000);
    std::vector<WorkerLoad> l(4);
    for (int i = 0; i < 400; i++) l[static_cast<size_t>(b.pick(l, 0, 0).worker)].sessions++;
    for (const WorkerLoad &w : l) EXPECT_EQ(w.sessions, 100);
}

// Tier 0: which workers accept from the listener themselves.
TEST(Balancer, MayAcceptBelowHalfCapacityOnly) {
    Balancer b(1, 10, 8, 1000);
    EXPECT_TRUE(b.may_accept(loads({0}), 0));
    EXPECT_TRUE(b.may_accept(loads({4}), 0));
    EXPECT_FALSE(b.may_accept(loads({5}), 0));  // half of 10: the acceptor's tiers take over
    std::vector<WorkerLoad> queued = {{3, 2, 0}};  // hand-offs not yet taken count too
    EXPECT_FALSE(b.may_accept(queued, 0));
}

TEST(Balancer, MayAcceptUpToItsShare) {
    Balancer b(2, 1000, 8, 100000);
    // Mean 10, slack kShareSlack: up to 14.
    EXPECT_TRUE(b.may_accept(loads({14, 6}), 0));
    EXPECT_FALSE(b.may_accept(loads({15, 5}), 0));
    EXPECT_TRUE(b.may_accept(loads({15, 5}), 1));
    // Mean 200: a quarter of it, 50, is the slack.
    EXPECT_TRUE(b.may_accept(loads({250, 150}), 0));
    EXPECT_FALSE(b.may_accept(loads({252, 148}), 0));
    // Somebody always may: the least loaded worker is never above the mean.
    for (int64_t a = 0; a < 60; a += 7) {
        for (int64_t c = 0; c < 60; c += 5) {
            auto l = loads({a, c});
            EXPECT_TRUE(b.may_accept(l, 0) || b.may_accept(l, 1)) << a << " " << c;
        }
    }
}

TEST(Balancer, MayAcceptNotWhenFarBusierThanTheLeastBusy) {
    Balancer b(2, 100, 8, 1000);
    std::vector<WorkerLoad> l = {{10, 0, 900}, {10, 0, 400}};
    EXPECT_FALSE(b.may_accept(l, 0));
    EXPECT_TRUE(b.may_accept(l, 1));
    l[0].busy_permille = 400 + Balancer::kBusySkew;
    EXPECT_TRUE(b.may_accept(l, 0));
    // A less busy worker at half capacity does not count.
    std::vector<WorkerLoad> full = {{10, 0, 900}, {50, 0, 100}};
    EXPECT_TRUE(b.may_accept(full, 0));
    EXPECT_FALSE(b.may_accept(full, 1));
}
