// Latency histogram buckets, quantiles and the cumulative counts Prometheus reads.
#include <gtest/gtest.h>

#include "obs/histogram.h"

using pp::HistogramSnapshot;
using pp::LatencyHistogram;

namespace {

HistogramSnapshot snap(const LatencyHistogram &h) {
    HistogramSnapshot s;
    h.snapshot_into(&s);
    return s;
}

}  // namespace

TEST(Histogram, BoundsRiseFrom10usTo100sThenOverflow) {
    EXPECT_EQ(pp::latency_bucket_upper_us(0), 10u);
    EXPECT_EQ(pp::latency_bucket_upper_us(1), 15u);
    EXPECT_EQ(pp::latency_bucket_upper_us(8), 75u);
    EXPECT_EQ(pp::latency_bucket_upper_us(9), 100u);
    EXPECT_EQ(pp::latency_bucket_upper_us(pp::kLatencyBuckets - 2), 100000000u);
    EXPECT_EQ(pp::latency_bucket_upper_us(pp::kLatencyBuckets - 1), UINT64_MAX);
    for (size_t i = 1; i < pp::kLatencyBuckets; i++) {
        EXPECT_LT(pp::latency_bucket_upper_us(i - 1), pp::latency_bucket_upper_us(i));
    }
}

TEST(Histogram, BoundsAreInclusiveAndPrometheusBoundsAreExact) {
    LatencyHistogram h;
    h.record(100);   // exactly on the 100 µs bound: counted at or below it
    h.record(101);   // just above
    h.record(2500);  // exactly 2.5 ms
    h.record(500000000);  // 500 s: the overflow bucket
    HistogramSnapshot s = snap(h);
    EXPECT_EQ(s.count, 4u);
    EXPECT_EQ(s.sum_us, 100u + 101u + 2500u + 500000000u);
    EXPECT_EQ(s.cumulative_at(100), 1u);
    EXPECT_EQ(s.cumulative_at(150), 2u);
    EXPECT_EQ(s.cumulative_at(2500), 3u);
    EXPECT_EQ(s.cumulative_at(60000000), 3u);
}

TEST(Histogram, QuantilesFallInTheRightBucket) {
    LatencyHistogram h;
    for (int i = 0; i < 900; i++) h.record(1000);   // 1 ms
    for (int i = 0; i < 90; i++) h.record(20000);   // 20 ms
    for (int i = 0; i < 10; i++) h.record(700000);  // 700 ms
    HistogramSnapshot s = snap(h);
    // Each quantile lies within the bucket that holds it: (750, 1000], (15000, 20000], (600000, 750000].
    EXPECT_GT(s.quantile_us(0.5), 750u);
    EXPECT_LE(s.quantile_us(0.5), 1000u);
    EXPECT_GT(s.quantile_us(0.95), 15000u);
    EXPECT_LE(s.quantile_us(0.95), 20000u);
    EXPECT_GT(s.quantile_us(0.999), 600000u);
    EXPECT_LE(s.quantile_us(0.999), 750000u);
    EXPECT_LE(s.quantile_us(0.5), s.quantile_us(0.99));
}

TEST(Histogram, EmptyIsZeroAndSnapshotsAdd) {
    LatencyHistogram a, b;
    EXPECT_EQ(snap(a).quantile_us(0.99), 0u);
    a.record(10);
    b.record(10);
    b.record(20);
    HistogramSnapshot s = snap(a);
    s.add(snap(b));
    EXPECT_EQ(s.count, 3u);
    EXPECT_EQ(s.cumulative_at(10), 2u);
    EXPECT_EQ(s.cumulative_at(20), 3u);
}
