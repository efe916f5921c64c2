/* C API contract through the public header only: argument checks, every option's validation,
 * config files, lifecycle misuse, stats struct versioning. */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

static void assert_error_mentions(const char *needle) {
    const char *msg = pp_last_error();
    if (!strstr(msg, needle)) fail_msg("last error \"%s\" does not mention \"%s\"", msg, needle);
}

static pp_config *config_with_backend(void) {
    pp_config *cfg = NULL;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "2"), 0);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:9", 1), 0);
    return cfg;
}

static void test_version(void **state) {
    (void)state;
    char expect[32];
    assert_int_equal(pp_version(), PP_VERSION_HEX);
    snprintf(expect, sizeof expect, "%d.%d.%d", PP_VERSION_MAJOR, PP_VERSION_MINOR, PP_VERSION_PATCH);
    assert_string_equal(pp_version_string(), expect);
}

static void test_error_names(void **state) {
    (void)state;
    int code;
    assert_string_equal(pp_err_name(PP_EINVAL), "PP_EINVAL");
    assert_string_equal(pp_err_name(PP_EBADVALUE), "PP_EBADVALUE");
    for (code = -1; code > PP_ERRNO_LAST_; code--) {
        assert_string_not_equal(pp_strerror(code), "unknown error");
        assert_string_not_equal(pp_err_name(code), "PP_E?");
    }
    assert_string_equal(pp_strerror(12345), "unknown error");
    assert_string_equal(pp_err_name(-999), "PP_E?");
    assert_non_null(pp_last_error());
}

static void test_null_arguments(void **state) {
    (void)state;
    pp_config *cfg = config_with_backend();
    pp_proxy *proxy = NULL;
    pp_stats st;
    char buf[8];

    assert_int_equal(pp_config_new(NULL), PP_EINVAL);
    assert_error_mentions("out is NULL");
    assert_int_equal(pp_config_set(NULL, "workers", "1"), PP_EINVAL);
    assert_error_mentions("config is NULL");
    assert_int_equal(pp_config_set(cfg, NULL, "1"), PP_EINVAL);
    assert_int_equal(pp_config_set(cfg, "workers", NULL), PP_EINVAL);
    assert_error_mentions("workers");
    assert_int_equal(pp_config_get(cfg, "workers", NULL, 8), PP_EINVAL);
    assert_int_equal(pp_config_get(cfg, "workers", buf, 0), PP_EINVAL);
    assert_int_equal(pp_config_add_backend(cfg, NULL, 1), PP_EINVAL);
    assert_int_equal(pp_config_load_file(cfg, NULL), PP_EINVAL);
    assert_int_equal(pp_config_load_file(NULL, "/dev/null"), PP_EINVAL);
    assert_int_equal(pp_config_backend_count(NULL), PP_EINVAL);
    assert_int_equal(pp_config_set_log_callback(NULL, NULL, NULL, PP_LOG_INFO), PP_EINVAL);
    assert_int_equal(pp_config_set_log_callback(cfg, NULL, NULL, 9), PP_EINVAL);
    assert_int_equal(pp_config_set_event_callback(NULL, NULL, NULL), PP_EINVAL);
    assert_int_equal(pp_option_get_info(0, NULL), PP_EINVAL);
    pp_config_free(NULL); /* no-op */

    assert_int_equal(pp_proxy_new(NULL, cfg), PP_EINVAL);
    assert_int_equal(pp_proxy_new(&proxy, NULL), PP_EINVAL);
    assert_null(proxy);
    assert_int_equal(pp_proxy_start(NULL), PP_EINVAL);
    assert_int_equal(pp_proxy_stop(NULL, 0), PP_EINVAL);
    assert_int_equal(pp_proxy_free(NULL), 0);
    assert_int_equal(pp_proxy_state(NULL), PP_EINVAL);
    assert_int_equal(pp_proxy_local_port(NULL), PP_EINVAL);
    assert_int_equal(pp_proxy_local_address(NULL, buf, sizeof buf), PP_EINVAL);
    st.struct_size = sizeof st;
    assert_int_equal(pp_proxy_stats(NULL, &st), PP_EINVAL);

    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    assert_int_equal(pp_proxy_stats(proxy, NULL), PP_EINVAL);
    st.struct_size = 0;
    assert_int_equal(pp_proxy_stats(proxy, &st), PP_EINVAL);
    assert_error_mentions("struct_size");
    assert_int_equal(pp_proxy_worker_stats(proxy, 2, NULL), PP_EINVAL);
    {
        pp_worker_stats ws;
        pp_backend_stats bs;
        ws.struct_size = sizeof ws;
        bs.struct_size = sizeof bs;
        assert_int_equal(pp_proxy_worker_stats(proxy, 2, &ws), PP_EINVAL); /* workers = 2: 0..1 */
        assert_error_mentions("index 2");
        assert_int_equal(pp_proxy_worker_stats(proxy, -1, &ws), PP_EINVAL);
        assert_int_equal(pp_proxy_backend_stats(proxy, 1, &bs, NULL, 0), PP_EINVAL);
        assert_int_equal(pp_proxy_backend_stats(proxy, 0, &bs, buf, 4), PP_ETRUNC);
        assert_string_equal(buf, "127");
    }
    assert_int_equal(pp_proxy_free(proxy), 0);
    pp_config_free(cfg);
}

/* Every option in the table: its default is accepted, garbage and out-of-range values are
 * refused with an error naming the option, and a refused value leaves the old one. */
static void test_every_option_validates(void **state) {
    (void)state;
    size_t i, n = pp_option_count();
    pp_config *cfg;
    assert_true(n >= 14);
    assert_int_equal(pp_config_new(&cfg), 0);
    for (i = 0; i < n; i++) {
        pp_option_info info;
        char before[256], after[256], value[64], needle[96];
        info.struct_size = sizeof info;
        assert_int_equal(pp_option_get_info(i, &info), 0);
        assert_int_equal(info.struct_size, sizeof info);
        assert_non_null(info.help);
        assert_true(strlen(info.help) > 10);
        snprintf(needle, sizeof needle, "option '%s'", info.name);
        if (info.type == PP_OPT_BACKEND) {
            assert_int_equal(pp_config_set(cfg, info.name, "nonsense"), PP_EBADVALUE);
            assert_error_mentions(needle);
            assert_int_equal(pp_config_backend_count(cfg), 0);
            continue;
        }
        if (info.type == PP_OPT_LIST) { /* a group, a route: refused whole, naming the option and the text */
            assert_int_equal(pp_config_set(cfg, info.name, "not a value!"), PP_EBADVALUE);
            assert_error_mentions(needle);
            assert_error_mentions("not a value!");
            assert_int_equal(pp_config_get(cfg, info.name, before, sizeof before), 0);
            assert_string_equal(before, "");
            continue;
        }
        assert_int_equal(pp_config_set(cfg, info.name, info.default_text), 0);
        assert_int_equal(pp_config_get(cfg, info.name, before, sizeof before), 0);

        assert_int_equal(pp_config_set(cfg, info.name, "not a value!"), PP_EBADVALUE);
        assert_error_mentions(needle);
        assert_error_mentions("not a value!");
        if (info.type == PP_OPT_INT || info.type == PP_OPT_DURATION) {
            snprintf(value, sizeof value, "%lld", (long long)info.max + 1);
            assert_int_equal(pp_config_set(cfg, info.name, value), PP_EBADVALUE);
            assert_error_mentions(needle);
            if (info.min > 0) {
                snprintf(value, sizeof value, "%lld", (long long)info.min - 1);
                assert_int_equal(pp_config_set(cfg, info.name, value), PP_EBADVALUE);
            }
            assert_int_equal(pp_config_set(cfg, info.name, "-1"), PP_EBADVALUE);
            /* Beyond 64 bits (2^64 ms and a bit, in days): refused naming the range, not wrapped. */
            assert_int_equal(pp_config_set(cfg, info.name, info.type == PP_OPT_DURATION ? "213503982336d"
                                                                                          : "18446744073709551617"),
                             PP_EBADVALUE);
            assert_error_mentions(needle);
            snprintf(value, sizeof value, info.type == PP_OPT_DURATION ? "%lldms..%lldms" : "%lld..%lld",
                     (long long)info.min, (long long)info.max);
            assert_error_mentions(value);
            snprintf(value, sizeof value, "%lld", (long long)info.max);
            assert_int_equal(pp_config_set(cfg, info.name, value), 0);
            assert_int_equal(pp_config_set(cfg, info.name, info.default_text), 0);
        }
        if (info.type == PP_OPT_ENUM) {
            const char *bar = strchr(info.choices, '|');
            size_t len = bar ? (size_t)(bar - info.choices) : strlen(info.choices);
            snprintf(value, sizeof value, "%.*s", (int)len, info.choices);
            assert_int_equal(pp_config_set(cfg, info.name, value), 0);
            assert_error_mentions(needle); /* untouched by a success */
            assert_int_equal(pp_config_set(cfg, info.name, info.default_text), 0);
        }
        assert_int_equal(pp_config_get(cfg, info.name, after, sizeof after), 0);
        assert_string_equal(before, after);
    }
    assert_int_equal(pp_config_set(cfg, "no_such_option", "1"), PP_ENOOPT);
    assert_error_mentions("no_such_option");
    assert_int_equal(pp_option_get_info(n, &(pp_option_info){sizeof(pp_option_info), 0, 0, 0, 0, 0, 0, 0}),
                     PP_EINVAL);
    pp_config_free(cfg);
}

static void test_option_values_round_trip(void **state) {
    (void)state;
    pp_config *cfg;
    char buf[128];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "idle_timeout", "250ms"), 0);
    assert_int_equal(pp_config_get(cfg, "idle_timeout", buf, sizeof buf), 0);
    assert_string_equal(buf, "250ms");
    assert_int_equal(pp_config_set(cfg, "idle_timeout", "2s"), 0);
    assert_int_equal(pp_config_get(cfg, "idle_timeout", buf, sizeof buf), 0);
    assert_string_equal(buf, "2000ms");
    assert_int_equal(pp_config_set(cfg, "idle_timeout", "1m"), 0);
    assert_int_equal(pp_config_get(cfg, "idle_timeout", buf, sizeof buf), 0);
    assert_string_equal(buf, "60000ms");
    assert_int_equal(pp_config_set(cfg, "idle_timeout", "1.5s"), PP_EBADVALUE);
    assert_int_equal(pp_config_set(cfg, "lb", "least_conn"), 0);
    assert_int_equal(pp_config_get(cfg, "lb", buf, sizeof buf), 0);
    assert_string_equal(buf, "least_conn");
    assert_int_equal(pp_config_set(cfg, "lb", "fastest"), PP_EBADVALUE);
    assert_error_mentions("round_robin|least_conn|random");
    assert_int_equal(pp_config_set(cfg, "workers", "abc"), PP_EBADVALUE);
    assert_error_mentions("option 'workers': expected an integer in 0..256, got 'abc'");
    assert_int_equal(pp_config_set(cfg, "listen", "[::1]:0"), 0);
    assert_int_equal(pp_config_get(cfg, "listen", buf, sizeof buf), 0);
    assert_string_equal(buf, "[::1]:0");
    assert_int_equal(pp_config_get(cfg, "workers", buf, 1), PP_ETRUNC);
    assert_int_equal(pp_config_get(cfg, "nope", buf, sizeof buf), PP_ENOOPT);
    pp_config_free(cfg);
}

static void test_backend_addresses(void **state) {
    (void)state;
    pp_config *cfg;
    char buf[256];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:6379", 1), 0);
    assert_int_equal(pp_config_add_backend(cfg, "[::1]:5432", 3), 0);
    assert_int_equal(pp_config_add_backend(cfg, "localhost:11211", 1000), 0);
    assert_int_equal(pp_config_set(cfg, "backend", "10.1.2.3:80,weight=7"), 0);
    assert_int_equal(pp_config_backend_count(cfg), 4);
    assert_int_equal(pp_config_get(cfg, "backend", buf, sizeof buf), 0);
    assert_string_equal(buf, "127.0.0.1:6379, [::1]:5432,weight=3, localhost:11211,weight=1000, 10.1.2.3:80,weight=7");

    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1", 1), PP_EADDR);
    assert_error_mentions("host:port");
    assert_int_equal(pp_config_add_backend(cfg, "::1:80", 1), PP_EADDR);
    assert_error_mentions("brackets");
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:0", 1), PP_EADDR);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:65536", 1), PP_EADDR);
    assert_int_equal(pp_config_add_backend(cfg, "[::1:80", 1), PP_EADDR);
    assert_int_equal(pp_config_add_backend(cfg, "999.1.1.1:80", 1), PP_EADDR);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:80", 0), PP_EINVAL);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:80", 1001), PP_EINVAL);
    assert_int_equal(pp_config_set(cfg, "backend", "127.0.0.1:80,weight=0"), PP_EBADVALUE);
    assert_int_equal(pp_config_set(cfg, "backend", "127.0.0.1:80,wait=2"), PP_EBADVALUE);
    assert_int_equal(pp_config_backend_count(cfg), 4);
    pp_config_free(cfg);
}

/* Groups and routes through the option table; a group's backends added to a made proxy. */
static void test_groups_and_routes(void **state) {
    (void)state;
    pp_config *cfg;
    pp_proxy *proxy;
    char buf[512];
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_set(cfg, "mode", "http"), 0);
    assert_int_equal(pp_config_set(cfg, "listen", "127.0.0.1:0"), 0);
    assert_int_equal(pp_config_set(cfg, "workers", "1"), 0);
    assert_int_equal(pp_config_set(cfg, "backend", "127.0.0.1:9"), 0);
    assert_int_equal(pp_config_set(cfg, "group", "api lb=least_conn pool_max=4"), 0);
    assert_int_equal(pp_config_set(cfg, "group", "api response_timeout=5s"), 0); /* adds to it */
    assert_int_equal(pp_config_set(cfg, "backend", "127.0.0.1:10,group=api,pool_max=2,host=api.internal,weight=3"), 0);
    assert_int_equal(pp_config_set(cfg, "backend", "127.0.0.1:11,group=img"), 0); /* declares img */
    assert_int_equal(pp_config_set(cfg, "route", "host=api.example.com -> api"), 0);
    assert_int_equal(pp_config_set(cfg, "route", "path=/img/ strip_prefix -> img"), 0);
    assert_int_equal(pp_config_get(cfg, "group", buf, sizeof buf), 0);
    assert_string_equal(buf, "api lb=least_conn pool_max=4 response_timeout=5s\nimg");
    assert_int_equal(pp_config_get(cfg, "route", buf, sizeof buf), 0);
    assert_string_equal(buf, "host=api.example.com -> api\npath=/img/ strip_prefix -> img");
    assert_int_equal(pp_config_get(cfg, "backend", buf, sizeof buf), 0);
    assert_string_equal(buf, "127.0.0.1:9, 127.0.0.1:10,weight=3,group=api,pool_max=2,host=api.internal, 127.0.0.1:11,group=img");

    assert_int_equal(pp_config_set(cfg, "group", "default"), PP_EBADVALUE);
    assert_error_mentions("'default'");
    assert_int_equal(pp_config_set(cfg, "group", "api health_check=maybe"), PP_EBADVALUE);
    assert_error_mentions("option 'health_check'");
    assert_int_equal(pp_config_set(cfg, "route", "method=GET strip_prefix -> api"), PP_EBADVALUE);
    assert_error_mentions("option 'route'");

    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    assert_int_equal(pp_proxy_add_backend_spec(proxy, "127.0.0.1:12,group=nope"), PP_EBADVALUE);
    assert_error_mentions("no backend group named 'nope'");
    assert_int_equal(pp_proxy_add_backend_spec(proxy, "example.com:80,group=api"), PP_EADDR);
    assert_int_equal(pp_proxy_add_backend_spec(proxy, "127.0.0.1:12,weight=0"), PP_EBADVALUE);
    assert_int_equal(pp_proxy_add_backend_spec(proxy, NULL), PP_EINVAL);
    assert_int_equal(pp_proxy_add_backend_spec(proxy, "127.0.0.1:12,group=api"), 3);
    assert_int_equal(pp_proxy_backend_count(proxy), 4);
    pp_proxy_free(proxy);

    /* A route naming a group nobody declared is refused when the proxy is made. */
    assert_int_equal(pp_config_set(cfg, "route", "-> nowhere"), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), PP_EBADVALUE);
    assert_error_mentions("no backend group named 'nowhere'");
    pp_config_free(cfg);
}

static void test_config_file(void **state) {
    (void)state;
    char path[] = "/tmp/pp-test-config-XXXXXX";
    char buf[128];
    pp_config *cfg;
    FILE *f;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "# a comment\n\nworkers = 3\npool_max=12   # trailing comment\n"
               "backend = 127.0.0.1:7001\nbackend = 127.0.0.1:7002,weight=2\nqueue_timeout = 750ms\n");
    fclose(f);
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_config_load_file(cfg, path), 0);
    assert_int_equal(pp_config_get(cfg, "workers", buf, sizeof buf), 0);
    assert_string_equal(buf, "3");
    assert_int_equal(pp_config_get(cfg, "pool_max", buf, sizeof buf), 0);
    assert_string_equal(buf, "12");
    assert_int_equal(pp_config_get(cfg, "queue_timeout", buf, sizeof buf), 0);
    assert_string_equal(buf, "750ms");
    assert_int_equal(pp_config_backend_count(cfg), 2);

    /* A bad line: the error names file, line and option; nothing of the file is applied. */
    f = fopen(path, "w");
    fprintf(f, "workers = 5\n\npool_max = lots\n");
    fclose(f);
    assert_int_equal(pp_config_load_file(cfg, path), PP_EBADVALUE);
    assert_error_mentions(":3: option 'pool_max'");
    assert_int_equal(pp_config_get(cfg, "workers", buf, sizeof buf), 0);
    assert_string_equal(buf, "3");

    f = fopen(path, "w");
    fprintf(f, "just words\n");
    fclose(f);
    assert_int_equal(pp_config_load_file(cfg, path), PP_EBADVALUE);
    assert_error_mentions(":1: expected 'name = value'");
    unlink(path);
    assert_int_equal(pp_config_load_file(cfg, path), PP_EIO);
    assert_error_mentions(path);
    pp_config_free(cfg);
}

static void test_new_checks_options_together(void **state) {
    (void)state;
    pp_config *cfg;
    pp_proxy *proxy = NULL;
    assert_int_equal(pp_config_new(&cfg), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), PP_ENOBACKEND);
    assert_null(proxy);
    assert_int_equal(pp_config_add_backend(cfg, "127.0.0.1:9", 1), 0);
    assert_int_equal(pp_config_set(cfg, "pool_max", "4"), 0);
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", "5"), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), PP_EBADVALUE);
    assert_error_mentions("pool_min_idle");
    assert_int_equal(pp_config_set(cfg, "pool_min_idle", "4"), 0);
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    assert_int_equal(pp_proxy_free(proxy), 0);
    pp_config_free(cfg);
}

static void test_lifecycle_misuse(void **state) {
    (void)state;
    pp_config *cfg = config_with_backend();
    pp_proxy *proxy;
    char addr[64];
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    pp_config_free(cfg); /* the proxy copied what it needs */
    assert_int_equal(pp_proxy_state(proxy), PP_STATE_CREATED);
    assert_int_equal(pp_proxy_local_address(proxy, addr, sizeof addr), PP_ESTATE);
    assert_int_equal(pp_proxy_local_port(proxy), PP_ESTATE);
    assert_int_equal(pp_proxy_stop(proxy, 0), PP_ESTATE);
    assert_int_equal(pp_proxy_start(proxy), 0);
    assert_int_equal(pp_proxy_state(proxy), PP_STATE_RUNNING);
    assert_true(pp_proxy_local_port(proxy) > 0);
    assert_int_equal(pp_proxy_local_address(proxy, addr, sizeof addr), 0);
    assert_true(strncmp(addr, "127.0.0.1:", 10) == 0);
    assert_int_equal(pp_proxy_start(proxy), PP_ESTATE);
    assert_error_mentions("already running");
    assert_int_equal(pp_proxy_free(proxy), PP_ESTATE);
    assert_error_mentions("pp_proxy_stop first");
    assert_int_equal(pp_proxy_state(proxy), PP_STATE_RUNNING); /* still intact */
    assert_int_equal(pp_proxy_stop(proxy, 0), 0);
    assert_int_equal(pp_proxy_state(proxy), PP_STATE_STOPPED);
    assert_int_equal(pp_proxy_stop(proxy, 0), PP_ESTATE);
    assert_int_equal(pp_proxy_start(proxy), PP_ESTATE);
    assert_error_mentions("create a new one");
    assert_int_equal(pp_proxy_free(proxy), 0);
}

static void test_bind_in_use(void **state) {
    (void)state;
    pp_config *cfg = config_with_backend();
    pp_proxy *a, *b;
    char listen[64];
    assert_int_equal(pp_proxy_new(&a, cfg), 0);
    assert_int_equal(pp_proxy_start(a), 0);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", pp_proxy_local_port(a));
    assert_int_equal(pp_config_set(cfg, "listen", listen), 0);
    assert_int_equal(pp_proxy_new(&b, cfg), 0);
    assert_int_equal(pp_proxy_start(b), PP_EBIND);
    assert_error_mentions(listen);
    assert_error_mentions("in use");
    assert_int_equal(pp_proxy_state(b), PP_STATE_CREATED);
    assert_int_equal(pp_proxy_free(b), 0);
    assert_int_equal(pp_proxy_stop(a, 0), 0);
    assert_int_equal(pp_proxy_free(a), 0);
    pp_config_free(cfg);
}

/* A caller compiled against an older, smaller pp_stats gets exactly its prefix filled. */
static void test_stats_older_struct(void **state) {
    (void)state;
    pp_config *cfg = config_with_backend();
    pp_proxy *proxy;
    unsigned char raw[sizeof(pp_stats) + 16];
    pp_stats *st = (pp_stats *)raw;
    size_t old_size = offsetof(pp_stats, connections_rejected_max);
    size_t i;
    assert_int_equal(pp_proxy_new(&proxy, cfg), 0);
    memset(raw, 0xab, sizeof raw);
    st->struct_size = old_size;
    assert_int_equal(pp_proxy_stats(proxy, st), 0);
    assert_int_equal(st->struct_size, old_size);
    assert_int_equal(st->connections_accepted, 0);
    assert_int_equal(st->connections_active, 0);
    for (i = old_size; i < sizeof raw; i++) assert_int_equal(raw[i], 0xab);

    /* A newer, larger struct: we fill what we know and say so. */
    memset(raw, 0xab, sizeof raw);
    st->struct_size = sizeof raw;
    assert_int_equal(pp_proxy_stats(proxy, st), 0);
    assert_int_equal(st->struct_size, sizeof(pp_stats));
    for (i = sizeof(pp_stats); i < sizeof raw; i++) assert_int_equal(raw[i], 0xab);
    assert_int_equal(pp_proxy_free(proxy), 0);
    pp_config_free(cfg);
}

/* Counted with fcntl, not by reading /proc/self/fd: under a lowered RLIMIT_NOFILE there may be
 * no descriptor left to open the directory with. */
static int open_fds(void) {
    int n = 0, fd;
    for (fd = 0; fd < 4096; fd++) n += fcntl(fd, F_GETFD) != -1;
    return n;
}

/* RLIMIT_NOFILE caps the numbers of new descriptors, not their count: the limit that leaves
 * exactly `spare` free numbers below it, whatever descriptors (and holes) there are already. */
static int limit_for_spare(int spare) {
    int fd, free_seen = 0;
    for (fd = 0; fd < 65536; fd++) {
        if (fcntl(fd, F_GETFD) != -1) continue;
        if (free_seen == spare) return fd;
        free_seen++;
    }
    return fd;
}

/* In a child process with at most `spare` descriptors beyond those open: start a proxy of 8
 * workers (plus health checks and the admin listener, so every thread has to find its own).
 * Exit codes: 0 started (and stopped), 1 start failed cleanly, 2+ a broken promise. */
static int start_with_spare_fds(int spare) {
    pp_config *cfg = NULL;
    pp_proxy *proxy = NULL;
    struct rlimit rl;
    int before, rc;
    if (pp_config_new(&cfg) != 0 || pp_config_set(cfg, "listen", "127.0.0.1:0") != 0 ||
        pp_config_set(cfg, "workers", "8") != 0 || pp_config_set(cfg, "health_check", "tcp") != 0 ||
        pp_config_set(cfg, "admin_listen", "127.0.0.1:0") != 0 || pp_config_add_backend(cfg, "127.0.0.1:9", 1) != 0 ||
        pp_proxy_new(&proxy, cfg) != 0)
        return 2;
    pp_config_free(cfg);
    before = open_fds();
    rl.rlim_cur = rl.rlim_max = (rlim_t)limit_for_spare(spare);
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 3;
    rc = pp_proxy_start(proxy);
    if (rc == 0) {
        if (pp_proxy_stop(proxy, 0) != 0 || pp_proxy_free(proxy) != 0) return 4;
        return 0;
    }
    if (rc != PP_ESYS) {
        fprintf(stderr, "spare %d: start returned %s (%s), not PP_ESYS\n", spare, pp_err_name(rc), pp_last_error());
        return 5;
    }
    if (strlen(pp_last_error()) < 10 || !strstr(pp_last_error(), "open files")) {
        fprintf(stderr, "spare %d: message \"%s\" does not name the cause\n", spare, pp_last_error());
        return 6;
    }
    if (pp_proxy_state(proxy) == PP_STATE_RUNNING) return 7;
    if (open_fds() != before) {
        fprintf(stderr, "spare %d: %d descriptors open after the failed start, %d before\n", spare, open_fds(), before);
        return 8;
    }
    if (pp_proxy_free(proxy) != 0) return 9;
    if (open_fds() != before) return 10;
    return 1;
}

/* Start failing part-way (few free descriptors, 8 workers) returns PP_ESYS naming the cause,
 * leaves no thread, listener or descriptor behind, and the proxy can then be freed; never a
 * crash. Each limit runs in a child process, since a crash there is the defect. */
static void test_start_fails_part_way(void **state) {
    int spare, failed = 0, started = 0, broken = 0, no_limit = 0;
    (void)state;
    for (spare = 0; spare <= 96; spare += 2) {
        int status = 0;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) { /* cmocka's handlers would catch a crash and run the other tests here */
            int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS};
            size_t i;
            for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], SIG_DFL);
            _exit(start_with_spare_fds(spare));
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status)) {
            print_error("spare %d: the child died of signal %d\n", spare, WTERMSIG(status));
            broken++;
        } else if (WEXITSTATUS(status) == 3) {
            no_limit++; /* setrlimit refused: valgrind keeps RLIMIT_NOFILE to itself */
        } else if (WEXITSTATUS(status) > 1) {
            print_error("spare %d: broken promise %d\n", spare, WEXITSTATUS(status));
            broken++;
        }
        failed += WIFEXITED(status) && WEXITSTATUS(status) == 1;
        started += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (no_limit > 0 && failed == 0 && started == 0 && broken == 0) {
        /* Under valgrind, which refuses a lower RLIMIT_NOFILE: nothing was tried here (the
         * normal, ASan and TSan runs of this test try it). */
        print_message("setrlimit(RLIMIT_NOFILE) is refused here (valgrind): not tried\n");
        skip();
    }
    assert_int_equal(no_limit, 0);
    assert_int_equal(broken, 0);
    /* The range covers both sides: failures part-way through, and a start with enough. */
    assert_true(failed >= 5);
    assert_true(started >= 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_every_option_validates),
        cmocka_unit_test(test_option_values_round_trip),
        cmocka_unit_test(test_backend_addresses),
        cmocka_unit_test(test_groups_and_routes),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_new_checks_options_together),
        cmocka_unit_test(test_lifecycle_misuse),
        cmocka_unit_test(test_bind_in_use),
        cmocka_unit_test(test_stats_older_struct),
        cmocka_unit_test(test_start_fails_part_way),
    };
    return cmocka_run_group_tests_name("c_api", tests, NULL, NULL);
}
