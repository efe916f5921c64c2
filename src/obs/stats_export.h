// The proxy's counters as text for the outside: the Prometheus exposition format (0.0.4) and the
// JSON of the admin listener's /stats. Both render a StatsSnapshot taken once by the core
// (Proxy::snapshot): nothing here reads a live structure, so a backend added while a scrape runs
// is simply in the next one, and every number of one scrape comes from the same snapshot.
#pragma once
#include <string>
#include <vector>

#include "obs/histogram.h"
#include "poolproxy.h"

namespace pp {

struct StatsSnapshot {
    const char *version = "";
    const char *mode = "tcp";  // "tcp" or "http"
    bool up = false;           // running and not draining
    bool healthy = false;      // up, and a backend takes requests, is up and healthy
    pp_stats proxy{};
    std::vector<pp_worker_stats> workers;
    struct BackendRow {
        pp_backend_stats stats{};
        std::string name;           // "host:port" as configured
        std::string group;          // its backend group ("default" for the unnamed one)
        const char *breaker = "";   // the breaker state's name (JSON "breaker")
        const char *state = "";     // the admin state's name (JSON "state")
    };
    std::vector<BackendRow> backends;
    HistogramSnapshot latency[5];  // by pp_latency_kind, all workers
};

// The quantile summary of a histogram (pp_proxy_latency, /stats "latency_us").
pp_latency latency_summary(const HistogramSnapshot &h);

std::string prometheus_text(const StatsSnapshot &snap);
std::string stats_json(const StatsSnapshot &snap);

}  // namespace pp
