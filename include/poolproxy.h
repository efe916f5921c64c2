/*
 * poolproxy.h — the public C API of libpoolproxy, an embeddable pooled, worker-balanced proxy.
 *
 * This header is the documentation of record. It compiles as C99 and as C++, and mentions no
 * libuv or C++ type.
 *
 * Shape of the API
 * ----------------
 *   pp_config *cfg;  pp_config_new(&cfg);
 *   pp_config_set(cfg, "listen", "127.0.0.1:0");
 *   pp_config_add_backend(cfg, "127.0.0.1:6379", 1);
 *   pp_proxy *proxy; pp_proxy_new(&proxy, cfg);    (copies what it needs: cfg may be freed now)
 *   pp_proxy_start(proxy);                          (returns once the listener is bound)
 *   ...
 *   pp_proxy_stop(proxy, 5000);                     (drain for at most 5 s, then force)
 *   pp_proxy_free(proxy);  pp_config_free(cfg);
 *
 * Errors
 * ------
 * Every function that can fail returns an int: 0 on success, a negative PP_E... code on failure.
 * pp_strerror(code) names the code; pp_last_error() gives the calling thread's message for its
 * last failed call, naming the cause ("option 'workers': expected an integer in 0..256, got 'x'").
 *
 * Threading
 * ---------
 * - A pp_config is not thread-safe: use one from one thread at a time.
 * - pp_proxy_start, pp_proxy_stop and pp_proxy_free must be called from one controlling thread
 *   at a time, and never from inside a callback (they return PP_ESTATE there).
 * - pp_proxy_stats, pp_proxy_worker_stats, pp_proxy_backend_stats, pp_proxy_latency,
 *   pp_proxy_metrics, pp_proxy_admin_port, pp_proxy_local_address and pp_proxy_state are safe
 *   from any thread while the proxy exists; so are pp_proxy_add_backend,
 *   pp_proxy_remove_backend, pp_proxy_drain_backend and pp_proxy_set_backend_weight once the
 *   proxy runs (not from inside a callback).
 * - Callbacks (log, event) run on the proxy's own threads (workers, acceptor, health checker,
 *   DNS watcher, admin listener), possibly several at once, and on the thread calling
 *   pp_proxy_start/stop/reload. They must not block and must not call pp_proxy_stop or pp_proxy_free
 *   (which return PP_ESTATE there). No callback runs after pp_proxy_free returns.
 */
#ifndef POOLPROXY_H
#define POOLPROXY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(POOLPROXY_BUILDING)
#  define PP_API __attribute__((visibility("default")))
#else
#  define PP_API
#endif

/* ------------------------------------------------------------------------------------------ */
/* Version                                                                                    */
/* ------------------------------------------------------------------------------------------ */

#define PP_VERSION_MAJOR 0
#define PP_VERSION_MINOR 3
#define PP_VERSION_PATCH 0
/** The version as one number, (major << 16) | (minor << 8) | patch, for compile-time checks. */
#define PP_VERSION_HEX ((PP_VERSION_MAJOR << 16) | (PP_VERSION_MINOR << 8) | PP_VERSION_PATCH)

/** The version of the library actually loaded, encoded like PP_VERSION_HEX. */
PP_API unsigned int pp_version(void);

/** The version of the library actually loaded as a static string, e.g. "0.1.0". */
PP_API const char *pp_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Errors                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* X(name, value, message). Values are part of the ABI: never renumber, only append. */
#define PP_ERRNO_MAP(X)                                                                        \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ENOOPT, -3, "no such option")                                                                \
    X(EBADVALUE, -4, "invalid option value")                                                       \
    X(ESTATE, -5, "operation not allowed in the current state")                                    \
    X(EADDR, -6, "invalid address")                                                                \
    X(EBIND, -7, "cannot listen on the address")                                                   \
    X(ENOBACKEND, -8, "no backend configured")                                                     \
    X(EIO, -9, "input/output error")                                                               \
    X(ESYS, -10, "system resource error")                                                          \
    X(ETRUNC, -11, "buffer too small")                                                             \
    X(ENOTFOUND, -12, "no such object")                                                            \
    X(EINTERNAL, -13, "internal error")

/** Error codes returned by the API. Success is 0; every error is negative. */
typedef enum pp_error {
    PP_OK = 0,
#define PP_ERRNO_ENUM_(name, value, msg) PP_##name = (value),
    PP_ERRNO_MAP(PP_ERRNO_ENUM_)
#undef PP_ERRNO_ENUM_
    PP_ERRNO_LAST_ = -14
} pp_error;

/** A static, human-readable description of an error code ("invalid option value"). Never NULL;
 *  an unknown code gives "unknown error". */
PP_API const char *pp_strerror(int code);

/** The symbolic name of an error code ("PP_EBADVALUE"). Never NULL; unknown gives "PP_E?". */
PP_API const char *pp_err_name(int code);

/** The calling thread's message for its most recent failed call, naming the cause. Never NULL:
 *  "" when the thread has had no error. Valid until the thread's next call into the library. */
PP_API const char *pp_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/** The type of an option's value, as pp_config_set parses it. */
typedef enum pp_option_type {
    PP_OPT_INT = 1,      /**< decimal integer within [min, max] */
    PP_OPT_DURATION = 2, /**< "250ms", "2s", "1m", "1h"; bare number = milliseconds; min/max in ms */
    PP_OPT_BOOL = 3,     /**< on/off, true/false, yes/no, 1/0 */
    PP_OPT_ENUM = 4,     /**< one of the words listed in `choices` */
    PP_OPT_ADDRESS = 5,  /**< "host:port", "[v6]:port" */
    PP_OPT_BACKEND = 6,  /**< "host:port[,weight=N][,group=G][,pool_max=N][,host=H]"; each set appends one backend */
    PP_OPT_STRING = 7,   /**< text checked by the option itself (e.g. a path, a status range) */
    PP_OPT_LIST = 8      /**< each set appends one entry (a group, a route); reads back one entry per line */
} pp_option_type;

/** Describes one option of the table. Strings are static and owned by the library. */
typedef struct pp_option_info {
    size_t struct_size;       /**< in: sizeof(pp_option_info); out: bytes filled */
    const char *name;         /**< e.g. "pool_max" (CLI flag: --pool-max) */
    int type;                 /**< a pp_option_type */
    const char *default_text; /**< the default as text ("" when none) */
    const char *choices;      /**< PP_OPT_ENUM: "a|b|c"; otherwise "" */
    int64_t min;              /**< PP_OPT_INT/DURATION: lowest accepted value (ms for durations) */
    int64_t max;              /**< PP_OPT_INT/DURATION: highest accepted value */
    const char *help;         /**< one line of help text */
} pp_option_info;

/** Number of options in the table. */
PP_API size_t pp_option_count(void);

/** Fills *info for option number index (0 <= index < pp_option_count()). Set
 *  info->struct_size first. Returns PP_EINVAL for a bad index or NULL. */
PP_API int pp_option_get_info(size_t index, pp_option_info *info);

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                              */
/* ------------------------------------------------------------------------------------------ */

/** An opaque set of options and backends, read by pp_proxy_new. */
typedef struct pp_config pp_config;

/** An opaque proxy instance. */
typedef struct pp_proxy pp_proxy;

/** Log levels for the log callback. */
typedef enum pp_log_level {
    PP_LOG_ERROR = 0,
    PP_LOG_WARN = 1,
    PP_LOG_INFO = 2,
    PP_LOG_DEBUG = 3
} pp_log_level;

/** Log callback: message is NUL-terminated and valid only during the call. Runs on proxy
 *  threads; must not block. */
typedef void (*pp_log_fn)(void *userdata, int level, const char *message);

/** What a pp_event reports. */
typedef enum pp_event_type {
    PP_EVENT_PROXY_STARTED = 1,  /**< listener bound, workers running */
    PP_EVENT_PROXY_STOPPED = 2,  /**< every worker has stopped (last event of a proxy) */
    PP_EVENT_BACKEND_DOWN = 3,   /**< connecting to the backend failed after it last worked */
    PP_EVENT_BACKEND_UP = 4,     /**< a connection succeeded after failures */
    PP_EVENT_BACKEND_UNHEALTHY = 5, /**< active checks: health_fall checks failed in a row */
    PP_EVENT_BACKEND_HEALTHY = 6,   /**< active checks: health_rise checks passed in a row */
    PP_EVENT_BREAKER_OPEN = 7,      /**< breaker_failures in a row, or a failed probe: no new requests */
    PP_EVENT_BREAKER_HALF_OPEN = 8, /**< the open time passed: probe requests are admitted */
    PP_EVENT_BREAKER_CLOSED = 9,    /**< a probe succeeded: the backend takes requests again */
    PP_EVENT_BACKEND_ADDED = 10,    /**< pp_proxy_add_backend, or a DNS answer (also one back again) */
    PP_EVENT_BACKEND_REMOVED = 11,  /**< pp_proxy_remove_backend, or gone from a DNS answer */
    PP_EVENT_BACKEND_DRAINING = 12, /**< pp_proxy_drain_backend(..., 1) */
    PP_EVENT_BACKEND_READY = 13     /**< pp_proxy_drain_backend(..., 0): takes requests again */
} pp_event_type;

/** An event, valid only during the callback. */
typedef struct pp_event {
    size_t struct_size;  /**< sizeof(pp_event) as the library knows it */
    int type;            /**< a pp_event_type */
    int backend_id;      /**< index of the backend in configuration order; -1 when none */
    const char *address; /**< the backend's "host:port", or the listen address; never NULL */
    const char *reason;  /**< why, e.g. "connection refused"; never NULL */
} pp_event;

/** Event callback: runs on proxy threads; must not block. */
typedef void (*pp_event_fn)(void *userdata, const pp_event *event);

/** One finished request (http mode) or session (tcp mode), for access logs. Valid only during
 *  the callback. Times are microseconds; a phase that did not happen is 0. */
typedef struct pp_access_entry {
    size_t struct_size;         /**< sizeof(pp_access_entry) as the library knows it */
    int worker;                 /**< worker index */
    int backend_id;             /**< backend index, or -1 when none was reached */
    const char *backend;        /**< backend "host:port", or "" */
    const char *client;         /**< client address "ip:port" */
    const char *method;         /**< http: request method; tcp: "" */
    const char *target;         /**< http: request target; tcp: "" */
    int status;                 /**< http: status sent to the client (0: none); tcp: 0 */
    int reused;                 /**< 1 when the backend connection came from the idle pool */
    uint64_t bytes_in;          /**< bytes from the client (tcp: relayed upstream) */
    uint64_t bytes_out;         /**< bytes to the client (tcp: relayed downstream) */
    uint64_t queue_wait_us;     /**< waiting for a pooled connection */
    uint64_t connect_us;        /**< opening a backend connection (0 when reused) */
    uint64_t first_byte_us;     /**< request sent to first response byte (http) */
    uint64_t total_us;          /**< request head (tcp: accept) to the end */
    const char *reason;         /**< why it ended, when not cleanly: "client_io_timeout",
                                     "backend_io_timeout", "client closed", a socket error...;
                                     "" for a clean end; never NULL (since 0.2) */
} pp_access_entry;

/** Access-log callback: runs on worker threads once per finished request (http) or session
 *  (tcp); must not block. */
typedef void (*pp_access_fn)(void *userdata, const pp_access_entry *entry);

/** Creates a configuration holding every option's default and no backend. */
PP_API int pp_config_new(pp_config **out);

/** Frees a configuration. NULL is a no-op. A proxy made from it is unaffected. */
PP_API void pp_config_free(pp_config *cfg);

/** Sets option `name` from text. The value is checked now: a bad one returns PP_EBADVALUE (and
 *  PP_ENOOPT for an unknown name), leaves the old value, and pp_last_error() names the option and
 *  the reason. Setting "backend" appends a backend, like pp_config_add_backend. */
PP_API int pp_config_set(pp_config *cfg, const char *name, const char *value);

/** Writes option `name`'s current value as text into buf (NUL-terminated). Returns PP_ETRUNC if
 *  buflen is too small. For "backend" it writes the backends, comma-and-space separated. */
PP_API int pp_config_get(const pp_config *cfg, const char *name, char *buf, size_t buflen);

/** Appends a backend "host:port" (IPv4, "[IPv6]:port", "localhost", or a DNS host name) with a
 *  weight in 1..1000. Address backends are numbered from 0 in the order added. A host name is
 *  resolved asynchronously once the proxy runs and again every dns_refresh: each address it
 *  resolves to becomes a backend of its own ("name:port/ip:port", added and removed as the
 *  answers change, with events), so it has no fixed id. */
PP_API int pp_config_add_backend(pp_config *cfg, const char *address, int weight);

/** Number of backends configured so far. */
PP_API int pp_config_backend_count(const pp_config *cfg);

/** Reads "name = value" lines from a file ('#' starts a comment; blank lines ignored; a
 *  "backend" line may repeat). Stops at the first bad line, naming file, line and option. */
PP_API int pp_config_load_file(pp_config *cfg, const char *path);

/** Sets the log callback and the most verbose level it receives. fn NULL removes it. */
PP_API int pp_config_set_log_callback(pp_config *cfg, pp_log_fn fn, void *userdata, int max_level);

/** Sets the event callback. fn NULL removes it. */
PP_API int pp_config_set_event_callback(pp_config *cfg, pp_event_fn fn, void *userdata);

/** Sets the access-log callback. fn NULL removes it. */
PP_API int pp_config_set_access_callback(pp_config *cfg, pp_access_fn fn, void *userdata);

/* ------------------------------------------------------------------------------------------ */
/* Hooks: steering the proxy per request (since 0.2.0)                                        */
/* ------------------------------------------------------------------------------------------ */

/* Hooks run on the worker thread of the connection, for every request (http mode) or
 * connection (tcp mode), and must not block: a lookup that takes time pauses the exchange
 * (pp_exchange_pause) and resumes it from any thread (pp_exchange_resume). No hook set costs
 * nothing. A hook may not call pp_proxy_stop or pp_proxy_free.
 *
 * A hook gets a pp_exchange handle and an info struct. Both are valid only during the call:
 * keep neither (a pause gives a token, which stays valid). The strings an info struct or
 * pp_exchange_field give are valid until the hook returns or changes the fields. The info
 * structs are versioned by struct_size like the stats: fields are only ever appended. */

/** The exchange a hook is steering (opaque; valid during the hook call only, and only on the
 *  hook's thread: a call from another thread returns PP_ESTATE). */
typedef struct pp_exchange pp_exchange;

/** What a request hook sees of the request (http mode). */
typedef struct pp_request_info {
    size_t struct_size;   /**< sizeof(pp_request_info) of the library that filled it */
    const char *method;   /**< "GET" */
    const char *target;   /**< as the client sent it, "/path?query" */
    int http_minor;       /**< 0 for HTTP/1.0, 1 for HTTP/1.1 */
    const char *client;   /**< the client's "ip:port" ("[ip]:port" for IPv6) */
    int worker;           /**< the worker running the hook */
    uint32_t resumes;     /**< 0 on the first call; n when called again after the n-th resume */
    uint64_t token;       /**< on a call after a resume: the token that resumed it; else 0 */
    const char *group;    /**< the backend group a route picked ("" = the default group) */
    const char *upstream_target; /**< the target as it will go upstream (a route's strip_prefix, or an
                                      earlier call's pp_exchange_set_target) */
    const char *host;     /**< the Host as the client sent it ("" when none); the head's Host is as it
                               will go upstream (a route's host_rewrite applied) */
} pp_request_info;

/** A request hook. It may read and change the request's fields and target, pick the group or a
 *  backend, answer at once (pp_exchange_respond), or pause. Return 0 to go on; a negative
 *  return answers the client 500 (the hook failed; logged). After pp_exchange_resume the hook
 *  is called again with the same request, info->resumes counting the resumes.
 *  The head it sees is the one that goes upstream: the fields the client's Connection named
 *  are gone, and a route's host_rewrite is its Host; a route's strip_prefix is in
 *  info->upstream_target. What the hook sets wins over the route and over a backend's host=.
 *  Picking another group keeps the route's rewrites (set them back from info->target and
 *  info->host if the new group wants the client's own). */
typedef int (*pp_request_hook_fn)(void *userdata, pp_exchange *ex, const pp_request_info *info);

/** What a response hook sees: the backend's final response head (not 1xx, not a 101 switch). */
typedef struct pp_response_info {
    size_t struct_size;
    int status;           /**< 200..599 */
    const char *method;   /**< of the request it answers */
    const char *target;   /**< of the request as sent upstream */
    int backend_id;       /**< the backend that answered */
} pp_response_info;

/** A response hook: may add, set or remove the response's fields. Return 0 to go on; a
 *  negative return answers the client 500 instead (logged). */
typedef int (*pp_response_hook_fn)(void *userdata, pp_exchange *ex, const pp_response_info *info);

/** What a connect hook sees of a new client connection (tcp mode). */
typedef struct pp_connect_info {
    size_t struct_size;
    const char *client;   /**< the client's "ip:port" */
    int worker;
} pp_connect_info;

/** A connect hook (tcp mode): may pick the group (pp_exchange_set_group). Return 0 to go on,
 *  nonzero to reject the connection (closed at once, counted as a finished session). */
typedef int (*pp_connect_hook_fn)(void *userdata, pp_exchange *ex, const pp_connect_info *info);

/** Sets (or with NULL clears) a hook. userdata is passed to every call. */
PP_API int pp_config_set_request_hook(pp_config *cfg, pp_request_hook_fn fn, void *userdata);
PP_API int pp_config_set_response_hook(pp_config *cfg, pp_response_hook_fn fn, void *userdata);
PP_API int pp_config_set_connect_hook(pp_config *cfg, pp_connect_hook_fn fn, void *userdata);

/** The number of fields of the head the hook sees (the request in a request hook, the
 *  response in a response hook), or a negative PP_E code. */
PP_API int pp_exchange_field_count(const pp_exchange *ex);
/** Field `index` (0-based, in order) of that head: *name and *value point at NUL-terminated
 *  strings. PP_ENOTFOUND past the last. */
PP_API int pp_exchange_field(const pp_exchange *ex, size_t index, const char **name, const char **value);
/** The value of the first field named `name` (case-insensitively), or NULL when none. */
PP_API const char *pp_exchange_find_field(const pp_exchange *ex, const char *name);
/** Sets field `name` to `value`: the first of that name is changed and the others removed, or
 *  the field is added. The framing and hop-by-hop fields (Content-Length, Transfer-Encoding,
 *  Connection, Keep-Alive, Upgrade, TE, Trailer, Proxy-Connection) are the proxy's: PP_EINVAL.
 *  A name must be an HTTP token, a value must hold no CR, LF or NUL: PP_EINVAL. */
PP_API int pp_exchange_set_field(pp_exchange *ex, const char *name, const char *value);
/** Adds a field after the others (same rules; Host is refused: set it). A head grows to at most
 *  1024 fields and max_header_size bytes: PP_EINVAL beyond. */
PP_API int pp_exchange_add_field(pp_exchange *ex, const char *name, const char *value);
/** Removes every field named `name`; PP_ENOTFOUND when there was none. */
PP_API int pp_exchange_remove_field(pp_exchange *ex, const char *name);
/** Request hook: the target sent upstream: origin form ("/path?query"), or "*". */
PP_API int pp_exchange_set_target(pp_exchange *ex, const char *target);
/** Request or connect hook: the backend group ("" or "default": the default group). An
 *  unknown name returns PP_ENOTFOUND, and the request is answered 500 (the connection closed
 *  in tcp mode) with a log line naming it. */
PP_API int pp_exchange_set_group(pp_exchange *ex, const char *group);
/** Request hook: this backend (an id of pp_proxy_backend_stats) and no other; retries stay on
 *  it. An unknown id returns PP_ENOTFOUND and the request is answered 500. */
PP_API int pp_exchange_set_backend(pp_exchange *ex, int backend_id);
/** Request hook: answers the client now with `status` (200..599), the fields in `fields` (NULL,
 *  or pairs name, value, ..., then NULL) and body_len bytes of `body`; no backend is asked.
 *  The connection closes after it. */
PP_API int pp_exchange_respond(pp_exchange *ex, int status, const char *const *fields, const char *body,
                               size_t body_len);
/** Request hook: the exchange waits when the hook returns, until pp_exchange_resume(token) or
 *  response_timeout (then 504). Nothing is read or sent for it meanwhile. */
PP_API int pp_exchange_pause(pp_exchange *ex, uint64_t *token);
/** Any thread: the paused exchange goes on; its request hook is called again on its worker.
 *  PP_ESTATE when the token was resumed already, or the exchange ended (the client left, the
 *  response_timeout answered it, the proxy stopped or began to drain: a paused exchange is then
 *  answered 503). Never crashes on a stale token; tokens are unique in the process. Like every
 *  pp_proxy_* call, not after pp_proxy_free (the bindings guard this). */
PP_API int pp_exchange_resume(pp_proxy *proxy, uint64_t token);

/* ------------------------------------------------------------------------------------------ */
/* Proxy                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** Where a proxy is in its lifecycle. */
typedef enum pp_proxy_state_t {
    PP_STATE_CREATED = 0,
    PP_STATE_RUNNING = 1,
    PP_STATE_STOPPED = 2
} pp_proxy_state_t;

/** Creates a proxy from a configuration, checking options against each other (for example
 *  pool_min_idle <= pool_max) and requiring at least one backend. The config is copied. */
PP_API int pp_proxy_new(pp_proxy **out, const pp_config *cfg);

/** Binds the listener, starts the workers and the acceptor, and returns once connections are
 *  being accepted. PP_EBIND names the address if it cannot be bound. A proxy starts once:
 *  start on a running or stopped proxy returns PP_ESTATE. Every backend gets a connection
 *  at start (pool_min_idle of them in the background; with pool_min_idle 0, one from worker 0,
 *  kept in the pool and counted under pool_max, which this call waits for: at most
 *  connect_timeout, and 1 s). So a backend that cannot be reached is reported before a
 *  request finds out: a warning naming it and the reason, and PP_EVENT_BACKEND_DOWN. The proxy
 *  runs anyway (other backends serve; that one is retried). Callbacks run inside this call
 *  (log lines, events) may not stop or free the proxy. */
PP_API int pp_proxy_start(pp_proxy *proxy);

/** Stops accepting at once, lets sessions in flight finish for up to drain_ms milliseconds
 *  (negative: the configured drain_timeout), closes idle pooled connections, then closes what is
 *  left and joins every thread. Returns PP_ESTATE if the proxy is not running. */
PP_API int pp_proxy_stop(pp_proxy *proxy, int drain_ms);

/** Frees a proxy that is not running. NULL is a no-op returning 0. A running proxy is left
 *  untouched and PP_ESTATE is returned: stop it first. */
PP_API int pp_proxy_free(pp_proxy *proxy);

/** The proxy's lifecycle state (a pp_proxy_state_t), or a negative error code. */
PP_API int pp_proxy_state(const pp_proxy *proxy);

/** Writes the bound listen address ("127.0.0.1:40123", "[::1]:40123") into buf. The port is the
 *  real one even when "listen" asked for port 0. PP_ESTATE before start. */
PP_API int pp_proxy_local_address(const pp_proxy *proxy, char *buf, size_t buflen);

/** The bound listen port, or a negative error code (PP_ESTATE before start). */
PP_API int pp_proxy_local_port(const pp_proxy *proxy);

/* ------------------------------------------------------------------------------------------ */
/* Statistics                                                                                 */
/*                                                                                            */
/* Each struct starts with struct_size: set it to sizeof(the struct) you compiled against. The */
/* library fills min(struct_size, its own size) bytes and writes back how many it filled, so  */
/* old callers keep working when fields are appended. Counters only grow; gauges are marked.  */
/*                                                                                            */
/* One table per struct lists its fields; the struct, the library's counting and summing, the */
/* Prometheus text, the /stats JSON and the bindings are all made from it, so a new field is  */
/* one row appended at the end of its table. Each row is                                      */
/*   X(field, kind, from, since, series, labels, doc)                                         */
/* - field:  the uint64_t member, also its key in the /stats JSON (where breaker_state and    */
/*           state are names: "breaker":"half-open", "state":"draining");                     */
/* - kind:   COUNTER (only grows), GAUGE (a level now), FLAG (a gauge that is 0 or 1; JSON    */
/*           true/false);                                                                     */
/* - from:   how the library gathers it: WORKER counted by each worker and summed; POOL       */
/*           counted by each worker's pool of the backend and summed; SHARED the worker's own */
/*           share of the pp_stats field of that name; OTHER gathered another way (the        */
/*           acceptor, the backend's state, a sum over pools);                                */
/* - since:  the release that added it;                                                       */
/* - series: its Prometheus metric without the "poolproxy_" prefix ("" when not exported),    */
/*           and the labels that tell apart the fields one metric carries (per-worker and     */
/*           per-backend series add worker="N" or backend="host:port" first);                 */
/* - doc:    what it counts (also the metric's HELP text).                                    */
/* ------------------------------------------------------------------------------------------ */

/** pp_stats: whole-proxy counters, the sum over workers plus the acceptor's own. */
#define PP_STATS_FIELDS(X)                                                                         \
    X(connections_accepted, COUNTER, OTHER, "0.1", "connections_accepted_total", "",               \
      "Client connections accepted.")                                                              \
    X(connections_active, GAUGE, OTHER, "0.1", "connections_active", "",                           \
      "Client connections open now.")                                                              \
    X(connections_rejected_max, COUNTER, OTHER, "0.1", "connections_rejected_total",               \
      "reason=\"max_connections\"", "Client connections closed at once: max_connections reached.") \
    X(connections_rejected_overflow, COUNTER, OTHER, "0.1", "connections_rejected_total",          \
      "reason=\"overflow_full\"", "Client connections closed at once: overflow queue full.")       \
    X(connections_rejected_no_backend, COUNTER, OTHER, "0.1", "connections_rejected_total",        \
      "reason=\"no_backend\"", "Client connections closed: no backend could serve.")               \
    X(sessions_finished, COUNTER, WORKER, "0.1", "sessions_finished_total", "",                    \
      "Client sessions closed after being served.")                                                \
    X(overflow_queued, COUNTER, OTHER, "0.1", "overflow_queued_total", "",                         \
      "Accepted connections (hand-offs) that went through the overflow queue.")                    \
    X(overflow_stolen, COUNTER, WORKER, "0.1", "", "",                                             \
      "Of the overflow hand-offs, those a worker took from the queue.")                            \
    X(queue_waits, COUNTER, WORKER, "0.1", "queue_waits_total", "",                                \
      "Sessions that waited for a pooled backend connection.")                                     \
    X(queue_timeouts, COUNTER, WORKER, "0.1", "queue_timeouts_total", "",                          \
      "Sessions that waited, closed because queue_timeout passed.")                                \
    X(queue_full, COUNTER, WORKER, "0.1", "queue_full_total", "",                                  \
      "Sessions refused because queue_max were already waiting.")                                  \
    X(queue_waiting, GAUGE, OTHER, "0.1", "queue_waiting", "",                                     \
      "Sessions waiting for a backend connection now.")                                            \
    X(backend_connects, COUNTER, OTHER, "0.1", "", "",                                             \
      "Backend connections opened successfully.")                                                  \
    X(backend_connect_failures, COUNTER, OTHER, "0.1", "", "",                                     \
      "Backend connects that failed or timed out.")                                                \
    X(backend_conns_open, GAUGE, OTHER, "0.1", "", "",                                             \
      "Backend connections open or opening; never above pool_max per backend. The cap counts "     \
      "the proxy's own sockets: a slot is free again once the proxy closed its end.")              \
    X(backend_conns_idle, GAUGE, OTHER, "0.1", "", "",                                             \
      "Of the backend connections open, those idle in a pool.")                                    \
    X(pool_hits, COUNTER, WORKER, "0.1", "pool_hits_total", "",                                    \
      "Requests (tcp: sessions) given an already-open pooled connection.")                         \
    X(pool_misses, COUNTER, WORKER, "0.1", "pool_misses_total", "",                                \
      "Requests (tcp: sessions) that had to open or wait for a connection.")                       \
    X(idle_closed_by_backend, COUNTER, OTHER, "0.1", "", "",                                       \
      "Idle pooled connections the backend closed.")                                               \
    X(idle_closed_timeout, COUNTER, OTHER, "0.1", "", "",                                          \
      "Idle connections retired by pool_idle_timeout.")                                            \
    X(idle_closed_lifetime, COUNTER, OTHER, "0.1", "", "",                                         \
      "Connections retired by max_conn_lifetime.")                                                 \
    X(bytes_client_to_backend, COUNTER, OTHER, "0.1", "bytes_total",                               \
      "direction=\"client_to_backend\"", "Payload bytes relayed upstream.")                        \
    X(bytes_backend_to_client, COUNTER, OTHER, "0.1", "bytes_total",                               \
      "direction=\"backend_to_client\"", "Payload bytes relayed downstream.")                      \
    X(accept_errors, COUNTER, OTHER, "0.1", "accept_errors_total", "",                             \
      "accept() failures, e.g. EMFILE.")                                                           \
    X(requests, COUNTER, WORKER, "0.1", "", "",                                                    \
      "http: requests answered, by a backend or by the proxy (4xx/5xx of its own); tcp: "          \
      "sessions ended.")                                                                           \
    X(responses_1xx, COUNTER, OTHER, "0.1", "responses_total", "class=\"1xx\"",                    \
      "http: final answers by status class; with the four below they add up to requests.")         \
    X(responses_2xx, COUNTER, OTHER, "0.1", "responses_total", "class=\"2xx\"",                    \
      "http: answers with a 2xx status.")                                                          \
    X(responses_3xx, COUNTER, OTHER, "0.1", "responses_total", "class=\"3xx\"",                    \
      "http: answers with a 3xx status.")                                                          \
    X(responses_4xx, COUNTER, OTHER, "0.1", "responses_total", "class=\"4xx\"",                    \
      "http: answers with a 4xx status.")                                                          \
    X(responses_5xx, COUNTER, OTHER, "0.1", "responses_total", "class=\"5xx\"",                    \
      "http: answers with a 5xx status.")                                                          \
    X(retries, COUNTER, WORKER, "0.1", "", "",                                                     \
      "Requests or sessions sent again: on another connection after a reused one died, or to "     \
      "another backend after a failed connect.")                                                   \
    X(backend_closed_max_requests, COUNTER, OTHER, "0.1", "", "",                                  \
      "Connections retired by max_requests_per_conn.")                                             \
    X(backend_closed_error, COUNTER, OTHER, "0.1", "", "",                                         \
      "Connections closed because the exchange on them failed (reset, response_timeout, "          \
      "invalid response).")                                                                        \
    X(backend_closed_session_end, COUNTER, OTHER, "0.1", "", "",                                   \
      "tcp: closed with their session; http: the response ruled out reuse (Connection: close).")   \
    X(backend_transitions, COUNTER, OTHER, "0.1", "", "",                                          \
      "Backends going down or up again, summed.")                                                  \
    X(no_backend_unhealthy, COUNTER, WORKER, "0.1", "no_backend_total", "reason=\"unhealthy\"",    \
      "Requests (tcp: sessions) refused because every backend was unhealthy by active checks.")    \
    X(no_backend_breaker_open, COUNTER, WORKER, "0.1", "no_backend_total",                         \
      "reason=\"breaker_open\"",                                                                   \
      "Refused because every backend's breaker was open or its half-open probes were taken.")      \
    X(no_backend_limits, COUNTER, WORKER, "0.1", "no_backend_total", "reason=\"limits\"",          \
      "Refused because backend_max_requests or backend_max_pending were reached.")            \
    X(client_io_timeouts, COUNTER, WORKER, "0.2", "client_io_timeouts_total", "",                 \
      "http: exchanges ended because the client moved no byte for client_io_timeout (stopped "     \
      "reading a response, stalled a request body).")                                              \
    X(backend_io_timeouts, COUNTER, WORKER, "0.2", "backend_io_timeouts_total", "",               \
      "http: exchanges ended because the backend moved no byte for backend_io_timeout "            \
      "mid-response.")                                                                             \
    X(tls_handshakes, COUNTER, WORKER, "0.3", "tls_handshakes_total", "side=\"client\"",            \
      "Client TLS handshakes completed, full or resumed.")                                         \
    X(tls_resumed, COUNTER, WORKER, "0.3", "tls_resumed_total", "side=\"client\"",                  \
      "Client TLS handshakes that resumed a session (a ticket or the session cache).")             \
    X(tls_failed_protocol, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",                 \
      "side=\"client\",reason=\"protocol\"",                                                       \
      "Client TLS handshakes refused: no common version or cipher, a bad or missing client "       \
      "certificate, a malformed message.")                                                         \
    X(tls_failed_plaintext, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",                \
      "side=\"client\",reason=\"plaintext\"",                                                      \
      "Client connections to the TLS listener whose first byte was not a TLS handshake.")          \
    X(tls_failed_timeout, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",                  \
      "side=\"client\",reason=\"timeout\"",                                                        \
      "Client TLS handshakes not completed within tls_handshake_timeout.")                        \
    X(tls_failed_closed, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",                   \
      "side=\"client\",reason=\"closed\"",                                                         \
      "Client connections that closed or reset during their TLS handshake.")                       \
    X(tls_backend_handshakes, COUNTER, WORKER, "0.3", "tls_handshakes_total", "side=\"backend\"",   \
      "backend_tls: handshakes completed with backends (one per pooled connection opened).")      \
    X(tls_backend_resumed, COUNTER, WORKER, "0.3", "tls_resumed_total", "side=\"backend\"",         \
      "backend_tls: handshakes that resumed the worker's last session with the backend.")          \
    X(tls_backend_failed_verify, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",           \
      "side=\"backend\",reason=\"verify\"",                                                        \
      "backend_tls: backend certificates refused (chain, name, validity); the log says why.")      \
    X(tls_backend_failed_timeout, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",          \
      "side=\"backend\",reason=\"timeout\"",                                                       \
      "backend_tls: handshakes with backends not done within connect_timeout.")                    \
    X(tls_backend_failed_protocol, COUNTER, WORKER, "0.3", "tls_handshake_failures_total",         \
      "side=\"backend\",reason=\"protocol\"",                                                      \
      "backend_tls: other failed handshakes (no common version or cipher, an alert, a close).")

/** pp_worker_stats: one worker's counters. */
#define PP_WORKER_STATS_FIELDS(X)                                                                  \
    X(sessions_started, COUNTER, WORKER, "0.1", "worker_sessions_total", "",                       \
      "Client sessions a worker took on.")                                                         \
    X(sessions_active, GAUGE, WORKER, "0.1", "worker_sessions_active", "",                         \
      "Client sessions open on a worker now.")                                                     \
    X(handoffs_queued, GAUGE, OTHER, "0.1", "worker_handoffs_queued", "",                          \
      "Accepted sockets waiting in a worker's hand-off queue.")                                    \
    X(overflow_stolen, COUNTER, SHARED, "0.1", "worker_overflow_stolen_total", "",                 \
      "Sessions a worker took from the overflow queue.")                                           \
    X(bytes_relayed, COUNTER, OTHER, "0.1", "", "",                                                \
      "Payload bytes relayed in both directions.")                                                 \
    X(backend_conns_open, GAUGE, OTHER, "0.1", "", "",                                             \
      "Backend connections the worker owns.")                                                      \
    X(backend_conns_idle, GAUGE, OTHER, "0.1", "", "",                                             \
      "Of the worker's backend connections, those idle.")                                          \
    X(requests, COUNTER, SHARED, "0.1", "requests_total", "",                                      \
      "http: requests answered, by a backend or the proxy; tcp: sessions ended.")                  \
    X(retries, COUNTER, SHARED, "0.1", "retries_total", "",                                        \
      "Requests sent again on another connection or backend.")                                     \
    X(accepted, COUNTER, WORKER, "0.2", "worker_accepted_total", "",                               \
      "Client connections a worker accepted itself (the others: hand-off, overflow queue).")       \
    X(accepts_empty, COUNTER, WORKER, "0.2", "worker_accepts_empty_total", "",                     \
      "Wake-ups for the listener that found no connection (another worker had taken it).")

/** pp_backend_stats: one backend's counters, summed over workers. */
#define PP_BACKEND_STATS_FIELDS(X)                                                                 \
    X(conns_open, GAUGE, OTHER, "0.1", "backend_connections_open", "",                             \
      "Backend connections open or opening, all workers.")                                         \
    X(conns_idle, GAUGE, OTHER, "0.1", "backend_connections_idle", "",                             \
      "Idle pooled backend connections.")                                                          \
    X(conns_opened, COUNTER, OTHER, "0.1", "backend_connections_opened_total", "",                 \
      "Backend connections opened successfully.")                                                  \
    X(connect_failures, COUNTER, POOL, "0.1", "backend_connect_failures_total", "",                \
      "Backend connects that failed or timed out.")                                                \
    X(sessions, COUNTER, POOL, "0.1", "", "",                                                      \
      "Sessions served.")                                                                          \
    X(sessions_active, GAUGE, POOL, "0.1", "backend_sessions_active", "",                          \
      "Requests (tcp: sessions) in flight to the backend.")                                        \
    X(weight, GAUGE, OTHER, "0.1", "", "",                                                         \
      "The configured weight.")                                                                    \
    X(up, FLAG, OTHER, "0.1", "backend_up", "",                                                    \
      "1 unless the backend's last connect attempt failed.")                                       \
    X(requests, COUNTER, POOL, "0.1", "backend_requests_total", "",                                \
      "Requests (tcp: sessions) the backend served.")                                              \
    X(responses_5xx, COUNTER, POOL, "0.1", "backend_responses_5xx_total", "",                      \
      "http: 5xx answers from the backend or, on its behalf, from the proxy (502, 504).")          \
    X(closed_by_backend, COUNTER, POOL, "0.1", "backend_connections_closed_total",                 \
      "reason=\"backend_close\"", "Idle pooled connections the backend closed.")                   \
    X(closed_idle_timeout, COUNTER, POOL, "0.1", "backend_connections_closed_total",               \
      "reason=\"idle_timeout\"", "Connections retired by pool_idle_timeout.")                      \
    X(closed_lifetime, COUNTER, POOL, "0.1", "backend_connections_closed_total",                   \
      "reason=\"lifetime\"", "Connections retired by max_conn_lifetime.")                          \
    X(closed_max_requests, COUNTER, POOL, "0.1", "backend_connections_closed_total",               \
      "reason=\"max_requests\"", "Connections retired by max_requests_per_conn.")                  \
    X(closed_error, COUNTER, POOL, "0.1", "backend_connections_closed_total",                      \
      "reason=\"error\"", "Connections closed because the exchange on them failed.")               \
    X(transitions, COUNTER, OTHER, "0.1", "backend_transitions_total", "",                         \
      "Times the backend went down or came back up.")                                              \
    X(healthy, FLAG, OTHER, "0.1", "backend_healthy", "",                                          \
      "1 unless active health checks marked the backend unhealthy.")                               \
    X(health_checks_failed, COUNTER, OTHER, "0.1", "backend_health_checks_failed_total", "",       \
      "Active health checks that failed.")                                                         \
    X(breaker_state, GAUGE, OTHER, "0.1", "backend_breaker_state", "",                             \
      "The backend's circuit breaker: 0 closed, 1 open, 2 half-open.")                             \
    X(breaker_transitions, COUNTER, OTHER, "0.1", "backend_breaker_transitions_total", "",         \
      "Circuit breaker state changes.")                                                            \
    X(state, GAUGE, OTHER, "0.1", "backend_state", "",                                             \
      "Administrative state: 0 active, 1 draining, 2 removed.")

#define PP_STATS_FIELD_(field, kind, from, since, series, labels, doc) uint64_t field;

/** Whole-proxy counters: the sum over workers plus the acceptor's own (PP_STATS_FIELDS). */
typedef struct pp_stats {
    size_t struct_size;
    PP_STATS_FIELDS(PP_STATS_FIELD_)
} pp_stats;

/** One worker's counters (PP_WORKER_STATS_FIELDS). */
typedef struct pp_worker_stats {
    size_t struct_size;
    PP_WORKER_STATS_FIELDS(PP_STATS_FIELD_)
} pp_worker_stats;

/** One backend's counters, summed over workers (PP_BACKEND_STATS_FIELDS). */
typedef struct pp_backend_stats {
    size_t struct_size;
    PP_BACKEND_STATS_FIELDS(PP_STATS_FIELD_)
} pp_backend_stats;

#undef PP_STATS_FIELD_

/** Fills the whole-proxy counters. Safe from any thread; never stops the workers. */
PP_API int pp_proxy_stats(const pp_proxy *proxy, pp_stats *out);

/** Number of worker threads (after "workers = 0" was resolved to the CPU count). */
PP_API int pp_proxy_worker_count(const pp_proxy *proxy);

/** Fills worker `index`'s counters (0 <= index < pp_proxy_worker_count). */
PP_API int pp_proxy_worker_stats(const pp_proxy *proxy, int index, pp_worker_stats *out);

/** Number of backends. */
PP_API int pp_proxy_backend_count(const pp_proxy *proxy);

/** Fills backend `index`'s counters; writes its address into addr_buf when addr_buf is not NULL
 *  (PP_ETRUNC if addr_len is too small; the stats are filled either way). */
PP_API int pp_proxy_backend_stats(const pp_proxy *proxy, int index, pp_backend_stats *out,
                                  char *addr_buf, size_t addr_len);

/** Adds a backend "host:port" with a weight in 1..1000 to a created or running proxy, from any
 *  thread (before pp_proxy_start: the controlling thread). Returns the new backend's id (>= 0;
 *  ids are never reused), or a negative PP_E code: PP_ESYS beyond 1024 backends at once
 *  (removed ones do not count) or once all 8192 ids are used. Workers start using it at once;
 *  health checks cover it; a PP_EVENT_BACKEND_ADDED event reports it. */
PP_API int pp_proxy_add_backend(pp_proxy *proxy, const char *address, int weight);

/** Like pp_proxy_add_backend, with the `backend` option's text:
 *  "host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]" (an address, not a host name to
 *  resolve). The group must be one the proxy has (made with it, or added by pp_proxy_reload):
 *  PP_EBADVALUE names it otherwise. Since 0.2.0. */
PP_API int pp_proxy_add_backend_spec(pp_proxy *proxy, const char *spec);

/** Takes up `cfg`'s backend groups, backends and routes in a running proxy, from any thread
 *  but the proxy's own (the CLI calls it on SIGHUP). No client connection is touched.
 *  - A group new in cfg is added; a group whose options changed is replaced by a new one of
 *    that name (Envoy's cluster update): its backends are added anew under it (new ids), the old
 *    ones are removed and finish what they carry, and sessions waiting for the old group go on
 *    waiting, in order, for the new one. A group cfg no longer names is removed. The default
 *    group is the top-level options that a group may set (pool_max, lb, the timeouts...).
 *  - Backends given as addresses are matched by address, group, pool_max= and host=: one cfg
 *    still lists stays (its weight is updated), one it adds is added, one it no longer lists is
 *    removed, including those added with pp_proxy_add_backend*: cfg is the whole set. Backends
 *    given by host name keep what the proxy was made with, and so does a group holding any (its
 *    options stay, and it is not removed).
 *  - Routes are replaced: each worker takes the new table at its next turn; a request under way
 *    keeps the route it matched.
 *  - The listener's TLS (tls_* options, the certificate, key and CA files re-read): when any
 *    changed, new connections handshake with the new certificates, those under way keep
 *    theirs; an expired or unusable certificate refuses the reload (PP_EBADVALUE, nothing
 *    changed). Turning TLS on or off needs a restart. Since 0.3.0.
 *  The proxy's callbacks and every other option stay as the proxy was made (the log callback
 *  gets a warning naming each option that changed and needs a restart). Returns PP_OK; or a
 *  PP_E code and a message, with nothing changed, when cfg could not make a proxy (as
 *  pp_proxy_new checks it), when a limit would be passed (PP_ESYS: 1024 backends at once, 8192
 *  backend ids, 1024 group ids: each replaced or added group takes one), or the proxy is not
 *  running (PP_ESTATE: not started yet, stopped, or stopping). Reloads are serialized, and
 *  pp_proxy_stop waits for one under way. The log and event callbacks run on the calling
 *  thread here count as the proxy's own (pp_proxy_stop and the backend changes are refused
 *  from them). A session that a worker handles before it has taken the reload up is served
 *  as after it: it never finds "no backend" for a backend removed in favour of another.
 *  Since 0.2.0. */
PP_API int pp_proxy_reload(pp_proxy *proxy, const pp_config *cfg);

/** Removes backend `id` from any thread: it gets no new requests, those in flight finish, its
 *  idle pooled connections close. Its id and stats stay (state 2); it cannot come back (add it
 *  again: it gets a new id). The one exception is a backend made from a DNS name's answer that
 *  a later answer dropped: when its address is in an answer again it comes back under the same
 *  id (same name and address; a PP_EVENT_BACKEND_ADDED event says so), so answers that rotate
 *  use no new ids. One the embedder removed stays removed. */
PP_API int pp_proxy_remove_backend(pp_proxy *proxy, int id);

/** Drains backend `id` (drain = 1: no new requests, those in flight finish, idle pooled
 *  connections close) or makes it take requests again (drain = 0), from any thread. */
PP_API int pp_proxy_drain_backend(pp_proxy *proxy, int id, int drain);

/** Changes backend `id`'s weight (1..1000) from any thread; selection uses it at once. */
PP_API int pp_proxy_set_backend_weight(pp_proxy *proxy, int id, int weight);

/** Which latency pp_proxy_latency reports. */
typedef enum pp_latency_kind {
    PP_LATENCY_REQUEST = 0,    /**< http: request head received -> response complete; tcp: session */
    PP_LATENCY_QUEUE_WAIT = 1, /**< time waiting for a pooled connection (only those that waited) */
    PP_LATENCY_CONNECT = 2,    /**< successful backend connects */
    PP_LATENCY_TLS_HANDSHAKE = 3,         /**< client TLS handshakes completed, from the accept (since 0.3.0) */
    PP_LATENCY_TLS_BACKEND_HANDSHAKE = 4  /**< backend_tls handshakes completed, after the TCP connect (since 0.3.0) */
} pp_latency_kind;

/** A latency distribution, from histograms with buckets 1, 1.5, 2, 2.5, 3, 4, 5, 6 and 7.5 per
 *  decade from 10 µs to 100 s: quantiles are interpolated within their bucket. */
typedef struct pp_latency {
    size_t struct_size;  /**< in: sizeof(pp_latency); out: bytes filled */
    uint64_t count;      /**< observations (since 0.1) */
    uint64_t sum_us;     /**< their sum in microseconds (since 0.1) */
    uint64_t p50_us;     /**< median (since 0.1) */
    uint64_t p90_us;     /**< (since 0.1) */
    uint64_t p99_us;     /**< (since 0.1) */
    uint64_t p999_us;    /**< (since 0.1) */
} pp_latency;

/** Fills *out with the distribution of `kind` (a pp_latency_kind) for worker `worker`, or for
 *  all workers when worker is -1. Safe from any thread; never stops the workers. */
PP_API int pp_proxy_latency(const pp_proxy *proxy, int kind, int worker, pp_latency *out);

/** Writes every counter, gauge and histogram in the Prometheus text exposition format (0.0.4):
 *  names prefixed "poolproxy_", counters ending in "_total", latencies as "_seconds"
 *  histograms, labels "worker" and "backend". *len receives the text's length (without the
 *  terminating NUL) even when buf is too small; then PP_ETRUNC is returned and buf, if size > 0,
 *  holds a NUL-terminated prefix. Pass buf NULL and size 0 to learn the length. Safe from any
 *  thread. The admin listener (option admin_listen) serves the same text at /metrics. */
PP_API int pp_proxy_metrics(const pp_proxy *proxy, char *buf, size_t size, size_t *len);

/** The port of the admin listener (option admin_listen), or PP_ESTATE when it is off or the proxy
 *  is not running. It serves GET /metrics (Prometheus), /stats (JSON: the structs above) and
 *  /healthz (200 "ok" while running with a backend up, else 503). */
PP_API int pp_proxy_admin_port(const pp_proxy *proxy);

#ifdef __cplusplus
}
#endif

#endif /* POOLPROXY_H */
