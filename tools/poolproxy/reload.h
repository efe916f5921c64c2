/* SIGHUP: re-reads the command line's configuration (flags and --config files, in order) and
 * applies what can change without a restart: backends added, removed, re-weighted, in any of
 * the groups the proxy was started with (a backend whose group, pool_max or host changed is
 * added anew first, then the old one removed; if the new one cannot be added, the old one
 * stays). No client connection is touched; a removed backend finishes its
 * requests in flight. Other options that changed (a group's options, the routes, a new group)
 * are named in a warning (they need a restart). */
#ifndef POOLPROXY_CLI_RELOAD_H
#define POOLPROXY_CLI_RELOAD_H

#include <poolproxy.h>

#define RELOAD_MAX_BACKENDS 1024

typedef struct reload_backend {
    char address[256]; /* host:port, as the proxy names it */
    char key[1100];    /* the backend's text without its weight: what identifies it (group, pool_max, host) */
    char spec[1100];   /* the whole text, for pp_proxy_add_backend_spec */
    int weight;
    int id;     /* in the running proxy */
    int active; /* 0 once removed */
} reload_backend;

typedef struct reload_state {
    reload_backend backends[RELOAD_MAX_BACKENDS];
    int count;
    pp_config *applied; /* the configuration the proxy started with, for option comparisons */
} reload_state;

/* Records the starting configuration and the running proxy's id for each of its backends (a
 * host name has none: its addresses come and go with DNS). Takes ownership of cfg. Returns 0,
 * or -1 with a message on stderr. */
int reload_init(reload_state *st, pp_config *cfg, const pp_proxy *proxy);

/* Applies `fresh` to the running proxy; logs each change and each option that needs a
 * restart. Takes ownership of fresh. */
void reload_apply(reload_state *st, pp_proxy *proxy, pp_config *fresh);

void reload_free(reload_state *st);

#endif
