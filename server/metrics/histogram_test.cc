#include "server/metrics/histogram.h"

#include "gtest/gtest.h"
#include "server/metrics/latency_samples.h"

namespace presence::metrics {
namespace {

TEST(LatencyHistogramTest, PercentilesAreWithinOneBucket) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.Record(absl::Microseconds(i * 100));
  EXPECT_EQ(h.count(), 1000);
  absl::Duration p50 = h.Percentile(0.5);
  EXPECT_GE(p50, absl::Microseconds(50000));
  EXPECT_LE(p50, absl::Microseconds(50000 * 1.125 + 1));
  absl::Duration p99 = h.Percentile(0.99);
  EXPECT_GE(p99, absl::Microseconds(99000));
  EXPECT_LE(p99, absl::Microseconds(99000 * 1.125 + 1));
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  h.Record(absl::Microseconds(3));
  EXPECT_EQ(h.Percentile(0.5), absl::Microseconds(3));
  EXPECT_EQ(h.CountAtMost(absl::Microseconds(3)), 1);
  EXPECT_EQ(h.CountAtMost(absl::Microseconds(2)), 0);
}

TEST(LatencyHistogramTest, EmptyIsZeroAndNegativeClampsToZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.Percentile(0.99), absl::ZeroDuration());
  h.Record(absl::Microseconds(-5));
  EXPECT_EQ(h.Percentile(1.0), absl::ZeroDuration());
  EXPECT_EQ(h.sum(), absl::ZeroDuration());
}

TEST(LatencyHistogramTest, HugeValuesLandInTheLastBucket) {
  LatencyHistogram h;
  h.Record(absl::Hours(100000));
  EXPECT_EQ(h.count(), 1);
  EXPECT_GT(h.Percentile(1.0), absl::Minutes(60));
}

TEST(LatencySamplesTest, PercentilesAreExactNearestRank) {
  LatencySamples samples;
  EXPECT_EQ(samples.Percentile(0.5), absl::ZeroDuration());
  for (int us : {209, 201, 215, 203, 207, 213, 205, 211, 217, 219}) {
    samples.Record(absl::Microseconds(us));
  }
  EXPECT_EQ(samples.count(), 10u);
  EXPECT_EQ(samples.Percentile(0.5), absl::Microseconds(209));  // 5th of 10.
  EXPECT_EQ(samples.Percentile(0.99), absl::Microseconds(219));
  EXPECT_EQ(samples.Percentile(0.0), absl::Microseconds(201));
  EXPECT_EQ(samples.Percentile(0.1), absl::Microseconds(201));
  EXPECT_EQ(samples.Percentile(0.11), absl::Microseconds(203));
}

}  // namespace
}  // namespace presence::metrics
