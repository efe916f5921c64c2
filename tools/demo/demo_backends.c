#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "demo.h"

typedef struct conn_arg {
    demo_backend *b;
    int fd;
} conn_arg;

static void *serve_conn(void *p) {
    conn_arg *a = p;
    demo_backend *b = a->b;
    char in[4096], out[8192];
    size_t have = 0;
    int now = atomic_fetch_add(&b->open_now, 1) + 1, max = atomic_load(&b->open_max);
    while (now > max && !atomic_compare_exchange_weak(&b->open_max, &max, now)) {
    }
    for (;;) {
        struct pollfd pfd = {a->fd, POLLIN, 0};
        ssize_t n;
        size_t used = 0, olen = 0;
        if (poll(&pfd, 1, 200) == 0) {
            if (atomic_load(&b->stop)) break;
            continue;
        }
        n = read(a->fd, in + have, sizeof in - have);
        if (n <= 0) break;
        have += (size_t)n;
        for (;;) {
            if (have - used >= 4 && memcmp(in + used, "GET ", 4) == 0) {
                /* HTTP/1.1 keep-alive: answer each complete request head. */
                char *end = memmem(in + used, have - used, "\r\n\r\n", 4), path[128] = "/";
                char body[200];
                int blen;
                if (!end) break;
                sscanf(in + used + 4, "%127s", path);
                blen = snprintf(body, sizeof body, "backend %d answered %s\n", b->id, path);
                if (olen + 300 < sizeof out)
                    olen += (size_t)snprintf(out + olen, sizeof out - olen,
                                             "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
                                             blen, body);
                used = (size_t)(end - in) + 4;
                continue;
            }
            char *nl = memchr(in + used, '\n', have - used);
            if (!nl) break;
            *nl = '\0';
            if (strncmp(in + used, "PING ", 5) == 0 && olen + 64 < sizeof out)
                olen += (size_t)snprintf(out + olen, sizeof out - olen, "PONG %d %s\n", b->id, in + used + 5);
            used = (size_t)(nl - in) + 1;
        }
        memmove(in, in + used, have - used);
        have -= used;
        if (olen && write(a->fd, out, olen) != (ssize_t)olen) break;
        if (have == sizeof in) break; /* a line longer than the buffer: not our protocol */
    }
    atomic_fetch_sub(&b->open_now, 1);
    close(a->fd);
    free(a);
    return NULL;
}

static void *accept_loop(void *p) {
    demo_backend *b = p;
    while (!atomic_load(&b->stop)) {
        struct pollfd pfd = {b->listen_fd, POLLIN, 0};
        pthread_t t;
        conn_arg *a;
        int fd;
        if (poll(&pfd, 1, 200) <= 0) continue;
        fd = accept4(b->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        atomic_fetch_add(&b->accepted, 1);
        a = malloc(sizeof *a);
        a->b = b;
        a->fd = fd;
        if (pthread_create(&t, NULL, serve_conn, a) != 0) {
            close(fd);
            free(a);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

int demo_backend_start(demo_backend *b, int id) {
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    pthread_t t;
    int one = 1;
    memset(&sin, 0, sizeof sin);
    b->id = id;
    b->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(b->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(b->listen_fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(b->listen_fd, 512) != 0) return -1;
    getsockname(b->listen_fd, (struct sockaddr *)&sin, &len);
    b->port = ntohs(sin.sin_port);
    if (pthread_create(&t, NULL, accept_loop, b) != 0) return -1;
    pthread_detach(t);
    return 0;
}

void demo_backend_stop(demo_backend *b) { atomic_store(&b->stop, 1); }
