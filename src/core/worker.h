// A worker: one thread, one uv loop, its own sessions and pools. Other threads talk to it only
// through post_*() (an atomic flag word plus uv_async_send) and read its counters.
#pragma once
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/balancer.h"
#include "core/buffer_pool.h"
#include "core/client.h"
#include "core/intrusive_list.h"
#include "core/lb_policy.h"
#include "core/loop_thread.h"
#include "core/pool.h"
#include "core/protocol.h"
#include "core/shared.h"
#include "core/tls_conn.h"
#include "obs/histogram.h"
#include "obs/stats_schema.h"

namespace pp {

struct WorkerCounters {  // written by the worker only
    // One Counter per WORKER row of PP_STATS_FIELDS and PP_WORKER_STATS_FIELDS (poolproxy.h),
    // named like the field and summed into pp_stats / read into pp_worker_stats by proxy_stats.cpp:
    // sessions_finished, overflow_stolen, queue_waits, queue_timeouts, queue_full, pool_hits,
    // pool_misses, requests, retries, no_backend_*, sessions_started, sessions_active.
    PP_STATS_FIELDS(PP_OBS_WORKER_COUNTER_)
    PP_WORKER_STATS_FIELDS(PP_OBS_WORKER_COUNTER_)
    // Counted here, gathered by hand into OTHER rows.
    Counter rejected_no_backend;  // pp_stats.connections_rejected_no_backend
    Counter bytes_up;             // pp_stats.bytes_client_to_backend
    Counter bytes_down;           // pp_stats.bytes_backend_to_client
    Counter rejected_max;   // pp_stats.connections_rejected_max: accepted here, over max_connections
    Counter accept_errors;  // pp_stats.accept_errors: accept4 failures on this worker's poll
    Counter idle_total;  // idle pooled connections, all backends
    Counter responses[5];  // http: by status class, 1xx..5xx (pp_stats.responses_1xx..5xx)
    LatencyHistogram request_latency;  // request received -> response complete (tcp: session)
    LatencyHistogram queue_wait;       // time waiting for a pooled connection (those that waited)
    LatencyHistogram connect_time;     // backend connects that succeeded
    LatencyHistogram tls_handshake_time;          // client TLS handshakes, from the accept
    LatencyHistogram tls_backend_handshake_time;  // backend_tls handshakes, from the TCP connect
};

class Worker {
public:
    Worker(Shared &shared, int index);
    ~Worker();
    Worker(const Worker &) = delete;
    Worker &operator=(const Worker &) = delete;

    // start sets the worker up on the caller's thread (its loop, handles and copy of the
    // listener); run starts its thread. Proxy::start sets every worker up before any runs: a
    // copy of the listener then never takes a descriptor number that a running worker's libuv
    // has just closed, which ThreadSanitizer (it sees neither libuv's syscall(SYS_close) nor
    // fcntl's F_DUPFD) would report as a race between the two threads.
    int start(std::string *why);
    int run(std::string *why);
    void join();

    // Any thread.
    void post_handoff(int fd);
    void post_overflow_ready();
    void post_slot_freed();
    void post_shed_idle(int requester);
    // Another worker gives this one an idle connection (borrowing, or for its oldest waiter).
    void post_adopt(size_t backend, const BackendPool::Moving &m);
    // Another worker hands this one's waiters a connection slot of a backend (fair waiting).
    void post_slot_grant(size_t backend);
    void post_drain(uint64_t deadline_ms);
    // A client of this worker parked under `token` was resumed (Parking::resume said so).
    void post_resume(uint64_t token);
    // Backends were added, or one's admin state changed (drain, removal).
    void post_backends_changed();
    // Makes pools for backends added since, and closes the idle connections of those that no
    // longer take requests. The worker's thread, or any thread before start().
    void sync_backends();

    WorkerLoad load() const {
        return {static_cast<int64_t>(counters_.sessions_active.get()), handoffs_queued_.get(),
                busy_permille_.load(std::memory_order_relaxed)};
    }
    // Sessions waiting here for a backend connection: all of them, or those of one backend
    // group (each group has its own queue: its backends are its own, so a waiter of one never
    // holds back those of another).
    int64_t waiters() const { return waiters_count_.load(std::memory_order_seq_cst); }
    int64_t waiters(int group) const { return queues_[static_cast<size_t>(group)].count.load(std::memory_order_seq_cst); }
    // When this worker's oldest waiter of `group` began to wait (uv_hrtime ns); kNoWaiter when none does.
    static constexpr uint64_t kNoWaiter = UINT64_MAX;
    uint64_t head_since_ns(int group) const {
        return queues_[static_cast<size_t>(group)].head_since_ns.load(std::memory_order_relaxed);
    }
    const WorkerCounters &counters() const { return counters_; }
    int64_t handoffs_queued() const { return handoffs_queued_.get(); }
    const BackendPool &pool(size_t backend) const { return pools_[backend]; }
    // Pools this worker has made: backends added at runtime appear once it has seen them.
    size_t pool_count() const { return pools_.size(); }
    int index() const { return index_; }

    // Worker thread only (sessions and pools call these).
    uv_loop_t *loop() { return &loop_; }
    Shared &shared() { return shared_; }
    const Settings &settings() const { return shared_.settings; }
    BufferPool &buffers() { return buffers_; }
    WorkerCounters &counters() { return counters_; }
    BackendPool &pool(size_t backend) { return pools_[backend]; }
    LoadBalancer &lb() { return lb_; }
    std::vector<bool> &lb_scratch() { return lb_scratch_; }
    // Per backend id: true when the backend is not in `group` (what a session of that group
    // passes to LoadBalancer::pick as excluded to begin with). Kept with sync_backends.
    const std::vector<bool> &outside_group(int group) const { return outside_group_[static_cast<size_t>(group)]; }
    // Makes sure this worker knows `group` (a reload may add one that a hook names before the
    // worker has been told).
    void know_group(int group) {
        if (static_cast<size_t>(group) >= queue_count_) sync_backends();
    }
    // Before a session is refused for want of a backend: a change this worker has not been
    // told of yet (its post runs later in the loop turn) is taken up now. True when it was,
    // and the session (moved to a replacing group if it waited in a retired one) should try
    // again.
    bool catch_up() {
        // What made the caller look (a backend's admin state, Backend::takes_requests, an
        // acquire load) orders this read after it: a removal seen means its reload's earlier
        // bumps are seen too. (No fence: TSan does not model them.)
        if (shared_.config_epoch.load(std::memory_order_acquire) == seen_epoch_) return false;
        sync_backends();
        return true;
    }
    std::vector<int> &full_scratch() { return full_scratch_; }
    bool draining() const { return draining_; }
    // An idle pooled connection of a backend of `group` came (+1) or went (-1).
    void idle_changed(int group, int64_t delta);
    // Idle pooled connections here of `group`'s backends (any thread).
    int64_t idle_in_group(int group) const { return queues_[static_cast<size_t>(group)].idle.get(); }

    // Session life.
    void session_started(ClientBase *s);
    void session_closed(ClientBase *s);
    // Puts a session into the waiting queue (false: the queue is full).
    // A session's timeout of one kind, `ms` from now: O(1) (the worker keeps a list per length,
    // each in order by itself), and its one deadline timer is touched only when the earliest
    // changes.
    void set_deadline(ClientBase *s, int kind, uint64_t ms);
    void clear_deadline(ClientBase *s);
    bool enqueue_waiter(ClientBase *s);
    void dequeue_waiter(ClientBase *s);
    // A connection slot of some backend was released here: serve waiters, here and elsewhere.
    void slot_released();
    // Fair waiting. The worker whose oldest waiter of `group` goes first: this one when its own
    // waited within kFairSlackNs of the oldest of all; nullptr when nobody waits.
    Worker *oldest_waiting(int group);
    // A free connection of `pool` while sessions wait: true when it moved to the worker whose
    // waiter is older by more than kFairSlackNs (when may_move and it can move). False: it
    // goes to this worker's idle list, where the deferred pass gives it to our oldest waiter.
    bool hand_to_waiter(BackendPool &pool, PooledConn *conn, bool may_move);
    // A connection of `pool` closed, its cap slot still taken: held for the oldest waiter
    // (here, or granted to its worker), or released to the cap when nobody waits.
    void slot_freed(BackendPool &pool);
    // Something changed that the deferred pass should look at (waiters, overflow, refills).
    void schedule_deferred();
    // A TLS connection holds plaintext its owner has not read yet (it stopped reading, then
    // started again): handed over in the next deferred pass, outside the owner's call.
    void defer_tls(TlsConn *t) {
        tls_pending_.push_back(t);
        schedule_deferred();
    }
    void forget_tls(TlsConn *t) { tls_pending_.remove(t); }

private:
    enum Op : uint32_t {
        kHandoff = 1,
        kOverflow = 2,
        kSlotFreed = 4,
        kShedIdle = 8,
        kDrain = 16,
        kAdopt = 32,
        kBackends = 64,
        kGrant = 128,
        kResume = 256
    };

    void post(uint32_t op);
    void on_wake();  // the loop thread, after post()
    static void on_deferred(uv_idle_t *h);
    static void on_sweep(uv_timer_t *t);
    static void on_deadline_timer(uv_timer_t *t);
    void arm_deadline_timer();
    void sample_busy();  // sweep timer: refreshes busy_permille_
    static void on_queue_timer(uv_timer_t *t);
    static void on_drain_deadline(uv_timer_t *t);
    static void on_shed_timer(uv_timer_t *t);

    void take_handoffs();
    void steal_overflow();

    // Accepting for itself (worker_accept.cpp): a dup of the shared listener, polled while
    // Balancer::may_accept holds for this worker.
    int open_listener(std::string *why);  // caller's thread, before the loop runs
    void update_accepting();
    void set_accepting(bool on);
    int register_listener(bool on);
    void pause_after_listener_error(int status);  // warns, stops accepting, retries later
    static void on_listener_readable(uv_poll_t *p, int status, int events);
    static void on_accept_backoff_over(uv_timer_t *t);
    void accept_some();
    void close_listener();  // the loop thread (drain); join() closes the descriptor otherwise
    void serve_waiters();
    void shed_one_idle();
    void take_adoptions();
    void take_grants();
    void take_resumes();
    void publish_head(int group);
    void sync_groups();  // learns of groups a reload added, moves waiters off retired ones
    void release_held_slots();

    void drop_adoption(const std::pair<size_t, BackendPool::Moving> &m);
    void arm_queue_timer();
    void begin_drain();
    void maybe_finish_drain();
    void finish();

    Shared &shared_;
    const int index_;
    LoopThread thread_;
    uv_loop_t &loop_;  // thread_'s
    uint64_t seen_epoch_ = 0;  // Shared::config_epoch as of the last sync_backends
    uv_idle_t deferred_{};
    uv_timer_t sweep_timer_{};
    uv_timer_t queue_timer_{};
    uv_timer_t drain_timer_{};
    uv_timer_t shed_timer_{};
    int listen_fd_ = -1;  // this worker's dup of Shared::listen_fd
    int listen_tag_fd_ = -1;  // the eventfd listen_poll_ watches: the listener's tag (worker_accept.cpp)
    bool listen_exclusive_ = true;  // registered with EPOLLEXCLUSIVE (false: the kernel lacks it)
    bool listen_poll_stopped_ = false;  // stopped after an error, until the pause ends
    uv_poll_t listen_poll_{};
    bool listen_ready_ = false;  // listen_poll_ is initialised and not closed
    bool accepting_ = false;     // listen_poll_ is started (counted in Shared::accepting_workers)
    bool accept_backing_off_ = false;
    uv_timer_t accept_backoff_timer_{};
    uint64_t last_accept_error_log_ms_ = 0;
    Balancer balancer_;  // for may_accept only
    std::vector<WorkerLoad> loads_;

    std::atomic<uint32_t> ops_{0};
    std::mutex inbox_mu_;
    std::vector<int> inbox_;
    std::vector<int> inbox_taken_;
    std::vector<int> borrow_requests_;  // workers asking for an idle connection; inbox_mu_
    std::vector<std::pair<size_t, BackendPool::Moving>> adoptions_;  // inbox_mu_
    std::vector<size_t> grants_;        // slots granted by other workers, by backend; inbox_mu_
    std::vector<size_t> grants_taken_;  // (swapped out, so neither allocates once warm)
    std::vector<uint64_t> resumes_;     // parked clients' tokens to resume; inbox_mu_
    SharedGauge handoffs_queued_;
    // The loop's busy time over the last sweep interval (written by this worker, read by the
    // acceptor), from libuv's idle-time metric.
    std::atomic<int> busy_permille_{0};
    uint64_t busy_sampled_ns_ = 0;
    uint64_t idle_sampled_ns_ = 0;
    std::atomic<uint64_t> drain_deadline_ms_{0};
    std::atomic<int64_t> waiters_count_{0};  // all groups
    // One waiting queue per backend group (Shared::groups), in arrival order.
    struct WaitQueue {
        IntrusiveList<ClientBase, &ClientBase::wait_link> list;
        std::atomic<int64_t> count{0};
        std::atomic<uint64_t> head_since_ns{kNoWaiter};  // written by this worker only
        SharedGauge idle;  // idle pooled connections of the group's backends here (for lending)
    };
    // Whom the shed timer asks next for an idle connection (rotated, so that a worker with
    // none of the group asked for is not asked forever).
    size_t shed_cursor_ = 0;
    std::unique_ptr<WaitQueue[]> queues_;
    size_t queue_count_ = 0;

    SlotTable<BackendPool, Shared::kMaxBackendIds> pools_;
    LoadBalancer lb_;
    std::vector<bool> lb_scratch_;
    std::vector<std::vector<bool>> outside_group_;
    std::vector<int> full_scratch_;  // backends try_acquire found at pool_max
    BufferPool buffers_;
    IntrusiveList<ClientBase, &ClientBase::link> sessions_;
    IntrusiveList<TlsConn, &TlsConn::pending_link> tls_pending_;
    // Deadline lists, one per length (deadline_ms_), each in due order because every entry of
    // a list has the same length. Lengths are few: the proxy-wide timeouts and each group's
    // response_timeout. Past kDeadlineLists - 1 distinct lengths (over 120 groups, each with a
    // response_timeout of its own) the last list takes the rest, kept in order by insertion,
    // which costs a walk past the later-due entries.
    static constexpr int kDeadlineLists = 127;  // (ClientBase::deadline_list is an int8_t)
    IntrusiveList<ClientBase, &ClientBase::deadline_link> deadlines_[kDeadlineLists];
    uint64_t deadline_ms_[kDeadlineLists] = {};
    int deadline_lists_used_ = 0;
    std::unordered_map<uint64_t, int> deadline_index_;  // length -> list, past the hint
    int8_t deadline_hint_[kMaxDeadlineKinds] = {};  // per kind, the list it used last
    int deadline_list_for(int kind, uint64_t ms);
    uv_timer_t deadline_timer_{};
    uint64_t deadline_timer_due_ms_ = 0;  // loop time it is set for; 0: not running
    WorkerCounters counters_;
    bool deferred_scheduled_ = false;
    bool draining_ = false;
    bool finished_ = false;
};

}  // namespace pp
