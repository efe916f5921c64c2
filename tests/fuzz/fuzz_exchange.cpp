// libFuzzer target: bytes through a running proxy, so the whole http exchange runs on them:
// the session's state machine, the pool, parsing, rewriting, retries and error answers, over
// loopback sockets. Built twice:
//   fuzz_exchange_request    the input is what a client sends (the backend answers 200);
//   fuzz_exchange_response   (-DPP_FUZZ_RESPONSE) the input is what the backend answers to
//                            a GET, or to a HEAD when the first byte's high bit is set.
// Besides the sanitizers', it checks that the client is never left hanging (after it
// half-closes, the proxy answers and closes within a bound far above every timeout set here)
// and that whatever the client gets starts as an HTTP/1.x response.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <poolproxy.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {

constexpr int kHangMs = 10000;  // every proxy timeout below is 1 s

std::mutex g_mu;
std::string g_reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
int g_backend_fd = -1;
int g_proxy_port = 0;
pp_proxy *g_proxy = nullptr;  // never freed: it serves every input of the run

int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
        std::perror("fuzz_exchange: backend listener");
        std::abort();
    }
    *port = ntohs(a.sin_port);
    return fd;
}

// Waits up to ms for fd to be readable; false on timeout.
bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

// One backend connection: read a request head (or give up), answer with the current reply,
// half-close, and wait for the proxy to close its end, so that no reset races the answer.
void *serve(void *arg) {
    const int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
    std::string in;
    char buf[16384];
    while (in.find("\r\n\r\n") == std::string::npos && in.size() < (1u << 20) && wait_readable(fd, 2000)) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
    }
    std::string reply;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        reply = g_reply;
    }
    size_t off = 0;
    while (off < reply.size()) {
        ssize_t n = send(fd, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    while (wait_readable(fd, 2000) && recv(fd, buf, sizeof buf, 0) > 0) {
    }
    close(fd);
    return nullptr;
}

void *backend_main(void *) {
    for (;;) {
        int c = accept4(g_backend_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        pthread_t t;
        if (pthread_create(&t, nullptr, serve, reinterpret_cast<void *>(static_cast<intptr_t>(c))) != 0) {
            close(c);
            continue;
        }
        pthread_detach(t);
    }
    return nullptr;
}

void set(pp_config *cfg, const char *name, const char *value) {
    if (pp_config_set(cfg, name, value) != 0) {
        std::fprintf(stderr, "fuzz_exchange: %s\n", pp_last_error());
        std::abort();
    }
}

// The proxy and its backend live for the whole run.
void start_once() {
    if (g_proxy_port != 0) return;
    signal(SIGPIPE, SIG_IGN);
    int backend_port = 0;
    g_backend_fd = listen_loopback(&backend_port);
    pthread_t t;
    if (pthread_create(&t, nullptr, backend_main, nullptr) != 0) std::abort();
    pthread_detach(t);
    pp_config *cfg;
    if (pp_config_new(&cfg) != 0) std::abort();
    set(cfg, "mode", "http");
    set(cfg, "listen", "127.0.0.1:0");
    set(cfg, "workers", "1");
    set(cfg, "pool_max", "8");
    set(cfg, "client_header_timeout", "1s");
    set(cfg, "client_idle_timeout", "1s");
    set(cfg, "response_timeout", "1s");
    set(cfg, "queue_timeout", "1s");
    set(cfg, "max_header_size", "8192");
    set(cfg, "max_body_size", "65536");
    set(cfg, "breaker_failures", "0");  // bad answers must not switch the backend off for the run
    char backend[32];
    std::snprintf(backend, sizeof backend, "127.0.0.1:%d", backend_port);
    if (pp_config_add_backend(cfg, backend, 1) != 0) std::abort();
    if (pp_proxy_new(&g_proxy, cfg) != 0 || pp_proxy_start(g_proxy) != 0) {
        std::fprintf(stderr, "fuzz_exchange: %s\n", pp_last_error());
        std::abort();
    }
    pp_config_free(cfg);
    g_proxy_port = pp_proxy_local_port(g_proxy);
}

int dial_proxy() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(g_proxy_port));
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        std::perror("fuzz_exchange: connect to the proxy");
        std::abort();
    }
    return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    start_once();
    std::string request;
#ifdef PP_FUZZ_RESPONSE
    if (size < 1) return 0;
    const bool head = (data[0] & 0x80) != 0;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        g_reply.assign(reinterpret_cast<const char *>(data) + 1, size - 1);
    }
    request = head ? "HEAD /f HTTP/1.1\r\nHost: f\r\n\r\n" : "GET /f HTTP/1.1\r\nHost: f\r\n\r\n";
#else
    request.assign(reinterpret_cast<const char *>(data), size);
#endif
    const int fd = dial_proxy();
    size_t off = 0;
    while (off < request.size()) {  // the proxy may refuse early (400) and close: that is fine
        ssize_t n = send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    std::string got;
    char buf[16384];
    for (;;) {
        if (!wait_readable(fd, kHangMs)) {
            std::fprintf(stderr, "fuzz_exchange: the client was left hanging (%zu bytes received)\n", got.size());
            std::abort();
        }
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;  // closed (or reset after an error answer)
        got.append(buf, static_cast<size_t>(n));
    }
    close(fd);
    if (!got.empty() && got.compare(0, 7, "HTTP/1.") != 0) {
        std::fprintf(stderr, "fuzz_exchange: the client got something that is not an HTTP response: '%.60s'\n",
                     got.c_str());
        std::abort();
    }
    return 0;
}
