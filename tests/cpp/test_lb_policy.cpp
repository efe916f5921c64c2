// Backend selection policies.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "core/lb_policy.h"

using pp::Backend;
using pp::LbPolicy;
using pp::LoadBalancer;

namespace {
struct Fixture {
    std::vector<std::unique_ptr<Backend>> owned;
    std::vector<Backend *> ptrs;
    explicit Fixture(std::initializer_list<int> weights) {
        int id = 0;
        for (int w : weights) {
            auto b = std::make_unique<Backend>();
            b->id = id++;
            b->weight = w;
            ptrs.push_back(b.get());
            owned.push_back(std::move(b));
        }
    }
    std::vector<bool> none() const { return std::vector<bool>(ptrs.size(), false); }
};
}  // namespace

TEST(LbPolicy, SmoothWeightedRoundRobinMatchesNginxSequence) {
    Fixture f({5, 1, 1});
    LoadBalancer lb(LbPolicy::round_robin, f.ptrs, 1);
    std::string seq;
    for (int i = 0; i < 7; i++) seq += static_cast<char>('a' + lb.pick(f.none(), 0));
    EXPECT_EQ(seq, "aabacaa");  // nginx's smooth WRR: weight 5 spread, not "aaaaabc"
}

TEST(LbPolicy, RoundRobinHonoursWeightsOverManyPicks) {
    Fixture f({3, 1});
    LoadBalancer lb(LbPolicy::round_robin, f.ptrs, 1);
    int count[2] = {0, 0};
    for (int i = 0; i < 400; i++) count[lb.pick(f.none(), 0)]++;
    EXPECT_EQ(count[0], 300);
    EXPECT_EQ(count[1], 100);
}

TEST(LbPolicy, ExcludedBackendsAreNeverPicked) {
    for (LbPolicy p : {LbPolicy::round_robin, LbPolicy::least_conn, LbPolicy::random}) {
        Fixture f({1, 1, 1});
        LoadBalancer lb(p, f.ptrs, 7);
        std::vector<bool> ex = {true, false, true};
        for (int i = 0; i < 50; i++) EXPECT_EQ(lb.pick(ex, 0), 1);
        std::vector<bool> all = {true, true, true};
        EXPECT_EQ(lb.pick(all, 0), -1);
    }
}

TEST(LbPolicy, DownBackendsSkippedUntilAllAreDown) {
    Fixture f({1, 1});
    LoadBalancer lb(LbPolicy::round_robin, f.ptrs, 1);
    f.ptrs[0]->down_until_ms = 1000;
    for (int i = 0; i < 10; i++) EXPECT_EQ(lb.pick(f.none(), 500), 1);
    // Once the hold-off has passed it is a candidate again.
    std::map<int, int> seen;
    for (int i = 0; i < 10; i++) seen[lb.pick(f.none(), 1000)]++;
    EXPECT_EQ(seen[0], 5);
    // Panic mode: every backend down still picks one rather than refusing.
    f.ptrs[1]->down_until_ms = 5000;
    f.ptrs[0]->down_until_ms = 5000;
    EXPECT_GE(lb.pick(f.none(), 600), 0);
}

TEST(LbPolicy, LeastConnPrefersFewerOutstandingAndNeverSameTwice) {
    Fixture f({1, 1});
    LoadBalancer lb(LbPolicy::least_conn, f.ptrs, 3);
    for (int i = 0; i < 10; i++) lb.started(0);
    for (int i = 0; i < 2; i++) lb.started(1);
    // With two backends the two choices are always both of them, so the lighter one wins.
    for (int i = 0; i < 50; i++) EXPECT_EQ(lb.pick(f.none(), 0), 1);
}

TEST(LbPolicy, LeastConnWeighsOutstandingByWeight) {
    Fixture f({4, 1});
    LoadBalancer lb(LbPolicy::least_conn, f.ptrs, 3);
    for (int i = 0; i < 6; i++) lb.started(0);  // 6 per 4 units of weight: lighter than 2 per 1
    for (int i = 0; i < 2; i++) lb.started(1);
    for (int i = 0; i < 20; i++) EXPECT_EQ(lb.pick(f.none(), 0), 0);
}

TEST(LbPolicy, LeastConnAmongManySkipsTheBusiest) {
    Fixture f({1, 1, 1, 1});
    LoadBalancer lb(LbPolicy::least_conn, f.ptrs, 11);
    for (int i = 0; i < 100; i++) lb.started(2);
    // P2C never picks the busiest unless both choices are it, which distinct choices forbid.
    for (int i = 0; i < 200; i++) EXPECT_NE(lb.pick(f.none(), 0), 2);
}

TEST(LbPolicy, LeastConnFollowsFinishedSessions) {
    Fixture f({1, 1});
    LoadBalancer lb(LbPolicy::least_conn, f.ptrs, 5);
    for (int i = 0; i < 3; i++) lb.started(0);
    lb.started(1);
    EXPECT_EQ(lb.pick(f.none(), 0), 1);
    for (int i = 0; i < 3; i++) lb.finished(0);
    EXPECT_EQ(lb.in_flight(0), 0);
    EXPECT_EQ(lb.pick(f.none(), 0), 0);
}

TEST(LbPolicy, RandomReachesEveryBackendInProportion) {
    Fixture f({1, 3});
    LoadBalancer lb(LbPolicy::random, f.ptrs, 42);
    int count[2] = {0, 0};
    for (int i = 0; i < 4000; i++) count[lb.pick(f.none(), 0)]++;
    EXPECT_GT(count[0], 700);   // expected 1000
    EXPECT_LT(count[0], 1300);
    EXPECT_EQ(count[0] + count[1], 4000);
}
