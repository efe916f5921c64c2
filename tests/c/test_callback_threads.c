/* Callbacks on every thread of the proxy: pp_proxy_stop and pp_proxy_free called from inside a
 * callback on the health checker's and the DNS watcher's threads are refused with PP_ESTATE
 * (as on workers), and runtime backend changes racing pp_proxy_stop are safe. Public API only;
 * host names ending in .pp-test are answered by tests/support/fake_resolver.c, linked into this
 * program (its getaddrinfo comes first) from the file named by $PP_FAKE_HOSTS. */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* What a callback saw when it tried to stop and free the proxy from its thread. */
typedef struct {
    pp_proxy *proxy;
    int want_type;        /* the event that triggers the attempt */
    const char *want_in;  /* ... whose address contains this */
    int done;             /* written once by the callback, then read by the test; mu */
    int stop_rc, free_rc;
    char thread[16];
    char message[256];
    pthread_mutex_t mu;
} attempt;

static void on_event(void *userdata, const pp_event *ev) {
    attempt *a = userdata;
    if (ev->type != a->want_type || !strstr(ev->address, a->want_in)) return;
    pthread_mutex_lock(&a->mu);
    if (!a->done) {
        a->stop_rc = pp_proxy_stop(a->proxy, 0);
        snprintf(a->message, sizeof a->message, "%s", pp_last_error());
        a->free_rc = pp_proxy_free(a->proxy);
        pthread_getname_np(pthread_self(), a->thread, sizeof a->thread);
        a->done = 1;
    }
    pthread_mutex_unlock(&a->mu);
}

static int wait_done(attempt *a) {
    int i, done = 0;
    for (i = 0; i < 1000 && !done; i++) { /* 20 s at most */
        pthread_mutex_lock(&a->mu);
        done = a->done;
        pthread_mutex_unlock(&a->mu);
        if (!done) sleep_ms(20);
    }
    return done;
}

static void run_attempt(pp_config *cfg, attempt *a, const char *thread_name) {
    pthread_mutex_init(&a->mu, NULL);
    assert_int_equal(pp_config_set_event_callback(cfg, on_event, a), 0);
    assert_int_equal(pp_proxy_new(&a->proxy, cfg), 0);
    assert_int_equal(pp_proxy_start(a->proxy), 0);
    assert_true(wait_done(a));
    assert_string_equal(a->thread, thread_name); /* the callback ran where the test means it to */
    assert_int_equal(a->stop_rc, PP_ESTATE);
    if (!strstr(a->message, "not allowed from a callback")) fail_msg("message: %s", a->message);
    assert_int_equal(a->free_rc, PP_ESTATE);
    assert_int_equal(pp_proxy_state(a->proxy), PP_STATE_RUNNING); /* untouched */
    assert_int_equal(pp_proxy_stop(a->proxy, 0), 0);
    assert_int_equal(pp_proxy_free(a->proxy), 0);
    pthread_mutex_destroy(&a->mu);
}

static pp_config *base_config(void) {
    pp_config *cfg = NULL;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    return cfg;
}

/* PP_EVENT_BACKEND_UNHEALTHY comes from the health checker's thread. */
static void test_stop_refused_on_health_thread(void **state) {
    attempt a;
    pp_config *cfg = base_config();
    (void)state;
    memset(&a, 0, sizeof a);
    a.want_type = PP_EVENT_BACKEND_UNHEALTHY;
    a.want_in = "127.0.0.1:9";
    assert_int_equal(pp_config_set(cfg, "health_check", "tcp"), 0);
    assert_int_equal(pp_config_set(cfg, "health_interval", "100ms"), 0);
    assert_int_equal(pp_config_set(cfg, "health_fall", "1"), 0);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:9", 1), 0); /* nothing listens */
    run_attempt(cfg, &a, "pp-health");
    pp_config_free(cfg);
}

static char hosts_path[64];

/* A backend a DNS answer adds is reported from the DNS watcher's thread. */
static void test_stop_refused_on_dns_thread(void **state) {
    attempt a;
    pp_config *cfg = base_config();
    (void)state;
    memset(&a, 0, sizeof a);
    a.want_type = PP_EVENT_BACKEND_ADDED;
    a.want_in = "cb.pp-test:9/";
    assert_int_equal(pp_config_add_backend(cfg, "cb.pp-test:9", 1), 0);
    run_attempt(cfg, &a, "pp-dns");
    pp_config_free(cfg);
}

/* Backends added and removed from another thread while pp_proxy_stop runs: each call either
 * works or says the proxy was stopped; nothing signals a handle the stop closed (the health
 * checker's wake-up used to race its close). Under TSan/ASan this is where it would show. */
typedef struct {
    pp_proxy *proxy;
    atomic_int stop;
    int added, refused, other;
} churner;

static void *churn(void *arg) {
    churner *c = arg;
    int i;
    for (i = 0; i < 400 && !atomic_load(&c->stop); i++) {
        int id = pp_proxy_add_backend(c->proxy, "127.0.0.1:9", 1);
        if (id >= 0) {
            c->added++;
            if (pp_proxy_remove_backend(c->proxy, id) != 0 && pp_proxy_state(c->proxy) != PP_STATE_STOPPED) c->other++;
        } else if (id == PP_ESTATE) {
            c->refused++;
            break;
        } else {
            c->other++;
        }
    }
    return NULL;
}

static void test_backend_changes_race_stop(void **state) {
    int round;
    (void)state;
    for (round = 0; round < 10; round++) {
        pp_config *cfg = base_config();
        churner c;
        pthread_t t;
        memset(&c, 0, sizeof c);
        atomic_init(&c.stop, 0);
        assert_int_equal(pp_config_set(cfg, "health_check", "tcp"), 0);
        assert_int_equal(pp_config_set(cfg, "health_interval", "100ms"), 0);
        assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:9", 1), 0);
        assert_int_equal(pp_proxy_new(&c.proxy, cfg), 0);
        pp_config_free(cfg);
        assert_int_equal(pp_proxy_start(c.proxy), 0);
        assert_int_equal(pthread_create(&t, NULL, churn, &c), 0);
        sleep_ms(round * 3); /* stop at different points of the churn */
        assert_int_equal(pp_proxy_stop(c.proxy, 0), 0);
        atomic_store(&c.stop, 1);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(c.other, 0);
        assert_int_equal(pp_proxy_free(c.proxy), 0);
    }
}

static int setup(void **state) {
    FILE *f;
    int fd;
    (void)state;
    snprintf(hosts_path, sizeof hosts_path, "/tmp/pp-cb-hosts-XXXXXX");
    fd = mkstemp(hosts_path);
    if (fd < 0) return -1;
    f = fdopen(fd, "w");
    fprintf(f, "cb.pp-test 127.0.0.1\n");
    fclose(f);
    setenv("PP_FAKE_HOSTS", hosts_path, 1);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(hosts_path);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_refused_on_health_thread),
        cmocka_unit_test(test_stop_refused_on_dns_thread),
        cmocka_unit_test(test_backend_changes_race_stop),
    };
    return cmocka_run_group_tests_name("c_callback_threads", tests, setup, teardown);
}
