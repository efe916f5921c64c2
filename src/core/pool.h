// One worker's pool of connections to one backend. Only its worker touches it, so nothing here
// locks; the backend's cap is the one shared atomic (Backend::open).
//
// tcp mode hands a connection to exactly one client session and closes it afterwards (the
// protocol's state is opaque, so reuse would be unsafe); what the pool gives tcp sessions is a
// connection that is already open (pool_min_idle, refilled in the background at a bounded
// rate), and a hard cap with a waiting queue.
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/buffer_pool.h"
#include "core/intrusive_list.h"
#include "core/tls_conn.h"
#include "obs/counter.h"
#include "obs/stats_schema.h"

typedef struct ssl_session_st SSL_SESSION;

namespace pp {

class Worker;
struct ClientBase;
class BackendPool;

struct PooledConn {
    enum class State { connecting, idle, in_use, closing };

    uv_tcp_t tcp;
    uv_timer_t timer;  // connect timeout
    uv_connect_t connect_req;
    BackendPool *pool = nullptr;
    ClientBase *owner = nullptr;  // the session it was opened for or handed to
    State state = State::connecting;
    bool warm = false;  // opened ahead of demand and still connecting
    bool start_probe = false;  // the start probe pp_proxy_start waits for (see BackendPool)
    uint64_t requests = 0;  // http: requests this connection has carried
    uint64_t created_ms = 0;
    uint64_t connect_start_ns = 0;  // uv_hrtime when the connect began (connect-time histogram)
    uint64_t tls_start_ns = 0;      // backend_tls: when the handshake began (its histogram)
    uint64_t idle_since_ms = 0;
    IoBlock *early = nullptr;  // bytes the backend sent before a session took it (server-first protocols)
    // http: the read stays armed from idle to in use and back, so that reusing a connection
    // costs no epoll change; while in use, reads go to the owning session's handler.
    using ReadHandler = void (*)(PooledConn *conn, ssize_t nread, const uv_buf_t *buf);
    ReadHandler on_read = nullptr;
    bool reading = false;
    // http: writes the owning session issued on it whose callbacks have not run. A connection
    // with one (or with bytes in the stream's write queue) is neither pooled nor moved.
    int writes_pending = 0;
    ListHook link;             // in the pool's idle list
    int open_handles = 0;
    // backend_tls: the connection's TLS, made once its TCP connect succeeded (after `tcp`:
    // freed before it). A TLS connection stays on its worker (it is never moved).
    std::unique_ptr<TlsConn> tls;
};

struct PoolCounters {  // written by the owning worker only
    // One Counter per POOL row of PP_BACKEND_STATS_FIELDS (poolproxy.h), named like the field
    // and summed over workers into pp_backend_stats by proxy_stats.cpp: connect_failures,
    // sessions, sessions_active, requests, responses_5xx, closed_by_backend, closed_idle_timeout,
    // closed_lifetime, closed_max_requests, closed_error (the exchange on it failed).
    PP_BACKEND_STATS_FIELDS(PP_OBS_POOL_COUNTER_)
    // Counted here, gathered by hand into OTHER rows.
    Counter opened;              // conns_opened; pp_stats.backend_connects
    Counter open;  // this worker's connections open or opening
    Counter idle;                // conns_idle
    Counter closed_session_end;  // tcp sessions ended; http responses that ruled out reuse
    Counter reused;  // exchanges that went back to the idle list
};

class BackendPool {
public:
    // probe_at_start: open one connection when the worker starts even though warm_share is 0,
    // so that a backend that cannot be reached is reported before a request finds out. When
    // counted, the pool settles Shared::start_probes once the probe connected or failed (or was
    // not made), which pp_proxy_start waits for.
    BackendPool(Worker &worker, Backend &backend, int64_t warm_share, bool probe_at_start, bool counted);
    ~BackendPool();
    BackendPool(const BackendPool &) = delete;
    BackendPool &operator=(const BackendPool &) = delete;

    Backend &backend() { return backend_; }
    const PoolCounters &counters() const { return counters_; }
    PoolCounters &counters_mut() { return counters_; }
    size_t idle_count() const { return idle_.size(); }

    // An open idle connection, or nullptr. Its read stays armed (see PooledConn::on_read):
    // what arrives before the session sets on_read is kept as `early` (tcp) or ends the
    // connection (http), as while idle.
    PooledConn *take_idle();
    // Arms / disarms the connection's read (idempotent). Buffers come from the worker's pool
    // with refs = 1; the handler owns them. start_reading: 0, or libuv's error (the connection
    // is then unusable: the caller closes it).
    static int start_reading(PooledConn *conn);
    static void stop_reading(PooledConn *conn);
    // Opens a connection for `owner` (nullptr: a warm one for the idle list). The caller has
    // already reserved a slot with Backend::try_reserve. nullptr if the connect could not even
    // start (the slot is released and the failure recorded); then *local says whether the
    // cause was this process's (out of descriptors or memory), which is not the
    // backend's fault: it is neither marked down nor counted by its breaker.
    PooledConn *open(ClientBase *owner, bool *local = nullptr);
    // Closes a connection and releases its slot.
    void close(PooledConn *conn);
    // The session is done with its connection and it is closed (tcp mode: always; http: the
    // exchange ruled out reuse, or failed when `failed`).
    void finish_session(PooledConn *conn, bool failed = false);
    // The session a connection was being opened for went away: keep it as a warm connection.
    void adopt_connecting(PooledConn *conn);
    // http: an exchange ended cleanly on a keep-alive connection: back to the idle list, unless
    // max_requests_per_conn or max_conn_lifetime retires it now.
    void recycle(PooledConn *conn);

    // Opens warm connections up to this worker's share of pool_min_idle, at most two connects
    // in flight, and not while any session anywhere waits for a slot; and the start probe.
    void refill();
    // Retires idle connections past pool_idle_timeout or max_conn_lifetime.
    void sweep(uint64_t now_ms);
    // Closes every idle connection (drain, or another worker needs the slot).
    void close_idle(size_t max_count);

    // Borrowing between workers: an idle connection leaves this pool as a socket (its cap slot
    // travels with it) and joins another worker's pool, instead of being closed here and
    // reopened there. -1 when no idle connection can move (a tcp greeting cannot).
    struct Moving {
        int fd;
        uint64_t created_ms;
        uint64_t requests;
    };
    bool give_away_idle(Moving *out);
    void adopt(const Moving &m);
    // The same for one connection that is not in the idle list (handed to another worker's
    // waiter): false when it cannot move (a tcp greeting, no fd), and nothing changed.
    bool give_away(PooledConn *conn, Moving *out);

    // Fair waiting: slots freed while sessions wait stay taken (Backend::open) and are held
    // here for this worker's waiters, so that no later request takes them first. The worker
    // gives back what its waiters did not use at the end of each deferred pass.
    void hold_slot() { held_slots_++; }
    bool take_reserved_slot() {
        if (held_slots_ == 0) return false;
        held_slots_--;
        return true;
    }
    int64_t drop_held_slots() {
        int64_t n = held_slots_;
        held_slots_ = 0;
        return n;
    }

private:
    static void on_connect(uv_connect_t *req, int status);
    void connected(PooledConn *conn);  // TCP (and TLS, with backend_tls) done: the connection is usable
    void start_tls(PooledConn *conn);
    static void on_tls_handshaken(uv_stream_t *s, int status);
    SSL_SESSION *tls_session_ = nullptr;  // backend_tls: the last session to resume with (this worker's)
    static void on_connect_timeout(uv_timer_t *timer);
    static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
    static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
    void on_idle_read(PooledConn *conn, ssize_t nread, IoBlock *b);
    void closed_unused(PooledConn *conn, const char *why);
    void abandon_connect(PooledConn *conn);
    static void on_handle_closed(uv_handle_t *h);

    PooledConn *new_conn(uint64_t created_ms);
    // owner_records: the caller records the failure for the session it opened it for.
    void connect_failed(PooledConn *conn, const char *reason, bool owner_records = false);
    void close_handles(PooledConn *conn);
    // A connection free for the next request: to the oldest waiter (here, or moved to the
    // worker where it waits when may_move), else to the idle list.
    void make_idle(PooledConn *conn, bool may_move = true);

    Worker &worker_;
    Backend &backend_;
    const int64_t warm_share_;
    bool probe_pending_;
    bool probe_counted_;
    void settle_probe(PooledConn *conn);  // conn nullptr: the probe was not made
    IntrusiveList<PooledConn, &PooledConn::link> idle_;
    int warm_connecting_ = 0;
    int64_t held_slots_ = 0;
    uint64_t refill_after_ms_ = 0;
    uint64_t last_local_warn_ms_ = 0;   // the last "this process's limit" warning (mono_ms)
    uint64_t last_unused_warn_ms_ = 0;  // the last closed_unused warning (mono_ms)
    PoolCounters counters_;
};

}  // namespace pp
