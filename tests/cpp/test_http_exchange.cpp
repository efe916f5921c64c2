// The http exchange alone, over a fake transport: one worker and its http protocol, with no
// listener, no acceptor and no connect. The client is one end of a socketpair handed to the
// worker as an accepted connection; the backend connection is one end of another, adopted by
// the pool as an idle pooled connection. The test holds the other ends and so controls every
// byte each side sees, and when: fragments, pipelining, a backend that closes.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "core/clock.h"
#include "core/options.h"
#include "core/shared.h"
#include "core/worker.h"
#include "proto/protocols.h"
#include "poolproxy.h"

namespace {

constexpr int kWaitMs = 10000;  // any wait's bound: reached only when something is broken

// A test's end of a socketpair.
class End {
public:
    explicit End(int fd = -1) : fd_(fd) {}
    End(End &&o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    ~End() {
        if (fd_ >= 0) ::close(fd_);
    }
    void send(const std::string &s) { ASSERT_EQ(::write(fd_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
    // Reads until `until` has arrived (or the peer closed, or the bound passed); all of it.
    std::string read_until(const std::string &until) {
        std::string got;
        const uint64_t end = pp::mono_ms() + kWaitMs;
        while (got.find(until) == std::string::npos && pp::mono_ms() < end) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            char buf[65536];
            const ssize_t n = ::read(fd_, buf, sizeof buf);
            if (n <= 0) break;
            got.append(buf, static_cast<size_t>(n));
        }
        return got;
    }
    // Whether nothing arrives for `ms` (and the peer did not close).
    bool quiet_for(int ms) {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, ms) == 0;
    }
    bool closed_by_peer() {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, kWaitMs) <= 0) return false;
        char c;
        return ::read(fd_, &c, 1) == 0;
    }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_;
};

class Exchange : public ::testing::Test {
protected:
    void SetUp() override {
        for (const auto &kv : std::initializer_list<std::pair<const char *, const char *>>{
                 {"mode", "http"}, {"workers", "1"}, {"pool_min_idle", "0"}, {"breaker_failures", "0"},
                 {"retries", "1"}, {"backend", "127.0.0.1:1"}}) {  // never reached: connections are adopted
            std::string why;
            ASSERT_EQ(pp::set_option(&settings_, kv.first, kv.second, &why), PP_OK) << why;
        }
        configure(settings_);
        protocol_ = pp::protocol_for(settings_);
        shared_ = std::make_unique<pp::Shared>(settings_, 1);
        shared_->protocol = protocol_.get();
        shared_->listener_nodelay = true;  // (a socketpair takes no TCP_NODELAY)
        shared_->workers.push_back(std::make_unique<pp::Worker>(*shared_, 0));
        std::string why;
        ASSERT_EQ(worker().start(&why), PP_OK) << why;
        ASSERT_EQ(worker().run(&why), PP_OK) << why;
    }
    void TearDown() override {
        worker().post_drain(pp::mono_ms());
        worker().join();
        shared_->workers.clear();
    }
    pp::Worker &worker() { return *shared_->workers[0]; }
    virtual void configure(pp::Settings &) {}

    // A backend connection: the pool adopts one end as idle (its cap slot with it).
    End backend() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        shared_->backends[0].try_reserve(0);
        const uint64_t idle = worker().counters().idle_total.get();
        worker().post_adopt(0, pp::BackendPool::Moving{sv[1], pp::mono_ms(), 0});
        const uint64_t end = pp::mono_ms() + kWaitMs;
        while (worker().counters().idle_total.get() <= idle && pp::mono_ms() < end) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        EXPECT_GT(worker().counters().idle_total.get(), idle);
        return End(sv[0]);
    }
    // A client connection, handed to the worker as if accepted.
    End client() {
        int sv[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        worker().post_handoff(sv[1]);
        return End(sv[0]);
    }

    pp::Settings settings_;
    std::unique_ptr<pp::Protocol> protocol_;
    std::unique_ptr<pp::Shared> shared_;
};

const std::string kOk = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

TEST_F(Exchange, RequestRewrittenResponseForwardedConnectionReused) {
    End be = backend();
    End c = client();
    c.send("GET /a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n");
    const std::string req = be.read_until("\r\n\r\n");
    EXPECT_EQ(req.rfind("GET /a HTTP/1.1\r\nHost: x\r\n", 0), 0u) << req;
    EXPECT_EQ(req.find("Keep-Alive"), std::string::npos) << req;  // hop-by-hop: dropped
    EXPECT_NE(req.find("X-Forwarded-Proto: http\r\n"), std::string::npos) << req;
    be.send(kOk);
    EXPECT_EQ(c.read_until("hello"), kOk);
    // The next request goes on the same backend connection (there is no other).
    c.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(be.read_until("\r\n\r\n").rfind("GET /b HTTP/1.1\r\n", 0), 0u);
    be.send(kOk);
    EXPECT_EQ(c.read_until("hello"), kOk);
}

TEST_F(Exchange, FragmentedResponseHeadArrivesWhole) {
    End be = backend();
    End c = client();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    be.read_until("\r\n\r\n");
    for (char ch : kOk) {  // one byte at a time, each its own read on the proxy's side
        be.send(std::string(1, ch));
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    EXPECT_EQ(c.read_until("hello"), kOk);
}

TEST_F(Exchange, PipelinedRequestWaitsForTheFirstResponse) {
    End be = backend();
    End c = client();
    c.send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string first = be.read_until("\r\n\r\n");
    EXPECT_EQ(first.rfind("GET /1 ", 0), 0u) << first;
    EXPECT_EQ(first.find("GET /2"), std::string::npos) << first;  // not before its turn
    EXPECT_TRUE(be.quiet_for(100));
    be.send(kOk);
    EXPECT_EQ(be.read_until("\r\n\r\n").rfind("GET /2 ", 0), 0u);
    be.send(kOk);
    EXPECT_EQ(c.read_until(kOk + kOk), kOk + kOk);  // in order
}

TEST_F(Exchange, ChunkedBodyGoesOnAsFramed) {
    End be = backend();
    End c = client();
    const std::string body = "5\r\nhello\r\n0\r\n\r\n";
    c.send("POST /u HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    const std::string got = be.read_until("0\r\n\r\n");
    EXPECT_NE(got.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << got;
    EXPECT_EQ(got.substr(got.find("\r\n\r\n") + 4), body);
    be.send(kOk);
    EXPECT_EQ(c.read_until("hello"), kOk);
}

TEST_F(Exchange, BackendClosingAReusedConnectionIsRetriedThenAnswered503) {
    End be = backend();
    End c = client();
    c.send("GET /r HTTP/1.1\r\nHost: x\r\n\r\n");
    be.read_until("\r\n\r\n");
    be.close();  // before any response byte: the keep-alive race; the retry's connect is refused
    const std::string got = c.read_until("\r\n\r\n");
    EXPECT_EQ(got.rfind("HTTP/1.1 503 ", 0), 0u) << got;
    EXPECT_TRUE(c.closed_by_peer());
    EXPECT_EQ(worker().counters().retries.get(), 1u);
}

TEST_F(Exchange, ResponseWithoutLengthEndsByCloseAndTheConnectionIsNotReused) {
    End be = backend();
    End c = client();
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    be.read_until("\r\n\r\n");
    be.send("HTTP/1.1 200 OK\r\n\r\nuntil close");
    be.close();
    const std::string got = c.read_until("until close");
    EXPECT_NE(got.find("until close"), std::string::npos) << got;
    EXPECT_TRUE(c.closed_by_peer());  // framed by the close: the client connection ends too
    EXPECT_EQ(worker().pool(0).idle_count(), 0u);
}

// A request hook that adds three fields, with max_header_fields 5: the fields it added do not
// count against the parser's limit when the request's trailers arrive.
class ExchangeWithHook : public Exchange {
protected:
    void configure(pp::Settings &st) override {
        std::string why;
        ASSERT_EQ(pp::set_option(&st, "max_header_fields", "5", &why), PP_OK) << why;
        st.callbacks.request_hook = [](void *, pp_exchange *ex, const pp_request_info *) {
            for (const char *name : {"X-A", "X-B", "X-C"}) {
                if (pp_exchange_add_field(ex, name, "1") != 0) return -1;
            }
            return 0;
        };
    }
};

TEST_F(ExchangeWithHook, FieldsAHookAddedDoNotCountAgainstTheTrailers) {
    End be = backend();
    End c = client();
    // 3 head fields + 1 trailer = 4 parsed, under 5; with the hook's 3 the head holds 6.
    c.send("POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n"
           "5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n");
    const std::string got = be.read_until("X-Sum: 1\r\n\r\n");
    EXPECT_NE(got.find("X-C: 1\r\n"), std::string::npos) << got;
    EXPECT_NE(got.find("0\r\nX-Sum: 1\r\n\r\n"), std::string::npos) << got;
    be.send(kOk);
    EXPECT_EQ(c.read_until("hello"), kOk);  // not a 431 after the head went upstream
}

}  // namespace
