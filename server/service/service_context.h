#ifndef PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_
#define PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_

// What every session reactor shares: the VS client, the ping scheduler, the
// registry, counters, and whether the server is draining.
//
// Thread-safe: the pointers are set once at start-up; the rest are atomics.

#include <atomic>
#include <cstdint>
#include <string>

#include "server/journal/session_journal.h"
#include "server/session/ping_scheduler.h"
#include "server/session/presence_table.h"
#include "server/session/session_registry.h"
#include "server/vs/vs_client.h"

namespace presence::service {

// Monotonic counters for metrics and tests.
struct ServiceCounters {
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
};

// Counts a VS result as accepted, rejected (VS said success:false) or failed
// (anything else).
inline void CountOutcome(const vs::VsResult& result, std::atomic<int64_t>& accepted,
                         std::atomic<int64_t>& rejected, std::atomic<int64_t>& failed) {
  std::atomic<int64_t>& counter = result.accepted()                            ? accepted
                                  : result.outcome == vs::VsOutcome::kRejected ? rejected
                                                                               : failed;
  counter.fetch_add(1, std::memory_order_relaxed);
}

struct ServiceContext {
  vs::VsClient* vs = nullptr;
  session::PingScheduler* scheduler = nullptr;
  session::SessionRegistry* registry = nullptr;
  // Shares one VS presence among a registered customer's streams in a room.
  session::PresenceTable* presences = nullptr;
  ServiceCounters counters;
  std::atomic<bool> draining{false};
  // Crash-safe record of open sessions (--state_dir); null: none.
  journal::SessionJournal* journal = nullptr;
  // Bearer token every RPC must carry; empty: no auth.
  std::string auth_token;
  // Per-stream limit on client messages after the join (burst: twice this).
  double max_messages_per_second = 20;
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_SERVICE_CONTEXT_H_
