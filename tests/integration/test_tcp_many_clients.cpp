// 200 concurrent clients through the tcp proxy to an echo backend: every byte checked, and the
// backend never sees more than pool_max connections at once.
#include <random>
#include <thread>
#include <vector>

#include "proxy_fixture.h"

using namespace pp_test;

TEST(TcpIntegration, TwoHundredConcurrentClientsWithinPoolMax) {
    constexpr int kClients = 200;
    constexpr int kPoolMax = 16;
    constexpr size_t kBytes = 64 * 1024;
    EchoServer es;
    ProxyUnderTest p;
    p.set("workers", "2");
    p.set("pool_max", std::to_string(kPoolMax));
    p.set("pool_min_idle", "4");
    p.set("queue_max", "1000");
    p.set("queue_timeout", "60s");  // a bound, not a timing assertion: 200 clients queue for 16 slots
    p.add_backend(es.port());
    p.start();

    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; i++) {
        threads.emplace_back([&, i] {
            std::mt19937 rng(static_cast<unsigned>(i));
            std::string payload(kBytes, '\0');
            for (char &c : payload) c = static_cast<char>(rng());
            Client c(p.port());
            if (!c.ok() || !c.send(payload)) return;
            if (c.recv(kBytes, 60000) == payload) ok++;
        });
    }
    for (auto &t : threads) t.join();

    EXPECT_EQ(ok.load(), kClients);
    EXPECT_LE(echo_server_open_max(es.s), kPoolMax);
    ASSERT_TRUE(wait_until([&] { return p.stats().sessions_finished == kClients; }));
    pp_stats st = p.stats();
    EXPECT_EQ(st.connections_accepted, static_cast<uint64_t>(kClients));
    EXPECT_EQ(st.bytes_client_to_backend, kClients * kBytes);
    EXPECT_EQ(st.bytes_backend_to_client, kClients * kBytes);
    EXPECT_EQ(st.queue_timeouts, 0u);
    EXPECT_EQ(st.connections_rejected_max + st.connections_rejected_overflow + st.connections_rejected_no_backend, 0u);
    EXPECT_LE(st.backend_conns_open, static_cast<uint64_t>(kPoolMax));
}
