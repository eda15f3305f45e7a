#include "server/presence/leave_sender.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/log/log.h"

namespace presence::presences {

void LeaveSender::Send(const std::string& journal_id, const vs::RoomPresence& presence, Kind kind,
                       Done done) {
  metrics::Increment(context_->counters->leaves_sent);
  auto shared_done = std::make_shared<Done>(std::move(done));
  absl::Status taken =
      context_->vs->LeaveRoom(presence, [this, journal_id, kind, shared_done](vs::VsResult result) {
        OnAnswer(journal_id, kind, result);
        if (*shared_done) std::move (*shared_done)();
      });
  if (taken.ok()) return;
  metrics::Increment(context_->counters->leaves_failed);
  log::Error("leave_not_sent", {{"session", journal_id}, {"error", taken.ToString()}});
  if (*shared_done) std::move (*shared_done)();
}

void LeaveSender::OnAnswer(const std::string& journal_id, Kind kind, const vs::VsResult& result) {
  // VS answered (yes or no): nothing is left to do after a crash.
  if (context_->journal != nullptr &&
      (result.accepted() || result.outcome == vs::VsOutcome::kRejected)) {
    context_->journal->RecordLeft(journal_id);
  }
  if (context_->records != nullptr &&
      (result.accepted() || result.outcome == vs::VsOutcome::kRejected)) {
    context_->records->Left(journal_id);
  }
  if (result.accepted()) {
    metrics::Increment(context_->counters->leaves_accepted);
    return;
  }
  metrics::Increment(context_->counters->leaves_failed);
  const bool best_effort = kind == Kind::kBestEffort;
  (best_effort ? log::Info : log::Warning)("leave_failed",
                                           {{"session", journal_id},
                                            {"best_effort", best_effort ? "true" : "false"},
                                            {"outcome", vs::VsOutcomeName(result.outcome)},
                                            {"attempts", absl::StrCat(result.attempts)},
                                            {"error", std::string(result.status.message())}});
}

}  // namespace presence::presences
