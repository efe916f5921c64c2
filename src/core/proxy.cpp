#include "core/proxy.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/clock.h"
#include "core/errors.h"
#include "core/options.h"
#include "core/protocol.h"
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
    const Settings base = without_lists(s);
    groups.add(std::make_unique<Group>());
    groups[0].settings = group_settings(base, nullptr);
    for (const GroupSpec &g : s.groups) {
        auto group = std::make_unique<Group>();
        group->name = g.name;
        group->settings = group_settings(base, &g);
        groups.add(std::move(group));
    }
    for (size_t g = 0; g < groups.size(); g++) {  // backend_tls: each group's own context
        bool failed = false;
        std::string why;
        groups[g].tls = TlsClient::make(groups[g].settings, &failed, &why);
        groups[g].tls_files = backend_tls_files(groups[g].settings);
        if (failed) throw Error(PP_EBADVALUE, (g ? "group '" + groups[g].name + "': " : std::string()) + why);
    }
    for (const BackendSpec &spec : s.backends) {
        if (!spec.dynamic) add_backend(spec);  // names become backends once resolved (DnsWatcher)
    }
}

int Shared::group_id(const std::string &name) const {
    for (size_t g = groups.size(); g-- > 0;) {  // the newest first: a replaced group is retired
        if (groups[g].name == name && !groups[g].retired.load(std::memory_order_acquire)) return static_cast<int>(g);
    }
    return -1;
}

int Shared::add_backend(const BackendSpec &spec, bool healthy) {
    auto b = std::make_unique<Backend>();
    b->healthy.store(healthy, std::memory_order_relaxed);
    b->id = static_cast<int>(backends.size());
    const int g = group_id(spec.group);  // checked by the callers
    b->group = g < 0 ? 0 : g;
    const Settings &gs = groups[static_cast<size_t>(b->group)].settings;
    b->gs = &gs;
    b->tls = groups[static_cast<size_t>(b->group)].tls.get();
    b->group_waiting = &groups[static_cast<size_t>(b->group)].waiting;
    b->pool_max = spec.pool_max >= 0 ? spec.pool_max : gs.pool_max;
    b->own_pool_max = spec.pool_max;
    b->from_name = !spec.authority.empty();
    b->host_header = spec.host_header;
    b->addr = spec.addr;
    b->name = spec.text;
    b->authority = spec.authority.empty() ? spec.text : spec.authority;
    b->weight = spec.weight;
    CircuitBreaker::Config bc;
    bc.failures = static_cast<int>(gs.breaker_failures);
    bc.open_ms = static_cast<uint64_t>(gs.breaker_open_time);
    bc.max_open_ms = static_cast<uint64_t>(gs.breaker_max_open_time);
    bc.half_open_requests = static_cast<int>(gs.breaker_half_open_requests);
    b->breaker.configure(bc);
    live_backends++;
    const int id = static_cast<int>(backends.add(std::move(b)));
    config_epoch.fetch_add(1, std::memory_order_release);  // before any removal it makes way for
    return id;
}

Proxy::Proxy(const Settings &settings, std::unique_ptr<Protocol> protocol) : protocol_(std::move(protocol)) {
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
    shared_->protocol = protocol_.get();
    if (!settings.tls_certs.empty()) {
        auto tls = TlsServer::make(settings, shared_->logger, false, &why);
        if (!tls) throw Error(PP_EBADVALUE, why);
        shared_->tls.store(tls.get());
        tls_.push_back(std::move(tls));
        tls_settings_ = without_lists(settings);
        tls_settings_.tls_certs = settings.tls_certs;
        tls_files_ = tls_files(settings);
    }
    for (int i = 0; i < workers; i++) shared_->workers.push_back(std::make_unique<Worker>(*shared_, i));
    acceptor_ = std::make_unique<Acceptor>(*shared_);
    shared_->acceptor = acceptor_.get();
}

Proxy::~Proxy() {
    // Only a stopped or never-started proxy is destroyed (the C API refuses otherwise).
    acceptor_.reset();
    shared_->acceptor = nullptr;
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
    // Worker 0 probes each backend whose group keeps no connection warm (Worker::sync_backends);
    // each probe settles once, made or not.
    int probes = 0;
    for (size_t b = 0; b < shared_->backends.size(); b++) probes += shared_->backends[b].gs->pool_min_idle == 0 ? 1 : 0;
    shared_->start_probes.store(probes, std::memory_order_relaxed);
    for (auto &w : shared_->workers) {  // all set up before any runs (see Worker::start)
        rc = w->start(why);
        if (rc != PP_OK) break;
    }
    for (auto &w : shared_->workers) {
        if (rc != PP_OK) break;
        rc = w->run(why);
    }
    bool any_checks = false;
    for (size_t g = 0; g < shared_->groups.size(); g++) {
        any_checks = any_checks || shared_->groups[g].settings.health_check != static_cast<int64_t>(HealthCheck::none);
    }
    if (rc == PP_OK && any_checks) {
        std::lock_guard<std::mutex> lock(health_mu_);
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
    {
        // A reload under way finishes first (it posts to the workers and may start the health
        // checker); one that comes later finds the proxy stopping.
        std::lock_guard<std::mutex> no_reload(reload_mu_);
        stopping_ = true;  // /healthz says 503 from now on, while the drain runs
    }
    acceptor_->stop();
    uint64_t deadline = mono_ms() + static_cast<uint64_t>(drain);
    for (auto &w : shared_->workers) w->post_drain(deadline);
    if (dns_) dns_->stop();  // no backend change while the workers wind down
    for (auto &w : shared_->workers) w->join();
    {
        std::lock_guard<std::mutex> lock(health_mu_);
        if (health_) health_->stop();
    }
    if (admin_) admin_->stop();
    state_ = PP_STATE_STOPPED;
    std::string addr = acceptor_->bound().to_string();
    shared_->logger.log(PP_LOG_INFO, "stopped listening on %s", addr.c_str());
    shared_->logger.event(PP_EVENT_PROXY_STOPPED, -1, addr, "stopped");
    return PP_OK;
}

int Proxy::resume(uint64_t token, std::string *why) {
    const int w = shared_->parking.resume(token);
    if (w < 0 || w >= shared_->worker_count) {
        *why = "token " + std::to_string(token) + " is not a paused exchange (resumed already, or it ended)";
        return PP_ESTATE;
    }
    shared_->workers[static_cast<size_t>(w)]->post_resume(token);
    return PP_OK;
}

}  // namespace pp
