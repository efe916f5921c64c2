/* pp_proxy_reload through the public header and real sockets: routes and groups taken up by a
 * running proxy, a request that waits across a reload keeping the route it matched, backends
 * added with pp_proxy_add_backend* replaced by the configuration's, and the misuse refused
 * (with nothing changed). */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "echo_server.h"

#define WAIT_MS 10000 /* upper bound for any wait: only reached when something is broken */

static pp_config *config(int workers, const char *pool_max) {
    pp_config *cfg;
    char n[16];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    snprintf(n, sizeof n, "%d", workers);
    assert_int_equal(pp_config_set(cfg, "workers", n), 0);
    if (pool_max) assert_int_equal(pp_config_set(cfg, "pool_max", pool_max), 0);
    return cfg;
}

static void add_backend(pp_config *cfg, const echo_server *b, const char *extra) {
    char spec[128];
    snprintf(spec, sizeof spec, "127.0.0.1:%d%s", echo_server_port(b), extra ? extra : "");
    assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
}

static pp_proxy *start(pp_config *cfg) {
    pp_proxy *p;
    assert_int_equal(pp_proxy_new(&p, cfg), 0);
    assert_int_equal(pp_proxy_start(p), 0);
    return p;
}

/* A listener on 127.0.0.1 that completes handshakes (kernel backlog) and answers nothing. */
static int hang_listener(int *port) {
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

/* A request on its own connection (Connection: close); the fd. */
static int send_req(const pp_proxy *p, const char *target) {
    char req[256];
    int fd = test_dial(pp_proxy_local_port(p)), n;
    assert_true(fd >= 0);
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", target);
    assert_int_equal(test_write_all(fd, req, n), 0);
    return fd;
}

/* All of a response, NUL-terminated, up to the close; closes fd. */
static void read_all(int fd, char *out, size_t cap) {
    long got = 0, n;
    while ((size_t)got < cap - 1 && (n = test_read_exact(fd, out + got, (long)(cap - 1 - (size_t)got), WAIT_MS)) > 0) got += n;
    out[got] = '\0';
    close(fd);
}

/* One request on its own connection: the whole response, NUL-terminated. */
static void ask(const pp_proxy *p, const char *target, char *out, size_t cap) { read_all(send_req(p, target), out, cap); }

static int active_backends(const pp_proxy *p) {
    int i, n = pp_proxy_backend_count(p), live = 0;
    for (i = 0; i < n; i++) {
        pp_backend_stats bs;
        bs.struct_size = sizeof bs;
        assert_int_equal(pp_proxy_backend_stats(p, i, &bs, NULL, 0), 0);
        live += bs.state != 2;
    }
    return live;
}

/* A route and a group added, then the group's options changed and the route removed. */
static void test_reload_routes_and_groups(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    pp_config *cfg = config(2, NULL);
    pp_proxy *p;
    char out[4096], port[64];
    add_backend(cfg, a, NULL);
    p = start(cfg);
    pp_config_free(cfg);
    ask(p, "/api/echo", out, sizeof out);
    assert_non_null(strstr(out, "\r\n\r\nok")); /* no route: the target as sent (only /echo... echoes) */
    assert_int_equal(echo_server_accepted(b), 0);

    cfg = config(2, NULL);
    add_backend(cfg, a, NULL);
    add_backend(cfg, b, ",group=api");
    assert_int_equal(pp_config_set(cfg, "group", "api retries=0"), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/api/ strip_prefix -> api"), 0);
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    ask(p, "/api/echo", out, sizeof out);
    assert_non_null(strstr(out, "GET /echo HTTP/1.1\r\n")); /* the new route, to the new group */
    snprintf(port, sizeof port, "X-Backend-Port: %d\r\n", echo_server_port(b));
    assert_non_null(strstr(out, port));
    assert_int_equal(active_backends(p), 2);

    /* The same again: nothing changes, no backend is re-added. */
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    assert_int_equal(pp_proxy_backend_count(p), 2);
    pp_config_free(cfg);

    /* The group's options change: replaced, its backend re-added (a new id), still routed. */
    cfg = config(2, NULL);
    add_backend(cfg, a, NULL);
    add_backend(cfg, b, ",group=api");
    assert_int_equal(pp_config_set(cfg, "group", "api retries=1"), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/api/ strip_prefix -> api"), 0);
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_backend_count(p), 3);
    assert_int_equal(active_backends(p), 2);
    ask(p, "/api/echo", out, sizeof out);
    assert_non_null(strstr(out, "GET /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(out, port));

    /* The route and the group go: /api/ reaches the default group as it is. */
    cfg = config(2, NULL);
    add_backend(cfg, a, NULL);
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    pp_config_free(cfg);
    ask(p, "/api/echo", out, sizeof out);
    assert_non_null(strstr(out, "\r\n\r\nok"));
    assert_int_equal(active_backends(p), 1);

    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    echo_server_stop(a);
    echo_server_stop(b);
}

/* A backend the test answers by hand: it holds a request as long as the test likes. */
typedef struct manual {
    int lfd;
    int fds[16];
    int n;
} manual;

static void manual_start(manual *m) {
    memset(m, 0, sizeof *m);
    m->lfd = hang_listener(&m->n); /* (n: the port, until the first accept) */
}

/* The next request head on any of its connections (accepting new ones): its fd, the head in out. */
static int manual_next_head(manual *m, char *out, size_t cap) {
    int waited;
    for (waited = 0; waited < WAIT_MS; waited += 10) {
        struct pollfd pf[17];
        int i, k = 0;
        pf[k].fd = m->lfd;
        pf[k++].events = POLLIN;
        for (i = 0; i < m->n; i++) {
            pf[k].fd = m->fds[i];
            pf[k++].events = POLLIN;
        }
        if (poll(pf, (nfds_t)k, 10) <= 0) continue;
        if (pf[0].revents & POLLIN) {
            int fd = accept(m->lfd, NULL, NULL);
            assert_true(fd >= 0 && m->n < 16);
            m->fds[m->n++] = fd;
            continue;
        }
        for (i = 1; i < k; i++) {
            size_t got = 0;
            if (!(pf[i].revents & POLLIN)) continue;
            while (got < cap - 1) { /* a head arrives whole from the proxy; read to its end */
                ssize_t r = read(pf[i].fd, out + got, 1);
                if (r <= 0) break;
                got += (size_t)r;
                out[got] = '\0';
                if (got >= 4 && strcmp(out + got - 4, "\r\n\r\n") == 0) return pf[i].fd;
            }
            pf[i].fd = -1; /* closed (a probe): forget it */
            close(m->fds[i - 1]);
            m->fds[i - 1] = m->fds[--m->n];
            break;
        }
    }
    fail_msg("no request head came");
    return -1;
}

static void manual_stop(manual *m) {
    int i;
    for (i = 0; i < m->n; i++) close(m->fds[i]);
    close(m->lfd);
}

/* A request that matched a route waits for the only connection (pool_max 1, held by a request
 * the backend does not answer yet); a reload replaces the routes meanwhile. Served at last, it
 * still goes out as its route said (a reload does not route a request twice), and the next
 * request follows the new routes. */
static void test_waiting_request_keeps_its_route(void **state) {
    (void)state;
    manual m;
    pp_config *cfg = config(1, "1");
    pp_proxy *p;
    pp_stats st;
    char out[4096], head[4096], spec[64];
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const char *routed = "GET /api/echo HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n";
    int holder, waiter, bfd, i;
    long n, got = 0;
    manual_start(&m);
    snprintf(spec, sizeof spec, "127.0.0.1:%d", m.n);
    m.n = 0;
    assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
    assert_int_equal(pp_config_set(cfg, "response_timeout", "30s"), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/api/ strip_prefix -> default"), 0);
    p = start(cfg);
    pp_config_free(cfg);

    holder = test_dial(pp_proxy_local_port(p));
    assert_true(holder >= 0);
    assert_int_equal(test_write_all(holder, "GET /hold HTTP/1.1\r\nHost: test\r\n\r\n", 35), 0);
    bfd = manual_next_head(&m, head, sizeof head);
    assert_non_null(strstr(head, "GET /hold HTTP/1.1\r\n"));
    waiter = test_dial(pp_proxy_local_port(p));
    assert_true(waiter >= 0);
    assert_int_equal(test_write_all(waiter, routed, (long)strlen(routed)), 0);
    st.struct_size = sizeof st;
    for (i = 0; i < WAIT_MS; i++) {
        assert_int_equal(pp_proxy_stats(p, &st), 0);
        if (st.queue_waiting == 1) break;
        usleep(1000);
    }
    assert_int_equal(st.queue_waiting, 1);

    cfg = config(1, "1");
    assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
    assert_int_equal(pp_config_set(cfg, "response_timeout", "30s"), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/other/ -> default"), 0);
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    pp_config_free(cfg);
    usleep(50 * 1000); /* the worker takes the new table */

    assert_int_equal(test_write_all(bfd, ok, (long)strlen(ok)), 0); /* the held request ends: the connection is free */
    bfd = manual_next_head(&m, head, sizeof head);
    assert_non_null(strstr(head, "GET /echo HTTP/1.1\r\n")); /* its route's strip_prefix */
    assert_int_equal(test_write_all(bfd, ok, (long)strlen(ok)), 0);
    while ((size_t)got < sizeof out - 1 && (n = test_read_exact(waiter, out + got, (long)(sizeof out - 1 - (size_t)got), WAIT_MS)) > 0) {
        got += n;
    }
    out[got] = '\0';
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    close(waiter);
    close(holder);

    waiter = test_dial(pp_proxy_local_port(p));
    assert_true(waiter >= 0);
    assert_int_equal(test_write_all(waiter, routed, (long)strlen(routed)), 0);
    bfd = manual_next_head(&m, head, sizeof head);
    assert_non_null(strstr(head, "GET /api/echo HTTP/1.1\r\n")); /* the new routes: no strip */
    assert_int_equal(test_write_all(bfd, ok, (long)strlen(ok)), 0);
    close(waiter);

    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    manual_stop(&m);
}

/* The configuration is the whole set: a backend added at runtime and not in it goes. */
static void test_reload_replaces_runtime_backends(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    pp_config *cfg = config(1, NULL);
    pp_proxy *p;
    char spec[64];
    add_backend(cfg, a, NULL);
    p = start(cfg);
    snprintf(spec, sizeof spec, "127.0.0.1:%d", echo_server_port(b));
    assert_int_equal(pp_proxy_add_backend(p, spec, 1), 1);
    assert_int_equal(active_backends(p), 2);
    assert_int_equal(pp_proxy_reload(p, cfg), 0);
    assert_int_equal(active_backends(p), 1);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    echo_server_stop(a);
    echo_server_stop(b);
}

/* Many reloads that each replace the default group (pool_max alternates) re-add its four
 * backends every time: the live count must stay four, so none is ever refused for the
 * 1024-at-once limit (each reload used to count its additions twice). */
static void test_many_reloads_keep_the_count(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0);
    pp_config *two[2];
    pp_proxy *p;
    char out[4096];
    int i, k;
    for (k = 0; k < 2; k++) {
        two[k] = config(1, k ? "9" : "8");
        add_backend(two[k], a, NULL);
        add_backend(two[k], a, ",weight=2,host=b");
        add_backend(two[k], a, ",host=c");
        add_backend(two[k], a, ",host=d");
    }
    p = start(two[0]);
    for (i = 1; i <= 300; i++) assert_int_equal(pp_proxy_reload(p, two[i % 2]), 0);
    assert_int_equal(active_backends(p), 4);
    assert_true(pp_proxy_add_backend(p, "127.0.0.1:9", 1) >= 0); /* and the limit still has room */
    ask(p, "/echo", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    pp_config_free(two[0]);
    pp_config_free(two[1]);
    echo_server_stop(a);
}

static pp_proxy *g_proxy;
static pp_config *g_cfg;
static int g_hook_rc = 1;
static int reload_from_hook(void *ud, pp_exchange *ex, const pp_request_info *info) {
    (void)ud;
    (void)ex;
    (void)info;
    g_hook_rc = pp_proxy_reload(g_proxy, g_cfg);
    return 0;
}

static void test_reload_misuse(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0);
    pp_config *cfg = config(1, NULL), *bad;
    pp_proxy *p;
    char out[4096];
    add_backend(cfg, a, NULL);
    assert_int_equal(pp_config_set_request_hook(cfg, reload_from_hook, NULL), 0);
    assert_int_equal(pp_proxy_reload(NULL, cfg), PP_EINVAL);
    assert_int_equal(pp_proxy_new(&p, cfg), 0);
    assert_int_equal(pp_proxy_reload(p, cfg), PP_ESTATE); /* not started */
    assert_non_null(strstr(pp_last_error(), "not running"));
    assert_int_equal(pp_proxy_free(p), 0);
    p = start(cfg);
    assert_int_equal(pp_proxy_reload(p, NULL), PP_EINVAL);
    assert_non_null(strstr(pp_last_error(), "pp_proxy_reload"));

    /* One that could not make a proxy: refused whole, the reason named, nothing changed. */
    bad = config(1, NULL);
    add_backend(bad, a, NULL);
    add_backend(bad, a, ",group=api");
    assert_int_equal(pp_config_set(bad, "route", "path=/ -> nowhere"), 0);
    assert_int_equal(pp_proxy_reload(p, bad), PP_EBADVALUE);
    assert_non_null(strstr(pp_last_error(), "no backend group named 'nowhere'"));
    assert_int_equal(pp_proxy_backend_count(p), 1);
    pp_config_free(bad);

    /* From a callback of the proxy's own: refused. */
    g_proxy = p;
    g_cfg = cfg;
    ask(p, "/x", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(g_hook_rc, PP_ESTATE);

    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_reload(p, cfg), PP_ESTATE); /* stopped */
    assert_int_equal(pp_proxy_free(p), 0);
    pp_config_free(cfg);
    echo_server_stop(a);
}

/* The worker is held inside a request hook (on purpose: hooks must not block) while a reload
 * swaps the default group's only backend for another. The held request goes on as the hook
 * returns, before the worker has been told of the reload: it must reach the new backend, not
 * be answered 503 for want of one (the old is removed, the new has no pool there yet). */
static int g_in_hook, g_release;
static int hold_hook(void *ud, pp_exchange *ex, const pp_request_info *info) {
    int i;
    (void)ud;
    (void)ex;
    if (strcmp(info->target, "/hold") != 0) return 0;
    __atomic_store_n(&g_in_hook, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < WAIT_MS && !__atomic_load_n(&g_release, __ATOMIC_SEQ_CST); i++) usleep(1000);
    return 0;
}

static void test_swap_while_the_worker_is_busy(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    pp_config *cfg = config(1, NULL), *next = config(1, NULL);
    pp_proxy *p;
    char out[4096];
    int fd, i;
    add_backend(cfg, a, NULL);
    assert_int_equal(pp_config_set_request_hook(cfg, hold_hook, NULL), 0);
    add_backend(next, b, NULL);
    p = start(cfg);
    __atomic_store_n(&g_in_hook, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_release, 0, __ATOMIC_SEQ_CST);
    fd = send_req(p, "/hold");
    for (i = 0; i < WAIT_MS && !__atomic_load_n(&g_in_hook, __ATOMIC_SEQ_CST); i++) usleep(1000);
    assert_true(__atomic_load_n(&g_in_hook, __ATOMIC_SEQ_CST));
    assert_int_equal(pp_proxy_reload(p, next), 0); /* a out, b in; the worker is in the hook */
    __atomic_store_n(&g_release, 1, __ATOMIC_SEQ_CST);
    read_all(fd, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    pp_config_free(cfg);
    pp_config_free(next);
    echo_server_stop(a);
    echo_server_stop(b);
}

/* The same while the group's other backend H is at backend_max_requests (a request hangs on it):
 * the held request finds A removed and H at its limit; it must catch up and reach C, not be
 * answered 503 "backend_max_requests ... reached". (Found by review.) */
static void test_swap_with_other_backend_at_limit(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *c = echo_server_start_http(0);
    int hport, hfd = hang_listener(&hport), i, stuck, fd;
    pp_config *cfg[3];
    pp_proxy *p;
    pp_stats st;
    char out[4096], spec[64];
    for (i = 0; i < 3; i++) {
        cfg[i] = config(1, NULL);
        assert_int_equal(pp_config_set(cfg[i], "response_timeout", "20s"), 0);
        assert_int_equal(pp_config_set(cfg[i], "backend_max_requests", "1"), 0);
        assert_int_equal(pp_config_set_request_hook(cfg[i], hold_hook, NULL), 0);
        snprintf(spec, sizeof spec, "127.0.0.1:%d", hport);
        assert_int_equal(pp_config_set(cfg[i], "backend", spec), 0);
    }
    add_backend(cfg[1], a, NULL);
    add_backend(cfg[2], c, NULL);
    p = start(cfg[0]);
    stuck = send_req(p, "/stuck"); /* in flight on H for the whole test */
    st.struct_size = sizeof st;
    for (i = 0; i < WAIT_MS; i++) {
        assert_int_equal(pp_proxy_stats(p, &st), 0);
        if (pp_proxy_backend_count(p) == 1) {
            pp_backend_stats bs;
            bs.struct_size = sizeof bs;
            assert_int_equal(pp_proxy_backend_stats(p, 0, &bs, NULL, 0), 0);
            if (bs.sessions_active == 1) break;
        }
        usleep(1000);
    }
    assert_int_equal(pp_proxy_reload(p, cfg[1]), 0); /* H + A */
    ask(p, "/x", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200")); /* A serves: the worker knows it */
    __atomic_store_n(&g_in_hook, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_release, 0, __ATOMIC_SEQ_CST);
    fd = send_req(p, "/hold");
    for (i = 0; i < WAIT_MS && !__atomic_load_n(&g_in_hook, __ATOMIC_SEQ_CST); i++) usleep(1000);
    assert_true(__atomic_load_n(&g_in_hook, __ATOMIC_SEQ_CST));
    assert_int_equal(pp_proxy_reload(p, cfg[2]), 0); /* H + C: A removed */
    __atomic_store_n(&g_release, 1, __ATOMIC_SEQ_CST);
    read_all(fd, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(pp_proxy_stats(p, &st), 0);
    assert_int_equal(st.no_backend_limits, 0);
    close(stuck);
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    for (i = 0; i < 3; i++) pp_config_free(cfg[i]);
    close(hfd);
    echo_server_stop(a);
    echo_server_stop(c);
}

/* A replaced group's backends are re-added with new ids: one its health checks found down
 * stays down in the new group (until its checks pass), instead of taking requests as healthy
 * until its first check fails (health_fall of them, here 3 x 100 ms). */
static int backend_healthy(const pp_proxy *p, int id) {
    pp_backend_stats bs;
    bs.struct_size = sizeof bs;
    assert_int_equal(pp_proxy_backend_stats(p, id, &bs, NULL, 0), 0);
    return (int)bs.healthy;
}

static void test_replaced_group_keeps_health(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0);
    pp_config *cfg[2];
    pp_proxy *p;
    char dead[64];
    int i, k, lfd, port;
    lfd = hang_listener(&port); /* a port nothing listens on: bound, then closed */
    snprintf(dead, sizeof dead, "127.0.0.1:%d", port);
    close(lfd);
    for (k = 0; k < 2; k++) {
        cfg[k] = config(1, k ? "9" : "8");
        assert_int_equal(pp_config_set(cfg[k], "health_check", "tcp"), 0);
        assert_int_equal(pp_config_set(cfg[k], "health_interval", "100ms"), 0);
        assert_int_equal(pp_config_set(cfg[k], "health_fall", "3"), 0);
        add_backend(cfg[k], a, NULL);
        assert_int_equal(pp_config_set(cfg[k], "backend", dead), 0);
    }
    p = start(cfg[0]);
    for (i = 0; i < WAIT_MS && backend_healthy(p, 1); i += 10) usleep(10 * 1000);
    assert_int_equal(backend_healthy(p, 1), 0);
    assert_int_equal(pp_proxy_reload(p, cfg[1]), 0); /* pool_max 8 -> 9: the group replaced */
    assert_int_equal(pp_proxy_backend_count(p), 4);
    assert_int_equal(backend_healthy(p, 2), 1); /* a, re-added */
    assert_int_equal(backend_healthy(p, 3), 0); /* the dead one: still down */
    /* Checks turned off (the group replaced again): nothing would ever check it, so it starts
     * healthy, as any backend of a group without checks (found by review: 503 for good). */
    assert_int_equal(pp_config_set(cfg[0], "health_check", "none"), 0);
    assert_int_equal(pp_proxy_reload(p, cfg[0]), 0);
    assert_int_equal(pp_proxy_backend_count(p), 6);
    assert_int_equal(backend_healthy(p, 5), 1);
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    pp_config_free(cfg[0]);
    pp_config_free(cfg[1]);
    echo_server_stop(a);
}

/* The event callbacks a reload runs on the caller's thread count as the proxy's own: a
 * pp_proxy_stop or a backend change from one is refused, and neither waits on the reload's
 * locks nor stops the proxy under it. */
static pp_proxy *g_evproxy;
static int g_stop_rc = 1, g_add_rc = 1, g_added_events;
static void stop_from_event(void *ud, const pp_event *ev) {
    (void)ud;
    if (ev->type != PP_EVENT_BACKEND_ADDED || !g_evproxy) return;
    g_added_events++;
    g_stop_rc = pp_proxy_stop(g_evproxy, 0);
    g_add_rc = pp_proxy_add_backend(g_evproxy, "127.0.0.1:9", 1);
}

static void test_callbacks_during_reload(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    pp_config *cfg = config(1, NULL), *next = config(1, NULL);
    pp_proxy *p;
    char out[4096];
    add_backend(cfg, a, NULL);
    assert_int_equal(pp_config_set_event_callback(cfg, stop_from_event, NULL), 0);
    add_backend(next, b, NULL);
    p = start(cfg);
    g_evproxy = p;
    assert_int_equal(pp_proxy_reload(p, next), 0);
    g_evproxy = NULL;
    assert_int_equal(g_added_events, 1);
    assert_int_equal(g_stop_rc, PP_ESTATE);
    assert_int_equal(g_add_rc, PP_ESTATE);
    assert_int_equal(pp_proxy_state(p), PP_STATE_RUNNING);
    ask(p, "/echo", out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_int_equal(pp_proxy_backend_count(p), 2);
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
    pp_config_free(cfg);
    pp_config_free(next);
    echo_server_stop(a);
    echo_server_stop(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_routes_and_groups),
        cmocka_unit_test(test_waiting_request_keeps_its_route),
        cmocka_unit_test(test_reload_replaces_runtime_backends),
        cmocka_unit_test(test_reload_misuse),
        cmocka_unit_test(test_many_reloads_keep_the_count),
        cmocka_unit_test(test_swap_while_the_worker_is_busy),
        cmocka_unit_test(test_swap_with_other_backend_at_limit),
        cmocka_unit_test(test_replaced_group_keeps_health),
        cmocka_unit_test(test_callbacks_during_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
