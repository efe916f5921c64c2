/* Real traffic through a proxy on loopback, from C through the public header: bytes, half-close,
 * pre-warmed connections, stats that agree with the traffic, failover, callbacks. */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "echo_server.h"

#define WAIT_MS 10000 /* upper bound for any wait: only reached when something is broken */

typedef struct events {
    pthread_mutex_t mu;
    int started, stopped, down, up;
    int added, removed, draining, ready;
    int down_backend;
    pp_proxy *proxy;          /* for the stop-inside-a-callback check */
    int stop_in_callback_rc;  /* what pp_proxy_stop returned inside the callback */
    int log_lines_listening;
} events;

static void on_event(void *ud, const pp_event *ev) {
    events *e = ud;
    pthread_mutex_lock(&e->mu);
    switch (ev->type) {
    case PP_EVENT_PROXY_STARTED: e->started++; break;
    case PP_EVENT_PROXY_STOPPED: e->stopped++; break;
    case PP_EVENT_BACKEND_DOWN:
        e->down++;
        e->down_backend = ev->backend_id;
        if (e->proxy) e->stop_in_callback_rc = pp_proxy_stop(e->proxy, 0); /* must be refused */
        break;
    case PP_EVENT_BACKEND_UP: e->up++; break;
    case PP_EVENT_BACKEND_ADDED: e->added++; break;
    case PP_EVENT_BACKEND_REMOVED: e->removed++; break;
    case PP_EVENT_BACKEND_DRAINING: e->draining++; break;
    case PP_EVENT_BACKEND_READY: e->ready++; break;
    default: break;
    }
    pthread_mutex_unlock(&e->mu);
}

static void on_log(void *ud, int level, const char *msg) {
    events *e = ud;
    if (level == PP_LOG_INFO && strstr(msg, "listening on")) {
        pthread_mutex_lock(&e->mu);
        e->log_lines_listening++;
        pthread_mutex_unlock(&e->mu);
    }
}

static pp_proxy *start_proxy(const int *ports, int nports, const char *pool_max, const char *min_idle, events *e) {
    pp_config *cfg;
    pp_proxy *proxy;
    int i;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_max", pool_max), 0);
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", min_idle), 0);
    assert_int_equal(pp_config_set(cfg, "queue_timeout", "10s"), 0);
    for (i = 0; i < nports; i++) {
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", ports[i]);
        assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    }
    if (e) {
        assert_int_equal(pp_config_set_event_callback(cfg, on_event, e), 0);
        assert_int_equal(pp_config_set_log_callback(cfg, on_log, e, PP_LOG_INFO), 0);
    }
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    if (e) e->proxy = proxy; /* events may come while pp_proxy_start runs */
    assert_int_equal(pp_proxy_start(proxy), 0);
    return proxy;
}

static pp_stats stats_of(pp_proxy *p) {
    pp_stats st;
    st.struct_size = sizeof st;
    assert_int_equal(pp_proxy_stats(p, &st), 0);
    return st;
}

/* Polls until the proxy has finished `n` sessions (bounded). */
static void wait_sessions_finished(pp_proxy *p, uint64_t n) {
    int i;
    for (i = 0; i < WAIT_MS / 10 && stats_of(p).sessions_finished < n; i++) usleep(10000);
    assert_int_equal(stats_of(p).sessions_finished, n);
}

static void test_prewarmed_before_first_client(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    int port = echo_server_port(es), i;
    pp_proxy *proxy = start_proxy(&port, 1, "4", "3", NULL);
    for (i = 0; i < WAIT_MS / 10 && stats_of(proxy).backend_conns_idle < 3; i++) usleep(10000);
    assert_int_equal(stats_of(proxy).backend_conns_idle, 3);
    /* The handshake completes before the server's accept() runs: wait for its count too. */
    for (i = 0; i < WAIT_MS / 10 && echo_server_accepted(es) < 3; i++) usleep(10000);
    assert_int_equal(echo_server_accepted(es), 3); /* connected before any client came */
    assert_int_equal(stats_of(proxy).connections_accepted, 0);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

static void test_bytes_and_counters(void **state) {
    (void)state;
    enum { N = 8, LEN = 300 * 1024 };
    echo_server *es = echo_server_start(0);
    int port = echo_server_port(es), i;
    pp_proxy *proxy = start_proxy(&port, 1, "4", "2", NULL);
    char *out = malloc(LEN), *in = malloc(LEN);
    pp_stats st;
    pp_backend_stats bs;
    for (i = 0; i < LEN; i++) out[i] = (char)(i * 131 + 7);
    for (i = 0; i < N; i++) {
        int fd = test_dial(pp_proxy_local_port(proxy));
        assert_true(fd >= 0);
        assert_int_equal(test_write_all(fd, out, LEN), 0);
        assert_int_equal(test_read_exact(fd, in, LEN, WAIT_MS), LEN);
        assert_memory_equal(in, out, LEN);
        close(fd);
    }
    wait_sessions_finished(proxy, N);
    st = stats_of(proxy);
    assert_int_equal(st.connections_accepted, N);
    assert_int_equal(st.bytes_client_to_backend, (uint64_t)N * LEN);
    assert_int_equal(st.bytes_backend_to_client, (uint64_t)N * LEN);
    assert_int_equal(st.connections_rejected_max + st.connections_rejected_overflow +
                         st.connections_rejected_no_backend,
                     0);
    assert_int_equal(st.pool_hits + st.pool_misses, N);
    assert_true(st.pool_hits >= 1); /* the first client at least found a warm connection */
    bs.struct_size = sizeof bs;
    assert_int_equal(pp_proxy_backend_stats(proxy, 0, &bs, NULL, 0), 0);
    assert_int_equal(bs.sessions, N);
    assert_int_equal(bs.up, 1);
    assert_true(echo_server_open_max(es) <= 4);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
    free(out);
    free(in);
}

/* The client half-closes; the backend still answers and then closes; the client gets it all. */
static void test_half_close(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    int port = echo_server_port(es);
    pp_proxy *proxy = start_proxy(&port, 1, "2", "0", NULL);
    char in[16];
    int fd = test_dial(pp_proxy_local_port(proxy));
    assert_int_equal(test_write_all(fd, "last words", 10), 0);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_int_equal(test_read_exact(fd, in, 10, WAIT_MS), 10);
    assert_memory_equal(in, "last words", 10);
    assert_int_equal(test_wait_eof(fd, WAIT_MS), 1);
    close(fd);
    wait_sessions_finished(proxy, 1);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

/* One backend refuses: every session still reaches the live one; the dead one is reported
 * down once, and pp_proxy_stop from inside that callback is refused. */
static void test_failover_and_events(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    echo_server *gone = echo_server_start(0);
    int ports[2], i;
    events e;
    pp_proxy *proxy;
    pp_backend_stats bs;
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    ports[0] = echo_server_port(gone);
    ports[1] = echo_server_port(es);
    echo_server_stop(gone); /* nothing listens there now */
    e.stop_in_callback_rc = 1;
    proxy = start_proxy(ports, 2, "4", "0", &e);
    assert_int_equal(e.started, 1);
    assert_int_equal(e.log_lines_listening, 1);
    for (i = 0; i < 10; i++) {
        char in[5];
        int fd = test_dial(pp_proxy_local_port(proxy));
        assert_int_equal(test_write_all(fd, "hello", 5), 0);
        assert_int_equal(test_read_exact(fd, in, 5, WAIT_MS), 5);
        assert_memory_equal(in, "hello", 5);
        close(fd);
    }
    wait_sessions_finished(proxy, 10);
    assert_int_equal(stats_of(proxy).connections_rejected_no_backend, 0);
    assert_true(stats_of(proxy).backend_connect_failures >= 1);
    bs.struct_size = sizeof bs;
    assert_int_equal(pp_proxy_backend_stats(proxy, 0, &bs, NULL, 0), 0);
    assert_int_equal(bs.up, 0);
    assert_int_equal(bs.conns_opened, 0);
    pthread_mutex_lock(&e.mu);
    assert_int_equal(e.down, 1);
    assert_int_equal(e.down_backend, 0);
    assert_int_equal(e.stop_in_callback_rc, PP_ESTATE);
    pthread_mutex_unlock(&e.mu);
    assert_int_equal(pp_proxy_state(proxy), PP_STATE_RUNNING);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(e.stopped, 1);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
    pthread_mutex_destroy(&e.mu);
}

/* No backend can be reached: the client is closed, never left hanging, and it is counted. */
static void test_no_backend_closes_client(void **state) {
    (void)state;
    echo_server *gone = echo_server_start(0);
    int port = echo_server_port(gone), fd;
    pp_proxy *proxy;
    echo_server_stop(gone);
    proxy = start_proxy(&port, 1, "2", "0", NULL);
    fd = test_dial(pp_proxy_local_port(proxy));
    assert_true(fd >= 0);
    assert_int_equal(test_wait_eof(fd, WAIT_MS), 1);
    close(fd);
    wait_sessions_finished(proxy, 1);
    assert_int_equal(stats_of(proxy).connections_rejected_no_backend, 1);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
}

typedef struct stopper {
    pp_proxy *proxy;
    int drain_ms;
    int rc;
    int done; /* guarded by mu */
    pthread_mutex_t mu;
} stopper;

static void *run_stop(void *p) {
    stopper *s = p;
    int rc = pp_proxy_stop(s->proxy, s->drain_ms);
    pthread_mutex_lock(&s->mu);
    s->rc = rc;
    s->done = 1;
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int stopper_done(stopper *s) {
    int d;
    pthread_mutex_lock(&s->mu);
    d = s->done;
    pthread_mutex_unlock(&s->mu);
    return d;
}

/* Stop with a drain: new connections are refused at once, while a session in flight keeps
 * working; the stop returns when that session ends by itself. */
static void test_stop_drains_in_flight(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    int port = echo_server_port(es), fd, other = 0, i;
    pp_proxy *proxy = start_proxy(&port, 1, "2", "0", NULL);
    int proxy_port = pp_proxy_local_port(proxy);
    stopper s = {proxy, 60000, -1, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    char in[4];

    fd = test_dial(proxy_port);
    assert_int_equal(test_write_all(fd, "one", 3), 0);
    assert_int_equal(test_read_exact(fd, in, 3, WAIT_MS), 3);
    assert_int_equal(pthread_create(&t, NULL, run_stop, &s), 0);

    for (i = 0; i < WAIT_MS / 10; i++) { /* until the listener is gone */
        other = test_dial(proxy_port);
        if (other < 0) break;
        close(other);
        usleep(10000);
    }
    assert_true(other < 0);
    assert_int_equal(test_write_all(fd, "two", 3), 0);
    assert_int_equal(test_read_exact(fd, in, 3, WAIT_MS), 3);
    assert_memory_equal(in, "two", 3);
    assert_int_equal(stopper_done(&s), 0); /* still draining: our session is open */
    close(fd);
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    /* Probe connections made before the listener closed were accepted too: every accepted
     * connection was finished, none dropped. */
    assert_true(stats_of(proxy).sessions_finished >= 1);
    assert_int_equal(stats_of(proxy).sessions_finished, stats_of(proxy).connections_accepted);
    assert_int_equal(stats_of(proxy).connections_active, 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

/* The drain deadline closes what is still open. */
static void test_stop_forces_after_deadline(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    int port = echo_server_port(es), fd;
    pp_proxy *proxy = start_proxy(&port, 1, "2", "0", NULL);
    char in[3];
    fd = test_dial(pp_proxy_local_port(proxy));
    assert_int_equal(test_write_all(fd, "abc", 3), 0);
    assert_int_equal(test_read_exact(fd, in, 3, WAIT_MS), 3);
    assert_int_equal(pp_proxy_stop(proxy, 100), 0);
    assert_int_equal(test_wait_eof(fd, WAIT_MS), 1);
    close(fd);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

typedef struct access_log {
    pthread_mutex_t mu;
    int entries;
    int reused;
    int backend_ok;
    uint64_t bytes_in, bytes_out;
    int last_status;
    char last_method[16], last_target[64];
} access_log;

static void on_access(void *ud, const pp_access_entry *e) {
    access_log *a = ud;
    pthread_mutex_lock(&a->mu);
    a->entries++;
    a->reused += e->reused;
    a->backend_ok += e->backend_id == 0 && strncmp(e->backend, "127.0.0.1:", 10) == 0 && e->client[0] != '\0';
    a->bytes_in += e->bytes_in;
    a->bytes_out += e->bytes_out;
    a->last_status = e->status;
    snprintf(a->last_method, sizeof a->last_method, "%s", e->method);
    snprintf(a->last_target, sizeof a->last_target, "%s", e->target);
    pthread_mutex_unlock(&a->mu);
}

/* One access-log entry per tcp session with its bytes, and one per http request with its
 * method, target and status. */
static void test_access_log(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    char addr[32];
    access_log a;
    pp_config *cfg;
    pp_proxy *proxy;
    int i;
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", echo_server_port(es));
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", "2"), 0);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_config_set_access_callback(NULL, on_access, &a), PP_EINVAL);
    assert_int_equal(pp_config_set_access_callback(cfg, on_access, &a), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    assert_int_equal(pp_proxy_start(proxy), 0);
    for (i = 0; i < WAIT_MS / 10 && stats_of(proxy).backend_conns_idle < 2; i++) usleep(10000);
    for (i = 0; i < 4; i++) {
        char in[100];
        int fd = test_dial(pp_proxy_local_port(proxy));
        assert_int_equal(test_write_all(fd, "0123456789", 10), 0);
        assert_int_equal(test_read_exact(fd, in, 10, WAIT_MS), 10);
        close(fd);
    }
    wait_sessions_finished(proxy, 4);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.entries, 4);
    assert_int_equal(a.backend_ok, 4);
    assert_int_equal(a.bytes_in, 40);
    assert_int_equal(a.bytes_out, 40);
    assert_true(a.reused >= 1); /* a pre-warmed connection was taken */
    pthread_mutex_unlock(&a.mu);

    /* http mode: the echo backend answers garbage (the request itself), so the proxy answers
     * 502, and the entry says so. */
    memset(&a, 0, sizeof a);
    pthread_mutex_init(&a.mu, NULL);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", "0"), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    assert_int_equal(pp_proxy_start(proxy), 0);
    {
        char in[200];
        const char *req = "GET /logged HTTP/1.1\r\nHost: a\r\n\r\n";
        int fd = test_dial(pp_proxy_local_port(proxy));
        long got;
        assert_int_equal(test_write_all(fd, req, (long)strlen(req)), 0);
        got = test_read_exact(fd, in, 12, WAIT_MS);
        assert_int_equal(got, 12);
        assert_memory_equal(in, "HTTP/1.1 502", 12);
        close(fd);
    }
    wait_sessions_finished(proxy, 1);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    pthread_mutex_lock(&a.mu);
    assert_int_equal(a.entries, 1);
    assert_int_equal(a.last_status, 502);
    assert_string_equal(a.last_method, "GET");
    assert_string_equal(a.last_target, "/logged");
    pthread_mutex_unlock(&a.mu);
    pp_config_free(cfg);
    echo_server_stop(es);
}

/* Sends one request on fd and reads the whole 2-byte-body response; returns its status. */
static int http_exchange(int fd, const char *target) {
    char req[128], resp[256];
    long got = 0;
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", target);
    assert_int_equal(test_write_all(fd, req, n), 0);
    /* The response ends with its 2-byte body "ok": read until it arrives. */
    while (got < (long)sizeof resp - 1) {
        long r = test_read_exact(fd, resp + got, 1, WAIT_MS);
        if (r != 1) break;
        got++;
        resp[got] = '\0';
        if (got >= 4 && strstr(resp, "\r\n\r\nok")) break;
    }
    assert_non_null(strstr(resp, "\r\n\r\nok"));
    return atoi(resp + 9);
}

/* A loopback HTTP/1.1 backend for the drain test: keep-alive answers "ok" at once, except to
 * "/slow", which waits until the test opens the gate. */
typedef struct gated_backend {
    int listen_fd, port;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;       /* the gate: /slow may be answered */
    int slow_seen;  /* /slow requests received */
    int stopping;
    pthread_t thread;
} gated_backend;

typedef struct gated_conn {
    gated_backend *b;
    int fd;
} gated_conn;

static void *gated_serve(void *p) {
    gated_conn *c = p;
    gated_backend *b = c->b;
    char buf[4096];
    long have = 0;
    for (;;) {
        char *end;
        ssize_t n;
        buf[have] = '\0';
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            n = read(c->fd, buf + have, sizeof buf - 1 - (size_t)have);
            if (n <= 0) goto out;
            have += n;
            buf[have] = '\0';
        }
        if (strncmp(buf, "GET /slow", 9) == 0) {
            pthread_mutex_lock(&b->mu);
            b->slow_seen++;
            pthread_cond_broadcast(&b->cv);
            while (!b->open && !b->stopping) pthread_cond_wait(&b->cv, &b->mu);
            pthread_mutex_unlock(&b->mu);
        }
        {
            static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if (test_write_all(c->fd, resp, (long)sizeof resp - 1) != 0) goto out;
        }
        end += 4;
        have -= (long)(end - buf);
        memmove(buf, end, (size_t)have);
    }
out:
    close(c->fd);
    free(c);
    return NULL;
}

static void *gated_accept(void *p) {
    gated_backend *b = p;
    for (;;) {
        int fd = accept(b->listen_fd, NULL, NULL);
        gated_conn *c;
        pthread_t t;
        if (fd < 0) return NULL; /* the test shut the listener down */
        c = malloc(sizeof *c);
        c->b = b;
        c->fd = fd;
        if (pthread_create(&t, NULL, gated_serve, c) == 0) pthread_detach(t);
    }
}

static void gated_start(gated_backend *b) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b->listen_fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(b->listen_fd, 16), 0);
    assert_int_equal(getsockname(b->listen_fd, (struct sockaddr *)&a, &len), 0);
    b->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&b->thread, NULL, gated_accept, b), 0);
}

static void gated_set(gated_backend *b, int *field, int value) {
    pthread_mutex_lock(&b->mu);
    *field = value;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void gated_stop(gated_backend *b) {
    gated_set(b, &b->stopping, 1);
    shutdown(b->listen_fd, SHUT_RDWR);
    pthread_join(b->thread, NULL);
    close(b->listen_fd);
}

/* Reads until EOF (bounded): the bytes, NUL-terminated. */
static long read_to_eof(int fd, char *buf, long cap) {
    long got = 0;
    while (got < cap - 1 && test_read_exact(fd, buf + got, 1, WAIT_MS) == 1) got++;
    buf[got] = '\0';
    return got;
}

/* Stop with an idle keep-alive client and a slow exchange in flight (http): the idle client
 * connection is closed as soon as the drain starts (it does not hold the stop until the drain
 * deadline), while the exchange in flight completes, its response saying Connection: close. */
static void test_stop_closes_idle_keepalive(void **state) {
    (void)state;
    gated_backend gb;
    char addr[32], out[512];
    pp_config *cfg;
    pp_proxy *proxy;
    stopper s = {NULL, 5000, -1, 0, PTHREAD_MUTEX_INITIALIZER};
    pthread_t t;
    int idle_fd, slow_fd, i, seen = 0;
    gated_start(&gb);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", gb.port);
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    s.proxy = proxy;

    idle_fd = test_dial(pp_proxy_local_port(proxy));
    assert_int_equal(http_exchange(idle_fd, "/fast"), 200); /* then it stays, idle, keep-alive */
    slow_fd = test_dial(pp_proxy_local_port(proxy));
    assert_int_equal(test_write_all(slow_fd, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n", 31), 0);
    for (i = 0; i < WAIT_MS / 10 && !seen; i++) {
        pthread_mutex_lock(&gb.mu);
        seen = gb.slow_seen;
        pthread_mutex_unlock(&gb.mu);
        if (!seen) usleep(10000);
    }
    assert_int_equal(seen, 1); /* the slow exchange is in flight */

    assert_int_equal(pthread_create(&t, NULL, run_stop, &s), 0);
    /* The idle client sees its connection end while the slow response is still held: before
     * the drain deadline, which would also have cut the slow exchange. */
    assert_int_equal(test_wait_eof(idle_fd, WAIT_MS), 1);
    assert_int_equal(stopper_done(&s), 0); /* the stop waits for the exchange in flight */
    gated_set(&gb, &gb.open, 1);
    read_to_eof(slow_fd, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200 "));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    assert_non_null(strstr(out, "\r\n\r\nok"));
    pthread_join(t, NULL);
    assert_int_equal(s.rc, 0);
    close(idle_fd);
    close(slow_fd);
    assert_int_equal(pp_proxy_free(proxy), 0);
    gated_stop(&gb);
}

/* Counters agree exactly with the traffic sent: 30 requests over 6 keep-alive client
 * connections, 24 answered 200 and 6 answered 404 by the backend, plus one the proxy answers
 * itself (400). The latency histogram, the per-backend and per-worker counts and the
 * Prometheus text say the same; an older, smaller pp_stats still works. */
static void test_http_counters_exact(void **state) {
    (void)state;
    echo_server *hs = echo_server_start_http(0);
    char addr[32];
    pp_config *cfg;
    pp_proxy *proxy;
    pp_stats st;
    pp_backend_stats bs;
    pp_latency lat;
    uint64_t worker_requests = 0;
    int c, r, i;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", echo_server_port(hs));
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_max", "3"), 0);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    for (c = 0; c < 6; c++) {
        int fd = test_dial(pp_proxy_local_port(proxy));
        for (r = 0; r < 5; r++) {
            int status = http_exchange(fd, r == 4 ? "/status/404" : "/x");
            assert_int_equal(status, r == 4 ? 404 : 200);
        }
        close(fd);
    }
    {
        char in[12];
        int fd = test_dial(pp_proxy_local_port(proxy));
        const char *bad = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_int_equal(test_write_all(fd, bad, (long)strlen(bad)), 0);
        assert_int_equal(test_read_exact(fd, in, 12, WAIT_MS), 12);
        assert_memory_equal(in, "HTTP/1.1 400", 12);
        close(fd);
    }
    wait_sessions_finished(proxy, 7);

    st = stats_of(proxy);
    assert_int_equal(st.requests, 31);
    assert_int_equal(st.responses_2xx, 24);
    assert_int_equal(st.responses_4xx, 7);
    assert_int_equal(st.responses_1xx + st.responses_3xx + st.responses_5xx, 0);
    assert_int_equal(st.pool_hits + st.pool_misses, 30); /* the 400 never needed a backend */
    assert_true(st.backend_connects <= 3);
    assert_int_equal(st.retries, 0);
    for (i = 0; i < pp_proxy_worker_count(proxy); i++) {
        pp_worker_stats ws;
        ws.struct_size = sizeof ws;
        assert_int_equal(pp_proxy_worker_stats(proxy, i, &ws), 0);
        worker_requests += ws.requests;
    }
    assert_int_equal(worker_requests, 31);
    bs.struct_size = sizeof bs;
    assert_int_equal(pp_proxy_backend_stats(proxy, 0, &bs, NULL, 0), 0);
    assert_int_equal(bs.requests, 30);
    assert_int_equal(bs.responses_5xx, 0);
    lat.struct_size = sizeof lat;
    assert_int_equal(pp_proxy_latency(proxy, PP_LATENCY_REQUEST, -1, &lat), 0);
    assert_int_equal(lat.count, 31);
    assert_true(lat.p50_us <= lat.p99_us && lat.p99_us <= lat.p999_us);
    assert_int_equal(pp_proxy_latency(proxy, PP_LATENCY_CONNECT, -1, &lat), 0);
    assert_int_equal(lat.count, st.backend_connects);
    assert_int_equal(pp_proxy_latency(proxy, PP_LATENCY_TLS_HANDSHAKE, -1, &lat), 0);
    assert_int_equal(lat.count, 0); /* no TLS here */
    assert_int_equal(pp_proxy_latency(proxy, PP_LATENCY_TLS_BACKEND_HANDSHAKE, -1, &lat), 0);
    assert_int_equal(lat.count, 0);
    assert_int_equal(pp_proxy_latency(proxy, 7, -1, &lat), PP_EINVAL);
    assert_int_equal(pp_proxy_latency(proxy, PP_LATENCY_REQUEST, 2, &lat), PP_EINVAL);

    /* A caller built against the first layout (up to accept_errors) gets exactly that much. */
    {
        pp_stats old;
        memset(&old, 0xab, sizeof old);
        old.struct_size = offsetof(pp_stats, requests);
        assert_int_equal(pp_proxy_stats(proxy, &old), 0);
        assert_int_equal(old.struct_size, offsetof(pp_stats, requests));
        assert_int_equal(old.connections_accepted, 7);
        assert_int_equal(old.requests, 0xababababababababULL); /* not written */
    }

    /* The Prometheus text: the length query, truncation, and the same numbers. */
    {
        size_t len = 0, len2 = 0;
        char small[16];
        char *text;
        assert_int_equal(pp_proxy_metrics(proxy, NULL, 0, &len), PP_ETRUNC);
        assert_true(len > 1000);
        assert_int_equal(pp_proxy_metrics(proxy, small, sizeof small, &len2), PP_ETRUNC);
        assert_int_equal(strlen(small), sizeof small - 1);
        assert_int_equal(pp_proxy_metrics(proxy, NULL, 0, NULL), PP_EINVAL);
        text = malloc(len + 4096);
        assert_int_equal(pp_proxy_metrics(proxy, text, len + 4096, &len2), 0);
        assert_int_equal(strlen(text), len2);
        assert_non_null(strstr(text, "\npoolproxy_responses_total{class=\"2xx\"} 24\n"));
        assert_non_null(strstr(text, "\npoolproxy_responses_total{class=\"4xx\"} 7\n"));
        assert_non_null(strstr(text, "\npoolproxy_request_duration_seconds_count 31\n"));
        assert_non_null(strstr(text, "\npoolproxy_request_duration_seconds_bucket{le=\"+Inf\"} 31\n"));
        assert_non_null(strstr(text, "# TYPE poolproxy_requests_total counter\n"));
        free(text);
    }
    assert_int_equal(pp_proxy_admin_port(proxy), PP_ESTATE); /* admin_listen is off */
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(hs);
}

/* The admin listener answers /metrics, /stats and /healthz over a real socket, and refuses
 * other paths and methods. */
static void test_admin_listener(void **state) {
    (void)state;
    echo_server *hs = echo_server_start_http(0);
    char addr[32], resp[65536];
    pp_config *cfg;
    pp_proxy *proxy;
    int port, fd;
    long got;
    struct {
        const char *request;
        const char *status;
        const char *contains;
    } cases[] = {
        {"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ", "\r\n\r\nok\n"},
        {"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ", "\npoolproxy_requests_total{worker=\"0\"} 1\n"},
        {"GET /stats?pretty HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 ", "\"requests\":1,"},
        {"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 404 ", "Content-Length: "},
        {"POST /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 ", "Allow: GET, HEAD"},
        {"GET /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 400 ", ""},
    };
    size_t i;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", echo_server_port(hs));
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "1"), 0);
    assert_int_equal(pp_config_set(cfg, "admin_listen", "nowhere"), PP_EBADVALUE);
    assert_int_equal(pp_config_set(cfg, "admin_listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_admin_port(proxy), PP_ESTATE); /* not started yet */
    assert_int_equal(pp_proxy_start(proxy), 0);
    port = pp_proxy_admin_port(proxy);
    assert_true(port > 0);
    fd = test_dial(pp_proxy_local_port(proxy));
    assert_int_equal(http_exchange(fd, "/"), 200);
    close(fd);
    wait_sessions_finished(proxy, 1);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fd = test_dial(port);
        assert_int_equal(test_write_all(fd, cases[i].request, (long)strlen(cases[i].request)), 0);
        got = 0;
        /* Connection: close: read until the server closes. */
        while (got < (long)sizeof resp - 1) {
            long r = test_read_exact(fd, resp + got, 1, WAIT_MS);
            if (r != 1) break;
            got++;
        }
        resp[got] = '\0';
        close(fd);
        assert_memory_equal(resp, cases[i].status, strlen(cases[i].status));
        assert_non_null(strstr(resp, cases[i].contains));
    }
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_admin_port(proxy), PP_ESTATE); /* closed with the proxy */
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(hs);
}

static pp_backend_stats backend_of(pp_proxy *p, int id) {
    pp_backend_stats bs;
    bs.struct_size = sizeof bs;
    assert_int_equal(pp_proxy_backend_stats(p, id, &bs, NULL, 0), 0);
    return bs;
}

/* n requests, each on a new client connection; returns once the proxy has counted them (a
 * worker counts a request just after its response went out, so the client can be faster). */
static void http_requests(pp_proxy *p, int n) {
    int i;
    uint64_t before = stats_of(p).requests;
    for (i = 0; i < n; i++) {
        int fd = test_dial(pp_proxy_local_port(p));
        assert_int_equal(http_exchange(fd, "/r"), 200);
        close(fd);
    }
    for (i = 0; i < WAIT_MS / 10 && stats_of(p).requests < before + (uint64_t)n; i++) usleep(10000);
    assert_int_equal(stats_of(p).requests, before + (uint64_t)n);
}

/* Backends added, drained, made ready, re-weighted and removed while the proxy runs: a drained
 * or removed backend gets no new request and its idle connections close; each change is one
 * event; bad ids, addresses and weights are refused with a reason. */
static void test_runtime_backend_changes(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    char addr[32];
    events e;
    pp_config *cfg;
    pp_proxy *proxy;
    uint64_t a_before, b_before;
    int id_b, i;
    memset(&e, 0, sizeof e);
    pthread_mutex_init(&e.mu, NULL);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", echo_server_port(a));
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_add_backend(cfg, addr, 1), 0);
    assert_int_equal(pp_config_set_event_callback(cfg, on_event, &e), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    http_requests(proxy, 6);
    assert_int_equal(backend_of(proxy, 0).requests, 6);

    /* Add b: both take requests (round robin), b from its first request on. */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", echo_server_port(b));
    id_b = pp_proxy_add_backend(proxy, addr, 1);
    assert_int_equal(id_b, 1);
    assert_int_equal(pp_proxy_backend_count(proxy), 2);
    http_requests(proxy, 20);
    assert_true(backend_of(proxy, 1).requests >= 5);
    assert_true(backend_of(proxy, 0).requests >= 6 + 5);

    /* Drain a: no new request reaches it, and its idle pooled connections close. */
    assert_int_equal(pp_proxy_drain_backend(proxy, 0, 1), 0);
    assert_int_equal(pp_proxy_drain_backend(proxy, 0, 1), 0); /* no change: no second event */
    a_before = backend_of(proxy, 0).requests;
    http_requests(proxy, 20);
    assert_int_equal(backend_of(proxy, 0).requests, a_before);
    assert_int_equal(backend_of(proxy, 0).state, 1);
    for (i = 0; i < WAIT_MS / 10 && backend_of(proxy, 0).conns_open > 0; i++) usleep(10000);
    assert_int_equal(backend_of(proxy, 0).conns_open, 0);

    /* Ready again, with a weight: a takes requests again. */
    assert_int_equal(pp_proxy_set_backend_weight(proxy, 0, 3), 0);
    assert_int_equal(backend_of(proxy, 0).weight, 3);
    assert_int_equal(pp_proxy_drain_backend(proxy, 0, 0), 0);
    http_requests(proxy, 20);
    assert_true(backend_of(proxy, 0).requests > a_before);

    /* Remove b: gone for good, its stats stay. */
    assert_int_equal(pp_proxy_remove_backend(proxy, id_b), 0);
    b_before = backend_of(proxy, 1).requests;
    http_requests(proxy, 10);
    assert_int_equal(backend_of(proxy, 1).requests, b_before);
    assert_int_equal(backend_of(proxy, 1).state, 2);
    assert_int_equal(pp_proxy_remove_backend(proxy, id_b), PP_ESTATE);
    assert_int_equal(pp_proxy_drain_backend(proxy, id_b, 0), PP_ESTATE);
    assert_non_null(strstr(pp_last_error(), "removed"));

    /* Bad input: a clear error, nothing changed. */
    assert_int_equal(pp_proxy_add_backend(proxy, "nowhere", 1), PP_EADDR);
    assert_int_equal(pp_proxy_add_backend(proxy, addr, 0), PP_EINVAL);
    assert_int_equal(pp_proxy_add_backend(proxy, NULL, 1), PP_EINVAL);
    assert_int_equal(pp_proxy_drain_backend(proxy, 7, 1), PP_EINVAL);
    assert_int_equal(pp_proxy_drain_backend(proxy, 0, 2), PP_EINVAL);
    assert_int_equal(pp_proxy_set_backend_weight(proxy, 0, 1001), PP_EINVAL);
    assert_int_equal(pp_proxy_remove_backend(proxy, -1), PP_EINVAL);
    assert_int_equal(pp_proxy_backend_count(proxy), 2);

    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_add_backend(proxy, addr, 1), PP_ESTATE);
    assert_int_equal(pp_proxy_free(proxy), 0);
    pthread_mutex_lock(&e.mu);
    assert_int_equal(e.added, 1);
    assert_int_equal(e.draining, 1);
    assert_int_equal(e.ready, 1);
    assert_int_equal(e.removed, 1);
    pthread_mutex_unlock(&e.mu);
    echo_server_stop(a);
    echo_server_stop(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prewarmed_before_first_client),
        cmocka_unit_test(test_bytes_and_counters),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_failover_and_events),
        cmocka_unit_test(test_no_backend_closes_client),
        cmocka_unit_test(test_stop_drains_in_flight),
        cmocka_unit_test(test_stop_forces_after_deadline),
        cmocka_unit_test(test_stop_closes_idle_keepalive),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_http_counters_exact),
        cmocka_unit_test(test_admin_listener),
        cmocka_unit_test(test_runtime_backend_changes),
    };
    return cmocka_run_group_tests_name("c_traffic", tests, NULL, NULL);
}
