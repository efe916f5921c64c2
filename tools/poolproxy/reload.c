#define _POSIX_C_SOURCE 200809L
#include "reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The configuration's backends, from pp_config_get's text ("a, b,weight=2,group=api"): each
 * entry's address, its text without the weight (its identity) and the weight. Returns how
 * many, or -1. */
static int backends_of(const pp_config *cfg, reload_backend *out, int max) {
    static char text[RELOAD_MAX_BACKENDS * 1100];
    char *save = NULL, *item;
    int n = 0;
    if (pp_config_get(cfg, "backend", text, sizeof text) != 0) return -1;
    for (item = strtok_r(text, " ", &save); item && n < max; item = strtok_r(NULL, " ", &save)) {
        size_t len = strlen(item), k = 0;
        char *attr, *asave = NULL;
        if (len && item[len - 1] == ',') item[--len] = '\0'; /* the list's separator */
        snprintf(out[n].spec, sizeof out[n].spec, "%s", item);
        out[n].weight = 1;
        out[n].key[0] = '\0';
        for (attr = strtok_r(item, ",", &asave); attr; attr = strtok_r(NULL, ",", &asave)) {
            if (k == 0) snprintf(out[n].address, sizeof out[n].address, "%s", attr);
            if (strncmp(attr, "weight=", 7) == 0) {
                out[n].weight = atoi(attr + 7);
            } else {
                size_t used = strlen(out[n].key);
                snprintf(out[n].key + used, sizeof out[n].key - used, "%s%s", k ? "," : "", attr);
            }
            k++;
        }
        out[n].id = -1;
        out[n].active = 1;
        n++;
    }
    return n;
}

int reload_init(reload_state *st, pp_config *cfg, const pp_proxy *proxy) {
    int i, id, n = pp_proxy_backend_count(proxy);
    memset(st, 0, sizeof *st);
    st->count = backends_of(cfg, st->backends, RELOAD_MAX_BACKENDS);
    if (st->count < 0) {
        fprintf(stderr, "poolproxy: cannot list the configured backends: %s\n", pp_last_error());
        pp_config_free(cfg);
        return -1;
    }
    /* The proxy made the configured addresses' backends in order (a host name's come later,
     * from DNS): the i-th entry with an address has the first id of that address not taken by
     * an earlier entry (one address may be in several groups). */
    for (i = 0; i < st->count; i++) {
        for (id = 0; id < n && st->backends[i].id < 0; id++) {
            pp_backend_stats bs;
            char addr[256];
            int j, taken = 0;
            bs.struct_size = sizeof bs;
            if (pp_proxy_backend_stats(proxy, id, &bs, addr, sizeof addr) != 0 || strcmp(addr, st->backends[i].address) != 0) {
                continue;
            }
            for (j = 0; j < i && !taken; j++) taken = st->backends[j].id == id;
            if (!taken) st->backends[i].id = id;
        }
    }
    st->applied = cfg;
    return 0;
}

/* An option's value as text, in a buffer it grows as needed (a list of routes can be long).
 * NULL on failure. The caller frees it. */
static char *option_text(const pp_config *cfg, const char *name) {
    size_t size = 1024;
    for (;;) {
        char *buf = malloc(size);
        int rc;
        if (!buf) return NULL;
        rc = pp_config_get(cfg, name, buf, size);
        if (rc == 0) return buf;
        free(buf);
        if (rc != PP_ETRUNC || size > ((size_t)64 << 20)) return NULL;
        size *= 4;
    }
}

/* Each entry ("\n"-separated) of a list option in `a` that `b` lacks, named in a warning. */
static void warn_entries(const char *name, const char *a, const char *b, const char *how) {
    const char *p = a;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *q = b;
        int found = 0;
        while (*q && !found) {
            const char *qe = strchr(q, '\n');
            size_t ql = qe ? (size_t)(qe - q) : strlen(q);
            found = ql == len && strncmp(p, q, len) == 0;
            q += ql + (qe ? 1 : 0);
        }
        if (!found) fprintf(stderr, "poolproxy: reload: %s '%.*s' %s: restart to apply it\n", name, (int)len, p, how);
        p += len + (end ? 1 : 0);
    }
}

static void warn_changed_options(const pp_config *before, const pp_config *after) {
    size_t i;
    for (i = 0; i < pp_option_count(); i++) {
        pp_option_info info;
        char *a, *b;
        info.struct_size = sizeof info;
        if (pp_option_get_info(i, &info) != 0 || info.type == PP_OPT_BACKEND) continue;
        a = option_text(before, info.name);
        b = option_text(after, info.name);
        if (!a || !b) {
            fprintf(stderr, "poolproxy: reload: cannot compare option %s: %s\n", info.name, pp_last_error());
        } else if (strcmp(a, b) != 0) {
            if (info.type == PP_OPT_LIST) {
                warn_entries(info.name, b, a, "added or changed");
                warn_entries(info.name, a, b, "removed or changed");
            } else {
                fprintf(stderr, "poolproxy: reload: option %s changed (%s -> %s): restart to apply it\n", info.name, a, b);
            }
        }
        free(a);
        free(b);
    }
}

void reload_apply(reload_state *st, pp_proxy *proxy, pp_config *fresh) {
    static reload_backend wanted[RELOAD_MAX_BACKENDS];
    int n, i, j, added = 0, removed = 0, reweighted = 0;
    pp_proxy *check = NULL;
    /* The whole new configuration must be one a proxy could start with (every route's group
     * declared, no group without a backend...): else nothing of it is applied. */
    if (pp_proxy_new(&check, fresh) != 0) {
        fprintf(stderr, "poolproxy: reload: the configuration is not valid, nothing changed: %s\n", pp_last_error());
        pp_config_free(fresh);
        return;
    }
    pp_proxy_free(check);
    n = backends_of(fresh, wanted, RELOAD_MAX_BACKENDS);
    if (n < 0) {
        fprintf(stderr, "poolproxy: reload: cannot list the backends: %s\n", pp_last_error());
        pp_config_free(fresh);
        return;
    }
    static int add_failed[RELOAD_MAX_BACKENDS];
    /* Listed: new ones added first (so that a backend moved to another group or given other
     * overrides is never missing in between), known ones re-weighted. */
    for (j = 0; j < n; j++) {
        reload_backend *known = NULL;
        add_failed[j] = 0;
        for (i = 0; i < st->count && !known; i++) {
            if (st->backends[i].active && strcmp(st->backends[i].key, wanted[j].key) == 0) known = &st->backends[i];
        }
        if (known) {
            if (known->weight != wanted[j].weight) {
                if (pp_proxy_set_backend_weight(proxy, known->id, wanted[j].weight) == 0) {
                    known->weight = wanted[j].weight;
                    reweighted++;
                } else {
                    fprintf(stderr, "poolproxy: reload: %s\n", pp_last_error());
                }
            }
            continue;
        }
        if (st->count == RELOAD_MAX_BACKENDS) {
            fprintf(stderr, "poolproxy: reload: too many backends, %s not added\n", wanted[j].spec);
            add_failed[j] = 1;
            continue;
        }
        wanted[j].id = pp_proxy_add_backend_spec(proxy, wanted[j].spec);
        if (wanted[j].id < 0) {
            fprintf(stderr, "poolproxy: reload: %s not added: %s\n", wanted[j].spec, pp_last_error());
            add_failed[j] = 1;
            continue;
        }
        st->backends[st->count++] = wanted[j];
        added++;
    }
    /* No longer listed: removed (those in flight finish), unless what was to replace it (the
     * same address) could not be added: then it stays, and serves as before. */
    for (i = 0; i < st->count; i++) {
        int keep = 0, replaced_failed = 0;
        if (!st->backends[i].active) continue;
        for (j = 0; j < n && !keep; j++) keep = strcmp(wanted[j].key, st->backends[i].key) == 0;
        for (j = 0; j < n && !replaced_failed; j++) {
            replaced_failed = add_failed[j] && strcmp(wanted[j].address, st->backends[i].address) == 0;
        }
        if (keep) continue;
        if (replaced_failed) {
            fprintf(stderr, "poolproxy: reload: %s kept: its replacement could not be added\n", st->backends[i].spec);
            continue;
        }
        if (st->backends[i].id < 0) {
            fprintf(stderr, "poolproxy: reload: %s is a host name: restart to remove it\n", st->backends[i].address);
            continue;
        }
        if (pp_proxy_remove_backend(proxy, st->backends[i].id) == 0) {
            st->backends[i].active = 0;
            removed++;
        } else {
            fprintf(stderr, "poolproxy: reload: %s\n", pp_last_error());
        }
    }
    warn_changed_options(st->applied, fresh);
    fprintf(stderr, "poolproxy: reload: %d backend(s) added, %d removed, %d re-weighted\n", added, removed,
            reweighted);
    /* st->applied stays the configuration the proxy started with: an option that needs a
     * restart is named on every reload until it is back or restarted. */
    pp_config_free(fresh);
}

void reload_free(reload_state *st) {
    pp_config_free(st->applied);
    st->applied = NULL;
}
