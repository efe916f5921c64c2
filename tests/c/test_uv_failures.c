/* Runtime libuv failures are handled, not dropped: a socket option libuv cannot set closes the
 * connection it was for, counted and logged once with its cause, instead of serving it silently
 * without the option. The failures are injected by the setsockopt below, which this program
 * exports (visibility default: the build hides symbols) so that it comes before libc's for the
 * library's (libuv's) calls too, and which fails TCP_NODELAY only on the sockets a test names
 * (by port). Public API only. */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "echo_server.h"

#define WAIT_MS 10000 /* upper bound for any wait: only reached when something is broken */
static const char *const kCause = "not enough memory"; /* libuv's text for the ENOMEM injected */

static atomic_int g_fail_clients;    /* TCP_NODELAY fails on every socket but backend connections: */
static atomic_int g_backend_port;    /* ... the listener (so accepted sockets do not inherit it) and clients */
static atomic_int g_fail_local_port; /* TCP_NODELAY fails on sockets bound to this port (accepted clients) */
static atomic_int g_fail_peer_port;  /* ... and on sockets connected to this one (backend connections) */
static atomic_int g_failed;          /* how many times it failed */

static int port_of(int fd, int peer) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (rc != 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

__attribute__((visibility("default"))) int setsockopt(int fd, int level, int name, const void *value, socklen_t len) {
    typedef int (*real_fn)(int, int, int, const void *, socklen_t);
    static _Atomic(real_fn) real;
    real_fn r = atomic_load(&real);
    if (!r) {
        r = (real_fn)dlsym(RTLD_NEXT, "setsockopt");
        atomic_store(&real, r);
    }
    if (level == IPPROTO_TCP && name == TCP_NODELAY) {
        const int local = atomic_load(&g_fail_local_port), peer = atomic_load(&g_fail_peer_port);
        const int clients = atomic_load(&g_fail_clients) && port_of(fd, 1) != atomic_load(&g_backend_port);
        if (clients || (local && port_of(fd, 0) == local) || (peer && port_of(fd, 1) == peer)) {
            atomic_fetch_add(&g_failed, 1);
            errno = ENOMEM;
            return -1;
        }
    }
    return r(fd, level, name, value, len);
}

typedef struct {
    pthread_mutex_t mu;
    int warnings_nodelay; /* WARN lines that name TCP_NODELAY */
    char last[256];
} logs;

static void on_log(void *ud, int level, const char *msg) {
    logs *l = ud;
    if (level != PP_LOG_WARN || !strstr(msg, "TCP_NODELAY")) return;
    pthread_mutex_lock(&l->mu);
    l->warnings_nodelay++;
    snprintf(l->last, sizeof l->last, "%s", msg);
    pthread_mutex_unlock(&l->mu);
}

static int warnings(logs *l, char *last, size_t size) {
    pthread_mutex_lock(&l->mu);
    int n = l->warnings_nodelay;
    snprintf(last, size, "%s", l->last);
    pthread_mutex_unlock(&l->mu);
    return n;
}

static pp_proxy *start_proxy(int backend_port, logs *l) {
    pp_config *cfg;
    pp_proxy *proxy;
    char addr[32];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "1"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", "0"), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", backend_port);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_config_set_log_callback(cfg, on_log, l, PP_LOG_WARN), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    return proxy;
}

static pp_stats stats_of(pp_proxy *p) {
    pp_stats st;
    st.struct_size = sizeof st;
    assert_int_equal(pp_proxy_stats(p, &st), 0);
    return st;
}

/* The client sends a line and must see its connection end with nothing echoed. */
static void expect_closed_unserved(int port) {
    char buf[8];
    int fd = test_dial(port);
    assert_true(fd >= 0);
    assert_int_equal(test_write_all(fd, "ping", 4), 0);
    long got = test_read_exact(fd, buf, 4, WAIT_MS);
    if (got > 0) fail_msg("the client was served (%ld bytes echoed) on a socket without TCP_NODELAY", got);
    assert_true(test_wait_eof(fd, WAIT_MS));
    close(fd);
}

/* The listener normally carries TCP_NODELAY for every socket accepted from it. Where it
 * cannot (here: injected), each accepted socket gets it set on its own, and one that cannot
 * take it either is closed. */
static void test_client_nodelay_failure_closes_session(void **state) {
    (void)state;
    logs l = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
    char last[256];
    int i;
    echo_server *es = echo_server_start(0);
    atomic_store(&g_failed, 0);
    atomic_store(&g_backend_port, echo_server_port(es));
    atomic_store(&g_fail_clients, 1);
    pp_proxy *proxy = start_proxy(echo_server_port(es), &l);
    const int port = pp_proxy_local_port(proxy);
    assert_int_equal(atomic_load(&g_failed), 1); /* the listener's */
    atomic_store(&g_fail_local_port, port);
    atomic_store(&g_fail_clients, 0);
    expect_closed_unserved(port);
    for (i = 0; i < WAIT_MS / 10 && stats_of(proxy).sessions_finished < 1; i++) usleep(10000);
    assert_int_equal(stats_of(proxy).connections_accepted, 1);
    assert_int_equal(stats_of(proxy).sessions_finished, 1); /* closed, and counted */
    assert_int_equal(atomic_load(&g_failed), 2);
    /* A second one within the quiet period is closed too, but not warned about again. */
    expect_closed_unserved(port);
    for (i = 0; i < WAIT_MS / 10 && stats_of(proxy).sessions_finished < 2; i++) usleep(10000);
    assert_int_equal(stats_of(proxy).sessions_finished, 2);
    atomic_store(&g_fail_local_port, 0);
    if (warnings(&l, last, sizeof last) != 1) fail_msg("%d warnings naming TCP_NODELAY, 1 expected", l.warnings_nodelay);
    if (!strstr(last, "client") || !strstr(last, kCause))
        fail_msg("the warning names neither the side nor the cause: %s", last);
    /* The proxy goes on serving once the option can be set again. */
    {
        char buf[4];
        int fd = test_dial(port);
        assert_true(fd >= 0);
        assert_int_equal(test_write_all(fd, "pong", 4), 0);
        assert_int_equal(test_read_exact(fd, buf, 4, WAIT_MS), 4);
        assert_memory_equal(buf, "pong", 4);
        close(fd);
    }
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

static void test_backend_nodelay_failure_fails_connect(void **state) {
    (void)state;
    logs l = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
    char last[256];
    echo_server *es = echo_server_start(0);
    const int backend_port = echo_server_port(es);
    atomic_store(&g_failed, 0);
    atomic_store(&g_fail_peer_port, backend_port); /* from the start probe on */
    pp_proxy *proxy = start_proxy(backend_port, &l);
    expect_closed_unserved(pp_proxy_local_port(proxy));
    atomic_store(&g_fail_peer_port, 0);
    pp_stats st = stats_of(proxy);
    assert_true(atomic_load(&g_failed) >= 2); /* the start probe, and the client's connect */
    /* Every connection the option failed on counts as a failed connect, none as opened. */
    assert_int_equal(st.backend_connect_failures, (uint64_t)atomic_load(&g_failed));
    assert_int_equal(st.backend_connects, 0);
    assert_int_equal(st.backend_conns_open, 0);
    /* Said once (the backend went down), with its cause. */
    if (warnings(&l, last, sizeof last) != 1) fail_msg("%d warnings naming TCP_NODELAY, 1 expected", l.warnings_nodelay);
    if (!strstr(last, "cannot set TCP_NODELAY") || !strstr(last, kCause))
        fail_msg("the warning does not name the cause: %s", last);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_nodelay_failure_closes_session),
        cmocka_unit_test(test_backend_nodelay_failure_fails_connect),
    };
    return cmocka_run_group_tests_name("c_uv_failures", tests, NULL, NULL);
}
