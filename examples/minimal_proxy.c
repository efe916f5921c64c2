/*
 * minimal_proxy — the smallest useful embedding: a tcp proxy from LISTEN to one or more
 * backends until Ctrl-C, then its counters.
 *
 *   cc minimal_proxy.c $(pkg-config --cflags --libs poolproxy) -o minimal_proxy
 *   ./minimal_proxy 127.0.0.1:7000 127.0.0.1:6379 [more backends...]
 */
#define _POSIX_C_SOURCE 200809L
#include <poolproxy.h>

#include <signal.h>
#include <stdio.h>

static int fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, pp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    pp_config *cfg;
    pp_proxy *proxy;
    pp_stats st;
    sigset_t sigs;
    char addr[64];
    int i, sig;

    if (argc < 3) {
        fprintf(stderr, "usage: %s LISTEN BACKEND [BACKEND...]\n", argv[0]);
        return 2;
    }
    if (pp_config_new(&cfg) != 0) return fail("config");
    if (pp_config_set(cfg, "listen", argv[1]) != 0) return fail("listen");
    if (pp_config_set(cfg, "pool_min_idle", "2") != 0) return fail("pool_min_idle");
    for (i = 2; i < argc; i++) {
        if (pp_config_add_backend(cfg, argv[i], 1) != 0) return fail("backend");
    }
    if (pp_proxy_new(&proxy, cfg) != 0) return fail("proxy");
    pp_config_free(cfg);

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before the proxy's threads start */

    if (pp_proxy_start(proxy) != 0) return fail("start");
    pp_proxy_local_address(proxy, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);
    sigwait(&sigs, &sig);

    pp_proxy_stop(proxy, 2000);
    st.struct_size = sizeof st;
    pp_proxy_stats(proxy, &st);
    printf("sessions %llu, backend connections opened %llu, rejected %llu\n",
           (unsigned long long)st.sessions_finished, (unsigned long long)st.backend_connects,
           (unsigned long long)(st.connections_rejected_max + st.connections_rejected_overflow +
                                st.connections_rejected_no_backend));
    pp_proxy_free(proxy);
    return 0;
}
