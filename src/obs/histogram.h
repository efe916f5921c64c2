// Latency histograms: fixed buckets, each a single-writer counter (the worker's own), so that
// recording costs no lock and no shared atomic, and a snapshot from any thread never stops it.
//
// The bucket bounds run from 10 µs to 100 s at 1, 1.5, 2, 2.5, 3, 4, 5, 6 and 7.5 per decade:
// quantiles read from them are within one bucket (at most 50% wide, usually 20-25%), and the
// Prometheus series (1, 2.5, 5 per decade) are exact sums of them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "obs/counter.h"

namespace pp {

constexpr size_t kLatencyBuckets = 65;  // 64 bounds + the overflow bucket

// Upper bound (inclusive) of bucket i in microseconds; the last is UINT64_MAX.
uint64_t latency_bucket_upper_us(size_t i);

struct HistogramSnapshot {
    uint64_t counts[kLatencyBuckets] = {};
    uint64_t count = 0;
    uint64_t sum_us = 0;

    void add(const HistogramSnapshot &o);
    // The q-quantile (0 < q <= 1) in microseconds, interpolated within its bucket; 0 if empty.
    uint64_t quantile_us(double q) const;
    // Observations <= bound_us (bound_us must be one of the bucket bounds).
    uint64_t cumulative_at(uint64_t bound_us) const;
};

class LatencyHistogram {
public:
    void record(uint64_t us);
    void snapshot_into(HistogramSnapshot *out) const;  // adds to *out

private:
    Counter counts_[kLatencyBuckets];
    Counter sum_us_;
};

}  // namespace pp
