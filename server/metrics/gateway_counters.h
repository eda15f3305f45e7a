#ifndef PRESENCE_SERVER_METRICS_GATEWAY_COUNTERS_H_
#define PRESENCE_SERVER_METRICS_GATEWAY_COUNTERS_H_

// The gateway's monotonic counters, for the metrics page and tests. Joins and
// leaves are counted once per VS presence (by the presence that sends them);
// streams that share a presence are counted in joins_shared.
//
// Thread-safe: atomics, relaxed.

#include <atomic>
#include <cstdint>

namespace presence::metrics {

struct GatewayCounters {
  std::atomic<int64_t> sessions_started{0};
  std::atomic<int64_t> sessions_refused_full{0};
  std::atomic<int64_t> unauthenticated{0};
  std::atomic<int64_t> rate_limited{0};
  std::atomic<int64_t> joins_shared{0};  // Streams that joined an existing presence.
  std::atomic<int64_t> invalid_requests{0};
  std::atomic<int64_t> joins_accepted{0};
  std::atomic<int64_t> joins_rejected{0};
  std::atomic<int64_t> joins_failed{0};
  std::atomic<int64_t> leaves_sent{0};
  std::atomic<int64_t> leaves_accepted{0};
  std::atomic<int64_t> leaves_failed{0};
  std::atomic<int64_t> pings_accepted{0};
  std::atomic<int64_t> pings_rejected{0};
  std::atomic<int64_t> pings_failed{0};
  std::atomic<int64_t> credits_accepted{0};
  std::atomic<int64_t> credits_rejected{0};
  std::atomic<int64_t> credits_failed{0};
  std::atomic<int64_t> resumes{0};             // Streams that took a held session over.
  std::atomic<int64_t> holds_started{0};       // Lost streams whose session was held.
  std::atomic<int64_t> holds_expired{0};       // Held sessions nobody resumed in time.
  std::atomic<int64_t> holds_moved{0};         // Held here, resumed on another replica.
  std::atomic<int64_t> holds_adopted{0};       // Held by a stopped or dead replica, adopted here.
  std::atomic<int64_t> leaves_after_grace{0};  // leaveRoom sent because a grace ran out.
  std::atomic<int64_t> notices_suppressed{0};  // The same notice again within the quiet period.
};

inline void Increment(std::atomic<int64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

inline void Add(std::atomic<int64_t>& counter, int64_t n) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// Counts an answer as accepted, rejected (VS said success:false) or failed
// (anything else).
inline void CountOutcome(bool accepted, bool rejected, std::atomic<int64_t>& accepted_counter,
                         std::atomic<int64_t>& rejected_counter,
                         std::atomic<int64_t>& failed_counter) {
  Increment(accepted ? accepted_counter : rejected ? rejected_counter : failed_counter);
}

}  // namespace presence::metrics

#endif  // PRESENCE_SERVER_METRICS_GATEWAY_COUNTERS_H_
