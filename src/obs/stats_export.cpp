// Renders a StatsSnapshot from the stats tables of poolproxy.h (see obs/stats_schema.h): every
// field with a Prometheus series becomes a sample of it, every field a key of /stats. The few
// things the tables do not say are here: the help of a series that carries several fields, the
// derived no_backend_total{reason="other"}, and the /stats keys shown as names.
#include "obs/stats_export.h"

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "obs/stats_schema.h"

namespace pp {

namespace {

// Prometheus bucket bounds: 1, 2.5 and 5 per decade (each an exact internal bucket bound).
constexpr uint64_t kPromBucketsUs[] = {100,     250,     500,     1000,     2500,     5000,     10000,
                                       25000,   50000,   100000,  250000,   500000,   1000000,  2500000,
                                       5000000, 10000000, 30000000, 60000000};

// HELP of the series that carry several fields (a single-field series uses the field's doc).
struct SeriesHelp {
    const char *series, *help;
};
constexpr SeriesHelp kSeriesHelp[] = {
    {"connections_rejected_total", "Client connections closed at once, by reason."},
    {"no_backend_total", "Requests (tcp: sessions) refused because no backend could take them, by reason."},
    {"responses_total", "http: final answers by status class (tcp: none)."},
    {"bytes_total", "Payload bytes relayed, by direction."},
    {"backend_connections_closed_total", "Backend connections closed, by reason."},
};

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

void sample(std::string *out, const char *name, const std::string &entity, const char *labels, uint64_t v) {
    const char *sep = !entity.empty() && *labels ? "," : "";
    if (entity.empty() && !*labels) {
        appendf(out, "poolproxy_%s %" PRIu64 "\n", name, v);
    } else {
        appendf(out, "poolproxy_%s{%s%s%s} %" PRIu64 "\n", name, entity.c_str(), sep, labels, v);
    }
}

const char *series_help(const char *series, const char *doc) {
    for (const SeriesHelp &h : kSeriesHelp) {
        if (std::strcmp(h.series, series) == 0) return h.help;
    }
    return doc;
}

// Whether field i is the first of the table that exports to its series (families are written
// once, in the order their first field appears).
template <typename T, size_t N>
bool first_of_series(const FieldInfo<T> (&fields)[N], size_t i) {
    for (size_t j = 0; j < i; j++) {
        if (std::strcmp(fields[j].series, fields[i].series) == 0) return false;
    }
    return true;
}

// Refusals for no backend that no counted reason explains: the rejections minus the reasons
// of no_backend_total, from the one snapshot, and never below 0 (the counters are read one
// after another while workers count, so the reasons may be ahead of the total by a few).
uint64_t no_backend_other(const pp_stats &s) {
    uint64_t reasons = 0;
    for (const auto &f : StatsSchema<pp_stats>::fields) {
        if (std::strcmp(f.series, "no_backend_total") == 0) reasons += s.*f.member;
    }
    return s.connections_rejected_no_backend > reasons ? s.connections_rejected_no_backend - reasons : 0;
}

// Samples a series carries beyond the table's fields: no_backend_total{reason="other"}.
void derived_samples(std::string *out, const char *series, const std::string &entity, const pp_stats &s) {
    if (std::strcmp(series, "no_backend_total") == 0) sample(out, series, entity, "reason=\"other\"", no_backend_other(s));
}
template <typename T>
void derived_samples(std::string *, const char *, const std::string &, const T &) {}

// Every series of one table: for each, its family header and one sample per row and field.
template <typename T, typename Label>
void write_table(std::string *out, const T *rows, size_t n, Label label) {
    const auto &fields = StatsSchema<T>::fields;
    const size_t count = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < count; i++) {
        const FieldInfo<T> &f = fields[i];
        if (!*f.series || !first_of_series(fields, i)) continue;
        family(out, f.series, f.kind == FieldKind::COUNTER ? "counter" : "gauge", series_help(f.series, f.doc));
        for (size_t r = 0; r < n; r++) {
            const std::string entity = label(r);
            for (size_t j = i; j < count; j++) {
                if (std::strcmp(fields[j].series, f.series) == 0) {
                    sample(out, f.series, entity, fields[j].labels, rows[r].*fields[j].member);
                }
            }
            derived_samples(out, f.series, entity, rows[r]);
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

// The fields of one row as JSON members ("name":value, ...), each preceded by a comma.
// `named(field)` gives the name a field is shown as instead of its number, or nullptr.
template <typename T, typename Named>
void json_fields(std::string *out, const T &row, Named named) {
    for (const auto &f : StatsSchema<T>::fields) {
        const uint64_t v = row.*f.member;
        if (const char *name = named(f.name)) {
            appendf(out, ",%s", name);
        } else if (f.kind == FieldKind::FLAG) {
            appendf(out, ",\"%s\":%s", f.name, v ? "true" : "false");
        } else {
            appendf(out, ",\"%s\":%" PRIu64, f.name, v);
        }
    }
}

}  // namespace

pp_latency latency_summary(const HistogramSnapshot &h) {
    pp_latency l{};
    l.struct_size = sizeof l;
    l.count = h.count;
    l.sum_us = h.sum_us;
    l.p50_us = h.quantile_us(0.50);
    l.p90_us = h.quantile_us(0.90);
    l.p99_us = h.quantile_us(0.99);
    l.p999_us = h.quantile_us(0.999);
    return l;
}

std::string prometheus_text(const StatsSnapshot &snap) {
    std::string out;
    out.reserve(16384 + 2048 * snap.backends.size());
    family(&out, "info", "gauge", "Version and mode of the running proxy (value 1).");
    appendf(&out, "poolproxy_info{version=\"%s\",mode=\"%s\"} 1\n", snap.version, snap.mode);
    family(&out, "up", "gauge", "1 while the proxy runs and is not draining.");
    appendf(&out, "poolproxy_up %d\n", snap.up ? 1 : 0);

    write_table(&out, &snap.proxy, 1, [](size_t) { return std::string(); });
    write_table(&out, snap.workers.data(), snap.workers.size(),
                [](size_t i) { return "worker=\"" + std::to_string(i) + "\""; });
    std::vector<pp_backend_stats> bs;
    bs.reserve(snap.backends.size());
    for (const auto &b : snap.backends) bs.push_back(b.stats);
    write_table(&out, bs.data(), bs.size(),
                [&snap](size_t i) {
                    // The id tells apart one address in two groups, or removed and added again.
                    return "backend=\"" + escaped(snap.backends[i].name) + "\",id=\"" + std::to_string(i) +
                           "\",group=\"" + escaped(snap.backends[i].group) + "\"";
                });

    histogram_family(&out, "request_duration_seconds",
                     "http: request head received to response complete; tcp: session length.",
                     snap.latency[PP_LATENCY_REQUEST]);
    histogram_family(&out, "queue_wait_seconds", "Time spent waiting for a pooled backend connection.",
                     snap.latency[PP_LATENCY_QUEUE_WAIT]);
    histogram_family(&out, "backend_connect_seconds", "Time to connect to a backend (successful connects).",
                     snap.latency[PP_LATENCY_CONNECT]);
    histogram_family(&out, "tls_handshake_seconds", "Client TLS handshakes completed, from the accept.",
                     snap.latency[PP_LATENCY_TLS_HANDSHAKE]);
    histogram_family(&out, "tls_backend_handshake_seconds",
                     "backend_tls handshakes completed, from the TCP connect to the backend.",
                     snap.latency[PP_LATENCY_TLS_BACKEND_HANDSHAKE]);
    return out;
}

std::string stats_json(const StatsSnapshot &snap) {
    auto plain = [](const char *) -> const char * { return nullptr; };
    std::string out = "{\"version\":\"";
    out += snap.version;
    appendf(&out, "\",\"healthy\":%s,\"proxy\":{", snap.healthy ? "true" : "false");
    std::string fields;
    json_fields(&fields, snap.proxy, plain);
    out.append(fields, 1, std::string::npos);  // without the first comma
    out += "},\"latency_us\":{";
    const std::pair<const char *, pp_latency_kind> kinds[] = {
        {"request", PP_LATENCY_REQUEST}, {"queue_wait", PP_LATENCY_QUEUE_WAIT}, {"connect", PP_LATENCY_CONNECT},
        {"tls_handshake", PP_LATENCY_TLS_HANDSHAKE}, {"tls_backend_handshake", PP_LATENCY_TLS_BACKEND_HANDSHAKE}};
    bool first = true;
    for (const auto &k : kinds) {
        pp_latency l = latency_summary(snap.latency[k.second]);
        appendf(&out,
                "%s\"%s\":{\"count\":%" PRIu64 ",\"sum\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p90\":%" PRIu64
                ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 "}",
                first ? "" : ",", k.first, l.count, l.sum_us, l.p50_us, l.p90_us, l.p99_us, l.p999_us);
        first = false;
    }
    out += "},\"workers\":[";
    for (size_t i = 0; i < snap.workers.size(); i++) {
        appendf(&out, "%s{\"index\":%zu", i ? "," : "", i);
        json_fields(&out, snap.workers[i], plain);
        out += "}";
    }
    out += "],\"backends\":[";
    for (size_t i = 0; i < snap.backends.size(); i++) {
        const StatsSnapshot::BackendRow &b = snap.backends[i];
        appendf(&out, "%s{\"id\":%zu,\"address\":\"%s\",\"group\":\"%s\"", i ? "," : "", i, escaped(b.name).c_str(),
                escaped(b.group).c_str());
        // Two gauges are shown by name, as /stats has since 0.1.
        std::string breaker = "\"breaker\":\"" + escaped(b.breaker) + "\"";
        std::string state = "\"state\":\"" + escaped(b.state) + "\"";
        json_fields(&out, b.stats, [&](const char *field) -> const char * {
            if (std::strcmp(field, "breaker_state") == 0) return breaker.c_str();
            if (std::strcmp(field, "state") == 0) return state.c_str();
            return nullptr;
        });
        out += "}";
    }
    out += "]}\n";
    return out;
}

}  // namespace pp
