/*
 * poolproxy — runs libpoolproxy as a standalone proxy.
 *
 * Every option of the library's table is a flag: option pool_max is --pool-max VALUE (or
 * --pool-max=VALUE); --backend may repeat; --config FILE reads "name = value" lines at the point
 * where it appears, so later flags override the file. Prints exactly one line
 * "listening on HOST:PORT" on stdout when ready; SIGINT/SIGTERM stop it with a drain of
 * drain_timeout. --access-log FILE appends one line per request (tcp: per session); the format
 * is described in on_access() and docs/OBSERVABILITY.md. SIGHUP re-reads the command line and
 * its --config files and applies groups, backends and routes without dropping a connection (pp_proxy_reload).
 */
#define _POSIX_C_SOURCE 200809L
#include <poolproxy.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


static int g_log_level = PP_LOG_INFO;

static const char *level_name(int level) {
    static const char *names[] = {"error", "warn", "info", "debug"};
    return level >= 0 && level <= 3 ? names[level] : "?";
}

static void stamp(char *buf, size_t len) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void on_log(void *userdata, int level, const char *message) {
    char ts[64];
    (void)userdata;
    stamp(ts, sizeof ts);
    fprintf(stderr, "%s %s %s\n", ts, level_name(level), message);
}

static void on_event(void *userdata, const pp_event *ev) {
    static const char *names[] = {"?",
                                  "proxy-started",
                                  "proxy-stopped",
                                  "backend-down",
                                  "backend-up",
                                  "backend-unhealthy",
                                  "backend-healthy",
                                  "breaker-open",
                                  "breaker-half-open",
                                  "breaker-closed",
                                  "backend-added",
                                  "backend-removed",
                                  "backend-draining",
                                  "backend-ready"};
    const int known = (int)(sizeof names / sizeof names[0]);
    char ts[64];
    (void)userdata;
    stamp(ts, sizeof ts);
    fprintf(stderr, "%s event %s backend=%d address=%s reason=\"%s\"\n", ts,
            ev->type >= 1 && ev->type < known ? names[ev->type] : "?", ev->backend_id, ev->address, ev->reason);
}

/* Copies `text` for a quoted field: '"', '\\', control and non-ASCII bytes become \xHH, and at
 * most `max` bytes of input are taken (a longer value ends in "..."). */
static void quoted(char *out, size_t outlen, const char *text, size_t max) {
    size_t o = 0, i;
    for (i = 0; text[i] && i < max && o + 5 < outlen; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (text[i] && o + 4 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* One access-log line:
 *   TIME CLIENT worker=N "METHOD TARGET" STATUS BACKEND reused=0|1 queue_us=N connect_us=N
 *   first_byte_us=N total_us=N bytes_in=N bytes_out=N [reason="..."]
 * TIME is UTC ISO 8601 with milliseconds; tcp sessions log "-" for the request and status 0;
 * BACKEND is "-" when none was reached. One write(2) per line on an O_APPEND descriptor, so
 * lines from several workers never interleave. */
static void on_access(void *userdata, const pp_access_entry *e) {
    int fd = *(const int *)userdata;
    char ts[64], method[32], target[1100], line[1600];
    int n;
    stamp(ts, sizeof ts);
    quoted(method, sizeof method, e->method, 16);
    quoted(target, sizeof target, e->target, 256);
    if (e->method[0]) {
        n = snprintf(line, sizeof line, "%s %s worker=%d \"%s %s\" %d", ts, e->client[0] ? e->client : "-",
                     e->worker, method, target, e->status);
    } else {
        n = snprintf(line, sizeof line, "%s %s worker=%d \"-\" %d", ts, e->client[0] ? e->client : "-", e->worker,
                     e->status);
    }
    n += snprintf(line + n, sizeof line - (size_t)n,
                  " %s reused=%d queue_us=%llu connect_us=%llu first_byte_us=%llu total_us=%llu bytes_in=%llu "
                  "bytes_out=%llu\n",
                  e->backend[0] ? e->backend : "-", e->reused, (unsigned long long)e->queue_wait_us,
                  (unsigned long long)e->connect_us, (unsigned long long)e->first_byte_us,
                  (unsigned long long)e->total_us, (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out);
    if (e->struct_size >= offsetof(pp_access_entry, reason) + sizeof e->reason && e->reason[0] && n > 0 &&
        (size_t)n < sizeof line) {
        /* Why it did not end cleanly: the line's last field, before the newline. */
        char reason[200];
        quoted(reason, sizeof reason, e->reason, 120);
        n--;
        n += snprintf(line + n, sizeof line - (size_t)n, " reason=\"%s\"\n", reason);
        if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    }
    if (write(fd, line, (size_t)n) < 0) {
        /* A full disk must not stop the proxy; the line is lost. */
    }
}

static const char *type_word(int type) {
    switch (type) {
    case PP_OPT_INT: return "N";
    case PP_OPT_DURATION: return "DURATION";
    case PP_OPT_BOOL: return "on|off";
    case PP_OPT_ENUM: return "WORD";
    case PP_OPT_ADDRESS: return "HOST:PORT";
    case PP_OPT_BACKEND: return "HOST:PORT[,weight=N][,group=G][,pool_max=N][,host=H]";
    case PP_OPT_LIST: return "ENTRY";
    case PP_OPT_STRING: return "TEXT";
    default: return "VALUE";
    }
}

static void flag_of(const char *name, char *flag, size_t len) {
    size_t i;
    snprintf(flag, len, "--%s", name);
    for (i = 2; flag[i]; i++) {
        if (flag[i] == '_') flag[i] = '-';
    }
}

static void usage(FILE *out) {
    size_t i, n = pp_option_count();
    fprintf(out,
            "usage: poolproxy [--config FILE] [--OPTION VALUE]... --backend HOST:PORT [--backend ...]\n"
            "\n"
            "Runs libpoolproxy %s as a standalone proxy. Durations take ms, s, m, h (250ms, 2s, 1m).\n"
            "Prints \"listening on HOST:PORT\" when ready; SIGINT or SIGTERM drain and stop it.\n"
            "\n"
            "  --config FILE            read \"name = value\" lines (later flags override them)\n"
            "  --log-level LEVEL        error, warn, info or debug (default: info)\n"
            "  --access-log FILE        append one line per request (tcp: per session) to FILE\n"
            "  --help, --version, --options-markdown (the option table as docs/OPTIONS.md)\n\n",
            pp_version_string());
    for (i = 0; i < n; i++) {
        pp_option_info info;
        char flag[64], left[96];
        info.struct_size = sizeof info;
        if (pp_option_get_info(i, &info) != 0) continue;
        flag_of(info.name, flag, sizeof flag);
        snprintf(left, sizeof left, "%s %s", flag, type_word(info.type));
        fprintf(out, "  %-36s %s", left, info.help);
        if (info.type == PP_OPT_ENUM) fprintf(out, " (%s)", info.choices);
        if (info.default_text[0]) fprintf(out, " [default: %s]", info.default_text);
        fputc('\n', out);
    }
}

/* docs/OPTIONS.md, generated from the option table so the docs cannot drift from the code. */
static void options_markdown(FILE *out) {
    size_t i, n = pp_option_count();
    fprintf(out, "# Options\n\n"
                 "Generated by `poolproxy --options-markdown` from the library's option table: the same\n"
                 "table validates `pp_config_set`, reads config files and makes the CLI's flags.\n\n"
                 "Durations take `ms`, `s`, `m`, `h` or `d` (a bare number is milliseconds).\n\n"
                 "| option | CLI flag | type | default | range | meaning |\n"
                 "|---|---|---|---|---|---|\n");
    for (i = 0; i < n; i++) {
        pp_option_info info;
        char flag[64], range[96] = "";
        info.struct_size = sizeof info;
        if (pp_option_get_info(i, &info) != 0) continue;
        flag_of(info.name, flag, sizeof flag);
        if (info.type == PP_OPT_INT) snprintf(range, sizeof range, "%lld..%lld", (long long)info.min, (long long)info.max);
        if (info.type == PP_OPT_DURATION)
            snprintf(range, sizeof range, "%lldms..%lldms", (long long)info.min, (long long)info.max);
        if (info.type == PP_OPT_ENUM) snprintf(range, sizeof range, "%s", info.choices);
        fprintf(out, "| `%s` | `%s` | %s | %s | %s | %s |\n", info.name, flag, type_word(info.type),
                info.default_text[0] ? info.default_text : "(none)", range, info.help);
    }
}

/* Maps "--pool-max" to "pool_max" if it names an option; NULL otherwise. */
static const char *option_for_flag(const char *flag) {
    size_t i, n = pp_option_count();
    for (i = 0; i < n; i++) {
        pp_option_info info;
        char f[64];
        info.struct_size = sizeof info;
        if (pp_option_get_info(i, &info) != 0) continue;
        flag_of(info.name, f, sizeof f);
        if (strcmp(f, flag) == 0) return info.name;
    }
    return NULL;
}

static int parse_level(const char *text) {
    int l;
    for (l = PP_LOG_ERROR; l <= PP_LOG_DEBUG; l++) {
        if (strcmp(text, level_name(l)) == 0) return l;
    }
    return -1;
}

/* Parses the command line into cfg. reloading: the SIGHUP pass, which ignores the flags that
 * only matter at start (--access-log, --log-level). Returns 0, 1 (done: --help and the like) or
 * 2 (bad usage, reported). */
static int parse_args(int argc, char **argv, pp_config *cfg, int reloading, int *access_fd) {
    int i, rc;
    for (i = 1; i < argc; i++) {
        char flag[128];
        const char *arg = argv[i], *value = NULL, *eq, *name;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(arg, "--options-markdown") == 0) {
            options_markdown(stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("poolproxy %s\n", pp_version_string());
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "poolproxy: unexpected argument '%s' (see --help)\n", arg);
            return 2;
        }
        eq = strchr(arg, '=');
        if (eq) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", arg);
            if (i + 1 >= argc) {
                fprintf(stderr, "poolproxy: %s needs a value\n", flag);
                return 2;
            }
            value = argv[++i];
        }
        if (strcmp(flag, "--config") == 0) {
            rc = pp_config_load_file(cfg, value);
        } else if (strcmp(flag, "--access-log") == 0) {
            rc = 0;
            if (reloading) continue;
            if (*access_fd >= 0) close(*access_fd);
            *access_fd = open(value, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (*access_fd < 0) {
                fprintf(stderr, "poolproxy: --access-log: cannot open '%s': %s\n", value, strerror(errno));
                return 2;
            }
        } else if (strcmp(flag, "--log-level") == 0) {
            rc = 0;
            if (reloading) continue;
            g_log_level = parse_level(value);
            if (g_log_level < 0) {
                fprintf(stderr, "poolproxy: --log-level: expected error, warn, info or debug, got '%s'\n", value);
                return 2;
            }
        } else if ((name = option_for_flag(flag)) != NULL) {
            rc = pp_config_set(cfg, name, value);
        } else {
            fprintf(stderr, "poolproxy: unknown flag '%s' (see --help)\n", flag);
            return 2;
        }
        if (rc != 0) {
            fprintf(stderr, "poolproxy: %s\n", pp_last_error());
            return 2;
        }
    }
    return 0;
}

/* SIGHUP: the command line again, from scratch; a configuration that does not parse changes
 * nothing. */
static void reload(int argc, char **argv, pp_proxy *proxy) {
    pp_config *fresh;
    int dummy_fd = -1;
    fprintf(stderr, "poolproxy: SIGHUP received, reloading the configuration\n");
    if (pp_config_new(&fresh) != 0) return;
    if (parse_args(argc, argv, fresh, 1, &dummy_fd) != 0) {
        fprintf(stderr, "poolproxy: reload: the configuration does not parse; nothing changed\n");
    } else if (pp_proxy_reload(proxy, fresh) != 0) {
        fprintf(stderr, "poolproxy: reload: nothing changed: %s\n", pp_last_error());
    }
    /* (what changed, and each option that needs a restart, came through the log callback) */
    pp_config_free(fresh);
}

int main(int argc, char **argv) {
    pp_config *cfg = NULL;
    pp_proxy *proxy = NULL;
    sigset_t sigs;
    char addr[128];
    int rc, sig = 0;
    static int access_fd = -1; /* static: the access callback reads it until the proxy is freed */

    if (pp_config_new(&cfg) != 0) {
        fprintf(stderr, "poolproxy: %s\n", pp_last_error());
        return 1;
    }
    rc = parse_args(argc, argv, cfg, 0, &access_fd);
    if (rc != 0) {
        pp_config_free(cfg);
        return rc == 1 ? 0 : 2;
    }
    pp_config_set_log_callback(cfg, on_log, NULL, g_log_level);
    pp_config_set_event_callback(cfg, on_event, NULL);
    if (access_fd >= 0) pp_config_set_access_callback(cfg, on_access, &access_fd);

    if (pp_proxy_new(&proxy, cfg) != 0) {
        fprintf(stderr, "poolproxy: %s\n", pp_last_error());
        pp_config_free(cfg);
        return 2;
    }
    pp_config_free(cfg);

    /* Block the signals before any thread starts, so every thread inherits the mask and only
     * sigwait below receives them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (pp_proxy_start(proxy) != 0) {
        fprintf(stderr, "poolproxy: %s\n", pp_last_error());
        pp_proxy_free(proxy);
        return 1;
    }
    pp_proxy_local_address(proxy, addr, sizeof addr);
    printf("listening on %s\n", addr);
    fflush(stdout);

    for (;;) {
        sigwait(&sigs, &sig);
        if (sig != SIGHUP) break;
        reload(argc, argv, proxy);
    }
    fprintf(stderr, "poolproxy: %s received, draining\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pp_proxy_stop(proxy, -1);
    pp_proxy_free(proxy);
    if (access_fd >= 0) close(access_fd);
    return 0;
}
