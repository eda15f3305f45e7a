#ifndef PRESENCE_SERVER_METRICS_LATENCY_SAMPLES_H_
#define PRESENCE_SERVER_METRICS_LATENCY_SAMPLES_H_

// Every latency of a bounded run kept, for exact percentiles: what the
// benchmarks use where LatencyHistogram's buckets (12.5% wide: 16 µs at
// 200 µs) would hide the difference being measured.
//
// Not thread-safe.

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/time/time.h"

namespace presence::metrics {

class LatencySamples {
 public:
  void Record(absl::Duration latency) { samples_.push_back(latency); }
  size_t count() const { return samples_.size(); }

  // The sample at quantile q in [0, 1] (nearest rank); zero if empty.
  absl::Duration Percentile(double q) {
    if (samples_.empty()) return absl::ZeroDuration();
    const double rank = std::ceil(std::clamp(q, 0.0, 1.0) * static_cast<double>(samples_.size()));
    const size_t index = rank < 1 ? 0 : static_cast<size_t>(rank) - 1;
    std::nth_element(samples_.begin(), samples_.begin() + static_cast<ptrdiff_t>(index),
                     samples_.end());
    return samples_[index];
  }

 private:
  std::vector<absl::Duration> samples_;
};

}  // namespace presence::metrics

#endif  // PRESENCE_SERVER_METRICS_LATENCY_SAMPLES_H_
