/* Pieces of poolproxy-demo: built-in backends and a load generator, all on loopback. */
#ifndef POOLPROXY_DEMO_H
#define POOLPROXY_DEMO_H

#include <stdatomic.h>
#include <stdint.h>

/* A built-in backend speaking both demo protocols on one port: each "PING <n>\n" line gets
 * "PONG <id> <n>\n" (tcp mode), each "GET <path> HTTP/1.1" request a keep-alive 200 naming
 * the backend and the path (http mode). It counts the connections it accepted and the most it
 * held open at once. */
typedef struct demo_backend {
    int id;
    int port;
    int listen_fd;
    atomic_int open_now;
    atomic_int open_max;
    atomic_long accepted;
    atomic_int stop;
} demo_backend;

int demo_backend_start(demo_backend *b, int id);
void demo_backend_stop(demo_backend *b);

typedef struct demo_load {
    int port;            /* the proxy's port */
    int clients;         /* concurrent client threads */
    int seconds;         /* how long to run */
    int http;            /* 1: HTTP/1.1 keep-alive requests; 0: the PING line protocol */
    atomic_long sessions;
    atomic_long requests;
    atomic_long failures; /* wrong or missing replies, connects refused or reset */
    atomic_int stop;
} demo_load;

/* Runs load until load->stop is set (by the caller after load->seconds) and joins. */
int demo_load_start(demo_load *load);
void demo_load_join(void);

/* Opens n connections at once and counts how many the proxy closed without serving. */
int demo_overload_burst(int port, int n, int *closed_at_once);

#endif
