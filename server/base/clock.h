#ifndef PRESENCE_SERVER_BASE_CLOCK_H_
#define PRESENCE_SERVER_BASE_CLOCK_H_

// Clock is where everything that schedules or limits reads the time: the ping
// scheduler, the per-stream rate limit, VS retries. Production uses the
// monotonic clock, so a wall-clock step (NTP, an operator) can neither pause
// pings nor end streams for flooding; tests inject FakeClock and need no
// sleeps.
//
// The times a Clock returns are comparable only with each other: they are
// not calendar times (use absl::Now() for what a human reads).
//
// Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace presence::base {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// std::chrono::steady_clock as an absl::Time.
class MonotonicClock final : public Clock {
 public:
  absl::Time Now() const override {
    return absl::FromUnixNanos(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
  }

  // The process-wide instance (stateless).
  static const Clock* Get() {
    static const MonotonicClock clock;
    return &clock;
  }
};

// A clock that moves only when told to. For tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'000'000))
      : now_ns_(absl::ToUnixNanos(start)) {}

  absl::Time Now() const override {
    return absl::FromUnixNanos(now_ns_.load(std::memory_order_acquire));
  }
  void Advance(absl::Duration by) {
    now_ns_.fetch_add(absl::ToInt64Nanoseconds(by), std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace presence::base

#endif  // PRESENCE_SERVER_BASE_CLOCK_H_
