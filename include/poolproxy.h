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
 *   pp_proxy_start/stop. They must not block and must not call pp_proxy_stop or pp_proxy_free
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
#define PP_VERSION_MINOR 1
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
    X(EINVAL, -1, "invalid argument")                                                          \
    X(ENOMEM, -2, "out of memory")                                                             \
    X(ENOOPT, -3, "no such option")                                                            \
    X(EBADVALUE, -4, "invalid option value")                                                   \
    X(ESTATE, -5, "operation not allowed in the current state")                                \
    X(EADDR, -6, "invalid address")                                                            \
    X(EBIND, -7, "cannot listen on the address")                                               \
    X(ENOBACKEND, -8, "no backend configured")                                                 \
    X(EIO, -9, "input/output error")                                                           \
    X(ESYS, -10, "system resource error")                                                      \
    X(ETRUNC, -11, "buffer too small")                                                         \
    X(ENOTFOUND, -12, "no such object")                                                        \
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
    PP_OPT_BACKEND = 6,  /**< "host:port[,weight=N]"; each set appends one backend */
    PP_OPT_STRING = 7    /**< text checked by the option itself (e.g. a path, a status range) */
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
/* Proxy                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/** An opaque proxy instance. */
typedef struct pp_proxy pp_proxy;

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
/* ------------------------------------------------------------------------------------------ */

/** Whole-proxy counters: the sum over workers plus the acceptor's own. */
typedef struct pp_stats {
    size_t struct_size;
    uint64_t connections_accepted;        /**< client connections accepted (since 0.1) */
    uint64_t connections_active;          /**< gauge: client connections open now (since 0.1) */
    uint64_t connections_rejected_max;    /**< closed at once: max_connections reached (since 0.1) */
    uint64_t connections_rejected_overflow; /**< closed at once: overflow queue full (since 0.1) */
    uint64_t connections_rejected_no_backend; /**< closed: no backend could serve (since 0.1) */
    uint64_t sessions_finished;           /**< client sessions closed after being served (since 0.1) */
    uint64_t overflow_queued;             /**< hand-offs that went through the overflow queue (since 0.1) */
    uint64_t overflow_stolen;             /**< of those, taken by a worker from the queue (since 0.1) */
    uint64_t queue_waits;                 /**< sessions that waited for a pooled connection (since 0.1) */
    uint64_t queue_timeouts;              /**< of those, closed because queue_timeout passed (since 0.1) */
    uint64_t queue_full;                  /**< sessions closed because queue_max were already waiting (since 0.1) */
    uint64_t queue_waiting;               /**< gauge: sessions waiting for a connection now (since 0.1) */
    uint64_t backend_connects;            /**< backend connections opened successfully (since 0.1) */
    uint64_t backend_connect_failures;    /**< backend connects that failed or timed out (since 0.1) */
    uint64_t backend_conns_open;          /**< gauge: backend connections open or opening; never above
                                               pool_max per backend. The cap counts the proxy's own
                                               sockets: a slot is free again once the proxy closed its
                                               end (since 0.1) */
    uint64_t backend_conns_idle;          /**< gauge: of those, idle in a pool (since 0.1) */
    uint64_t pool_hits;                   /**< sessions given an already-open pooled connection (since 0.1) */
    uint64_t pool_misses;                 /**< sessions that had to open or wait for one (since 0.1) */
    uint64_t idle_closed_by_backend;      /**< idle pooled connections the backend closed (since 0.1) */
    uint64_t idle_closed_timeout;         /**< idle connections retired by pool_idle_timeout (since 0.1) */
    uint64_t idle_closed_lifetime;        /**< connections retired by max_conn_lifetime (since 0.1) */
    uint64_t bytes_client_to_backend;     /**< payload bytes relayed upstream (since 0.1) */
    uint64_t bytes_backend_to_client;     /**< payload bytes relayed downstream (since 0.1) */
    uint64_t accept_errors;               /**< accept() failures, e.g. EMFILE (since 0.1) */
    uint64_t requests;                    /**< http: requests answered, by a backend or by the proxy
                                               (4xx/5xx of its own); tcp: sessions ended (since 0.1) */
    uint64_t responses_1xx;               /**< http: final answers by status class; with the four
                                               below they add up to `requests` (since 0.1) */
    uint64_t responses_2xx;               /**< (since 0.1) */
    uint64_t responses_3xx;               /**< (since 0.1) */
    uint64_t responses_4xx;               /**< (since 0.1) */
    uint64_t responses_5xx;               /**< (since 0.1) */
    uint64_t retries;                     /**< requests or sessions sent again: on another connection
                                               after a reused one died, or to another backend after a
                                               failed connect (since 0.1) */
    uint64_t backend_closed_max_requests; /**< connections retired by max_requests_per_conn (since 0.1) */
    uint64_t backend_closed_error;        /**< connections closed because the exchange on them failed
                                               (reset, response_timeout, invalid response) (since 0.1) */
    uint64_t backend_closed_session_end;  /**< tcp: closed with their session; http: the response
                                               ruled out reuse (Connection: close) (since 0.1) */
    uint64_t backend_transitions;         /**< backends going down or up again, summed (since 0.1) */
    uint64_t no_backend_unhealthy;        /**< requests (tcp: sessions) refused because every backend
                                               was unhealthy by active checks (since 0.1) */
    uint64_t no_backend_breaker_open;     /**< refused because every backend's breaker was open or
                                               its half-open probes were taken (since 0.1) */
    uint64_t no_backend_limits;           /**< refused because backend_max_requests or
                                               backend_max_pending were reached (since 0.1) */
} pp_stats;

/** One worker's counters. */
typedef struct pp_worker_stats {
    size_t struct_size;
    uint64_t sessions_started;      /**< client sessions this worker took on (since 0.1) */
    uint64_t sessions_active;       /**< gauge: sessions open on this worker now (since 0.1) */
    uint64_t handoffs_queued;       /**< gauge: accepted sockets waiting in its hand-off queue (since 0.1) */
    uint64_t overflow_stolen;       /**< sessions it took from the overflow queue (since 0.1) */
    uint64_t bytes_relayed;         /**< payload bytes relayed in both directions (since 0.1) */
    uint64_t backend_conns_open;    /**< gauge: backend connections it owns (since 0.1) */
    uint64_t backend_conns_idle;    /**< gauge: of those, idle (since 0.1) */
    uint64_t requests;              /**< http requests answered (tcp: sessions ended) (since 0.1) */
    uint64_t retries;               /**< see pp_stats.retries (since 0.1) */
} pp_worker_stats;

/** One backend's counters, summed over workers. */
typedef struct pp_backend_stats {
    size_t struct_size;
    uint64_t conns_open;            /**< gauge: connections open or opening, all workers (since 0.1) */
    uint64_t conns_idle;            /**< gauge: idle pooled connections (since 0.1) */
    uint64_t conns_opened;          /**< connections opened successfully (since 0.1) */
    uint64_t connect_failures;      /**< connects that failed or timed out (since 0.1) */
    uint64_t sessions;              /**< sessions served (since 0.1) */
    uint64_t sessions_active;       /**< gauge: sessions in flight (since 0.1) */
    uint64_t weight;                /**< configured weight (since 0.1) */
    uint64_t up;                    /**< gauge: 1 unless its last connect attempt failed (since 0.1) */
    uint64_t requests;              /**< requests (tcp: sessions) it served (since 0.1) */
    uint64_t responses_5xx;         /**< http: 5xx answers from it or, on its behalf, from the proxy
                                         (502, 504) (since 0.1) */
    uint64_t closed_by_backend;     /**< idle pooled connections it closed (since 0.1) */
    uint64_t closed_idle_timeout;   /**< retired by pool_idle_timeout (since 0.1) */
    uint64_t closed_lifetime;       /**< retired by max_conn_lifetime (since 0.1) */
    uint64_t closed_max_requests;   /**< retired by max_requests_per_conn (since 0.1) */
    uint64_t closed_error;          /**< closed because the exchange on them failed (since 0.1) */
    uint64_t transitions;           /**< times it went down or came back up (since 0.1) */
    uint64_t healthy;               /**< gauge: 1 unless active health checks marked it down (since 0.1) */
    uint64_t health_checks_failed;  /**< active checks that failed (since 0.1) */
    uint64_t breaker_state;         /**< gauge: 0 closed, 1 open, 2 half-open (since 0.1) */
    uint64_t breaker_transitions;   /**< breaker state changes (since 0.1) */
    uint64_t state;                 /**< gauge: 0 active, 1 draining, 2 removed (since 0.1) */
} pp_backend_stats;

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
    PP_LATENCY_CONNECT = 2     /**< successful backend connects */
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
