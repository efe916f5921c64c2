#include "core/worker.h"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include "core/clock.h"
#include "core/thread_context.h"
#include "core/uv_result.h"

namespace pp {

namespace {
constexpr uint64_t kSweepIntervalMs = 250;
constexpr size_t kBuffersKept = 1024;  // 16 MiB of cached I/O blocks per worker at most
constexpr uint64_t kShedAfterMs = 20;  // a waiter waits this long before idle connections elsewhere are shed
// Fair waiting across workers: a free connection stays with this worker's oldest waiter unless
// another worker's has waited this much longer (then it moves there). Moving a connection
// costs a dup, a cross-thread post and an epoll registration, so near-ties are not worth it;
// docs/RESILIENCE.md states this bound.
constexpr uint64_t kFairSlackNs = 2 * 1000000;

// This worker's share of pool_min_idle: spread as evenly as integers allow.
int64_t warm_share(int64_t min_idle, int workers, int index) {
    return min_idle / workers + (index < min_idle % workers ? 1 : 0);
}
}  // namespace

Worker::Worker(Shared &shared, int index)
    : shared_(shared), index_(index), thread_("pp-worker-" + std::to_string(index), &shared),
      loop_(*thread_.loop()),
      balancer_(shared.worker_count, shared.worker_capacity, shared.settings.overflow_max,
                shared.settings.max_connections),
      loads_(static_cast<size_t>(shared.worker_count)),
      lb_(static_cast<LbPolicy>(shared.settings.lb), {},
          0x9e3779b97f4a7c15ull * static_cast<uint64_t>(index + 1) ^ uv_hrtime()),
      buffers_(kBuffersKept) {
    // Every group id a reload may add has its queue from the start: other workers read them
    // (waiters, idle counts) without asking, and a slot is ~100 bytes.
    queues_.reset(new WaitQueue[Shared::kMaxGroupIds]);
    sync_backends();  // no thread runs yet: the configured backends
}

void Worker::sync_groups() {
    const size_t n = shared_.groups.size();
    for (size_t g = queue_count_; g < n; g++) {  // new groups (a reload): which backends are theirs
        outside_group_.emplace_back(pools_.size(), true);
        for (size_t b = 0; b < pools_.size(); b++) {
            outside_group_[g][b] = pools_[b].backend().group != static_cast<int>(g);
        }
    }
    queue_count_ = n;
    // The waiters of a group a reload retired go on waiting in its successor's queue, in order
    // of arrival among those already there: it has the old group's backends, as re-added.
    for (size_t g = 0; g < n; g++) {
        WaitQueue &from = queues_[g];
        if (from.list.empty() || !shared_.groups[g].retired.load(std::memory_order_acquire)) continue;
        const int to = shared_.live_group(static_cast<int>(g));
        if (to == static_cast<int>(g)) continue;  // removed, not replaced: they get 503 (no backend left)
        // A successor a reload added after `n` was read: the epoch it bumped brings a next pass.
        if (static_cast<size_t>(to) >= n) continue;
        WaitQueue &q = queues_[static_cast<size_t>(to)];
        ClientBase *at = q.list.front();
        while (ClientBase *s = from.list.pop_front()) {
            while (at && at->wait_since_ns <= s->wait_since_ns) at = q.list.next(at);
            q.list.insert_after(at ? q.list.prev(at) : q.list.back(), s);
            if (s->pending_backend >= 0) {  // it counted toward an old backend's pending limit
                shared_.backends[static_cast<size_t>(s->pending_backend)].pending.fetch_sub(1, std::memory_order_relaxed);
                s->pending_backend = -1;
            }
            s->group = static_cast<int16_t>(to);
            from.count.fetch_sub(1, std::memory_order_seq_cst);
            q.count.fetch_add(1, std::memory_order_seq_cst);
            shared_.groups[g].waiting.sub();
            shared_.groups[static_cast<size_t>(to)].waiting.add();
        }
        publish_head(static_cast<int>(g));
        publish_head(to);
    }
}

void Worker::sync_backends() {
    const bool at_start = !thread_.ready();  // pp_proxy_start waits for these probes
    seen_epoch_ = shared_.config_epoch.load(std::memory_order_acquire);  // read first: a later bump syncs again
    sync_groups();
    for (size_t b = pools_.size(); b < shared_.backends.size(); b++) {
        Backend &backend = shared_.backends[b];
        const int64_t share = warm_share(backend.gs->pool_min_idle, shared_.worker_count, index_);
        // With no connection kept warm, worker 0 still opens one to each backend as it
        // appears, so that one which cannot be reached is reported at start (a warning and an
        // event).
        const bool probe = backend.gs->pool_min_idle == 0 && index_ == 0;
        if (static_cast<size_t>(backend.group) >= queue_count_) sync_groups();  // added meanwhile
        pools_.add(std::make_unique<BackendPool>(*this, backend, share, probe, at_start));
        lb_.add_backend(&backend);
        for (size_t g = 0; g < outside_group_.size(); g++) outside_group_[g].push_back(backend.group != static_cast<int>(g));
    }
    for (size_t b = 0; b < pools_.size(); b++) {
        if (!pools_[b].backend().takes_requests()) pools_[b].close_idle(SIZE_MAX);
    }
    shared_.protocol->reconfigure(*this);  // a reload's routes, say
    if (thread_.ready()) schedule_deferred();  // a refill for the new ones, the moved waiters
}

void Worker::post_backends_changed() { post(kBackends); }

Worker::~Worker() {
    join();  // before the handles it may still close go away
    for (int fd : inbox_) ::close(fd);
    for (auto &m : adoptions_) drop_adoption(m);  // lent to us after we had stopped
    for (size_t b : grants_) shared_.backends[b].release();
}

// A lent socket that arrived too late to be used: close it and give its cap slot back.
void Worker::drop_adoption(const std::pair<size_t, BackendPool::Moving> &m) {
    ::close(m.second.fd);
    shared_.backends[m.first].release();
}

int Worker::start(std::string *why) {
    const std::string what = "worker " + std::to_string(index_);
    int rc = thread_.init(what, [this] { on_wake(); }, nullptr, why);
    if (rc != PP_OK) return rc;
    // From here on a failure leaves handles open: the proxy joins every worker, which closes them.
    loop_.data = this;
    // Idle-time accounting for the balancer's busy measure (one clock read per loop turn).
    rc = LoopThread::check(uv_loop_configure(&loop_, UV_METRICS_IDLE_TIME), what + ": idle-time metrics", why);
    if (rc == PP_OK) rc = LoopThread::check(uv_idle_init(&loop_, &deferred_), what + ": idle handle", why);
    for (uv_timer_t *t : {&sweep_timer_, &queue_timer_, &drain_timer_, &shed_timer_, &deadline_timer_,
                          &accept_backoff_timer_}) {
        if (rc == PP_OK) rc = LoopThread::check(uv_timer_init(&loop_, t), what + ": timer", why);
        t->data = this;
    }
    if (rc != PP_OK) return rc;
    deferred_.data = this;
    rc = LoopThread::check(uv_timer_start(&sweep_timer_, on_sweep, kSweepIntervalMs, kSweepIntervalMs),
                           what + ": sweep timer", why);
    if (rc != PP_OK) return rc;
    rc = open_listener(why);
    if (rc != PP_OK) return rc;
    schedule_deferred();  // the first pass opens the warm connections
    return PP_OK;
}

int Worker::run(std::string *why) { return thread_.start(why); }

void Worker::join() {
    thread_.join();  // closes the listener's poll handle, if the loop never ran
    if (listen_fd_ >= 0) {
        ::close(listen_fd_);
        listen_fd_ = -1;
    }
    if (listen_tag_fd_ >= 0) {
        ::close(listen_tag_fd_);
        listen_tag_fd_ = -1;
    }
}

// ---- cross-thread entry points -------------------------------------------------------------

void Worker::post(uint32_t op) {
    ops_.fetch_or(op, std::memory_order_acq_rel);
    thread_.wake();  // nothing once finish() closed the handles, or if the loop never started
}

void Worker::post_handoff(int fd) {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        inbox_.push_back(fd);
    }
    handoffs_queued_.add();
    post(kHandoff);
}

void Worker::post_overflow_ready() { post(kOverflow); }
void Worker::post_slot_freed() { post(kSlotFreed); }
void Worker::post_shed_idle(int requester) {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        borrow_requests_.push_back(requester);
    }
    post(kShedIdle);
}

void Worker::post_adopt(size_t backend, const BackendPool::Moving &m) {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        adoptions_.emplace_back(backend, m);
    }
    post(kAdopt);
}

void Worker::post_slot_grant(size_t backend) {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        grants_.push_back(backend);
    }
    // A worker that has stopped never takes it (its wake-up is closed); its destructor gives
    // what is left in grants_ back to the cap.
    post(kGrant);
}

void Worker::post_resume(uint64_t token) {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        resumes_.push_back(token);
    }
    post(kResume);  // a stopped worker never takes it: its clients are gone, and so are their tokens
}

void Worker::take_resumes() {
    std::vector<uint64_t> tokens;
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        tokens.swap(resumes_);
    }
    for (uint64_t t : tokens) {
        if (ClientBase *c = shared_.parking.claim(t)) shared_.protocol->resumed(c);
    }
}

void Worker::post_drain(uint64_t deadline_ms) {
    drain_deadline_ms_.store(deadline_ms, std::memory_order_release);
    post(kDrain);
}

void Worker::on_wake() {
    Worker *w = this;
    uint32_t ops = w->ops_.exchange(0, std::memory_order_acq_rel);
    if (ops & kHandoff) w->take_handoffs();
    if (ops & kShedIdle) w->shed_one_idle();
    if (ops & kBackends) w->sync_backends();
    if (ops & kAdopt) w->take_adoptions();
    if (ops & kGrant) w->take_grants();
    if (ops & kResume) w->take_resumes();
    if (ops & (kOverflow | kSlotFreed)) w->schedule_deferred();
    if (ops & kDrain) w->begin_drain();
}

// ---- sessions in and out --------------------------------------------------------------------

void Worker::take_handoffs() {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        inbox_taken_.swap(inbox_);
    }
    for (int fd : inbox_taken_) {
        handoffs_queued_.sub();
        shared_.protocol->start(*this, fd, nullptr, 0);
    }
    inbox_taken_.clear();
}

void Worker::steal_overflow() {
    while (!finished_ && load().total() < shared_.worker_capacity) {
        int fd = shared_.overflow.pop();
        if (fd < 0) return;
        counters_.overflow_stolen.add();
        shared_.protocol->start(*this, fd, nullptr, 0);
    }
}

void Worker::session_started(ClientBase *s) {
    sessions_.push_back(s);
    counters_.sessions_started.add();
    counters_.sessions_active.add();
}

void Worker::session_closed(ClientBase *s) {
    sessions_.remove(s);
    counters_.sessions_active.sub();
    counters_.sessions_finished.add();
    shared_.open_connections.sub();
    schedule_deferred();  // room for an overflowed connection, maybe the end of a drain
    if (!accepting_) update_accepting();  // below its share again?
}

// ---- waiting for a backend connection -------------------------------------------------------

bool Worker::enqueue_waiter(ClientBase *s) {
    const int g = s->group;
    // queue_max is each group's own: a full group does not take the others' places.
    const Group &group = shared_.groups[static_cast<size_t>(g)];
    if (group.waiting.get() >= group.settings.queue_max) {
        counters_.queue_full.add();
        return false;
    }
    WaitQueue &q = queues_[static_cast<size_t>(g)];
    s->wait_since_ns = uv_hrtime();
    q.list.push_back(s);
    const bool first = q.list.size() == 1;
    if (first) publish_head(g);
    // Register first, then look again (serve_waiters below): a slot freed on another worker
    // after this point sees our count and wakes us, so no wake-up is lost.
    q.count.fetch_add(1, std::memory_order_seq_cst);
    waiters_count_.fetch_add(1, std::memory_order_seq_cst);
    shared_.waiting.add();
    shared_.groups[static_cast<size_t>(g)].waiting.add();
    counters_.queue_waits.add();
    if (first) arm_queue_timer();
    // An idle connection parked on another worker may hold the slot we need. A worker that has
    // idle connections and nobody waiting lends one at once (its socket moves, nothing is
    // reopened), so that pool_max below the worker count does not cost each request the shed
    // timer's wait. Under saturation every worker has waiters and nobody lends; then a worker
    // with spares is asked only after the timer, because connections come back to pools all
    // the time under keep-alive load.
    if (first) {
        for (auto &other : shared_.workers) {
            if (other.get() != this && other->waiters(g) == 0 && other->idle_in_group(g) > 0) {
                other->post_shed_idle(index_);
                break;
            }
        }
    }
    if (!uv_is_active(reinterpret_cast<uv_handle_t *>(&shed_timer_))) {
        PP_UV_MUST(uv_timer_start(&shed_timer_, on_shed_timer, kShedAfterMs, 0));
    }
    schedule_deferred();
    return true;
}

void Worker::dequeue_waiter(ClientBase *s) {
    if (s->pending_backend >= 0) {
        shared_.backends[static_cast<size_t>(s->pending_backend)].pending.fetch_sub(1, std::memory_order_relaxed);
        s->pending_backend = -1;
    }
    if (!s->wait_link.linked()) return;
    const int g = s->group;  // a session's group does not change while it waits
    WaitQueue &q = queues_[static_cast<size_t>(g)];
    const bool was_head = q.list.front() == s;
    q.list.remove(s);
    q.count.fetch_sub(1, std::memory_order_seq_cst);
    waiters_count_.fetch_sub(1, std::memory_order_seq_cst);
    shared_.waiting.sub();
    shared_.groups[static_cast<size_t>(g)].waiting.sub();
    // Every wait is counted, however it ended (a connection, queue_timeout, the client gone):
    // the histogram and the request's access-log entry (queue_wait_us) both show it.
    const uint64_t now = uv_hrtime();
    const uint64_t waited = now > s->wait_since_ns ? now - s->wait_since_ns : 0;
    s->queue_wait_ns += waited;
    counters_.queue_wait.record(waited / 1000);
    if (was_head) publish_head(g);
}

void Worker::publish_head(int group) {
    WaitQueue &q = queues_[static_cast<size_t>(group)];
    ClientBase *head = q.list.front();
    q.head_since_ns.store(head ? head->wait_since_ns : kNoWaiter, std::memory_order_relaxed);
}

void Worker::serve_waiters() {
    // FIFO within each group: stop at the first session that still finds no room. try_acquire
    // takes a session out of the queue whenever it returns true (connected, connecting or
    // closed), and may change the queue: start again at its head. A session that finds no
    // room only because it may use fewer backends (some failed for it, or a hook pinned it to
    // one) is passed over, so that it does not hold back the others.
    catch_up();  // a retired group's waiters move before any of them is served
    for (size_t g = 0; g < queue_count_; g++) {
        auto &list = queues_[g].list;
        ClientBase *s = list.front();
        while (s) {
            // The queue says who goes next: start loading its session while this one is
            // served. With thousands waiting, each waiter's memory is cold by its turn (perf at
            // 4,000 clients: the misses land in dequeue_waiter and attach).
            if (ClientBase *n = list.next(s)) {
                const char *p = reinterpret_cast<const char *>(n);
                for (size_t off = 0; off < shared_.protocol->client_bytes; off += 64) __builtin_prefetch(p + off);
            }
            if (shared_.protocol->try_acquire(s)) {
                s = list.front();
                continue;
            }
            if (!s->narrowed()) break;
            // (try_acquire may have caught up with a reload that moved it to another queue)
            s = s->group == static_cast<int>(g) ? list.next(s) : list.front();
        }
    }
}

Worker *Worker::oldest_waiting(int group) {
    const uint64_t mine = head_since_ns(group);
    Worker *best = mine == kNoWaiter ? nullptr : this;
    // Ours goes first unless another worker's oldest waited kFairSlackNs longer.
    uint64_t best_since = mine == kNoWaiter ? kNoWaiter : (mine > kFairSlackNs ? mine - kFairSlackNs : 0);
    if (shared_.worker_count == 1) return best;
    for (auto &other : shared_.workers) {
        if (other.get() == this) continue;
        const uint64_t since = other->head_since_ns(group);
        if (since < best_since) {
            best = other.get();
            best_since = since;
        }
    }
    return best;
}

bool Worker::hand_to_waiter(BackendPool &pool, PooledConn *conn, bool may_move) {
    Worker *to = oldest_waiting(pool.backend().group);
    if (!to) return false;
    if (to != this && may_move && !finished_) {
        // The socket moves with its cap slot (the borrowing path); that worker's pool gives
        // it to its oldest waiter on arrival, or keeps it idle if that one has gone.
        BackendPool::Moving m;
        conn->owner = nullptr;
        if (pool.give_away(conn, &m)) {
            to->post_adopt(static_cast<size_t>(pool.backend().id), m);
            return true;
        }
    }
    // Ours is the oldest (or the connection cannot move): it goes to the idle list, where only
    // our waiters can take it (a request not queued yet queues behind them while anyone
    // waits), and the deferred pass after this loop turn's I/O gives it to the first of them
    // that can use it. Handing it over here, inside the backend's read callback, wrote one
    // request to the backend per response read: the backend woke for each request instead of
    // taking a turn's worth at once, and saturated throughput fell by a quarter
    // (bench/fair_queue.py, docs/BENCHMARKS.md). The order is the same: serve_waiters goes
    // head first.
    return false;
}

void Worker::slot_freed(BackendPool &pool) {
    Backend &backend = pool.backend();
    if (!finished_ && backend.takes_requests() && backend.group_waiting->get() > 0) {
        if (Worker *to = oldest_waiting(backend.group)) {
            if (to == this) {
                pool.hold_slot();  // the deferred pass opens a connection with it
                schedule_deferred();
            } else {
                to->post_slot_grant(static_cast<size_t>(backend.id));
            }
            return;
        }
    }
    backend.release();
    slot_released();
}

void Worker::take_grants() {
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        grants_taken_.swap(grants_);
    }
    for (size_t b : grants_taken_) {
        if (b >= pools_.size()) sync_backends();  // granted for a backend added meanwhile
        if (!finished_ && b < pools_.size() && waiters(pools_[b].backend().group) > 0 &&
            pools_[b].backend().takes_requests()) {
            pools_[b].hold_slot();
            schedule_deferred();
        } else {  // our waiter left meanwhile: back to the cap, for whoever waits
            shared_.backends[b].release();
            slot_released();
        }
    }
    grants_taken_.clear();
}

// Slots held for our waiters that none of them could use in this pass go back to the cap.
void Worker::release_held_slots() {
    bool any = false;
    for (size_t b = 0; b < pools_.size(); b++) {
        for (int64_t n = pools_[b].drop_held_slots(); n > 0; n--) {
            pools_[b].backend().release();
            any = true;
        }
    }
    if (any) slot_released();
}

void Worker::arm_queue_timer() {
    // queue_timeout is proxy-wide: the earliest head of any group times out first.
    uint64_t since = kNoWaiter;
    for (size_t g = 0; g < queue_count_; g++) {
        if (ClientBase *head = queues_[g].list.front()) since = std::min(since, head->wait_since_ns);
    }
    if (since == kNoWaiter) {
        uv_timer_stop(&queue_timer_);
        return;
    }
    const uint64_t deadline = since + static_cast<uint64_t>(shared_.settings.queue_timeout) * 1000000u;
    const uint64_t now = uv_hrtime();
    PP_UV_MUST(uv_timer_start(&queue_timer_, on_queue_timer, deadline > now ? (deadline - now + 999999u) / 1000000u : 0, 0));
}

void Worker::on_queue_timer(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    const uint64_t now = uv_hrtime();
    const uint64_t timeout = static_cast<uint64_t>(w->shared_.settings.queue_timeout) * 1000000u;
    for (size_t g = 0; g < w->queue_count_; g++) {
        while (ClientBase *s = w->queues_[g].list.front()) {
            if (s->wait_since_ns + timeout > now) break;
            w->dequeue_waiter(s);
            w->counters_.queue_timeouts.add();
            w->shared_.protocol->waited_too_long(s);
        }
    }
    w->arm_queue_timer();
}

void Worker::on_shed_timer(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    if (w->waiters() == 0 || w->finished_) return;
    // One connection asked for, of a group we have waiters of, from a worker that has an
    // idle one of that group; the asking rotates over the workers, and the timer comes back
    // while waiters remain.
    const size_t n = w->shared_.workers.size();
    bool asked = false;
    for (size_t k = 0; k < n && !asked; k++) {
        Worker &other = *w->shared_.workers[(w->shed_cursor_ + k) % n];
        if (&other == w) continue;
        for (size_t g = 0; g < w->queue_count_ && !asked; g++) {
            if (w->queues_[g].count.load(std::memory_order_relaxed) > 0 && other.idle_in_group(static_cast<int>(g)) > 0) {
                other.post_shed_idle(w->index_);
                w->shed_cursor_ = (w->shed_cursor_ + k + 1) % n;
                asked = true;
            }
        }
    }
    PP_UV_MUST(uv_timer_start(&w->shed_timer_, on_shed_timer, kShedAfterMs, 0));
}

void Worker::slot_released() {
    schedule_deferred();
    for (auto &other : shared_.workers) {
        if (other.get() != this && other->waiters() > 0) other->post_slot_freed();
    }
}

// Another worker has sessions waiting while this one holds idle connections: lend one (its
// socket moves, with its cap slot) rather than close it, so nothing is reopened. A connection
// that cannot move (a tcp greeting) is closed instead, freeing the slot.
void Worker::shed_one_idle() {
    std::vector<int> requesters;
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        requesters.swap(borrow_requests_);
    }
    if (finished_) return;
    for (int requester : requesters) {
        const Worker &to = *shared_.workers[static_cast<size_t>(requester)];
        for (size_t b = 0; b < pools_.size(); b++) {
            BackendPool &p = pools_[b];
            if (p.idle_count() == 0) continue;
            // Only a connection of a group the requester waits for helps it; our own waiters of
            // that group get our idle connections first.
            const int g = p.backend().group;
            if (to.waiters(g) == 0 || waiters(g) > 0) continue;
            BackendPool::Moving m;
            if (p.give_away_idle(&m)) shared_.workers[static_cast<size_t>(requester)]->post_adopt(b, m);
            else p.close_idle(1);
            break;
        }
    }
}

void Worker::take_adoptions() {
    std::vector<std::pair<size_t, BackendPool::Moving>> moving;
    {
        std::lock_guard<std::mutex> lock(inbox_mu_);
        moving.swap(adoptions_);
    }
    for (auto &m : moving) {
        if (m.first >= pools_.size()) sync_backends();  // lent for a backend added meanwhile
        if (finished_ || m.first >= pools_.size() || !pools_[m.first].backend().takes_requests()) {
            drop_adoption(m);
            continue;
        }
        pools_[m.first].adopt(m.second);
    }
}

void Worker::idle_changed(int group, int64_t delta) {
    queues_[static_cast<size_t>(group)].idle.add(delta);
    if (delta > 0) counters_.idle_total.add(static_cast<uint64_t>(delta));
    else counters_.idle_total.sub(static_cast<uint64_t>(-delta));
}

// ---- the deferred pass ----------------------------------------------------------------------
// State changes inside callbacks (a slot freed, a session closed) only schedule this pass, so
// no callback re-enters session or pool code that is still on the stack.

void Worker::schedule_deferred() {
    if (deferred_scheduled_ || finished_) return;
    deferred_scheduled_ = true;
    PP_UV_MUST(uv_idle_start(&deferred_, on_deferred));
}

void Worker::on_deferred(uv_idle_t *h) {
    auto *w = static_cast<Worker *>(h->data);
    uv_idle_stop(h);
    w->deferred_scheduled_ = false;
    if (w->finished_) return;
    while (TlsConn *t = w->tls_pending_.pop_front()) t->pump();
    w->serve_waiters();
    w->release_held_slots();
    w->arm_queue_timer();
    w->steal_overflow();
    for (size_t b = 0; b < w->pools_.size(); b++) w->pools_[b].refill();
    w->maybe_finish_drain();
}

void Worker::on_sweep(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    uint64_t now = mono_ms();
    for (size_t b = 0; b < w->pools_.size(); b++) w->pools_[b].sweep(now);
    w->sample_busy();
    w->update_accepting();  // the others' loads and busy times moved too
}

int Worker::deadline_list_for(int kind, uint64_t ms) {
    const int hint = deadline_hint_[kind];
    if (hint < deadline_lists_used_ && deadline_ms_[hint] == ms) return hint;
    int i;
    auto it = deadline_index_.find(ms);
    if (it != deadline_index_.end()) {
        i = it->second;
    } else {
        if (deadline_lists_used_ == kDeadlineLists - 1) return kDeadlineLists - 1;  // the mixed list
        i = deadline_lists_used_++;
        deadline_ms_[i] = ms;
        deadline_index_.emplace(ms, i);
    }
    deadline_hint_[kind] = static_cast<int8_t>(i);
    return i;
}

void Worker::set_deadline(ClientBase *s, int kind, uint64_t ms) {
    clear_deadline(s);
    s->deadline_due_ms = uv_now(&loop_) + ms;
    s->deadline_kind = static_cast<int8_t>(kind);
    const int l = deadline_list_for(kind, ms);
    s->deadline_list = static_cast<int8_t>(l);
    auto &list = deadlines_[l];
    if (l < kDeadlineLists - 1) {
        list.push_back(s);  // the latest of its length: the list stays in order
    } else {
        ClientBase *at = list.back();
        while (at && at->deadline_due_ms > s->deadline_due_ms) at = list.prev(at);
        list.insert_after(at, s);
    }
    if (deadline_timer_due_ms_ == 0 || s->deadline_due_ms < deadline_timer_due_ms_) {
        PP_UV_MUST(uv_timer_start(&deadline_timer_, on_deadline_timer, ms, 0));
        deadline_timer_due_ms_ = s->deadline_due_ms;
    }
}

void Worker::clear_deadline(ClientBase *s) {
    if (s->deadline_list < 0) return;
    deadlines_[s->deadline_list].remove(s);
    s->deadline_list = -1;  // the timer may fire for nothing; it then runs to the next one
    s->deadline_kind = -1;
}

void Worker::arm_deadline_timer() {
    uint64_t earliest = 0;
    for (int l = 0; l < kDeadlineLists; l = l + 1 == deadline_lists_used_ ? kDeadlineLists - 1 : l + 1) {
        auto &list = deadlines_[l];  // (the lists in use, then the mixed one)
        if (ClientBase *s = list.front()) earliest = earliest == 0 ? s->deadline_due_ms : std::min(earliest, s->deadline_due_ms);
    }
    deadline_timer_due_ms_ = earliest;
    if (earliest == 0 || finished_) return;
    const uint64_t now = uv_now(&loop_);
    PP_UV_MUST(uv_timer_start(&deadline_timer_, on_deadline_timer, earliest > now ? earliest - now : 0, 0));
}

void Worker::on_deadline_timer(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    const uint64_t now = uv_now(&w->loop_);
    for (int l = 0; l < kDeadlineLists; l = l + 1 == w->deadline_lists_used_ ? kDeadlineLists - 1 : l + 1) {
        auto &list = w->deadlines_[l];  // (the lists in use, then the mixed one)
        // A handler may set a new deadline of this length: it goes to the back, due later than now.
        while (ClientBase *s = list.front()) {
            if (s->deadline_due_ms > now) break;
            const int kind = s->deadline_kind;
            w->clear_deadline(s);
            w->shared_.protocol->deadline_passed(s, kind);
        }
    }
    w->arm_deadline_timer();
}

void Worker::sample_busy() {
    const uint64_t now_ns = uv_hrtime();
    const uint64_t idle_ns = uv_metrics_idle_time(&loop_);
    if (busy_sampled_ns_ != 0 && now_ns > busy_sampled_ns_) {
        const uint64_t wall = now_ns - busy_sampled_ns_;
        const uint64_t idle = std::min(idle_ns - idle_sampled_ns_, wall);
        busy_permille_.store(static_cast<int>((wall - idle) * 1000 / wall), std::memory_order_relaxed);
    }
    busy_sampled_ns_ = now_ns;
    idle_sampled_ns_ = idle_ns;
}

// ---- drain and shutdown ---------------------------------------------------------------------

void Worker::begin_drain() {
    if (draining_) return;
    draining_ = true;
    close_listener();  // no new connections here; those accepted already are served
    for (size_t b = 0; b < pools_.size(); b++) pools_[b].close_idle(SIZE_MAX);
    // Idle client connections close now instead of holding the stop until the drain deadline;
    // those with an exchange in flight close after it. Rotate once: drain() may close (unlink)
    // the session it is given, and only that one.
    for (size_t n = sessions_.size(); n > 0; n--) {
        ClientBase *s = sessions_.pop_front();
        sessions_.push_back(s);
        shared_.protocol->drain(s);
    }
    uint64_t deadline = drain_deadline_ms_.load(std::memory_order_acquire);
    uint64_t now = mono_ms();
    PP_UV_MUST(uv_timer_start(&drain_timer_, on_drain_deadline, deadline > now ? deadline - now : 0, 0));
    maybe_finish_drain();
}

void Worker::maybe_finish_drain() {
    if (!draining_ || finished_) return;
    take_handoffs();  // accepted before the stop: they are in flight and get served
    if (sessions_.empty()) finish();
}

void Worker::on_drain_deadline(uv_timer_t *t) {
    auto *w = static_cast<Worker *>(t->data);
    if (w->finished_) return;
    w->shared_.logger.log(PP_LOG_INFO, "worker %d: drain deadline, closing %zu session(s)", w->index_,
                          w->sessions_.size());
    while (ClientBase *s = w->sessions_.front()) w->shared_.protocol->close(s, "drain deadline");
    w->finish();
}

void Worker::finish() {
    if (finished_) return;
    finished_ = true;
    for (size_t b = 0; b < pools_.size(); b++) pools_[b].close_idle(SIZE_MAX);
    // The worker's own handles close plainly; connections still connecting (warm ones) close
    // through their pool, which closes their timers too.
    thread_.close_all([](uv_handle_t *h) {
        if (h->type == UV_TCP) {
            auto *conn = static_cast<PooledConn *>(h->data);
            conn->pool->close(conn);
        }
    });
}

}  // namespace pp
