/*
 * poolproxy-demo — the proxy in action with nothing to set up: three built-in backends on
 * loopback, a tcp-mode proxy with pre-warmed pools in front of them, concurrent clients for a
 * few seconds with a live table, then a summary and an overload burst that shows clean
 * rejection. Uses only the public API (poolproxy.h).
 *
 *   poolproxy-demo [--mode http|tcp] [--seconds N] [--clients N] [--workers N]
 *
 * http (the default) shows pooling paying off: many short client connections and requests
 * share a few keep-alive backend connections. tcp shows pre-warmed connections under a cap.
 */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "demo.h"

#define BACKENDS 3
#define POOL_MAX 8
#define POOL_MIN_IDLE 4
#define MAX_CONNECTIONS 256

static void on_event(void *ud, const pp_event *ev) {
    (void)ud;
    if (ev->type == PP_EVENT_BACKEND_DOWN || ev->type == PP_EVENT_BACKEND_UP)
        printf("  event: backend %d (%s) %s: %s\n", ev->backend_id, ev->address,
               ev->type == PP_EVENT_BACKEND_UP ? "up" : "down", ev->reason);
}

static int check(int rc, const char *what) {
    if (rc != 0) {
        fprintf(stderr, "demo: %s: %s (%s)\n", what, pp_last_error(), pp_strerror(rc));
        exit(1);
    }
    return rc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    static demo_backend backends[BACKENDS];
    static demo_load load;
    pp_config *cfg;
    pp_proxy *proxy;
    pp_stats st;
    char addr[64], text[32];
    int seconds = 5, clients = 48, workers = 2, i, t, closed = 0, http = 1;
    long last_sessions = 0;
    uint64_t last_hits = 0, last_misses = 0;
    double t0;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0) seconds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--clients") == 0) clients = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--workers") == 0) workers = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--mode") == 0) http = strcmp(argv[i + 1], "tcp") != 0;
    }
    if (seconds < 1 || seconds > 600 || clients < 1 || clients > 1000 || workers < 1 || workers > 64) {
        fprintf(stderr, "usage: poolproxy-demo [--seconds 1..600] [--clients 1..1000] [--workers 1..64]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    printf("libpoolproxy %s demo: %d built-in backends, %d workers, %d clients, %d s, %s mode\n\n",
           pp_version_string(), BACKENDS, workers, clients, seconds, http ? "http" : "tcp");
    check(pp_config_new(&cfg), "config");
    check(pp_config_set(cfg, "mode", http ? "http" : "tcp"), "mode");
    check(pp_config_set(cfg, "listen", "127.0.0.1:0"), "listen");
    snprintf(text, sizeof text, "%d", workers);
    check(pp_config_set(cfg, "workers", text), "workers");
    snprintf(text, sizeof text, "%d", POOL_MAX);
    check(pp_config_set(cfg, "pool_max", text), "pool_max");
    snprintf(text, sizeof text, "%d", POOL_MIN_IDLE);
    check(pp_config_set(cfg, "pool_min_idle", text), "pool_min_idle");
    snprintf(text, sizeof text, "%d", MAX_CONNECTIONS);
    check(pp_config_set(cfg, "max_connections", text), "max_connections");
    check(pp_config_set(cfg, "queue_timeout", "3s"), "queue_timeout");
    check(pp_config_set(cfg, "overflow_max", "32"), "overflow_max");
    check(pp_config_set_event_callback(cfg, on_event, NULL), "event callback");
    for (i = 0; i < BACKENDS; i++) {
        char b[64];
        if (demo_backend_start(&backends[i], i) != 0) {
            fprintf(stderr, "demo: cannot start built-in backend %d\n", i);
            return 1;
        }
        snprintf(b, sizeof b, "127.0.0.1:%d", backends[i].port);
        check(pp_config_add_backend(cfg, b, 1), "backend");
        printf("backend %d listening on %s\n", i, b);
    }
    check(pp_proxy_new(&proxy, cfg), "proxy");
    pp_config_free(cfg);
    check(pp_proxy_start(proxy), "start");
    pp_proxy_local_address(proxy, addr, sizeof addr);
    printf("proxy listening on %s (pool_max %d and pool_min_idle %d per backend)\n", addr, POOL_MAX, POOL_MIN_IDLE);

    usleep(300000); /* the pools warm up in the background */
    st.struct_size = sizeof st;
    pp_proxy_stats(proxy, &st);
    printf("before the first client: %llu backend connections already open (pre-warmed)\n\n",
           (unsigned long long)st.backend_conns_idle);

    load.port = pp_proxy_local_port(proxy);
    load.clients = clients;
    load.seconds = seconds;
    load.http = http;
    t0 = now_s();
    if (demo_load_start(&load) != 0) fprintf(stderr, "demo: could not start every client thread\n");

    printf(" time  %s  reuse%%  active", http ? "   req/s" : "sessions/s");
    for (i = 0; i < workers && i < 4; i++) printf("   w%d", i);
    printf("  be-open  be-idle  waiting   p50 ms   p99 ms  rejected  failures\n");
    for (t = 1; t <= seconds; t++) {
        long sessions;
        uint64_t hits, lookups;
        pp_latency lat;
        while (now_s() < t0 + t) usleep(20000);
        pp_proxy_stats(proxy, &st);
        lat.struct_size = sizeof lat;
        pp_proxy_latency(proxy, PP_LATENCY_REQUEST, -1, &lat);
        sessions = http ? (long)st.requests : atomic_load(&load.sessions);
        hits = st.pool_hits - last_hits;
        lookups = hits + st.pool_misses - last_misses;
        last_hits = st.pool_hits;
        last_misses = st.pool_misses;
        printf("%4ds  %10ld  %5.1f%%  %6llu", t, sessions - last_sessions,
               lookups ? 100.0 * (double)hits / (double)lookups : 0.0, (unsigned long long)st.connections_active);
        for (i = 0; i < workers && i < 4; i++) {
            pp_worker_stats ws;
            ws.struct_size = sizeof ws;
            pp_proxy_worker_stats(proxy, i, &ws);
            printf(" %4llu", (unsigned long long)ws.sessions_active);
        }
        printf("  %7llu  %7llu  %7llu  %7.2f  %7.2f  %8llu  %8ld\n", (unsigned long long)st.backend_conns_open,
               (unsigned long long)st.backend_conns_idle, (unsigned long long)st.queue_waiting,
               (double)lat.p50_us / 1000.0, (double)lat.p99_us / 1000.0,
               (unsigned long long)(st.connections_rejected_max + st.connections_rejected_overflow +
                                    st.connections_rejected_no_backend),
               atomic_load(&load.failures));
        fflush(stdout);
        last_sessions = sessions;
    }
    atomic_store(&load.stop, 1);
    demo_load_join();

    pp_proxy_stats(proxy, &st);
    printf("\nsummary after %d s\n", seconds);
    printf("  client sessions served       %llu (%ld requests, every reply checked, %ld failures)\n",
           (unsigned long long)st.sessions_finished, atomic_load(&load.requests), atomic_load(&load.failures));
    if (http) {
        long reqs = atomic_load(&load.requests);
        printf("  backend connections opened   %llu for %ld requests: %.1f requests per backend connection,\n"
               "                               %.2f%% of requests on a reused pooled connection\n",
               (unsigned long long)st.backend_connects, reqs,
               st.backend_connects ? (double)reqs / (double)st.backend_connects : 0.0,
               reqs ? 100.0 * (double)st.pool_hits / (double)reqs : 0.0);
    } else {
        printf("  backend connections opened   %llu  (tcp mode: one per session, opened ahead of time;\n"
               "                               %llu sessions found one already open, %llu waited or connected)\n",
               (unsigned long long)st.backend_connects, (unsigned long long)st.pool_hits,
               (unsigned long long)st.pool_misses);
    }
    printf("  waited for a pooled conn     %llu (timed out: %llu)\n", (unsigned long long)st.queue_waits,
           (unsigned long long)st.queue_timeouts);
    {
        pp_latency lat;
        lat.struct_size = sizeof lat;
        pp_proxy_latency(proxy, PP_LATENCY_REQUEST, -1, &lat);
        printf("  %-28s p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%llu measured)\n",
               http ? "request latency" : "session latency", (double)lat.p50_us / 1000.0, (double)lat.p90_us / 1000.0,
               (double)lat.p99_us / 1000.0, (unsigned long long)lat.count);
    }
    for (i = 0; i < workers; i++) {
        pp_worker_stats ws;
        ws.struct_size = sizeof ws;
        pp_proxy_worker_stats(proxy, i, &ws);
        printf("  worker %d share               %5.1f%% of sessions (%llu, %llu taken from the overflow queue)\n",
               i, st.sessions_finished ? 100.0 * (double)ws.sessions_started / (double)st.connections_accepted : 0.0,
               (unsigned long long)ws.sessions_started, (unsigned long long)ws.overflow_stolen);
    }
    for (i = 0; i < BACKENDS; i++) {
        pp_backend_stats bs;
        bs.struct_size = sizeof bs;
        pp_proxy_backend_stats(proxy, i, &bs, NULL, 0);
        printf("  backend %d                    %llu sessions, at most %d connections open at once (cap %d)\n", i,
               (unsigned long long)bs.sessions, atomic_load(&backends[i].open_max), POOL_MAX);
    }

    demo_overload_burst(load.port, MAX_CONNECTIONS + 64, &closed);
    pp_proxy_stats(proxy, &st);
    printf("\noverload burst: %d idle connections at once against max_connections %d\n", MAX_CONNECTIONS + 64,
           MAX_CONNECTIONS);
    printf("  closed at once by the proxy  %d (counted: %llu at max_connections, %llu overflow full)\n", closed,
           (unsigned long long)st.connections_rejected_max, (unsigned long long)st.connections_rejected_overflow);

    check(pp_proxy_stop(proxy, 2000), "stop");
    pp_proxy_free(proxy);
    for (i = 0; i < BACKENDS; i++) demo_backend_stop(&backends[i]);
    printf("\nstopped cleanly.\n");
    return atomic_load(&load.failures) == 0 ? 0 : 1;
}
