/* The stats export under concurrent change, through the public header only: /metrics and /stats
 * scraped in a loop while backends are added from another thread, and the derived
 * no_backend_total{reason="other"} while no-backend refusals are being counted. Each reads one
 * snapshot, so what one scrape says adds up; run under ASan it also proves no read past the
 * snapshot. Every loop is bounded in count and in time. */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "echo_server.h"

#define WAIT_MS 10000 /* upper bound for any wait: only reached when something is broken */

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The whole Prometheus text (malloc'd, NUL-terminated); it may grow between the two calls. */
static char *metrics_of(pp_proxy *p) {
    for (int attempt = 0; attempt < 100; attempt++) {
        size_t len = 0;
        int rc = pp_proxy_metrics(p, NULL, 0, &len);
        assert_true(rc == 0 || rc == PP_ETRUNC);
        size_t size = len + 4096;
        char *buf = malloc(size);
        assert_non_null(buf);
        rc = pp_proxy_metrics(p, buf, size, &len);
        if (rc == 0) return buf;
        free(buf);
        assert_int_equal(rc, PP_ETRUNC);
    }
    fail_msg("the metrics text kept growing");
    return NULL;
}

/* Lines of `text` that start with `prefix`. */
static int count_lines(const char *text, const char *prefix) {
    int n = 0;
    size_t plen = strlen(prefix);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, prefix, plen) == 0) n++;
    }
    return n;
}

/* Occurrences of `needle` in `text`. */
static int count_substr(const char *text, const char *needle) {
    int n = 0;
    for (const char *at = strstr(text, needle); at; at = strstr(at + 1, needle)) n++;
    return n;
}

/* The value of the sample line that starts with `series ` (-1 when missing). */
static double sample_of(const char *text, const char *series) {
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *at = strstr(text, key);
    return at ? strtod(at + strlen(key), NULL) : -1;
}

/* GET `path` from the admin listener; returns the malloc'd response (head and body). */
static char *admin_get(int port, const char *path) {
    char req[128];
    int fd = test_dial(port);
    assert_true(fd >= 0);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path);
    assert_int_equal(test_write_all(fd, req, (long)strlen(req)), 0);
    size_t cap = 1 << 16, got = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    /* The admin listener answers with Connection: close: read until it closes. */
    for (;;) {
        if (got + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        long r = test_read_exact(fd, buf + got, 4096, WAIT_MS);
        if (r <= 0) break;
        got += (size_t)r;
        if (r < 4096) break; /* test_read_exact stops short only at EOF (or the bound) */
    }
    close(fd);
    buf[got] = '\0';
    return buf;
}

typedef struct adder {
    pp_proxy *proxy;
    char address[32];
    int target;        /* backends to add */
    atomic_int added;  /* so far (the scraper reads it as it goes) */
    atomic_int stop;
} adder;

static void *add_backends(void *arg) {
    adder *a = arg;
    uint64_t deadline = now_ms() + 20000;
    while (!a->stop && a->added < a->target && now_ms() < deadline) {
        if (pp_proxy_add_backend(a->proxy, a->address, 1) < 0) break;
        a->added++;
        usleep(1000); /* about one add per scrape of a few hundred backends: they interleave */
    }
    return NULL;
}

/* Backends added while /metrics and /stats are read in a loop: every backend one scrape names
 * has every one of its series (the export sized its snapshot once and read only that), and the
 * JSON lists each backend once with all its keys. Under ASan a read past the snapshot aborts. */
static void test_scrape_while_backends_added(void **state) {
    (void)state;
    echo_server *es = echo_server_start(0);
    pp_config *cfg;
    pp_proxy *proxy;
    adder a;
    pthread_t th;
    int scrapes = 0;
    memset(&a, 0, sizeof a);
    snprintf(a.address, sizeof a.address, "127.0.0.1:%d", echo_server_port(es));
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_set(cfg, "admin_listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_add_backend(cfg, a.address, 1), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    int admin = pp_proxy_admin_port(proxy);
    assert_true(admin > 0);

    a.proxy = proxy;
    a.target = 600;
    assert_int_equal(pthread_create(&th, NULL, add_backends, &a), 0);
    uint64_t deadline = now_ms() + 30000;
    while (now_ms() < deadline && scrapes < 5000) {
        int done = a.added >= a.target;
        char *m = metrics_of(proxy);
        int up = count_lines(m, "poolproxy_backend_up{");
        int closed_err = count_substr(m, ",reason=\"error\"} ");
        int opened = count_lines(m, "poolproxy_backend_connections_opened_total{");
        if (up < 1 || up != closed_err || up != opened) {
            fail_msg("scrape %d names %d backends in backend_up, %d in backend_connections_closed_total, "
                     "%d in backend_connections_opened_total",
                     scrapes, up, closed_err, opened);
        }
        free(m);
        if (scrapes % 4 == 0) {
            char *js = admin_get(admin, "/stats");
            assert_non_null(strstr(js, "HTTP/1.1 200 "));
            int ids = count_substr(js, "{\"id\":");
            int states = count_substr(js, ",\"state\":\"");
            if (ids < 1 || ids != states || !strstr(js, "]}\n")) {
                fail_msg("/stats lists %d backend ids and %d states", ids, states);
            }
            free(js);
        }
        scrapes++;
        if (done) break;
    }
    a.stop = 1;
    pthread_join(th, NULL);
    assert_true(a.added > 100); /* the adds really ran beside the scrapes */
    assert_int_equal(pp_proxy_backend_count(proxy), 1 + a.added);
    char *m = metrics_of(proxy);
    assert_int_equal(count_lines(m, "poolproxy_backend_up{"), 1 + a.added);
    free(m);
    print_message("%d scrapes while %d backends were added\n", scrapes, a.added);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    echo_server_stop(es);
}

typedef struct hammer {
    int port;
    atomic_int stop;
    long connections; /* the hammer's own; read after join */
} hammer;

static void *connect_loop(void *arg) {
    hammer *h = arg;
    uint64_t deadline = now_ms() + 30000;
    while (!h->stop && now_ms() < deadline && h->connections < 2000000) {
        int fd = test_dial(h->port);
        if (fd < 0) continue;
        test_wait_eof(fd, WAIT_MS); /* the proxy closes it: no backend */
        close(fd);
        h->connections++;
    }
    return NULL;
}

/* Every backend unhealthy, clients refused as fast as they come, /metrics read meanwhile: the
 * "other" reason (refusals minus the counted reasons) is never negative, i.e. never wraps to
 * 1.8e19, and never exceeds the refusals that scrape reports. */
static void test_no_backend_other_never_wraps(void **state) {
    (void)state;
    pp_config *cfg;
    pp_proxy *proxy;
    hammer h[2];
    pthread_t th[2];
    int i, scrapes = 0;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_set(cfg, "health_check", "tcp"), 0);
    assert_int_equal(pp_config_set(cfg, "health_interval", "100ms"), 0);
    assert_int_equal(pp_config_set(cfg, "health_timeout", "100ms"), 0);
    assert_int_equal(pp_config_set(cfg, "health_fall", "1"), 0);
    /* Many backends: the stats sum walks every pool, so counters are read far apart. Port 1 on
     * loopback refuses at once. */
    for (i = 0; i < 300; i++) assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:1", 1), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg);
    assert_int_equal(pp_proxy_start(proxy), 0);
    for (i = 0; i < WAIT_MS / 10; i++) {
        int b, healthy = 0;
        for (b = 0; b < 300; b++) {
            pp_backend_stats bs;
            bs.struct_size = sizeof bs;
            assert_int_equal(pp_proxy_backend_stats(proxy, b, &bs, NULL, 0), 0);
            healthy += bs.healthy != 0;
        }
        if (healthy == 0) break;
        usleep(10000);
    }
    assert_true(i < WAIT_MS / 10); /* every backend marked unhealthy */

    for (i = 0; i < 2; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].port = pp_proxy_local_port(proxy);
        assert_int_equal(pthread_create(&th[i], NULL, connect_loop, &h[i]), 0);
    }
    uint64_t deadline = now_ms() + 4000;
    while (now_ms() < deadline && scrapes < 100000) {
        char *m = metrics_of(proxy);
        double other = sample_of(m, "poolproxy_no_backend_total{reason=\"other\"}");
        double refused = sample_of(m, "poolproxy_connections_rejected_total{reason=\"no_backend\"}");
        if (other < 0 || refused < 0 || other > refused) {
            fail_msg("scrape %d: no_backend_total{reason=\"other\"} %.0f with %.0f refused for no backend", scrapes,
                     other, refused);
        }
        free(m);
        scrapes++;
    }
    for (i = 0; i < 2; i++) {
        h[i].stop = 1;
        pthread_join(th[i], NULL);
    }
    pp_stats st;
    st.struct_size = sizeof st;
    assert_int_equal(pp_proxy_stats(proxy, &st), 0);
    assert_true(st.no_backend_unhealthy > 100); /* the refusals really ran beside the scrapes */
    print_message("%d scrapes, %llu refusals (unhealthy)\n", scrapes, (unsigned long long)st.no_backend_unhealthy);
    assert_int_equal(pp_proxy_stop(proxy, 1000), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape_while_backends_added),
        cmocka_unit_test(test_no_backend_other_never_wraps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
