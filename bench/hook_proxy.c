/* An http proxy embedding libpoolproxy with a C request hook, for bench/http_compare.sh: the
 * hook reads two fields and sets one (the "C hook" figure), or nothing is set (the
 * same program without a hook, to show the embedding costs nothing by itself).
 *
 *   hook_proxy LISTEN_PORT BACKEND none|c
 *
 * Prints "listening on ..." when ready; SIGTERM stops it. Not a test. */
#include <poolproxy.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int hook(void *ud, pp_exchange *ex, const pp_request_info *info) {
    const char *agent = pp_exchange_find_field(ex, "User-Agent");
    const char *host = pp_exchange_find_field(ex, "Host");
    (void)ud;
    (void)info;
    return pp_exchange_set_field(ex, "X-Checked", agent && host ? "yes" : "no");
}

int main(int argc, char **argv) {
    pp_config *cfg;
    pp_proxy *p;
    char listen[64];
    sigset_t sigs;
    int sig;
    if (argc != 4) {
        fprintf(stderr, "usage: hook_proxy LISTEN_PORT BACKEND none|c\n");
        return 2;
    }
    snprintf(listen, sizeof listen, "127.0.0.1:%s", argv[1]);
    if (pp_config_new(&cfg) || pp_config_set(cfg, "mode", "http") || pp_config_set(cfg, "listen", listen) ||
        pp_config_set(cfg, "workers", "1") || pp_config_set(cfg, "pool_max", "64") ||
        pp_config_set(cfg, "add_forwarded", "off") || pp_config_set(cfg, "backend", argv[2])) {
        fprintf(stderr, "hook_proxy: %s\n", pp_last_error());
        return 2;
    }
    if (strcmp(argv[3], "c") == 0) pp_config_set_request_hook(cfg, hook, NULL);
    if (pp_proxy_new(&p, cfg) || pp_proxy_start(p)) {
        fprintf(stderr, "hook_proxy: %s\n", pp_last_error());
        return 1;
    }
    pp_config_free(cfg);
    printf("listening on 127.0.0.1:%d\n", pp_proxy_local_port(p));
    fflush(stdout);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    sigwait(&sigs, &sig);
    pp_proxy_stop(p, 0);
    pp_proxy_free(p);
    return 0;
}
