#ifndef PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_
#define PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_

// What every RPC shares: the presence directory (the seam), the session
// registry, the VS client (credits), the clock, counters, and whether the
// server is draining.
//
// Thread-safe: the pointers are set once at start-up; the rest are atomics.

#include <atomic>
#include <string>

#include "absl/time/time.h"
#include "server/base/clock.h"
#include "server/fleet/fleet.h"
#include "server/metrics/gateway_counters.h"
#include "server/presence/presence.h"
#include "server/session/ping_scheduler.h"
#include "server/session/session_registry.h"
#include "server/vs/vs_client.h"

namespace presence::service {

struct ServiceContext {
  presences::PresenceDirectory* presences = nullptr;
  session::SessionRegistry* registry = nullptr;
  // The fleet (--redis_url): GetRoom and boots across replicas. Null: one replica.
  fleet::Fleet* fleet = nullptr;
  vs::VsClient* vs = nullptr;
  // Monotonic: activity and the per-stream rate limit (the scheduler's clock).
  const base::Clock* clock = nullptr;
  // The one timer thread: each stream's --join_timeout is a RunAt on it.
  session::PingScheduler* scheduler = nullptr;
  metrics::GatewayCounters counters;
  std::atomic<bool> draining{false};
  // The drain holds joined sessions for the next start instead of leaving
  // them (a resume grace and a journal to hand them over in).
  std::atomic<bool> drain_holds{false};
  // Bearer token every RPC must carry; empty: no auth.
  std::string auth_token;
  // Per-stream limit on client messages after the join (burst: twice this).
  double max_messages_per_second = 20;
  // How long a stream's `credits` is retried before success:false.
  absl::Duration credits_retry_window = absl::Seconds(10);
  // With a resume grace, each Joined carries a resume token.
  absl::Duration resume_grace = absl::ZeroDuration();
  // A stream that sends no join within this is ended DEADLINE_EXCEEDED.
  absl::Duration join_timeout = absl::Seconds(10);
  // A unary UpdateCredits stops retrying this long before its deadline, so
  // its answer (UNAVAILABLE with VS's last error) reaches the caller in time.
  absl::Duration deadline_margin = absl::Milliseconds(500);
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_
