#ifndef PRESENCE_SERVER_PRESENCE_PRESENCE_CONTEXT_H_
#define PRESENCE_SERVER_PRESENCE_PRESENCE_CONTEXT_H_

// What every presence uses: the VS client, the ping scheduler, the journal,
// the one leave sender, the counters. Set once at start-up, read-only after.

#include "absl/time/time.h"
#include "server/journal/session_journal.h"
#include "server/metrics/gateway_counters.h"
#include "server/presence/hold_exchange.h"
#include "server/presence/presence_coordinator.h"
#include "server/presence/presence_records.h"
#include "server/session/ping_scheduler.h"
#include "server/vs/vs_client.h"

namespace presence::presences {

class LeaveSender;

struct PresenceContext {
  vs::VsClient* vs = nullptr;
  session::PingScheduler* scheduler = nullptr;
  // Crash-safe record of held presences (--state_dir); null: none.
  journal::SessionJournal* journal = nullptr;
  // The fleet's shared record of accepted presences (--redis_url); null: none.
  PresenceRecords* records = nullptr;
  // Agrees with the other replicas on registered customers' shared presences
  // (--redis_url); null: this replica decides alone.
  PresenceCoordinator* coordinator = nullptr;
  // Shares the sessions held for a resume with the other replicas
  // (--redis_url); null: a resume must come back to this server.
  HoldExchange* holds = nullptr;
  LeaveSender* leaves = nullptr;
  metrics::GatewayCounters* counters = nullptr;
  // How long a lost stream's session is held for a resume; 0: not at all.
  absl::Duration resume_grace = absl::ZeroDuration();
};

inline void CountOutcome(const vs::VsResult& result, std::atomic<int64_t>& accepted,
                         std::atomic<int64_t>& rejected, std::atomic<int64_t>& failed) {
  metrics::CountOutcome(result.accepted(), result.outcome == vs::VsOutcome::kRejected, accepted,
                        rejected, failed);
}

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_PRESENCE_CONTEXT_H_
