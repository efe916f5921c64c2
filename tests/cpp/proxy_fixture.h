// Test helpers: a core Proxy on loopback in front of the C echo server, bounded waits.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/options.h"
#include "core/proxy.h"
#include "proto/protocols.h"
#include "echo_server.h"

namespace pp_test {

// Waits for a condition for at most `limit` (only reached when something is broken).
inline bool wait_until(const std::function<bool()> &cond, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
        if (cond()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return cond();
}

class ProxyUnderTest {
public:
    ProxyUnderTest() { set("listen", "127.0.0.1:0"); }
    ~ProxyUnderTest() {
        if (proxy_ && proxy_->state() == PP_STATE_RUNNING) {
            std::string why;
            proxy_->stop(1000, &why);
        }
    }
    void set(const std::string &name, const std::string &value) {
        std::string why;
        ASSERT_EQ(pp::set_option(&settings_, name, value, &why), PP_OK) << why;
    }
    void add_backend(int port) { set("backend", "127.0.0.1:" + std::to_string(port)); }
    void start() {
        proxy_ = std::make_unique<pp::Proxy>(settings_, pp::protocol_for(settings_));
        std::string why;
        ASSERT_EQ(proxy_->start(&why), PP_OK) << why;
    }
    int port() const { return proxy_->bound().port(); }
    pp_stats stats() const {
        pp_stats s{};
        s.struct_size = sizeof s;
        proxy_->stats(&s);
        return s;
    }
    pp::Proxy &core() { return *proxy_; }

private:
    pp::Settings settings_;
    std::unique_ptr<pp::Proxy> proxy_;
};

// A client connection that closes itself.
class Client {
public:
    explicit Client(int port) : fd_(test_dial(port)) {}
    ~Client() { close(); }
    bool ok() const { return fd_ >= 0; }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }
    bool send(const std::string &s) { return test_write_all(fd_, s.data(), static_cast<long>(s.size())) == 0; }
    std::string recv(size_t n, int timeout_ms = 15000) {
        std::string out(n, '\0');
        long got = test_read_exact(fd_, &out[0], static_cast<long>(n), timeout_ms);
        out.resize(got > 0 ? static_cast<size_t>(got) : 0);
        return out;
    }
    // Sends and expects the echo back.
    bool echo(const std::string &s) { return send(s) && recv(s.size()) == s; }
    bool closed_by_peer(int timeout_ms = 15000) { return test_wait_eof(fd_, timeout_ms) == 1; }
    int fd() const { return fd_; }

private:
    int fd_;
};

// n clients, each connected and echoed once (so the proxy has taken it): held open until
// the vector goes. Fewer if one failed (the caller asserts the size).
inline std::vector<std::unique_ptr<Client>> held_clients(int port, int n) {
    std::vector<std::unique_ptr<Client>> held;
    for (int i = 0; i < n; i++) {
        auto c = std::make_unique<Client>(port);
        if (!c->echo("hold " + std::to_string(i))) break;
        held.push_back(std::move(c));
    }
    return held;
}

struct EchoServer {
    echo_server *s;
    explicit EchoServer(int port = 0) : s(echo_server_start(port)) {}
    ~EchoServer() { echo_server_stop(s); }
    int port() const { return echo_server_port(s); }
};

}  // namespace pp_test
