// The proxy's counters as text for the outside: the Prometheus exposition format (0.0.4), the
// JSON of the admin listener's /stats, and the latency summaries. Everything here reads the
// same single-writer counters pp_proxy_stats reads, from any thread, without stopping workers.
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/proxy.h"
#include "core/worker.h"

namespace pp {

namespace {

// Prometheus bucket bounds: 1, 2.5 and 5 per decade (each an exact internal bucket bound).
constexpr uint64_t kPromBucketsUs[] = {100,     250,     500,     1000,     2500,     5000,     10000,
                                       25000,   50000,   100000,  250000,   500000,   1000000,  2500000,
                                       5000000, 10000000, 30000000, 60000000};

void appendf(std::string *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string *out, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) out->append(buf, static_cast<size_t>(n) < sizeof buf ? static_cast<size_t>(n) : sizeof buf - 1);
}

// A label value with \, " and newline escaped (the exposition format's rules; JSON's too).
std::string escaped(const std::string &v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

void family(std::string *out, const char *name, const char *type, const char *help) {
    appendf(out, "# HELP poolproxy_%s %s\n# TYPE poolproxy_%s %s\n", name, help, name, type);
}

void sample(std::string *out, const char *name, uint64_t v) { appendf(out, "poolproxy_%s %" PRIu64 "\n", name, v); }

void sample(std::string *out, const char *name, const char *labels, uint64_t v) {
    appendf(out, "poolproxy_%s{%s} %" PRIu64 "\n", name, labels, v);
}

// One stats struct per worker or backend, each filled with its full struct_size.
template <typename T, typename Fill>
std::vector<T> snapshots(int n, Fill fill) {
    std::vector<T> out;
    for (int i = 0; i < n; i++) {
        T x{};
        x.struct_size = sizeof x;
        fill(i, &x);
        out.push_back(x);
    }
    return out;
}

// A family whose samples are one field of each worker's or backend's struct.
template <typename T>
struct Series {
    const char *name, *type, *help;
    uint64_t T::*field;
};

template <typename T, size_t N, typename Label>
void write_series(std::string *out, const Series<T> (&series)[N], const std::vector<T> &rows, Label label) {
    for (const Series<T> &ser : series) {
        family(out, ser.name, ser.type, ser.help);
        for (size_t i = 0; i < rows.size(); i++) {
            sample(out, ser.name, label(static_cast<int>(i)).c_str(), rows[i].*ser.field);
        }
    }
}

void histogram_family(std::string *out, const char *name, const char *help, const HistogramSnapshot &h) {
    family(out, name, "histogram", help);
    for (uint64_t le : kPromBucketsUs) {
        appendf(out, "poolproxy_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, static_cast<double>(le) / 1e6,
                h.cumulative_at(le));
    }
    appendf(out, "poolproxy_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h.count);
    appendf(out, "poolproxy_%s_sum %.6f\n", name, static_cast<double>(h.sum_us) / 1e6);
    appendf(out, "poolproxy_%s_count %" PRIu64 "\n", name, h.count);
}

}  // namespace

HistogramSnapshot Proxy::histogram(pp_latency_kind kind, int worker) const {
    HistogramSnapshot snap;
    for (const auto &w : shared_->workers) {
        if (worker >= 0 && w->index() != worker) continue;
        const WorkerCounters &c = w->counters();
        const LatencyHistogram &h = kind == PP_LATENCY_QUEUE_WAIT ? c.queue_wait
                                    : kind == PP_LATENCY_CONNECT  ? c.connect_time
                                                                  : c.request_latency;
        h.snapshot_into(&snap);
    }
    return snap;
}

void Proxy::latency(pp_latency_kind kind, int worker, pp_latency *out) const {
    HistogramSnapshot h = histogram(kind, worker);
    pp_latency l{};
    l.struct_size = sizeof l;
    l.count = h.count;
    l.sum_us = h.sum_us;
    l.p50_us = h.quantile_us(0.50);
    l.p90_us = h.quantile_us(0.90);
    l.p99_us = h.quantile_us(0.99);
    l.p999_us = h.quantile_us(0.999);
    size_t n = out->struct_size < sizeof l ? out->struct_size : sizeof l;
    std::memcpy(static_cast<void *>(out), &l, n);
    out->struct_size = n;
}

bool Proxy::healthy() const {
    if (state_.load() != PP_STATE_RUNNING || stopping_.load()) return false;
    for (size_t i = 0; i < shared_->backends.size(); i++) {
        const Backend &b = shared_->backends[i];
        if (b.takes_requests() && b.up.load() && b.healthy.load()) return true;
    }
    return false;
}

std::string Proxy::metrics_text() const {
    pp_stats s{};
    s.struct_size = sizeof s;
    stats(&s);
    std::string out;
    out.reserve(16384);
    family(&out, "info", "gauge", "Version and mode of the running proxy (value 1).");
    appendf(&out, "poolproxy_info{version=\"%s\",mode=\"%s\"} 1\n", pp_version_string(),
            shared_->settings.mode == static_cast<int64_t>(Mode::http) ? "http" : "tcp");
    family(&out, "up", "gauge", "1 while the proxy runs and is not draining.");
    sample(&out, "up", state_.load() == PP_STATE_RUNNING && !stopping_.load() ? 1 : 0);

    family(&out, "connections_accepted_total", "counter", "Client connections accepted.");
    sample(&out, "connections_accepted_total", s.connections_accepted);
    family(&out, "connections_active", "gauge", "Client connections open now.");
    sample(&out, "connections_active", s.connections_active);
    family(&out, "connections_rejected_total", "counter", "Client connections closed at once, by reason.");
    sample(&out, "connections_rejected_total", "reason=\"max_connections\"", s.connections_rejected_max);
    sample(&out, "connections_rejected_total", "reason=\"overflow_full\"", s.connections_rejected_overflow);
    sample(&out, "connections_rejected_total", "reason=\"no_backend\"", s.connections_rejected_no_backend);
    family(&out, "no_backend_total", "counter",
           "Requests (tcp: sessions) refused because no backend could take them, by reason.");
    sample(&out, "no_backend_total", "reason=\"unhealthy\"", s.no_backend_unhealthy);
    sample(&out, "no_backend_total", "reason=\"breaker_open\"", s.no_backend_breaker_open);
    sample(&out, "no_backend_total", "reason=\"limits\"", s.no_backend_limits);
    sample(&out, "no_backend_total", "reason=\"other\"",
           s.connections_rejected_no_backend - s.no_backend_unhealthy - s.no_backend_breaker_open -
               s.no_backend_limits);
    family(&out, "accept_errors_total", "counter", "accept() failures, e.g. EMFILE.");
    sample(&out, "accept_errors_total", s.accept_errors);
    family(&out, "sessions_finished_total", "counter", "Client sessions closed after being served.");
    sample(&out, "sessions_finished_total", s.sessions_finished);

    family(&out, "responses_total", "counter", "http: final answers by status class (tcp: none).");
    const uint64_t classes[] = {s.responses_1xx, s.responses_2xx, s.responses_3xx, s.responses_4xx, s.responses_5xx};
    for (int i = 0; i < 5; i++) {
        appendf(&out, "poolproxy_responses_total{class=\"%dxx\"} %" PRIu64 "\n", i + 1, classes[i]);
    }
    family(&out, "overflow_queued_total", "counter", "Accepted connections that went through the overflow queue.");
    sample(&out, "overflow_queued_total", s.overflow_queued);
    family(&out, "queue_waits_total", "counter", "Sessions that waited for a pooled backend connection.");
    sample(&out, "queue_waits_total", s.queue_waits);
    family(&out, "queue_timeouts_total", "counter", "Sessions closed because queue_timeout passed.");
    sample(&out, "queue_timeouts_total", s.queue_timeouts);
    family(&out, "client_io_timeouts_total", "counter",
           "http: exchanges ended because the client moved no byte for client_io_timeout.");
    sample(&out, "client_io_timeouts_total", s.client_io_timeouts);
    family(&out, "backend_io_timeouts_total", "counter",
           "http: exchanges ended because the backend moved no byte for backend_io_timeout.");
    sample(&out, "backend_io_timeouts_total", s.backend_io_timeouts);
    family(&out, "queue_full_total", "counter", "Sessions refused because queue_max were already waiting.");
    sample(&out, "queue_full_total", s.queue_full);
    family(&out, "queue_waiting", "gauge", "Sessions waiting for a backend connection now.");
    sample(&out, "queue_waiting", s.queue_waiting);
    family(&out, "pool_hits_total", "counter", "Requests given an already-open pooled connection.");
    sample(&out, "pool_hits_total", s.pool_hits);
    family(&out, "pool_misses_total", "counter", "Requests that had to open or wait for a connection.");
    sample(&out, "pool_misses_total", s.pool_misses);
    family(&out, "bytes_total", "counter", "Payload bytes relayed, by direction.");
    sample(&out, "bytes_total", "direction=\"client_to_backend\"", s.bytes_client_to_backend);
    sample(&out, "bytes_total", "direction=\"backend_to_client\"", s.bytes_backend_to_client);

    // Per worker.
    std::vector<pp_worker_stats> ws = snapshots<pp_worker_stats>(
        worker_count(), [this](int i, pp_worker_stats *w) { worker_stats(i, w); });
    const Series<pp_worker_stats> worker_series[] = {
        {"requests_total", "counter", "http: requests answered, by a backend or the proxy; tcp: sessions ended.",
         &pp_worker_stats::requests},
        {"retries_total", "counter", "Requests sent again on another connection or backend.", &pp_worker_stats::retries},
        {"worker_sessions_total", "counter", "Client sessions a worker took on.", &pp_worker_stats::sessions_started},
        {"worker_sessions_active", "gauge", "Client sessions open on a worker now.", &pp_worker_stats::sessions_active},
        {"worker_overflow_stolen_total", "counter", "Sessions a worker took from the overflow queue.",
         &pp_worker_stats::overflow_stolen},
        {"worker_handoffs_queued", "gauge", "Accepted sockets waiting in a worker's hand-off queue.",
         &pp_worker_stats::handoffs_queued},
    };
    write_series(&out, worker_series, ws, [](int i) { return "worker=\"" + std::to_string(i) + "\""; });

    // Per backend.
    std::vector<pp_backend_stats> bs = snapshots<pp_backend_stats>(
        backend_count(), [this](int i, pp_backend_stats *b) { backend_stats(i, b); });
    auto backend_label = [this](int i) { return "backend=\"" + escaped(backend(i).name) + "\""; };
    const Series<pp_backend_stats> backend_series[] = {
        {"backend_up", "gauge", "1 unless the backend's last connect attempt failed.", &pp_backend_stats::up},
        {"backend_transitions_total", "counter", "Times the backend went down or came back up.",
         &pp_backend_stats::transitions},
        {"backend_requests_total", "counter", "Requests (tcp: sessions) the backend served.", &pp_backend_stats::requests},
        {"backend_responses_5xx_total", "counter", "http: 5xx answers from the backend or on its behalf.",
         &pp_backend_stats::responses_5xx},
        {"backend_connections_open", "gauge", "Backend connections open or opening, all workers.",
         &pp_backend_stats::conns_open},
        {"backend_connections_idle", "gauge", "Idle pooled backend connections.", &pp_backend_stats::conns_idle},
        {"backend_connections_opened_total", "counter", "Backend connections opened.", &pp_backend_stats::conns_opened},
        {"backend_connect_failures_total", "counter", "Backend connects that failed or timed out.",
         &pp_backend_stats::connect_failures},
        {"backend_sessions_active", "gauge", "Requests (tcp: sessions) in flight to the backend.",
         &pp_backend_stats::sessions_active},
        {"backend_healthy", "gauge", "1 unless active health checks marked the backend unhealthy.",
         &pp_backend_stats::healthy},
        {"backend_health_checks_failed_total", "counter", "Active health checks that failed.",
         &pp_backend_stats::health_checks_failed},
        {"backend_breaker_state", "gauge", "The backend's circuit breaker: 0 closed, 1 open, 2 half-open.",
         &pp_backend_stats::breaker_state},
        {"backend_breaker_transitions_total", "counter", "Circuit breaker state changes.",
         &pp_backend_stats::breaker_transitions},
        {"backend_state", "gauge", "Administrative state: 0 active, 1 draining, 2 removed.", &pp_backend_stats::state},
    };
    write_series(&out, backend_series, bs, backend_label);
    family(&out, "backend_connections_closed_total", "counter", "Backend connections closed, by reason.");
    for (int i = 0; i < backend_count(); i++) {
        const pp_backend_stats &b = bs[static_cast<size_t>(i)];
        const std::pair<const char *, uint64_t> reasons[] = {
            {"backend_close", b.closed_by_backend},  {"idle_timeout", b.closed_idle_timeout},
            {"lifetime", b.closed_lifetime},         {"max_requests", b.closed_max_requests},
            {"error", b.closed_error},
        };
        for (const auto &r : reasons) {
            appendf(&out, "poolproxy_backend_connections_closed_total{%s,reason=\"%s\"} %" PRIu64 "\n",
                    backend_label(i).c_str(), r.first, r.second);
        }
    }

    histogram_family(&out, "request_duration_seconds",
                     "http: request head received to response complete; tcp: session length.",
                     histogram(PP_LATENCY_REQUEST, -1));
    histogram_family(&out, "queue_wait_seconds", "Time spent waiting for a pooled backend connection.",
                     histogram(PP_LATENCY_QUEUE_WAIT, -1));
    histogram_family(&out, "backend_connect_seconds", "Time to connect to a backend (successful connects).",
                     histogram(PP_LATENCY_CONNECT, -1));
    return out;
}

std::string Proxy::stats_json() const {
    pp_stats s{};
    s.struct_size = sizeof s;
    stats(&s);
    std::string out = "{\"version\":\"";
    out += pp_version_string();
    appendf(&out, "\",\"healthy\":%s,\"proxy\":{", healthy() ? "true" : "false");
    const std::pair<const char *, uint64_t> fields[] = {
        {"connections_accepted", s.connections_accepted},
        {"connections_active", s.connections_active},
        {"connections_rejected_max", s.connections_rejected_max},
        {"connections_rejected_overflow", s.connections_rejected_overflow},
        {"connections_rejected_no_backend", s.connections_rejected_no_backend},
        {"no_backend_unhealthy", s.no_backend_unhealthy},
        {"no_backend_breaker_open", s.no_backend_breaker_open},
        {"no_backend_limits", s.no_backend_limits},
        {"sessions_finished", s.sessions_finished},
        {"requests", s.requests},
        {"responses_1xx", s.responses_1xx},
        {"responses_2xx", s.responses_2xx},
        {"responses_3xx", s.responses_3xx},
        {"responses_4xx", s.responses_4xx},
        {"responses_5xx", s.responses_5xx},
        {"retries", s.retries},
        {"overflow_queued", s.overflow_queued},
        {"overflow_stolen", s.overflow_stolen},
        {"queue_waits", s.queue_waits},
        {"queue_timeouts", s.queue_timeouts},
        {"client_io_timeouts", s.client_io_timeouts},
        {"backend_io_timeouts", s.backend_io_timeouts},
        {"queue_full", s.queue_full},
        {"queue_waiting", s.queue_waiting},
        {"backend_connects", s.backend_connects},
        {"backend_connect_failures", s.backend_connect_failures},
        {"backend_conns_open", s.backend_conns_open},
        {"backend_conns_idle", s.backend_conns_idle},
        {"pool_hits", s.pool_hits},
        {"pool_misses", s.pool_misses},
        {"bytes_client_to_backend", s.bytes_client_to_backend},
        {"bytes_backend_to_client", s.bytes_backend_to_client},
        {"accept_errors", s.accept_errors},
    };
    bool first = true;
    for (const auto &f : fields) {
        appendf(&out, "%s\"%s\":%" PRIu64, first ? "" : ",", f.first, f.second);
        first = false;
    }
    out += "},\"latency_us\":{";
    const std::pair<const char *, pp_latency_kind> kinds[] = {
        {"request", PP_LATENCY_REQUEST}, {"queue_wait", PP_LATENCY_QUEUE_WAIT}, {"connect", PP_LATENCY_CONNECT}};
    first = true;
    for (const auto &k : kinds) {
        pp_latency l{};
        l.struct_size = sizeof l;
        latency(k.second, -1, &l);
        appendf(&out,
                "%s\"%s\":{\"count\":%" PRIu64 ",\"sum\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
                ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 "}",
                first ? "" : ",", k.first, l.count, l.sum_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us);
        first = false;
    }
    out += "},\"workers\":[";
    std::vector<pp_worker_stats> ws = snapshots<pp_worker_stats>(
        worker_count(), [this](int i, pp_worker_stats *w) { worker_stats(i, w); });
    for (int i = 0; i < worker_count(); i++) {
        const pp_worker_stats &w = ws[static_cast<size_t>(i)];
        appendf(&out,
                "%s{\"index\":%d,\"sessions_started\":%" PRIu64 ",\"sessions_active\":%" PRIu64
                ",\"handoffs_queued\":%" PRIu64 ",\"overflow_stolen\":%" PRIu64 ",\"bytes_relayed\":%" PRIu64
                ",\"backend_conns_open\":%" PRIu64 ",\"backend_conns_idle\":%" PRIu64 ",\"requests\":%" PRIu64
                ",\"retries\":%" PRIu64 "}",
                i ? "," : "", i, w.sessions_started, w.sessions_active, w.handoffs_queued, w.overflow_stolen,
                w.bytes_relayed, w.backend_conns_open, w.backend_conns_idle, w.requests, w.retries);
    }
    out += "],\"backends\":[";
    std::vector<pp_backend_stats> bs = snapshots<pp_backend_stats>(
        backend_count(), [this](int i, pp_backend_stats *b) { backend_stats(i, b); });
    for (int i = 0; i < backend_count(); i++) {
        const pp_backend_stats &b = bs[static_cast<size_t>(i)];
        appendf(&out, "%s{\"id\":%d,\"address\":\"%s\"", i ? "," : "", i, escaped(backend(i).name).c_str());
        appendf(&out,
                ",\"up\":%s,\"weight\":%" PRIu64 ",\"conns_open\":%" PRIu64 ",\"conns_idle\":%" PRIu64
                ",\"conns_opened\":%" PRIu64 ",\"connect_failures\":%" PRIu64 ",\"sessions\":%" PRIu64
                ",\"sessions_active\":%" PRIu64 ",\"requests\":%" PRIu64 ",\"responses_5xx\":%" PRIu64
                ",\"closed_by_backend\":%" PRIu64 ",\"closed_idle_timeout\":%" PRIu64 ",\"closed_lifetime\":%" PRIu64
                ",\"closed_max_requests\":%" PRIu64 ",\"closed_error\":%" PRIu64 ",\"transitions\":%" PRIu64
                ",\"healthy\":%s,\"health_checks_failed\":%" PRIu64 ",\"breaker\":\"%s\",\"breaker_transitions\":%" PRIu64
                ",\"state\":\"%s\"}",
                b.up ? "true" : "false", b.weight, b.conns_open, b.conns_idle, b.conns_opened, b.connect_failures,
                b.sessions, b.sessions_active, b.requests, b.responses_5xx, b.closed_by_backend, b.closed_idle_timeout,
                b.closed_lifetime, b.closed_max_requests, b.closed_error, b.transitions, b.healthy ? "true" : "false",
                b.health_checks_failed,
                breaker_state_name(static_cast<CircuitBreaker::State>(b.breaker_state)), b.breaker_transitions,
                b.state == 0 ? "active" : b.state == 1 ? "draining" : "removed");
    }
    out += "]}\n";
    return out;
}

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
