/* Hooks through real sockets, from C through the public header: a request hook that reads,
 * changes and routes, answers, fails, pauses and is resumed from another thread; a response
 * hook; a tcp connect hook; and the misuse each entry point refuses. */
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
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "echo_server.h"

#define WAIT_MS 10000 /* upper bound for any wait: only reached when something is broken */

/* What the hooks of one test share with it (hooks run on worker threads). */
typedef struct hook_state {
    pthread_mutex_t mu;
    int calls;
    int mode;                   /* what the request hook does, per test */
    uint64_t token;             /* its pause's */
    int backend_id;
    char seen_method[16], seen_target[64], seen_client[64], seen_agent[64];
    char seen_upstream[64], seen_host_field[64], seen_client_host[64];
    int field_rcs[12];          /* return codes of the misuse calls */
    int adds_before_cap;
    char log[512];              /* the last warning logged */
} hook_state;

enum { MODE_EDIT, MODE_GROUP, MODE_UNKNOWN_GROUP, MODE_BACKEND, MODE_RESPOND, MODE_FAIL, MODE_PAUSE, MODE_MISUSE,
       MODE_ROUTED };

static hook_state g;

static void on_log(void *ud, int level, const char *msg) {
    (void)ud;
    if (level > PP_LOG_WARN) return;
    pthread_mutex_lock(&g.mu);
    snprintf(g.log, sizeof g.log, "%s", msg);
    pthread_mutex_unlock(&g.mu);
}

static int g_other_thread_rc;
static void *other_thread(void *ex) {
    g_other_thread_rc = pp_exchange_field_count(ex);
    return NULL;
}

static int request_hook(void *ud, pp_exchange *ex, const pp_request_info *info) {
    hook_state *st = ud;
    const char *agent;
    pthread_mutex_lock(&st->mu);
    st->calls++;
    snprintf(st->seen_method, sizeof st->seen_method, "%s", info->method);
    snprintf(st->seen_target, sizeof st->seen_target, "%s", info->target);
    snprintf(st->seen_client, sizeof st->seen_client, "%s", info->client);
    agent = pp_exchange_find_field(ex, "user-agent");
    snprintf(st->seen_agent, sizeof st->seen_agent, "%s", agent ? agent : "");
    pthread_mutex_unlock(&st->mu);
    switch (st->mode) {
    case MODE_EDIT:
        /* reads two fields, sets one: the case the benchmark measures */
        if (pp_exchange_find_field(ex, "X-Tenant") && pp_exchange_find_field(ex, "Accept")) {
            pp_exchange_set_field(ex, "X-Tenant-Checked", "yes");
        }
        pp_exchange_remove_field(ex, "X-Secret");
        pp_exchange_add_field(ex, "X-Added", "1");
        pp_exchange_set_field(ex, "X-User", "alice"); /* survives a client's "Connection: X-User" */
        pp_exchange_set_target(ex, "/echo/rewritten");
        return 0;
    case MODE_GROUP: return pp_exchange_set_group(ex, "api") == 0 ? 0 : -1;
    case MODE_UNKNOWN_GROUP: pp_exchange_set_group(ex, "nowhere"); return 0;
    case MODE_BACKEND: return pp_exchange_set_backend(ex, st->backend_id);
    case MODE_RESPOND: {
        static const char *const fields[] = {"WWW-Authenticate", "Bearer", "X-Why", "no token", NULL};
        return pp_exchange_respond(ex, 401, fields, "denied", 6);
    }
    case MODE_FAIL: return -7;
    case MODE_PAUSE:
        if (info->resumes == 0) {
            uint64_t t = 0;
            int rc = pp_exchange_pause(ex, &t);
            pthread_mutex_lock(&st->mu);
            st->token = t;
            pthread_mutex_unlock(&st->mu);
            return rc;
        }
        pp_exchange_set_field(ex, "X-Auth", info->token == st->token ? "resumed" : "wrong token");
        return 0;
    case MODE_ROUTED: { /* a route rewrote the target and Host: the hook sees both, and its Host wins */
        const char *h = pp_exchange_find_field(ex, "Host");
        pthread_mutex_lock(&st->mu);
        snprintf(st->seen_upstream, sizeof st->seen_upstream, "%s", info->upstream_target);
        snprintf(st->seen_host_field, sizeof st->seen_host_field, "%s", h ? h : "");
        snprintf(st->seen_client_host, sizeof st->seen_client_host, "%s", info->host);
        pthread_mutex_unlock(&st->mu);
        return pp_exchange_set_field(ex, "Host", "tenant.example");
    }
    case MODE_MISUSE:
        st->field_rcs[0] = pp_exchange_set_field(ex, "Content-Length", "0");
        st->field_rcs[1] = pp_exchange_set_field(ex, "Bad Name", "x");
        st->field_rcs[2] = pp_exchange_set_field(ex, "X-Split", "a\r\nX-Injected: 1");
        st->field_rcs[3] = pp_exchange_remove_field(ex, "X-Not-There");
        st->field_rcs[4] = pp_exchange_respond(ex, 99, NULL, NULL, 0);
        st->field_rcs[5] = pp_exchange_set_backend(ex, 9999);  /* fails the request: 500 */
        st->field_rcs[6] = pp_exchange_set_target(ex, "has space");
        st->field_rcs[7] = pp_exchange_set_field(NULL, "a", "b");
        st->field_rcs[8] = pp_exchange_set_target(ex, "http://internal.admin/secret"); /* origin form only */
        st->field_rcs[9] = pp_exchange_add_field(ex, "Host", "evil.example");       /* one Host only */
        {
            pthread_t th;
            pthread_create(&th, NULL, other_thread, ex); /* a handle passed to another thread */
            pthread_join(th, NULL);
            st->field_rcs[10] = g_other_thread_rc;
        }
        {
            static char big[8001];
            int i, rc = 0;
            memset(big, 'v', sizeof big - 1);
            for (i = 0; i < 100 && rc == 0; i++) rc = pp_exchange_add_field(ex, "X-Big", big);
            st->field_rcs[11] = rc;
            st->adds_before_cap = i - 1;
        }
        return 0;
    default: return 0;
    }
}

static int response_hook(void *ud, pp_exchange *ex, const pp_response_info *info) {
    (void)ud;
    if (info->status != 200) return 0;
    pp_exchange_remove_field(ex, "X-Backend-Port");
    pp_exchange_add_field(ex, "X-Resp", "seen");
    return pp_exchange_set_target(ex, "/no") == PP_ESTATE ? 0 : -1; /* a request-only call refused */
}

static pp_proxy *start(const char *mode, const int *ports, const char *const *groups, int n, int hooks,
                       const char *response_timeout) {
    pp_config *cfg;
    pp_proxy *p;
    char spec[128];
    int i;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "mode", mode), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_set(cfg, "retries", "0"), 0);
    if (response_timeout) assert_int_equal(pp_config_set(cfg, "response_timeout", response_timeout), 0);
    for (i = 0; i < n; i++) {
        snprintf(spec, sizeof spec, "127.0.0.1:%d%s%s", ports[i], groups[i] ? ",group=" : "", groups[i] ? groups[i] : "");
        assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
    }
    assert_int_equal(pp_config_set_log_callback(cfg, on_log, NULL, PP_LOG_WARN), 0);
    if (hooks & 1) assert_int_equal(pp_config_set_request_hook(cfg, request_hook, &g), 0);
    if (hooks & 2) assert_int_equal(pp_config_set_response_hook(cfg, response_hook, &g), 0);
    assert_int_equal(pp_proxy_new(&p, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(p), 0);
    return p;
}

static void stop_free(pp_proxy *p) {
    assert_int_equal(pp_proxy_stop(p, 0), 0);
    assert_int_equal(pp_proxy_free(p), 0);
}

/* One request on its own connection (Connection: close): the whole response, NUL-terminated. */
static void exchange(pp_proxy *p, const char *target, const char *fields, char *out, size_t cap) {
    char req[1024];
    long got = 0, n;
    int fd = test_dial(pp_proxy_local_port(p));
    assert_true(fd >= 0);
    n = snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: test\r\nUser-Agent: hook-test\r\nAccept: */*\r\n%sConnection: close\r\n\r\n",
                 target, fields ? fields : "");
    assert_int_equal(test_write_all(fd, req, n), 0);
    while ((size_t)got < cap - 1 && (n = test_read_exact(fd, out + got, (long)(cap - 1 - (size_t)got), WAIT_MS)) > 0) {
        got += n;
    }
    out[got] = '\0';
    close(fd);
}

static void reset(int mode) {
    pthread_mutex_lock(&g.mu);
    g.calls = 0;
    g.mode = mode;
    g.token = 0;
    g.log[0] = '\0';
    pthread_mutex_unlock(&g.mu);
}

static void test_request_hook_edits(void **state) {
    (void)state;
    echo_server *b = echo_server_start_http(0);
    int port = echo_server_port(b);
    const char *groups[] = {NULL};
    char out[8192];
    pp_proxy *p = start("http", &port, groups, 1, 3, NULL);
    reset(MODE_EDIT);
    exchange(p, "/echo/original?q=1", "X-Tenant: t1\r\nX-Secret: s\r\nX-User: mallory\r\nConnection: X-User\r\n", out,
             sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "GET /echo/rewritten HTTP/1.1\r\n")); /* the target the backend got */
    assert_non_null(strstr(out, "X-Tenant-Checked: yes\r\n"));
    assert_non_null(strstr(out, "X-Added: 1\r\n"));
    assert_null(strstr(out, "X-Secret"));
    assert_non_null(strstr(out, "X-User: alice\r\n"));
    assert_null(strstr(out, "mallory"));
    assert_non_null(strstr(out, "X-Resp: seen\r\n")); /* the response hook's */
    assert_null(strstr(out, "X-Backend-Port"));
    assert_string_equal(g.seen_method, "GET");
    assert_string_equal(g.seen_target, "/echo/original?q=1");
    assert_string_equal(g.seen_agent, "hook-test");
    assert_non_null(strstr(g.seen_client, "127.0.0.1:"));
    assert_int_equal(g.calls, 1);
    stop_free(p);
    echo_server_stop(b);
}

static void test_request_hook_routes(void **state) {
    (void)state;
    echo_server *a = echo_server_start_http(0), *b = echo_server_start_http(0);
    int ports[2] = {echo_server_port(a), echo_server_port(b)};
    const char *groups[] = {NULL, "api"};
    char out[8192], want[64];
    pp_proxy *p = start("http", ports, groups, 2, 1, NULL);

    reset(MODE_GROUP);
    exchange(p, "/echo", NULL, out, sizeof out);
    snprintf(want, sizeof want, "X-Backend-Port: %d\r\n", ports[1]);
    assert_non_null(strstr(out, want)); /* the group the hook picked */

    reset(MODE_BACKEND);
    g.backend_id = 0;
    exchange(p, "/echo", NULL, out, sizeof out);
    snprintf(want, sizeof want, "X-Backend-Port: %d\r\n", ports[0]);
    assert_non_null(strstr(out, want));

    reset(MODE_UNKNOWN_GROUP);
    exchange(p, "/echo", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 500"));
    assert_non_null(strstr(g.log, "'nowhere'")); /* the log line names it */

    reset(MODE_FAIL);
    exchange(p, "/echo", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 500"));
    reset(MODE_GROUP); /* the worker keeps serving */
    exchange(p, "/echo", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));

    reset(MODE_RESPOND);
    {
        long before = echo_server_accepted(a) + echo_server_accepted(b);
        exchange(p, "/echo", NULL, out, sizeof out);
        assert_non_null(strstr(out, "HTTP/1.1 401 Unauthorized\r\n"));
        assert_non_null(strstr(out, "WWW-Authenticate: Bearer\r\n"));
        assert_non_null(strstr(out, "\r\n\r\ndenied"));
        assert_int_equal(echo_server_accepted(a) + echo_server_accepted(b), before); /* no backend asked */
    }

    reset(MODE_MISUSE);
    exchange(p, "/echo", NULL, out, sizeof out);
    assert_int_equal(g.field_rcs[0], PP_EINVAL);
    assert_int_equal(g.field_rcs[1], PP_EINVAL);
    assert_int_equal(g.field_rcs[2], PP_EINVAL);
    assert_int_equal(g.field_rcs[3], PP_ENOTFOUND);
    assert_int_equal(g.field_rcs[4], PP_EINVAL);
    assert_int_equal(g.field_rcs[5], PP_ENOTFOUND);
    assert_int_equal(g.field_rcs[6], PP_EINVAL);
    assert_int_equal(g.field_rcs[7], PP_EINVAL);
    assert_int_equal(g.field_rcs[8], PP_EINVAL);
    assert_int_equal(g.field_rcs[9], PP_EINVAL);
    assert_int_equal(g.field_rcs[10], PP_ESTATE);
    assert_int_equal(g.field_rcs[11], PP_EINVAL); /* max_header_size (64 KiB) reached */
    assert_true(g.adds_before_cap >= 6 && g.adds_before_cap < 10);
    assert_non_null(strstr(out, "HTTP/1.1 500")); /* the unknown backend */
    assert_null(strstr(out, "X-Injected"));
    stop_free(p);
    echo_server_stop(a);
    echo_server_stop(b);
}

typedef struct resumer {
    pp_proxy *p;
    int rc, again;
} resumer;

static void *resume_later(void *arg) {
    resumer *r = arg;
    uint64_t t = 0;
    int i;
    for (i = 0; i < WAIT_MS && t == 0; i++) { /* until the hook has paused */
        pthread_mutex_lock(&g.mu);
        t = g.token;
        pthread_mutex_unlock(&g.mu);
        if (t == 0) usleep(1000);
    }
    usleep(50 * 1000);
    r->rc = pp_exchange_resume(r->p, t);
    r->again = pp_exchange_resume(r->p, t); /* twice: refused */
    return NULL;
}

static void test_pause_and_resume(void **state) {
    (void)state;
    echo_server *b = echo_server_start_http(0);
    int port = echo_server_port(b);
    const char *groups[] = {NULL};
    char out[8192];
    pthread_t th;
    resumer r = {0, 0, 0};
    uint64_t t;
    int fd, i, rc = 0;
    pp_stats st;
    /* A long response_timeout: a loaded machine must not turn the resume into a 504. */
    pp_proxy *p = start("http", &port, groups, 1, 1, "30s"), *quick;

    reset(MODE_PAUSE);
    r.p = p;
    assert_int_equal(pthread_create(&th, NULL, resume_later, &r), 0);
    exchange(p, "/echo", NULL, out, sizeof out);
    pthread_join(th, NULL);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.again, PP_ESTATE);
    assert_non_null(strstr(out, "HTTP/1.1 200"));
    assert_non_null(strstr(out, "X-Auth: resumed\r\n")); /* the second call, on the worker */
    assert_int_equal(g.calls, 2);
    assert_int_equal(pp_exchange_resume(p, 123456789), PP_ESTATE); /* never given */

    /* Nobody resumes: response_timeout answers 504, and the token is dead after. */
    reset(MODE_PAUSE);
    quick = start("http", &port, groups, 1, 1, "300ms");
    exchange(quick, "/echo", NULL, out, sizeof out);
    stop_free(quick);
    assert_non_null(strstr(out, "HTTP/1.1 504"));
    pthread_mutex_lock(&g.mu);
    t = g.token;
    pthread_mutex_unlock(&g.mu);
    assert_true(t != 0);
    assert_int_equal(pp_exchange_resume(p, t), PP_ESTATE); /* another proxy's, and ended: unique tokens */

    /* The client leaves (a reset) while paused: resuming then is refused, and nothing breaks.
     * (A plain close reads as a half-close after a whole request, which is still answered.) */
    reset(MODE_PAUSE);
    st.struct_size = sizeof st;
    assert_int_equal(pp_proxy_stats(p, &st), 0);
    fd = test_dial(pp_proxy_local_port(p));
    assert_true(fd >= 0);
    assert_int_equal(test_write_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 31), 0);
    for (i = 0; i < WAIT_MS; i++) {
        pthread_mutex_lock(&g.mu);
        t = g.token;
        pthread_mutex_unlock(&g.mu);
        if (t) break;
        usleep(1000);
    }
    assert_true(t != 0);
    {
        uint64_t finished = st.sessions_finished;
        struct linger lg = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        for (i = 0; i < WAIT_MS; i++) {
            assert_int_equal(pp_proxy_stats(p, &st), 0);
            if (st.sessions_finished > finished) break;
            usleep(1000);
        }
        assert_true(st.sessions_finished > finished);
    }
    rc = pp_exchange_resume(p, t);
    assert_int_equal(rc, PP_ESTATE);
    reset(MODE_EDIT); /* still serving */
    exchange(p, "/echo", NULL, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 200"));

    /* A stop while paused answers the paused exchange 503 at once, not at the drain's end. */
    reset(MODE_PAUSE);
    fd = test_dial(pp_proxy_local_port(p));
    assert_true(fd >= 0);
    assert_int_equal(test_write_all(fd, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 31), 0);
    for (i = 0, t = 0; i < WAIT_MS && t == 0; i++) {
        pthread_mutex_lock(&g.mu);
        t = g.token;
        pthread_mutex_unlock(&g.mu);
        if (t == 0) usleep(1000);
    }
    assert_true(t != 0);
    assert_int_equal(pp_proxy_stop(p, 30000), 0);
    {
        long n = test_read_exact(fd, out, 12, WAIT_MS);
        assert_int_equal(n, 12);
        assert_memory_equal(out, "HTTP/1.1 503", 12);
    }
    close(fd);
    assert_int_equal(pp_proxy_free(p), 0);
    echo_server_stop(b);
}

static int reject_all(void *ud, pp_exchange *ex, const pp_connect_info *info) {
    (void)ud;
    (void)ex;
    return strstr(info->client, "127.0.0.1:") ? 1 : 0;
}

static int to_group_g(void *ud, pp_exchange *ex, const pp_connect_info *info) {
    (void)ud;
    (void)info;
    assert_int_equal(pp_exchange_field_count(ex), PP_ESTATE); /* no fields in tcp mode */
    return pp_exchange_set_group(ex, "g");
}

static void test_hook_after_route(void **state) {
    (void)state;
    echo_server *b = echo_server_start_http(0);
    pp_config *cfg;
    pp_proxy *p;
    char spec[64], out[8192];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    snprintf(spec, sizeof spec, "127.0.0.1:%d,host=backend.internal", echo_server_port(b));
    assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/api/ strip_prefix host_rewrite=internal.example -> default"), 0);
    assert_int_equal(pp_config_set_request_hook(cfg, request_hook, &g), 0);
    assert_int_equal(pp_proxy_new(&p, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(p), 0);
    reset(MODE_ROUTED);
    exchange(p, "/api/echo", NULL, out, sizeof out);
    assert_string_equal(g.seen_upstream, "/echo");              /* the route's strip_prefix */
    assert_string_equal(g.seen_host_field, "internal.example"); /* the route's host_rewrite */
    assert_string_equal(g.seen_client_host, "test");            /* what the client sent */
    assert_non_null(strstr(out, "GET /echo HTTP/1.1\r\n"));
    assert_non_null(strstr(out, "Host: tenant.example\r\n"));  /* the hook's, over route and backend */
    assert_null(strstr(out, "internal"));
    stop_free(p);
    echo_server_stop(b);
}

static void test_connect_hook(void **state) {
    (void)state;
    echo_server *a = echo_server_start(0), *b = echo_server_start(0);
    int ports[2] = {echo_server_port(a), echo_server_port(b)};
    pp_config *cfg;
    pp_proxy *p;
    char spec[64], buf[8];
    int fd, round;
    for (round = 0; round < 2; round++) {
        if (round == 1) { /* the default group's backend is gone: an echo can only come from group g's */
            echo_server_stop(a);
            a = NULL;
        }
        assert_int_equal(pp_config_new(&cfg), 0);
        assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
        assert_int_equal(pp_config_set(cfg, "pool_min_idle", "0"), 0);
        snprintf(spec, sizeof spec, "127.0.0.1:%d", ports[0]);
        assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
        snprintf(spec, sizeof spec, "127.0.0.1:%d,group=g", ports[1]);
        assert_int_equal(pp_config_set(cfg, "backend", spec), 0);
        assert_int_equal(pp_config_set_connect_hook(cfg, round == 0 ? reject_all : to_group_g, NULL), 0);
        assert_int_equal(pp_proxy_new(&p, cfg), 0);
        pp_config_free(cfg);
        assert_int_equal(pp_proxy_start(p), 0);
        {
            fd = test_dial(pp_proxy_local_port(p));
            assert_true(fd >= 0);
            assert_int_equal(test_write_all(fd, "ping", 4), 0);
            if (round == 0) {
                assert_int_equal(test_wait_eof(fd, WAIT_MS), 1); /* rejected: closed, nothing echoed */
            } else {
                assert_int_equal(test_read_exact(fd, buf, 4, WAIT_MS), 4);
                assert_memory_equal(buf, "ping", 4);
            }
            close(fd);
        }
        stop_free(p);
    }
    echo_server_stop(b);
}

static void test_hook_arguments(void **state) {
    (void)state;
    pp_config *cfg;
    uint64_t t;
    assert_int_equal(pp_config_set_request_hook(NULL, request_hook, NULL), PP_EINVAL);
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set_request_hook(cfg, NULL, NULL), 0); /* clears */
    pp_config_free(cfg);
    assert_int_equal(pp_exchange_pause(NULL, &t), PP_EINVAL);
    assert_int_equal(pp_exchange_field_count(NULL), PP_EINVAL);
    assert_null(pp_exchange_find_field(NULL, "a"));
    assert_int_equal(pp_exchange_resume(NULL, 1), PP_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_hook_edits),
        cmocka_unit_test(test_request_hook_routes),
        cmocka_unit_test(test_pause_and_resume),
        cmocka_unit_test(test_hook_after_route),
        cmocka_unit_test(test_connect_hook),
        cmocka_unit_test(test_hook_arguments),
    };
    pthread_mutex_init(&g.mu, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
