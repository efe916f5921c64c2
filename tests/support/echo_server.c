#define _GNU_SOURCE
#include "echo_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 4096

struct echo_server {
    int listen_fd;
    int port;
    pthread_t acceptor;
    atomic_int stop;
    atomic_long accepted;
    atomic_int open_now;
    atomic_int open_max;
    atomic_int threads_live;
    int http;
};

typedef struct conn {
    echo_server *s;
    int fd;
} conn;

/* Appends the bytes read to *pending and answers every complete request head in it. */
static int answer_http(const echo_server *s, int fd, const char *buf, ssize_t n, char *pending, size_t *len) {
    char *end;
    if (*len + (size_t)n >= 16384) return -1;
    memcpy(pending + *len, buf, (size_t)n);
    *len += (size_t)n;
    pending[*len] = '\0';
    while ((end = strstr(pending, "\r\n\r\n")) != NULL) {
        char out[16600];
        int status = 200, m;
        const char *sp = strchr(pending, ' ');
        size_t used = (size_t)(end + 4 - pending);
        if (sp && strncmp(sp + 1, "/status/", 8) == 0) status = atoi(sp + 9);
        if (sp && strncmp(sp + 1, "/echo", 5) == 0) { /* the head it got, as the body */
            m = snprintf(out, sizeof out, "HTTP/1.1 200 X\r\nX-Backend-Port: %d\r\nContent-Length: %zu\r\n\r\n%.*s",
                         s->port, used, (int)used, pending);
        } else {
            m = snprintf(out, sizeof out, "HTTP/1.1 %d X\r\nContent-Length: 2\r\n\r\nok", status);
        }
        if (test_write_all(fd, out, m) != 0) return -1;
        memmove(pending, pending + used, *len - used + 1);
        *len -= used;
    }
    return 0;
}

static void *echo_conn(void *p) {
    conn *c = p;
    echo_server *s = c->s;
    char buf[16384];
    char pending[16384];
    size_t pending_len = 0;
    int counted = 1;
    int now = atomic_fetch_add(&s->open_now, 1) + 1, max = atomic_load(&s->open_max);
    while (now > max && !atomic_compare_exchange_weak(&s->open_max, &max, now)) {
    }
    for (;;) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        ssize_t n;
        int r = poll(&pfd, 1, 100);
        if (r == 0) {
            if (atomic_load(&s->stop)) break;
            continue;
        }
        n = read(c->fd, buf, sizeof buf);
        if (n == 0) {
            /* Done with it: count it closed before our FIN goes out, since the proxy may reuse
             * the slot as soon as it sees that FIN. */
            atomic_fetch_sub(&s->open_now, 1);
            counted = 0;
            shutdown(c->fd, SHUT_WR); /* pass the half-close back */
            break;
        }
        if (n < 0) break;
        if (s->http) {
            if (answer_http(s, c->fd, buf, n, pending, &pending_len) != 0) break;
            continue;
        }
        if (test_write_all(c->fd, buf, n) != 0) break;
    }
    if (counted) atomic_fetch_sub(&s->open_now, 1);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&s->threads_live, 1);
    return NULL;
}

static void *accept_loop(void *p) {
    echo_server *s = p;
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd = {s->listen_fd, POLLIN, 0};
        pthread_t t;
        conn *c;
        int fd;
        if (poll(&pfd, 1, 50) <= 0) continue;
        fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        atomic_fetch_add(&s->accepted, 1);
        c = malloc(sizeof *c);
        c->s = s;
        c->fd = fd;
        atomic_fetch_add(&s->threads_live, 1);
        if (pthread_create(&t, NULL, echo_conn, c) != 0) {
            atomic_fetch_sub(&s->threads_live, 1);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static echo_server *start_server(int port, int http) {
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int one = 1;
    echo_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->http = http;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s->listen_fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(s->listen_fd, 1024) != 0) {
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    getsockname(s->listen_fd, (struct sockaddr *)&sin, &len);
    s->port = ntohs(sin.sin_port);
    if (pthread_create(&s->acceptor, NULL, accept_loop, s) != 0) {
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    return s;
}

echo_server *echo_server_start(int port) { return start_server(port, 0); }

echo_server *echo_server_start_http(int port) { return start_server(port, 1); }

int echo_server_port(const echo_server *s) { return s->port; }
long echo_server_accepted(const echo_server *s) { return atomic_load(&((echo_server *)s)->accepted); }
int echo_server_open_now(const echo_server *s) { return atomic_load(&((echo_server *)s)->open_now); }
int echo_server_open_max(const echo_server *s) { return atomic_load(&((echo_server *)s)->open_max); }

void echo_server_stop(echo_server *s) {
    int i;
    if (!s) return;
    atomic_store(&s->stop, 1);
    pthread_join(s->acceptor, NULL);
    close(s->listen_fd);
    for (i = 0; i < 500 && atomic_load(&s->threads_live) > 0; i++) usleep(10000);
    if (atomic_load(&s->threads_live) == 0) free(s); /* else leak rather than free under a live thread */
}

int test_dial(int port) {
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

int test_write_all(int fd, const void *buf, long len) {
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, (size_t)len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= n;
    }
    return 0;
}

long test_read_exact(int fd, void *buf, long len, int timeout_ms) {
    char *p = buf;
    long got = 0;
    while (got < len) {
        struct pollfd pfd = {fd, POLLIN, 0};
        ssize_t n;
        if (poll(&pfd, 1, timeout_ms) <= 0) break;
        n = read(fd, p + got, (size_t)(len - got));
        if (n <= 0) break;
        got += n;
    }
    return got;
}

int test_wait_eof(int fd, int timeout_ms) {
    char c;
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return 0;
    return recv(fd, &c, 1, 0) <= 0;
}
