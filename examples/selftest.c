/*
 * selftest — proves an installation works end to end: starts a tiny echo backend on loopback,
 * puts a proxy in front of it, sends bytes through, checks they come back, checks the stats
 * and the event callback, and exits 0 on success.
 *
 *   cc selftest.c $(pkg-config --cflags --libs poolproxy) -lpthread -o selftest && ./selftest
 */
#define _GNU_SOURCE
#include <poolproxy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int g_started;

static void on_event(void *ud, const pp_event *ev) {
    (void)ud;
    if (ev->type == PP_EVENT_PROXY_STARTED) g_started++;
}

static void *echo_once(void *arg) {
    int lfd = *(int *)arg, fd;
    char buf[256];
    ssize_t n;
    while ((fd = accept(lfd, NULL, NULL)) >= 0) {
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            if (write(fd, buf, (size_t)n) != n) break;
        }
        close(fd);
    }
    return NULL;
}

static int listen_loopback(int *port) {
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 16) != 0) return -1;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return fd;
}

int main(void) {
    pp_config *cfg;
    pp_proxy *proxy;
    pp_stats st;
    pthread_t t;
    struct sockaddr_in sin;
    char backend[32], reply[32] = {0};
    const char *msg = "through the proxy";
    int lfd, bport, fd;
    size_t got = 0;

    lfd = listen_loopback(&bport);
    if (lfd < 0 || pthread_create(&t, NULL, echo_once, &lfd) != 0) return 1;
    snprintf(backend, sizeof backend, "127.0.0.1:%d", bport);

    if (pp_config_new(&cfg) || pp_config_set(cfg, "listen", "127.0.0.1:0") || pp_config_set(cfg, "workers", "2") ||
        pp_config_add_backend(cfg, backend, 1) || pp_config_set_event_callback(cfg, on_event, NULL) ||
        pp_proxy_new(&proxy, cfg) || pp_proxy_start(proxy)) {
        fprintf(stderr, "selftest: %s\n", pp_last_error());
        return 1;
    }
    pp_config_free(cfg);

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)pp_proxy_local_port(proxy));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) return 1;
    if (write(fd, msg, strlen(msg)) != (ssize_t)strlen(msg)) return 1;
    while (got < strlen(msg)) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    pp_proxy_stop(proxy, 2000);
    st.struct_size = sizeof st;
    pp_proxy_stats(proxy, &st);
    pp_proxy_free(proxy);

    printf("libpoolproxy %s: sent \"%s\", got \"%s\"; %llu session(s), %llu bytes each way, started events %d\n",
           pp_version_string(), msg, reply, (unsigned long long)st.sessions_finished,
           (unsigned long long)st.bytes_client_to_backend, g_started);
    return strcmp(reply, msg) == 0 && st.sessions_finished == 1 && st.bytes_client_to_backend == strlen(msg) &&
                   g_started == 1
               ? 0
               : 1;
}
