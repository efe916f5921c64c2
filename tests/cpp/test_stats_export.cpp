// The export renders a snapshot from the header's stats tables: every field reaches /metrics
// (when it has a series) and /stats, and the derived no_backend_total{reason="other"} is clamped.
#include <gtest/gtest.h>

#include <string>

#include "obs/stats_export.h"
#include "obs/stats_schema.h"

namespace pp {
namespace {

StatsSnapshot two_backends() {
    StatsSnapshot s;
    s.version = "9.9.9";
    s.mode = "http";
    s.up = true;
    s.workers.resize(2);
    s.backends.resize(2);
    s.backends[0].name = "127.0.0.1:1";
    s.backends[1].name = "a\"b:2";
    s.backends[0].group = "default";
    s.backends[1].group = "api";
    for (auto &b : s.backends) {
        b.breaker = "half-open";
        b.state = "draining";
    }
    return s;
}

size_t count(const std::string &text, const std::string &needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
    return n;
}

TEST(StatsExport, NoBackendOtherIsClampedAtZero) {
    StatsSnapshot s = two_backends();
    s.proxy.connections_rejected_no_backend = 3;
    s.proxy.no_backend_unhealthy = 2;
    s.proxy.no_backend_limits = 2;  // read after one more refusal was counted: ahead of the total
    EXPECT_NE(prometheus_text(s).find("\npoolproxy_no_backend_total{reason=\"other\"} 0\n"), std::string::npos);
    s.proxy.connections_rejected_no_backend = 10;
    EXPECT_NE(prometheus_text(s).find("\npoolproxy_no_backend_total{reason=\"other\"} 6\n"), std::string::npos);
}

TEST(StatsExport, EveryFieldWithASeriesIsOneSamplePerRow) {
    StatsSnapshot s = two_backends();
    const std::string text = prometheus_text(s);
    for (const auto &f : StatsSchema<pp_stats>::fields) {
        if (!*f.series) continue;
        std::string key = std::string("\npoolproxy_") + f.series + (*f.labels ? std::string("{") + f.labels + "}" : "") + " ";
        EXPECT_EQ(count(text, key), 1u) << f.name;
    }
    for (const auto &f : StatsSchema<pp_worker_stats>::fields) {
        if (!*f.series) continue;
        EXPECT_EQ(count(text, std::string("\npoolproxy_") + f.series + "{worker=\""), 2u) << f.name;
    }
    for (const auto &f : StatsSchema<pp_backend_stats>::fields) {
        if (!*f.series) continue;
        std::string key = std::string("\npoolproxy_") + f.series + "{backend=\"a\\\"b:2\",id=\"1\",group=\"api\"" +
                          (*f.labels ? "," : "") + f.labels + "}";
        EXPECT_EQ(count(text, key), 1u) << f.name;
    }
    // One HELP and TYPE per family, even for the series that carry several fields.
    EXPECT_EQ(count(text, "# TYPE poolproxy_backend_connections_closed_total counter\n"), 1u);
    EXPECT_EQ(count(text, "# TYPE poolproxy_responses_total counter\n"), 1u);
}

TEST(StatsExport, JsonHasEveryFieldAsAKey) {
    StatsSnapshot s = two_backends();
    s.backends[0].stats.up = 1;
    const std::string js = stats_json(s);
    auto part = [&js](const char *from, const char *to) {
        size_t a = js.find(from), b = js.find(to);
        EXPECT_TRUE(a != std::string::npos && b != std::string::npos && a < b);
        return js.substr(a, b - a);
    };
    const std::string proxy = part("\"proxy\":{", "\"latency_us\":"), workers = part("\"workers\":[", "\"backends\":[");
    for (const auto &f : StatsSchema<pp_stats>::fields) {
        EXPECT_EQ(count(proxy, std::string("\"") + f.name + "\":"), 1u) << f.name;
    }
    for (const auto &f : StatsSchema<pp_worker_stats>::fields) {
        EXPECT_EQ(count(workers, std::string(",\"") + f.name + "\":"), 2u) << f.name;
    }
    EXPECT_EQ(count(js, "\"breaker\":\"half-open\""), 2u);
    EXPECT_EQ(count(js, "\"state\":\"draining\""), 2u);
    EXPECT_EQ(count(js, "\"up\":true"), 1u);
    EXPECT_EQ(count(js, "\"up\":false"), 1u);
    EXPECT_NE(js.find("\"address\":\"a\\\"b:2\""), std::string::npos);
}

}  // namespace
}  // namespace pp
