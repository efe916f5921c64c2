// The proxy's counters gathered for the outside: pp_proxy_stats and its per-worker and
// per-backend siblings, the latency histograms, and the one snapshot the export renders
// (obs/stats_export.cpp) for pp_proxy_metrics and the admin listener. Everything here reads the
// single-writer counters from any thread without stopping the workers.
//
// The rows of the tables in poolproxy.h whose `from` is WORKER or POOL are summed here by
// macro, from the Counters the same rows declare in WorkerCounters and PoolCounters; the OTHER
// rows are gathered by hand below.
#include <cstring>

#include "core/proxy.h"
#include "core/worker.h"
#include "obs/stats_export.h"

namespace pp {

namespace {

// Copies min(caller's size, ours) bytes and reports how many it filled.
template <typename T>
void deliver(const T &full, T *out) {
    size_t n = out->struct_size < sizeof(T) ? out->struct_size : sizeof(T);
    std::memcpy(static_cast<void *>(out), &full, n);
    out->struct_size = n;
}

const char *admin_state_name(uint64_t state) {
    return state == Backend::active ? "active" : state == Backend::draining ? "draining" : "removed";
}

}  // namespace

void Proxy::stats(pp_stats *out) const {
    pp_stats s{};
    const Shared &sh = *shared_;
    for (const auto &w : sh.workers) {
        const WorkerCounters &c = w->counters();
#define PP_SUM_(field, kind, from, ...) PP_OBS_IF_WORKER_##from(s.field += c.field.get();)
        PP_STATS_FIELDS(PP_SUM_)
#undef PP_SUM_
        s.connections_rejected_no_backend += c.rejected_no_backend.get();
        s.connections_accepted += c.accepted.get();  // the workers' own accepts
        s.connections_rejected_max += c.rejected_max.get();
        s.accept_errors += c.accept_errors.get();
        s.bytes_client_to_backend += c.bytes_up.get();
        s.bytes_backend_to_client += c.bytes_down.get();
        s.responses_1xx += c.responses[0].get();
        s.responses_2xx += c.responses[1].get();
        s.responses_3xx += c.responses[2].get();
        s.responses_4xx += c.responses[3].get();
        s.responses_5xx += c.responses[4].get();
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
    }
    s.connections_accepted += sh.accept.accepted.get();  // and the acceptor's
    s.connections_active = static_cast<uint64_t>(sh.open_connections.get());
    s.connections_rejected_max += sh.accept.rejected_max.get();
    s.connections_rejected_overflow = sh.accept.rejected_overflow.get();
    s.overflow_queued = sh.accept.overflow_queued.get();
    s.accept_errors += sh.accept.accept_errors.get();
    s.queue_waiting = static_cast<uint64_t>(sh.waiting.get());
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
#define PP_READ_(field, kind, from, ...) PP_OBS_IF_READS_WORKER_##from(s.field = c.field.get();)
    PP_WORKER_STATS_FIELDS(PP_READ_)
#undef PP_READ_
    s.handoffs_queued = static_cast<uint64_t>(w.handoffs_queued());
    s.bytes_relayed = c.bytes_up.get() + c.bytes_down.get();
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
    for (const auto &w : shared_->workers) {
        if (static_cast<size_t>(index) >= w->pool_count()) continue;  // added, not seen by it yet
        const PoolCounters &p = w->pool(static_cast<size_t>(index)).counters();
#define PP_SUM_(field, kind, from, ...) PP_OBS_IF_POOL_##from(s.field += p.field.get();)
        PP_BACKEND_STATS_FIELDS(PP_SUM_)
#undef PP_SUM_
        s.conns_idle += p.idle.get();
        s.conns_opened += p.opened.get();
    }
    s.conns_open = static_cast<uint64_t>(b.open.load());
    s.weight = static_cast<uint64_t>(b.weight);
    s.up = b.up.load() ? 1 : 0;
    s.transitions = b.transitions.load();
    s.healthy = b.healthy.load() ? 1 : 0;
    s.health_checks_failed = b.health_checks_failed.load();
    s.breaker_state = static_cast<uint64_t>(b.breaker.state());
    s.breaker_transitions = b.breaker.transitions();
    s.state = static_cast<uint64_t>(b.admin.load());
    s.struct_size = sizeof s;
    deliver(s, out);
}

HistogramSnapshot Proxy::histogram(pp_latency_kind kind, int worker) const {
    HistogramSnapshot snap;
    for (const auto &w : shared_->workers) {
        if (worker >= 0 && w->index() != worker) continue;
        const WorkerCounters &c = w->counters();
        const LatencyHistogram &h = kind == PP_LATENCY_QUEUE_WAIT             ? c.queue_wait
                                    : kind == PP_LATENCY_CONNECT               ? c.connect_time
                                    : kind == PP_LATENCY_TLS_HANDSHAKE         ? c.tls_handshake_time
                                    : kind == PP_LATENCY_TLS_BACKEND_HANDSHAKE ? c.tls_backend_handshake_time
                                                                               : c.request_latency;
        h.snapshot_into(&snap);
    }
    return snap;
}

void Proxy::latency(pp_latency_kind kind, int worker, pp_latency *out) const {
    deliver(latency_summary(histogram(kind, worker)), out);
}

bool Proxy::healthy() const {
    if (state_.load() != PP_STATE_RUNNING || stopping_.load()) return false;
    for (size_t i = 0; i < shared_->backends.size(); i++) {
        const Backend &b = shared_->backends[i];
        if (b.takes_requests() && b.up.load() && b.healthy.load()) return true;
    }
    return false;
}

StatsSnapshot Proxy::snapshot() const {
    StatsSnapshot snap;
    snap.version = pp_version_string();
    snap.mode = shared_->settings.mode == static_cast<int64_t>(Mode::http) ? "http" : "tcp";
    snap.up = state_.load() == PP_STATE_RUNNING && !stopping_.load();
    snap.healthy = healthy();
    snap.proxy.struct_size = sizeof snap.proxy;
    stats(&snap.proxy);
    snap.workers.resize(static_cast<size_t>(worker_count()));
    for (size_t i = 0; i < snap.workers.size(); i++) {
        snap.workers[i].struct_size = sizeof(pp_worker_stats);
        worker_stats(static_cast<int>(i), &snap.workers[i]);
    }
    // The backend count is read once: one added meanwhile is in the next snapshot.
    snap.backends.resize(static_cast<size_t>(backend_count()));
    for (size_t i = 0; i < snap.backends.size(); i++) {
        StatsSnapshot::BackendRow &row = snap.backends[i];
        row.stats.struct_size = sizeof row.stats;
        backend_stats(static_cast<int>(i), &row.stats);
        row.name = backend(static_cast<int>(i)).name;
        const std::string &g = shared_->groups[static_cast<size_t>(backend(static_cast<int>(i)).group)].name;
        row.group = g.empty() ? "default" : g;
        row.breaker = breaker_state_name(static_cast<CircuitBreaker::State>(row.stats.breaker_state));
        row.state = admin_state_name(row.stats.state);
    }
    for (int k : {PP_LATENCY_REQUEST, PP_LATENCY_QUEUE_WAIT, PP_LATENCY_CONNECT, PP_LATENCY_TLS_HANDSHAKE,
                  PP_LATENCY_TLS_BACKEND_HANDSHAKE}) {
        snap.latency[k] = histogram(static_cast<pp_latency_kind>(k), -1);
    }
    return snap;
}

std::string Proxy::metrics_text() const { return prometheus_text(snapshot()); }

std::string Proxy::stats_json() const { return pp::stats_json(snapshot()); }

AdminResponse Proxy::admin_answer(const std::string &path) const {
    AdminResponse r;
    if (path == "/metrics") {
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
        r.body = metrics_text();
    } else if (path == "/stats") {
        r.content_type = "application/json";
        r.body = stats_json();
    } else if (path == "/healthz") {
        bool ok = healthy();
        r.status = ok ? 200 : 503;
        r.body = ok ? "ok\n" : "unhealthy\n";
    } else {
        r.status = 404;
    }
    return r;
}

}  // namespace pp
