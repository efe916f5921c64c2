// Pool caps, waiting, timeouts and retirement, through a real core Proxy on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "proxy_fixture.h"

using namespace pp_test;

TEST(BackendCap, TryReserveNeverExceedsCapUnderContention) {
    pp::Backend b;
    std::atomic<int> inside{0}, peak{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; t++) {
        threads.emplace_back([&] {
            for (int i = 0; i < 20000; i++) {
                if (!b.try_reserve(3)) continue;
                int now = ++inside;
                int p = peak.load();
                while (now > p && !peak.compare_exchange_weak(p, now)) {
                }
                --inside;
                b.release();
            }
        });
    }
    for (auto &t : threads) t.join();
    EXPECT_LE(peak.load(), 3);
    EXPECT_GE(peak.load(), 1);
    EXPECT_EQ(b.open.load(), 0);
    EXPECT_TRUE(b.try_reserve(0));  // cap 0: unlimited
}

// The cap holds across workers, and a slot freed on one worker wakes a waiter on the other.
TEST(Pool, CapHoldsAndSlotFreedOnOtherWorkerServesWaiter) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("pool_max", "2");
    p.set("queue_timeout", "30s");
    // The acceptor's round robin places the clients (workers that accept for themselves do
    // not say which one wins a connection).
    p.set("exact_balance", "on");
    p.add_backend(es.port());
    p.start();

    // One after another, so the round robin is a->w0, b->w1, c->w0 and a, b hold both slots
    // (a takes worker 0's start probe connection).
    Client a(p.port());
    ASSERT_TRUE(a.echo("a"));
    Client b(p.port());
    ASSERT_TRUE(b.echo("b"));
    Client c(p.port());
    ASSERT_TRUE(c.send("c"));
    ASSERT_TRUE(wait_until([&] { return p.stats().queue_waiting == 1; }));
    EXPECT_EQ(echo_server_open_now(es.s), 2);

    b.close();  // frees a slot on worker 1; the waiter is on worker 0
    EXPECT_EQ(c.recv(1), "c");
    EXPECT_TRUE(c.echo("more"));
    EXPECT_EQ(p.stats().queue_waits, 1u);
    EXPECT_EQ(p.stats().queue_timeouts, 0u);
    EXPECT_LE(echo_server_open_max(es.s), 2);
}

TEST(Pool, QueueTimeoutClosesWaiterAndCountsIt) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "1");
    p.set("queue_timeout", "200ms");
    p.add_backend(es.port());
    p.start();

    Client a(p.port());
    ASSERT_TRUE(a.echo("hold"));
    Client b(p.port());
    ASSERT_TRUE(b.send("x"));
    EXPECT_TRUE(b.closed_by_peer());
    ASSERT_TRUE(wait_until([&] { return p.stats().queue_timeouts == 1; }));
    EXPECT_EQ(p.stats().queue_waiting, 0u);
    EXPECT_TRUE(a.echo("still served"));
    EXPECT_EQ(echo_server_open_max(es.s), 1);
}

TEST(Pool, QueueFullRejectsAtOnce) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "1");
    p.set("queue_max", "1");
    p.set("queue_timeout", "30s");
    p.add_backend(es.port());
    p.start();

    Client a(p.port());
    ASSERT_TRUE(a.echo("hold"));
    Client b(p.port());
    ASSERT_TRUE(wait_until([&] { return p.stats().queue_waiting == 1; }));
    Client c(p.port());
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(p.stats().queue_full, 1u);
    a.close();
    EXPECT_TRUE(b.echo("served after a"));
}

// An idle pooled connection keeps a read armed: when the backend closes it, it is dropped at
// once, and the pool refills once the backend is back.
TEST(Pool, IdleConnectionClosedByBackendIsDroppedAndRefilled) {
    auto es = std::make_unique<EchoServer>();
    int port = es->port();
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "2");
    p.set("pool_min_idle", "1");
    p.add_backend(port);
    p.start();
    ASSERT_TRUE(wait_until([&] { return p.stats().backend_conns_idle == 1; }));

    es.reset();  // the backend goes away, closing its connections
    ASSERT_TRUE(wait_until([&] { return p.stats().idle_closed_by_backend >= 1; }));
    ASSERT_TRUE(wait_until([&] { return p.stats().backend_conns_idle == 0; }));

    es = std::make_unique<EchoServer>(port);
    ASSERT_NE(es->s, nullptr);
    ASSERT_TRUE(wait_until([&] { return p.stats().backend_conns_idle == 1; }));
    Client c(p.port());
    EXPECT_TRUE(c.echo("after the restart"));
}

TEST(Pool, IdleTimeoutRetiresAndRefills) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "2");
    p.set("pool_min_idle", "1");
    p.set("pool_idle_timeout", "300ms");
    p.add_backend(es.port());
    p.start();
    ASSERT_TRUE(wait_until([&] { return p.stats().idle_closed_timeout >= 2; }));
    // Each retired connection was replaced: the backend accepts a third (its accept() may lag
    // the proxy's connect by a poll interval).
    EXPECT_TRUE(wait_until([&] { return echo_server_accepted(es.s) >= 3; }));
    EXPECT_LE(echo_server_open_max(es.s), 2);
    EXPECT_EQ(p.stats().idle_closed_lifetime, 0u);
}

TEST(Pool, MaxLifetimeRetiresIdleConnections) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "2");
    p.set("pool_min_idle", "1");
    p.set("pool_idle_timeout", "0");
    p.set("max_conn_lifetime", "300ms");
    p.add_backend(es.port());
    p.start();
    ASSERT_TRUE(wait_until([&] { return p.stats().idle_closed_lifetime >= 1; }));
    EXPECT_EQ(p.stats().idle_closed_timeout, 0u);
}

// A warm idle connection parked on worker 0 holds the only slot; a session on worker 1 asks
// worker 0 to let it go instead of waiting for its timeout or going over the cap.
TEST(Pool, IdleConnectionOnAnotherWorkerIsShedForAWaiter) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("pool_max", "1");
    p.set("pool_min_idle", "1");  // worker 0's share is 1, worker 1's is 0
    p.set("queue_timeout", "30s");
    p.set("pool_idle_timeout", "1m");  // without shedding, the waiter would time out first
    p.set("exact_balance", "on");      // the acceptor's round robin: a to worker 0, b to worker 1
    p.add_backend(es.port());
    p.start();
    ASSERT_TRUE(wait_until([&] { return p.stats().backend_conns_idle == 1; }));
    {
        Client a(p.port());  // -> worker 0, takes the warm connection
        ASSERT_TRUE(a.echo("a"));
    }
    ASSERT_TRUE(wait_until([&] { return p.stats().sessions_finished == 1 && p.stats().backend_conns_idle == 1; }));
    Client b(p.port());  // -> worker 1: no idle connection there, the slot is worker 0's
    EXPECT_TRUE(b.echo("b"));
    pp_stats st = p.stats();
    EXPECT_EQ(st.queue_waits, 1u);
    EXPECT_EQ(st.queue_timeouts, 0u);
    EXPECT_LE(st.backend_conns_open, 1u);  // the cap counts the proxy's sockets (see pp_stats)
}

TEST(Pool, NoCapWhenPoolMaxIsZero) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "0");
    p.add_backend(es.port());
    p.start();
    auto clients = held_clients(p.port(), 10);
    ASSERT_EQ(clients.size(), 10u);
    EXPECT_EQ(echo_server_open_now(es.s), 10);
    EXPECT_EQ(p.stats().queue_waits, 0u);
}

// A backend whose accept queue is full drops our SYNs: connect_timeout ends the attempt, the
// client is closed (not left hanging) and the failure is counted.
TEST(Timeouts, ConnectTimeoutClosesClientWhenBackendNeverAnswers) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr *>(&sin), sizeof sin), 0);
    ASSERT_EQ(listen(lfd, 0), 0);
    socklen_t len = sizeof sin;
    getsockname(lfd, reinterpret_cast<sockaddr *>(&sin), &len);
    int bport = ntohs(sin.sin_port);
    // Fill the accept queue (backlog 0 admits one, and Linux one more) without accepting.
    std::vector<int> fillers;
    for (int i = 0; i < 4; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fd, reinterpret_cast<sockaddr *>(&sin), sizeof sin);
        fillers.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));

    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("pool_max", "4");
    p.set("connect_timeout", "300ms");
    p.add_backend(bport);
    p.start();
    Client c(p.port());
    ASSERT_TRUE(c.send("anyone there?"));
    EXPECT_TRUE(c.closed_by_peer());
    ASSERT_TRUE(wait_until([&] { return p.stats().connections_rejected_no_backend == 1; }));
    EXPECT_GE(p.stats().backend_connect_failures, 1u);
    EXPECT_EQ(p.stats().backend_conns_open, 0u);  // the slot was given back
    for (int fd : fillers) ::close(fd);
    ::close(lfd);
}

TEST(Timeouts, IdleSessionIsClosedAfterIdleTimeout) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("idle_timeout", "300ms");
    p.add_backend(es.port());
    p.start();
    Client c(p.port());
    ASSERT_TRUE(c.echo("hello"));
    EXPECT_TRUE(c.closed_by_peer());  // nothing more is sent: the proxy ends it
    ASSERT_TRUE(wait_until([&] { return p.stats().sessions_finished == 1; }));
    ASSERT_TRUE(wait_until([&] { return echo_server_open_now(es.s) == 0; }));
}

TEST(Timeouts, ActiveSessionOutlivesIdleTimeout) {
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "1");
    p.set("idle_timeout", "400ms");
    p.add_backend(es.port());
    p.start();
    Client c(p.port());
    // Traffic every 100 ms for well over the idle timeout keeps the session open.
    for (int i = 0; i < 12; i++) {
        ASSERT_TRUE(c.echo("tick")) << "closed after " << i << " ticks";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}
