#ifndef PRESENCE_SERVER_METRICS_HISTOGRAM_H_
#define PRESENCE_SERVER_METRICS_HISTOGRAM_H_

// A lock-free latency histogram with log-linear buckets (8 per power of two,
// so any percentile is within 12.5%), from 1 µs to about 68 minutes.
//
// Thread-safe: Record is a few relaxed atomic adds; readers see a snapshot
// that may be mid-update by a few samples.

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace presence::metrics {

class LatencyHistogram {
 public:
  static constexpr int kSubBuckets = 8;
  static constexpr int kPowers = 32;
  static constexpr int kBuckets = kPowers * kSubBuckets;

  void Record(absl::Duration latency);

  int64_t count() const { return count_.load(std::memory_order_relaxed); }
  absl::Duration sum() const { return absl::Microseconds(sum_us_.load(std::memory_order_relaxed)); }

  // The upper bound of the bucket holding quantile q in [0, 1]; zero if empty.
  absl::Duration Percentile(double q) const;

  // Cumulative count of samples <= each bound, for Prometheus buckets.
  int64_t CountAtMost(absl::Duration bound) const;

  void Reset();

 private:
  static int BucketOf(int64_t micros);
  static int64_t UpperBoundMicros(int bucket);

  std::array<std::atomic<int64_t>, kBuckets> buckets_{};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_us_{0};
};

}  // namespace presence::metrics

#endif  // PRESENCE_SERVER_METRICS_HISTOGRAM_H_
