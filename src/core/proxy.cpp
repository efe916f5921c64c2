#include "core/proxy.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/errors.h"
#include "core/options.h"
#include "core/thread_context.h"
#include "core/worker.h"

namespace pp {

thread_local const Shared *ThreadContext::current_ = nullptr;

void name_this_thread(const char *name) { pthread_setname_np(pthread_self(), name); }

int resolve_worker_count(int64_t configured) {
    if (configured > 0) return static_cast<int>(configured);
    unsigned n = uv_available_parallelism();
    return n < 1 ? 1 : static_cast<int>(n > 256 ? 256 : n);
}

Shared::Shared(const Settings &s, int workers)
    : settings(s), logger(s.callbacks), worker_count(workers),
      worker_capacity(s.worker_max_sessions > 0 ? s.worker_max_sessions
                                                : (s.max_connections + workers - 1) / workers),
      overflow(s.overflow_max) {
    for (const BackendSpec &spec : s.backends) {
        if (!spec.dynamic) add_backend(spec);  // names become backends once resolved (DnsWatcher)
    }
}

int Shared::add_backend(const BackendSpec &spec) {
    auto b = std::make_unique<Backend>();
    b->id = static_cast<int>(backends.size());
    b->addr = spec.addr;
    b->name = spec.text;
    b->authority = spec.authority.empty() ? spec.text : spec.authority;
    b->weight = spec.weight;
    CircuitBreaker::Config bc;
    bc.failures = static_cast<int>(settings.breaker_failures);
    bc.open_ms = static_cast<uint64_t>(settings.breaker_open_time);
    bc.max_open_ms = static_cast<uint64_t>(settings.breaker_max_open_time);
    bc.half_open_requests = static_cast<int>(settings.breaker_half_open_requests);
    b->breaker.configure(bc);
    live_backends++;
    return static_cast<int>(backends.add(std::move(b)));
}

Proxy::Proxy(const Settings &settings) {
    std::string why;
    int rc = validate_settings(settings, &why);
    if (rc != PP_OK) throw Error(rc, why);
    size_t fixed = 0;
    for (const BackendSpec &spec : settings.backends) fixed += spec.dynamic ? 0 : 1;
    if (fixed > Shared::kMaxBackends) {
        throw Error(PP_EBADVALUE, "at most " + std::to_string(Shared::kMaxBackends) + " backends, got " +
                                      std::to_string(fixed));
    }
    int workers = resolve_worker_count(settings.workers);
    shared_ = std::make_unique<Shared>(settings, workers);
    for (int i = 0; i < workers; i++) shared_->workers.push_back(std::make_unique<Worker>(*shared_, i));
    acceptor_ = std::make_unique<Acceptor>(*shared_);
}

Proxy::~Proxy() {
    // Only a stopped or never-started proxy is destroyed (the C API refuses otherwise).
    acceptor_.reset();
    shared_->workers.clear();
}

bool Proxy::on_own_thread() const { return ThreadContext::current() == shared_.get(); }

int Proxy::start(std::string *why) {
    if (state_ != PP_STATE_CREATED) {
        *why = state_ == PP_STATE_RUNNING ? "the proxy is already running"
                                          : "the proxy was stopped; create a new one to start again";
        return PP_ESTATE;
    }
    int rc = acceptor_->bind(why);
    if (rc != PP_OK) return rc;
    const Settings &st = shared_->settings;
    if (st.pool_min_idle == 0 && st.pool_max != 0) {
        shared_->start_probes.store(static_cast<int>(shared_->backends.size()), std::memory_order_relaxed);
    }
    for (auto &w : shared_->workers) {
        rc = w->start(why);
        if (rc != PP_OK) break;
    }
    if (rc == PP_OK && shared_->settings.health_check != static_cast<int64_t>(HealthCheck::none)) {
        health_ = std::make_unique<HealthChecker>(*shared_);
        rc = health_->start(why);
    }
    if (rc == PP_OK && !shared_->settings.admin_listen_text.empty()) {
        admin_ = std::make_unique<AdminServer>(
            shared_->settings.admin_listen, [this](const std::string &path) { return admin_answer(path); }, shared_.get());
        rc = admin_->start(why);
    }
    if (rc == PP_OK) rc = acceptor_->start(why);
    if (rc != PP_OK) {
        abandon_start();
        return rc;
    }
    state_ = PP_STATE_RUNNING;
    // Callbacks run from here on (events, log lines) are inside pp_proxy_start: like those on
    // the proxy's own threads, they may not stop or free it.
    ThreadContext in_start(shared_.get());
    // Every backend tried once before start returns, so that what the caller sees first (events,
    // stats, the first clients) does not race the probes. Bounded by connect_timeout and 1 s.
    const uint64_t probes_until = mono_ms() + static_cast<uint64_t>(std::min<int64_t>(st.connect_timeout, 1000));
    while (shared_->start_probes.load(std::memory_order_acquire) > 0 && mono_ms() < probes_until) usleep(1000);
    // Names are resolved once running: each answer adds backends the way an embedder would.
    bool any_name = false;
    for (const BackendSpec &spec : shared_->settings.backends) any_name = any_name || spec.dynamic;
    if (any_name) {
        dns_ = std::make_unique<DnsWatcher>(*this, *shared_);
        std::string dns_why;
        if (dns_->start(&dns_why) != PP_OK) {
            shared_->logger.log(PP_LOG_ERROR, "%s", dns_why.c_str());
            dns_.reset();
        }
    }
    if (admin_) {
        shared_->logger.log(PP_LOG_INFO, "admin listener on %s (/metrics, /stats, /healthz)",
                            admin_->bound().to_string().c_str());
    }
    std::string addr = acceptor_->bound().to_string();
    shared_->logger.log(PP_LOG_INFO, "listening on %s with %d worker(s), %zu backend(s)", addr.c_str(),
                        shared_->worker_count, shared_->backends.size());
    shared_->logger.event(PP_EVENT_PROXY_STARTED, -1, addr, "started");
    return PP_OK;
}

// A start that failed part-way: whatever came up goes down again, every thread is joined and
// every loop closed, so no thread, listener or descriptor is left (the proxy can only be freed).
void Proxy::abandon_start() {
    if (admin_) admin_->stop();
    admin_.reset();
    if (health_) health_->stop();
    health_.reset();
    acceptor_->stop();  // closes the listener, whether its loop ran or not
    for (auto &w : shared_->workers) w->post_drain(0);  // nothing for one that never started
    for (auto &w : shared_->workers) w->join();
    state_ = PP_STATE_STOPPED;
}

int Proxy::stop(int drain_ms, std::string *why) {
    if (state_ != PP_STATE_RUNNING) {
        *why = "the proxy is not running";
        return PP_ESTATE;
    }
    int64_t drain = drain_ms < 0 ? shared_->settings.drain_timeout : drain_ms;
    stopping_ = true;  // /healthz says 503 from now on, while the drain runs
    acceptor_->stop();
    uint64_t deadline = mono_ms() + static_cast<uint64_t>(drain);
    for (auto &w : shared_->workers) w->post_drain(deadline);
    if (dns_) dns_->stop();  // no backend change while the workers wind down
    for (auto &w : shared_->workers) w->join();
    if (health_) health_->stop();
    if (admin_) admin_->stop();
    state_ = PP_STATE_STOPPED;
    std::string addr = acceptor_->bound().to_string();
    shared_->logger.log(PP_LOG_INFO, "stopped listening on %s", addr.c_str());
    shared_->logger.event(PP_EVENT_PROXY_STOPPED, -1, addr, "stopped");
    return PP_OK;
}

// Copies min(caller's size, ours) bytes and reports how many it filled.
template <typename T>
static void deliver(const T &full, T *out) {
    size_t n = out->struct_size < sizeof(T) ? out->struct_size : sizeof(T);
    std::memcpy(static_cast<void *>(out), &full, n);
    out->struct_size = n;
}

void Proxy::stats(pp_stats *out) const {
    pp_stats s{};
    const Shared &sh = *shared_;
    s.connections_accepted = sh.accept.accepted.get();
    s.connections_active = static_cast<uint64_t>(sh.open_connections.get());
    s.connections_rejected_max = sh.accept.rejected_max.get();
    s.connections_rejected_overflow = sh.accept.rejected_overflow.get();
    s.overflow_queued = sh.accept.overflow_queued.get();
    s.accept_errors = sh.accept.accept_errors.get();
    s.queue_waiting = static_cast<uint64_t>(sh.waiting.get());
    for (const auto &w : sh.workers) {
        const WorkerCounters &c = w->counters();
        s.connections_rejected_no_backend += c.rejected_no_backend.get();
        s.sessions_finished += c.sessions_finished.get();
        s.overflow_stolen += c.overflow_stolen.get();
        s.queue_waits += c.queue_waits.get();
        s.queue_timeouts += c.queue_timeouts.get();
        s.queue_full += c.queue_full.get();
        s.pool_hits += c.pool_hits.get();
        s.pool_misses += c.pool_misses.get();
        s.bytes_client_to_backend += c.bytes_up.get();
        s.bytes_backend_to_client += c.bytes_down.get();
        for (size_t b = 0; b < w->pool_count(); b++) {
            const PoolCounters &p = w->pool(b).counters();
            s.backend_connects += p.opened.get();
            s.backend_connect_failures += p.connect_failures.get();
            s.backend_conns_idle += p.idle.get();
            s.idle_closed_by_backend += p.closed_by_backend.get();
            s.idle_closed_timeout += p.closed_idle_timeout.get();
            s.idle_closed_lifetime += p.closed_lifetime.get();
            s.backend_closed_max_requests += p.closed_max_requests.get();
            s.backend_closed_error += p.closed_error.get();
            s.backend_closed_session_end += p.closed_session_end.get();
        }
        s.requests += c.requests.get();
        s.responses_1xx += c.responses[0].get();
        s.responses_2xx += c.responses[1].get();
        s.responses_3xx += c.responses[2].get();
        s.responses_4xx += c.responses[3].get();
        s.responses_5xx += c.responses[4].get();
        s.retries += c.retries.get();
        s.no_backend_unhealthy += c.no_backend_unhealthy.get();
        s.no_backend_breaker_open += c.no_backend_breaker_open.get();
        s.no_backend_limits += c.no_backend_limits.get();
        s.client_io_timeouts += c.client_io_timeouts.get();
        s.backend_io_timeouts += c.backend_io_timeouts.get();
    }
    for (size_t i = 0; i < sh.backends.size(); i++) {
        s.backend_transitions += sh.backends[i].transitions.load();
        s.backend_conns_open += static_cast<uint64_t>(sh.backends[i].open.load());
    }
    s.struct_size = sizeof s;
    deliver(s, out);
}

void Proxy::worker_stats(int index, pp_worker_stats *out) const {
    const Worker &w = *shared_->workers[static_cast<size_t>(index)];
    const WorkerCounters &c = w.counters();
    pp_worker_stats s{};
    s.sessions_started = c.sessions_started.get();
    s.sessions_active = c.sessions_active.get();
    s.handoffs_queued = static_cast<uint64_t>(w.handoffs_queued());
    s.overflow_stolen = c.overflow_stolen.get();
    s.bytes_relayed = c.bytes_up.get() + c.bytes_down.get();
    s.requests = c.requests.get();
    s.retries = c.retries.get();
    for (size_t b = 0; b < w.pool_count(); b++) {
        s.backend_conns_open += w.pool(b).counters().open.get();
        s.backend_conns_idle += w.pool(b).counters().idle.get();
    }
    s.struct_size = sizeof s;
    deliver(s, out);
}

void Proxy::backend_stats(int index, pp_backend_stats *out) const {
    const Backend &b = shared_->backends[static_cast<size_t>(index)];
    pp_backend_stats s{};
    s.conns_open = static_cast<uint64_t>(b.open.load());
    s.weight = static_cast<uint64_t>(b.weight);
    s.up = b.up.load() ? 1 : 0;
    s.transitions = b.transitions.load();
    s.healthy = b.healthy.load() ? 1 : 0;
    s.health_checks_failed = b.health_checks_failed.load();
    s.breaker_state = static_cast<uint64_t>(b.breaker.state());
    s.breaker_transitions = b.breaker.transitions();
    s.state = static_cast<uint64_t>(b.admin.load());
    for (const auto &w : shared_->workers) {
        if (static_cast<size_t>(index) >= w->pool_count()) continue;  // added, not seen by it yet
        const PoolCounters &p = w->pool(static_cast<size_t>(index)).counters();
        s.conns_idle += p.idle.get();
        s.conns_opened += p.opened.get();
        s.connect_failures += p.connect_failures.get();
        s.sessions += p.sessions.get();
        s.sessions_active += p.sessions_active.get();
        s.requests += p.requests.get();
        s.responses_5xx += p.responses_5xx.get();
        s.closed_by_backend += p.closed_by_backend.get();
        s.closed_idle_timeout += p.closed_idle_timeout.get();
        s.closed_lifetime += p.closed_lifetime.get();
        s.closed_max_requests += p.closed_max_requests.get();
        s.closed_error += p.closed_error.get();
    }
    s.struct_size = sizeof s;
    deliver(s, out);
}

}  // namespace pp
