#include "server/metrics/histogram.h"

#include <algorithm>

namespace presence::metrics {

int LatencyHistogram::BucketOf(int64_t micros) {
  if (micros < kSubBuckets) return static_cast<int>(std::max<int64_t>(micros, 0));
  int power = 63 - __builtin_clzll(static_cast<uint64_t>(micros));  // >= 3
  int sub = static_cast<int>((micros >> (power - 3)) & (kSubBuckets - 1));
  int bucket = (power - 2) * kSubBuckets + sub;
  return std::min(bucket, kBuckets - 1);
}

int64_t LatencyHistogram::UpperBoundMicros(int bucket) {
  if (bucket < kSubBuckets) return bucket;
  int power = bucket / kSubBuckets + 2;
  int sub = bucket % kSubBuckets;
  return ((int64_t{kSubBuckets} + sub + 1) << (power - 3)) - 1;
}

void LatencyHistogram::Record(absl::Duration latency) {
  int64_t micros = std::max<int64_t>(0, absl::ToInt64Microseconds(latency));
  buckets_[BucketOf(micros)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(micros, std::memory_order_relaxed);
}

absl::Duration LatencyHistogram::Percentile(double q) const {
  int64_t total = 0;
  std::array<int64_t, kBuckets> snapshot;
  for (int i = 0; i < kBuckets; ++i) {
    snapshot[i] = buckets_[i].load(std::memory_order_relaxed);
    total += snapshot[i];
  }
  if (total == 0) return absl::ZeroDuration();
  int64_t rank = static_cast<int64_t>(q * static_cast<double>(total - 1)) + 1;
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += snapshot[i];
    if (seen >= rank) return absl::Microseconds(UpperBoundMicros(i));
  }
  return absl::Microseconds(UpperBoundMicros(kBuckets - 1));
}

int64_t LatencyHistogram::CountAtMost(absl::Duration bound) const {
  int64_t limit = absl::ToInt64Microseconds(bound);
  int64_t n = 0;
  for (int i = 0; i < kBuckets && UpperBoundMicros(i) <= limit; ++i) {
    n += buckets_[i].load(std::memory_order_relaxed);
  }
  return n;
}

void LatencyHistogram::Reset() {
  for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  sum_us_.store(0, std::memory_order_relaxed);
}

}  // namespace presence::metrics
