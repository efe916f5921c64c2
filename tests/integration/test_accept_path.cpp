// The accept path through real sockets: workers below their share accept from the listener
// themselves (no hand-off), connections spread over the workers, and the acceptor's two tiers
// still hold when the workers are full: the overflow queue that a worker drains once it has
// room, and clean rejection at max_connections and when the overflow queue is full.
#include "proxy_fixture.h"

using namespace pp_test;

namespace {

pp_worker_stats worker(ProxyUnderTest &p, int i) {
    pp_worker_stats w{};
    w.struct_size = sizeof w;
    p.core().worker_stats(i, &w);
    return w;
}

// n clients one after the other, each echoed once, until every session has ended. With
// `each_ended`, a client connects only after the previous session ended (the workers are back
// in epoll_wait by then).
bool echo_in_turn(ProxyUnderTest &p, int n, bool each_ended) {
    for (int i = 0; i < n; i++) {
        {
            Client c(p.port());
            if (!c.echo("ping " + std::to_string(i))) return false;
        }
        if (each_ended && !wait_until([&] { return p.stats().sessions_finished == static_cast<uint64_t>(i + 1); })) {
            return false;
        }
    }
    return wait_until([&] { return p.stats().sessions_finished == static_cast<uint64_t>(n); });
}

}  // namespace

TEST(AcceptPath, WorkersAcceptForThemselves) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.add_backend(es.port());
    p.start();
    constexpr int kClients = 40;
    ASSERT_TRUE(echo_in_turn(p, kClients, false));
    EXPECT_EQ(p.stats().connections_accepted, static_cast<uint64_t>(kClients));
    // Every connection was accepted by the worker that served it: none went through the
    // acceptor thread's hand-off.
    EXPECT_EQ(worker(p, 0).accepted + worker(p, 1).accepted, static_cast<uint64_t>(kClients));
    EXPECT_EQ(worker(p, 0).accepted, worker(p, 0).sessions_started);
    EXPECT_EQ(worker(p, 1).accepted, worker(p, 1).sessions_started);
}

// One connection wakes one worker, not every worker that polls the listener (the thundering
// herd: the others would each find nothing to accept). Sequential clients, each after the last
// session ended, so that the workers wait in epoll each time one arrives; a worker still busy
// at that moment may look and find nothing, hence the margin.
TEST(AcceptPath, OneConnectionWakesOneWorker) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.add_backend(es.port());
    p.start();
    constexpr int kClients = 40;
    ASSERT_TRUE(echo_in_turn(p, kClients, true));  // both workers in epoll_wait as each connects
    const uint64_t empty = worker(p, 0).accepts_empty + worker(p, 1).accepts_empty;
    // Seen without EPOLLEXCLUSIVE: 7 to 17 of 40; with it, 0.
    EXPECT_LE(empty, static_cast<uint64_t>(kClients / 8)) << "wake-ups that found no connection";
    EXPECT_EQ(worker(p, 0).accepted + worker(p, 1).accepted, static_cast<uint64_t>(kClients));
}

TEST(AcceptPath, ConnectionsSpreadOverWorkers) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("pool_max", "100");
    p.add_backend(es.port());
    p.start();
    constexpr int kClients = 40;
    auto held = held_clients(p.port(), kClients);
    ASSERT_EQ(held.size(), static_cast<size_t>(kClients));
    ASSERT_TRUE(wait_until([&] { return p.stats().connections_active == kClients; }));
    const uint64_t a = worker(p, 0).sessions_active, b = worker(p, 1).sessions_active;
    EXPECT_EQ(a + b, static_cast<uint64_t>(kClients));
    // Neither worker takes much more than its share of the idle-but-open sessions.
    EXPECT_GE(a, 10u) << a << " and " << b;
    EXPECT_GE(b, 10u) << a << " and " << b;
}

TEST(AcceptPath, RejectsAtMaxConnections) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("max_connections", "3");
    p.add_backend(es.port());
    p.start();
    auto held = held_clients(p.port(), 3);
    ASSERT_EQ(held.size(), 3u);
    Client fourth(p.port());
    ASSERT_TRUE(fourth.ok());
    EXPECT_TRUE(fourth.closed_by_peer());  // accepted and closed at once, never served
    ASSERT_TRUE(wait_until([&] { return p.stats().connections_rejected_max == 1; }));
    held[0]->close();
    ASSERT_TRUE(wait_until([&] { return p.stats().connections_active == 2; }));
    Client again(p.port());
    EXPECT_TRUE(again.echo("room again"));
    EXPECT_EQ(p.stats().connections_rejected_max, 1u);
}

TEST(AcceptPath, OverflowQueueThenRejection) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("worker_max_sessions", "2");
    p.set("overflow_max", "1");
    p.set("queue_timeout", "60s");  // a bound: the queued connection waits for a test step
    p.add_backend(es.port());
    p.start();
    Client a(p.port()), b(p.port());
    ASSERT_TRUE(a.echo("a"));
    ASSERT_TRUE(b.echo("b"));
    // The worker is full: the third waits in the overflow queue, unserved, the fourth finds
    // the queue full and is closed.
    Client c(p.port());
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE(wait_until([&] { return p.stats().connections_active == 3; }));
    Client d(p.port());
    EXPECT_TRUE(d.closed_by_peer());
    EXPECT_EQ(p.stats().connections_rejected_overflow, 1u);
    EXPECT_EQ(worker(p, 0).sessions_active, 2u);
    // Room on the worker: it takes the queued connection from the overflow queue.
    a.close();
    EXPECT_TRUE(c.echo("c, after a wait"));
    EXPECT_GE(worker(p, 0).overflow_stolen, 1u);
}

// A burst larger than the workers' share of half capacity goes to the overflow queue; the
// acceptor tells every worker with room, not only the least loaded: none of the admitted
// connections waits for queue_timeout while a worker could serve it.
TEST(AcceptPath, OverflowBurstIsDrainedByEveryWorkerWithRoom) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("max_connections", "40");  // a worker's capacity: 20
    p.set("pool_max", "100");
    p.set("queue_timeout", "2s");
    p.add_backend(es.port());
    p.start();
    constexpr int kClients = 40;
    std::vector<std::unique_ptr<Client>> burst;
    for (int i = 0; i < kClients; i++) burst.push_back(std::make_unique<Client>(p.port()));
    for (int i = 0; i < kClients; i++) {
        EXPECT_TRUE(burst[static_cast<size_t>(i)]->echo("burst " + std::to_string(i))) << "client " << i;
    }
    EXPECT_EQ(p.stats().connections_rejected_overflow, 0u);
    EXPECT_EQ(worker(p, 0).sessions_active + worker(p, 1).sessions_active, static_cast<uint64_t>(kClients));
}
