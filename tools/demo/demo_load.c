#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"

#define MAX_CLIENTS 1024

static pthread_t g_threads[MAX_CLIENTS];
static int g_count;

static int dial(int port) {
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads one line within 3 s; returns its length or -1. */
static int read_line(int fd, char *buf, size_t len) {
    size_t have = 0;
    while (have + 1 < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, 3000) <= 0) return -1;
        n = read(fd, buf + have, 1);
        if (n <= 0) return -1;
        if (buf[have] == '\n') {
            buf[have] = '\0';
            return (int)have;
        }
        have++;
    }
    return -1;
}

/* Reads one HTTP response with a Content-Length body within 3 s; 0 when it names `path`. */
static int read_http_response(int fd, const char *path) {
    char buf[2048];
    size_t have = 0;
    long clen = -1;
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        char *end;
        ssize_t n;
        if (poll(&pfd, 1, 3000) <= 0) return -1;
        n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) return -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        if (strncmp(buf, "HTTP/1.1 200 ", 13) != 0) return -1;
        char *cl = strcasestr(buf, "\r\nContent-Length:");
        if (cl && cl < end) clen = strtol(cl + 18, NULL, 10);
        if (clen < 0) return -1;
        if ((long)(have - (size_t)(end + 4 - buf)) < clen) continue;
        return strstr(end + 4, path) ? 0 : -1;
    }
}

/* One client: sessions of 1..8 requests each (a few clients hold longer sessions, as real
 * traffic is skewed), every reply checked. */
static void *client(void *p) {
    demo_load *load = p;
    unsigned seed = (unsigned)(uintptr_t)pthread_self();
    long n = 0;
    while (!atomic_load(&load->stop)) {
        int fd = dial(load->port), k, reqs = 1 + (int)(rand_r(&seed) % 8), ok = 1;
        if (fd < 0) {
            atomic_fetch_add(&load->failures, 1);
            usleep(10000);
            continue;
        }
        for (k = 0; k < reqs && ok && load->http; k++) {
            char req[128], path[48];
            int len;
            snprintf(path, sizeof path, "/item/%ld", ++n);
            len = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: demo\r\n\r\n", path);
            if (write(fd, req, (size_t)len) != len || read_http_response(fd, path) != 0) {
                ok = 0;
                break;
            }
            atomic_fetch_add(&load->requests, 1);
        }
        for (k = 0; k < reqs && ok && !load->http; k++) {
            char req[64], line[128];
            int backend;
            long echoed;
            int len = snprintf(req, sizeof req, "PING %ld\n", ++n);
            if (write(fd, req, (size_t)len) != len || read_line(fd, line, sizeof line) < 0 ||
                sscanf(line, "PONG %d %ld", &backend, &echoed) != 2 || echoed != n) {
                ok = 0;
                break;
            }
            atomic_fetch_add(&load->requests, 1);
        }
        if (!ok) atomic_fetch_add(&load->failures, 1);
        atomic_fetch_add(&load->sessions, 1);
        close(fd);
    }
    return NULL;
}

int demo_load_start(demo_load *load) {
    int i;
    g_count = load->clients < MAX_CLIENTS ? load->clients : MAX_CLIENTS;
    for (i = 0; i < g_count; i++) {
        if (pthread_create(&g_threads[i], NULL, client, load) != 0) {
            g_count = i;
            return -1;
        }
    }
    return 0;
}

void demo_load_join(void) {
    int i;
    for (i = 0; i < g_count; i++) pthread_join(g_threads[i], NULL);
}

int demo_overload_burst(int port, int n, int *closed_at_once) {
    int *fds = calloc((size_t)n, sizeof *fds), i, closed = 0;
    if (!fds) return -1;
    for (i = 0; i < n; i++) fds[i] = dial(port);
    usleep(300000); /* let the acceptor decide */
    for (i = 0; i < n; i++) {
        struct pollfd pfd = {fds[i], POLLIN, 0};
        char c;
        if (fds[i] < 0) {
            closed++;
            continue;
        }
        /* A rejected connection reads EOF (or a reset) at once; an accepted one stays quiet. */
        if (poll(&pfd, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0) closed++;
    }
    for (i = 0; i < n; i++) {
        if (fds[i] >= 0) close(fds[i]);
    }
    free(fds);
    *closed_at_once = closed;
    return 0;
}
