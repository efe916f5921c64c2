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
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <poolproxy.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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
// (libFuzzer's timer signal interrupts system calls: every wait and transfer retries EINTR.)
bool wait_readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    for (;;) {
        int n = poll(&p, 1, ms);
        if (n >= 0 || errno != EINTR) return n > 0;
    }
}

ssize_t recv_some(int fd, char *buf, size_t len) {
    for (;;) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n >= 0 || errno != EINTR) return n;
    }
}

void send_all(int fd, const std::string &data) {
    size_t off = 0;
    while (off < data.size()) {
        ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the peer may refuse early (400) and close: that is fine
        off += static_cast<size_t>(n);
    }
}

// One backend connection: read a request head (or give up), answer with the current reply,
// half-close, and wait for the proxy to close its end, so that no reset races the answer.
void *serve(void *arg) {
    const int fd = static_cast<int>(reinterpret_cast<intptr_t>(arg));
    std::string in;
    char buf[16384];
    while (in.find("\r\n\r\n") == std::string::npos && in.size() < (1u << 20) && wait_readable(fd, 2000)) {
        ssize_t n = recv_some(fd, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
    }
    std::string reply;
    {
        std::lock_guard<std::mutex> lock(g_mu);
        reply = g_reply;
    }
    send_all(fd, reply);
    shutdown(fd, SHUT_WR);
    while (wait_readable(fd, 2000) && recv_some(fd, buf, sizeof buf) > 0) {
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

// What a hang report needs: is the proxy out of fds, stuck, or waiting on something?
void dump_state() {
    pp_stats st;
    st.struct_size = sizeof st;
    if (pp_proxy_stats(g_proxy, &st) != 0) return;
    int fds = 0;
    if (DIR *d = opendir("/proc/self/fd")) {
        while (readdir(d)) fds++;
        closedir(d);
    }
    std::fprintf(stderr,
                 "  open fds %d; accepted %llu, active %llu, finished %llu, accept errors %llu; backend conns "
                 "open %llu idle %llu; waiting %llu; requests %llu\n",
                 fds - 2, (unsigned long long)st.connections_accepted, (unsigned long long)st.connections_active,
                 (unsigned long long)st.sessions_finished, (unsigned long long)st.accept_errors,
                 (unsigned long long)st.backend_conns_open, (unsigned long long)st.backend_conns_idle,
                 (unsigned long long)st.queue_waiting, (unsigned long long)st.requests);
}

int dial_proxy() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(g_proxy_port));
    int rc = fd < 0 ? -1 : connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    if (rc != 0 && fd >= 0 && errno == EINTR) {  // the connect goes on: wait for its outcome
        pollfd p{fd, POLLOUT, 0};
        while (poll(&p, 1, kHangMs) < 0 && errno == EINTR) {
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
    }
    if (rc != 0) {
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
    send_all(fd, request);
    shutdown(fd, SHUT_WR);
    std::string got;
    char buf[16384];
    for (;;) {
        if (!wait_readable(fd, kHangMs)) {
            std::fprintf(stderr, "fuzz_exchange: the client was left hanging (%zu bytes received)\n", got.size());
            dump_state();
            std::abort();
        }
        ssize_t n = recv_some(fd, buf, sizeof buf);
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
