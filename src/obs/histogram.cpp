#include "obs/histogram.h"

#include <algorithm>
#include <array>

namespace pp {

namespace {

constexpr std::array<uint64_t, kLatencyBuckets> make_bounds() {
    std::array<uint64_t, kLatencyBuckets> b{};
    // Tenths of the decade's base: 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5.
    constexpr uint64_t steps[] = {10, 15, 20, 25, 30, 40, 50, 60, 75};
    size_t i = 0;
    uint64_t decade = 10;  // µs
    for (int d = 0; d < 7; d++, decade *= 10) {
        for (uint64_t s : steps) b[i++] = decade * s / 10;
    }
    b[i++] = decade;  // 100 s
    b[i] = UINT64_MAX;
    return b;
}

constexpr std::array<uint64_t, kLatencyBuckets> kBounds = make_bounds();

}  // namespace

uint64_t latency_bucket_upper_us(size_t i) { return kBounds[i]; }

void LatencyHistogram::record(uint64_t us) {
    size_t i = static_cast<size_t>(std::lower_bound(kBounds.begin(), kBounds.end(), us) - kBounds.begin());
    counts_[i].add();
    sum_us_.add(us);
}

void LatencyHistogram::snapshot_into(HistogramSnapshot *out) const {
    uint64_t total = 0;
    for (size_t i = 0; i < kLatencyBuckets; i++) {
        uint64_t c = counts_[i].get();
        out->counts[i] += c;
        total += c;
    }
    out->count += total;  // the buckets' own sum, so the series stays consistent
    out->sum_us += sum_us_.get();
}

void HistogramSnapshot::add(const HistogramSnapshot &o) {
    for (size_t i = 0; i < kLatencyBuckets; i++) counts[i] += o.counts[i];
    count += o.count;
    sum_us += o.sum_us;
}

uint64_t HistogramSnapshot::quantile_us(double q) const {
    if (count == 0) return 0;
    double rank = q * static_cast<double>(count);
    uint64_t seen = 0;
    for (size_t i = 0; i < kLatencyBuckets; i++) {
        if (counts[i] == 0) continue;
        if (static_cast<double>(seen + counts[i]) >= rank) {
            uint64_t lo = i == 0 ? 0 : kBounds[i - 1];
            uint64_t hi = i + 1 == kLatencyBuckets ? lo * 2 : kBounds[i];
            double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
            return lo + static_cast<uint64_t>(within * static_cast<double>(hi - lo));
        }
        seen += counts[i];
    }
    return kBounds[kLatencyBuckets - 2];
}

uint64_t HistogramSnapshot::cumulative_at(uint64_t bound_us) const {
    uint64_t sum = 0;
    for (size_t i = 0; i < kLatencyBuckets && kBounds[i] <= bound_us; i++) sum += counts[i];
    return sum;
}

}  // namespace pp
