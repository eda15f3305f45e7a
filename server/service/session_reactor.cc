#include "server/service/session_reactor.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/log/log.h"
#include "server/service/auth.h"
#include "server/service/status_conversion.h"
#include "server/session/join_validation.h"

namespace presence::service {
namespace {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

std::string NewSessionId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(gen));
}

const char* EventName(SessionRequest::EventCase event) {
  switch (event) {
    case SessionRequest::kJoin:
      return "join";
    case SessionRequest::kActivity:
      return "activity";
    case SessionRequest::kCredits:
      return "credits";
    case SessionRequest::kLeave:
      return "leave";
    case SessionRequest::EVENT_NOT_SET:
      break;
  }
  return "an empty SessionRequest";
}

// A join whose outcome we do not know: VS may have taken it.
bool OutcomeUnknown(const vs::VsResult& result) {
  return result.outcome == vs::VsOutcome::kTimeout ||
         result.outcome == vs::VsOutcome::kTransportError ||
         result.outcome == vs::VsOutcome::kCancelled;
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    default:
      return "OTHER";
  }
}

// Sends a leave that no stream waits for: from a join answer that arrived
// after its stream was gone.
void SendOrphanLeave(ServiceContext* context, const std::string& session_id,
                     const vs::RoomPresence& presence) {
  context->counters.leaves_sent.fetch_add(1, std::memory_order_relaxed);
  absl::Status taken = context->vs->LeaveRoom(presence, [context, session_id](vs::VsResult r) {
    (r.accepted() ? context->counters.leaves_accepted : context->counters.leaves_failed)
        .fetch_add(1, std::memory_order_relaxed);
  });
  if (!taken.ok()) {
    context->counters.leaves_failed.fetch_add(1, std::memory_order_relaxed);
    log::Error("leave_not_sent", {{"session", session_id}, {"error", taken.ToString()}});
  }
}

}  // namespace

SessionReactor::SessionReactor(ServiceContext* context, grpc::CallbackServerContext* call)
    : context_(context),
      core_(std::make_shared<session::SessionCore>(NewSessionId(), this)),
      started_(absl::Now()) {
  absl::MutexLock lock(&mu_);
  context_->counters.sessions_started.fetch_add(1, std::memory_order_relaxed);
  if (grpc::Status auth = CheckAuth(call, context_->auth_token); !auth.ok()) {
    context_->counters.unauthenticated.fetch_add(1, std::memory_order_relaxed);
    EndLocked(auth);
    return;
  }
  if (context_->draining.load(std::memory_order_relaxed)) {
    EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
    return;
  }
  if (!context_->registry->TryOpen()) {
    context_->counters.sessions_refused_full.fetch_add(1, std::memory_order_relaxed);
    EndLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           absl::StrCat("the server holds its maximum of ",
                                        context_->registry->max_sessions(), " sessions")));
    return;
  }
  counted_ = true;
  ReadLocked();
}

void SessionReactor::ReadLocked() { StartRead(&request_); }

void SessionReactor::OnReadDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (!ok) {
    // The client half-closed, or the call is broken (OnCancel follows).
    if (phase_ == Phase::kJoined) {
      SessionResponse left;
      left.mutable_left();
      WriteLocked(std::move(left));
      EndLocked(grpc::Status::OK);
    } else {
      // gRPC reports a message it cannot parse (a proto3 string that is not
      // UTF-8, say) the same way as a half-close.
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "the stream ended before a valid join: the client closed it, or sent "
                             "a message that does not parse as presence.v1.SessionRequest (e.g. "
                             "a string field that is not UTF-8)"));
    }
    return;
  }
  if (end_status_.has_value()) return;
  if (phase_ == Phase::kAwaitingJoin) {
    HandleFirstMessageLocked();
  } else {
    HandleJoinedMessageLocked();
  }
}

void SessionReactor::HandleFirstMessageLocked() {
  if (request_.event_case() != SessionRequest::kJoin) {
    context_->counters.invalid_requests.fetch_add(1, std::memory_order_relaxed);
    EndLocked(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("the first message must be join, got ", EventName(request_.event_case()))));
    return;
  }
  const presence::v1::Join& join = request_.join();
  if (absl::Status valid = session::ValidateJoin(join); !valid.ok()) {
    context_->counters.invalid_requests.fetch_add(1, std::memory_order_relaxed);
    EndLocked(ToGrpcStatus(valid));
    return;
  }
  join_.performer_id = join.performer_id();
  join_.nickname = join.nickname();
  if (join.has_customer_id()) join_.customer_id = join.customer_id();
  join_.ip_address = join.ip_address();
  join_.registered = join.registered();
  join_.credits = join.credits();
  request_.Clear();  // Frees the Join while the session lives.
  phase_ = Phase::kJoining;
  log::Debug("session_joining", {{"session", core_->id()},
                                 {"performer", absl::StrCat(join_.performer_id)},
                                 {"nickname", join_.nickname},
                                 {"ip", join_.ip_address}});

  if (join_.registered && join_.customer_id.has_value() && context_->presences != nullptr) {
    shared_key_ = session::PresenceKey{join_.performer_id, *join_.customer_id};
    session::PresenceTable::AttachResult attached =
        context_->presences->Attach(*shared_key_, core_);
    shared_ = attached.presence;
    switch (attached.what) {
      case session::PresenceTable::Attached::kSendJoin:
        owner_ = true;
        break;
      case session::PresenceTable::Attached::kWaitForJoin:
        context_->counters.joins_shared.fetch_add(1, std::memory_order_relaxed);
        return;  // OnSharedJoinResult follows.
      case session::PresenceTable::Attached::kJoined: {
        context_->counters.joins_shared.fetch_add(1, std::memory_order_relaxed);
        vs::VsResult shared;
        shared.outcome = vs::VsOutcome::kAccepted;
        shared.nickname = shared_->display_nickname();
        HandleJoinResultLocked(shared);
        return;
      }
      case session::PresenceTable::Attached::kLeaving:
        shared_key_.reset();
        phase_ = Phase::kEnded;
        EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                               "this customer's previous presence in the room is still being "
                               "left at VS; retry in a moment"));
        return;
    }
  }
  SendJoinLocked();
}

void SessionReactor::SendJoinLocked() {
  ServiceContext* context = context_;
  std::shared_ptr<session::SessionCore> core = core_;
  vs::RoomPresence asked{join_.performer_id, join_.customer_id, join_.nickname};
  absl::Status taken = context_->vs->JoinRoom(join_, [context, core, asked](vs::VsResult result) {
    vs::RoomPresence presence = asked;
    if (result.accepted()) presence.nickname = result.nickname;
    bool accepted = result.accepted();
    bool unknown = OutcomeUnknown(result);
    bool attached = core->WithReactor(
        [&](SessionReactor* reactor) { reactor->OnJoinResult(std::move(result)); });
    // The reactor waits for its join's answer before it can finish, so
    // this is a safety net, not a path.
    if (!attached && (accepted || unknown)) SendOrphanLeave(context, core->id(), presence);
  });
  if (!taken.ok()) {
    vs::VsResult refused;
    refused.outcome = vs::VsOutcome::kOverloaded;
    refused.status = taken;
    std::vector<std::shared_ptr<session::SessionCore>> waiters;
    if (owner_) waiters = context_->presences->JoinDone(*shared_key_, false, "");
    HandleJoinResultLocked(refused);
    // Waiting streams lock only themselves; this one's lock is not needed
    // for them, but they never take it either, so the order is safe.
    for (const auto& waiter : waiters) {
      waiter->WithReactor([&](SessionReactor* r) { r->OnSharedJoinResult(refused); });
    }
  }
}

void SessionReactor::OnJoinResult(vs::VsResult result) {
  std::vector<std::shared_ptr<session::SessionCore>> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (owner_) {
      std::string nickname = result.nickname.empty() ? join_.nickname : result.nickname;
      waiters = context_->presences->JoinDone(*shared_key_, result.accepted(), nickname);
      if (result.accepted()) {
        if (context_->journal != nullptr) {
          context_->journal->RecordJoin(
              {shared_->journal_id(), join_.performer_id, join_.customer_id, nickname});
        }
        context_->scheduler->Add(shared_, absl::Now());
      }
    }
    HandleJoinResultLocked(result);
  }
  // Outside this stream's lock: each waiter takes its own.
  for (const auto& waiter : waiters) {
    waiter->WithReactor([&](SessionReactor* r) { r->OnSharedJoinResult(result); });
  }
}

void SessionReactor::OnSharedJoinResult(const vs::VsResult& result) {
  absl::MutexLock lock(&mu_);
  HandleJoinResultLocked(result);
}

void SessionReactor::HandleJoinResultLocked(const vs::VsResult& result) {
  const std::string performer = absl::StrCat(join_.performer_id);
  // VS joins are counted once per presence; streams that share one are
  // counted in joins_shared.
  const bool sent_the_join = !shared_key_.has_value() || owner_;
  if (result.accepted()) {
    if (sent_the_join) context_->counters.joins_accepted.fetch_add(1, std::memory_order_relaxed);
    session::SessionIdentity identity;
    identity.performer_id = join_.performer_id;
    identity.customer_id = join_.customer_id;
    identity.registered = join_.registered;
    // VS should always name the display nickname; if it does not, the one we
    // sent is the best guess for the later calls.
    identity.display_nickname = result.nickname.empty() ? join_.nickname : result.nickname;
    identity.joined_at = absl::Now();
    core_->set_identity(std::move(identity));
    if (context_->journal != nullptr && !shared_key_.has_value()) {
      context_->journal->RecordJoin(
          {core_->id(), join_.performer_id, join_.customer_id, core_->identity().display_nickname});
    }
    phase_ = Phase::kJoined;
    tokens_ = 2 * context_->max_messages_per_second;
    refilled_ = absl::Now();
    log::Info("session_joined",
              {{"session", core_->id()}, {"performer", performer}, {"outcome", "accepted"}});
    if (end_status_.has_value()) {
      // The stream ended while VS was answering: the presence VS just
      // accepted is taken back at once.
      SendLeaveLocked(core_->presence(), /*best_effort=*/false);
      phase_ = Phase::kEnded;
      MaybeFinishLocked();
      return;
    }
    context_->registry->AddJoined(core_);
    // A shared presence is pinged as one (its owner scheduled it).
    if (!shared_key_.has_value()) context_->scheduler->Add(core_, core_->identity().joined_at);
    SessionResponse joined;
    joined.mutable_joined()->set_nickname(core_->identity().display_nickname);
    joined.mutable_joined()->set_session_id(core_->id());
    WriteLocked(std::move(joined));
    if (context_->draining.load(std::memory_order_relaxed)) {
      EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
      return;
    }
    ReadLocked();
    return;
  }

  if (sent_the_join) {
    (result.outcome == vs::VsOutcome::kRejected ? context_->counters.joins_rejected
                                                : context_->counters.joins_failed)
        .fetch_add(1, std::memory_order_relaxed);
  }
  log::Info("session_join_failed", {{"session", core_->id()},
                                    {"performer", performer},
                                    {"outcome", vs::VsOutcomeName(result.outcome)},
                                    {"error", std::string(result.status.message())}});
  if (OutcomeUnknown(result) && sent_the_join) {
    // VS may have taken the join: take it back, with the only nickname we know.
    SendLeaveLocked(vs::RoomPresence{join_.performer_id, join_.customer_id, join_.nickname},
                    /*best_effort=*/true);
  }
  phase_ = Phase::kEnded;
  if (end_status_.has_value()) {
    MaybeFinishLocked();
  } else {
    EndLocked(ToGrpcStatus(result.status));
  }
}

bool SessionReactor::TakeTokenLocked() {
  const double rate = context_->max_messages_per_second;
  if (rate <= 0) return true;
  absl::Time now = absl::Now();
  tokens_ = std::min(2 * rate, tokens_ + rate * absl::ToDoubleSeconds(now - refilled_));
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

void SessionReactor::HandleJoinedMessageLocked() {
  if (!TakeTokenLocked()) {
    context_->counters.rate_limited.fetch_add(1, std::memory_order_relaxed);
    EndLocked(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("more than ", context_->max_messages_per_second,
                     " messages per second on one stream (burst ",
                     2 * context_->max_messages_per_second, "); the session was left")));
    return;
  }
  switch (request_.event_case()) {
    case SessionRequest::kActivity:
      ping_target()->RecordActivity(absl::Now());
      ReadLocked();
      return;
    case SessionRequest::kCredits:
      HandleCreditsLocked(request_.credits().credits());
      ReadLocked();
      return;
    case SessionRequest::kLeave: {
      SessionResponse left;
      left.mutable_left();
      WriteLocked(std::move(left));
      EndLocked(grpc::Status::OK);
      return;
    }
    case SessionRequest::kJoin:
      context_->counters.invalid_requests.fetch_add(1, std::memory_order_relaxed);
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "join was already received on this stream"));
      return;
    case SessionRequest::EVENT_NOT_SET:
      context_->counters.invalid_requests.fetch_add(1, std::memory_order_relaxed);
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "empty SessionRequest: set one of join, activity, credits, leave"));
      return;
  }
}

void SessionReactor::HandleCreditsLocked(int64_t credits) {
  if (credits < 0) {
    ReplyCreditsLocked(false, absl::StrCat("credits must be >= 0 (got ", credits, ")"));
    return;
  }
  const session::SessionIdentity& who = core_->identity();
  if (!who.registered || !who.customer_id.has_value()) {
    ReplyCreditsLocked(false, "credits updates are only for registered customers");
    return;
  }
  if (credits_in_flight_) {
    // Coalesce: only the newest balance waiting behind the one in flight
    // matters to VS.
    if (pending_credits_.has_value()) {
      ReplyCreditsLocked(false, "superseded by a newer credits update");
    }
    pending_credits_ = credits;
    return;
  }
  SendCreditsLocked(credits);
}

void SessionReactor::SendCreditsLocked(int64_t credits) {
  std::shared_ptr<session::SessionCore> core = core_;
  absl::Status taken = context_->vs->UpdateCredits(
      vs::UpdateCreditsRequest{*core_->identity().customer_id, credits},
      [core](vs::VsResult result) {
        core->WithReactor([&](SessionReactor* reactor) { reactor->OnCreditsResult(result); });
      });
  if (!taken.ok()) {
    context_->counters.credits_failed.fetch_add(1, std::memory_order_relaxed);
    ReplyCreditsLocked(false, std::string(taken.message()));
    return;
  }
  credits_in_flight_ = true;
}

void SessionReactor::OnCreditsResult(const vs::VsResult& result) {
  absl::MutexLock lock(&mu_);
  credits_in_flight_ = false;
  CountOutcome(result, context_->counters.credits_accepted, context_->counters.credits_rejected,
               context_->counters.credits_failed);
  ReplyCreditsLocked(result.accepted(),
                     result.accepted() ? "" : std::string(result.status.message()));
  if (pending_credits_.has_value() && !end_status_.has_value()) {
    int64_t next = *pending_credits_;
    pending_credits_.reset();
    SendCreditsLocked(next);
  }
}

void SessionReactor::ReplyCreditsLocked(bool success, std::string message) {
  SessionResponse response;
  response.mutable_credits_updated()->set_success(success);
  response.mutable_credits_updated()->set_message(std::move(message));
  WriteLocked(std::move(response));
}

void SessionReactor::SendPing(ServiceContext* context, std::shared_ptr<session::SessionCore> core) {
  absl::Status taken =
      context->vs->PingRoom(core->presence(), [context, core](vs::VsResult result) {
        core->PingDone();
        CountOutcome(result, context->counters.pings_accepted, context->counters.pings_rejected,
                     context->counters.pings_failed);
        if (result.accepted()) return;
        core->WithReactor([&](SessionReactor* reactor) { reactor->OnPingResult(result); });
      });
  if (!taken.ok()) {
    core->PingDone();
    context->counters.pings_failed.fetch_add(1, std::memory_order_relaxed);
    vs::VsResult refused;
    refused.outcome = vs::VsOutcome::kOverloaded;
    refused.status = taken;
    core->WithReactor([&](SessionReactor* reactor) { reactor->OnPingResult(refused); });
  }
}

void SessionReactor::SendSharedPing(ServiceContext* context,
                                    std::shared_ptr<session::SharedPresence> presence) {
  auto notify = [context, presence](const vs::VsResult& result) {
    for (const auto& member : context->presences->Members(*presence)) {
      member->WithReactor([&](SessionReactor* reactor) { reactor->OnPingResult(result); });
    }
  };
  absl::Status taken =
      context->vs->PingRoom(presence->presence(), [context, presence, notify](vs::VsResult result) {
        presence->PingDone();
        CountOutcome(result, context->counters.pings_accepted, context->counters.pings_rejected,
                     context->counters.pings_failed);
        if (!result.accepted()) notify(result);
      });
  if (!taken.ok()) {
    presence->PingDone();
    context->counters.pings_failed.fetch_add(1, std::memory_order_relaxed);
    vs::VsResult refused;
    refused.outcome = vs::VsOutcome::kOverloaded;
    refused.status = taken;
    notify(refused);
  }
}

void SessionReactor::OnPingResult(const vs::VsResult& result) {
  absl::MutexLock lock(&mu_);
  if (end_status_.has_value() || result.accepted()) return;
  SessionResponse response;
  presence::v1::Notice* notice = response.mutable_notice();
  if (result.outcome == vs::VsOutcome::kRejected) {
    notice->set_kind(presence::v1::NOTICE_KIND_PING_REJECTED);
    notice->set_message(result.vs_message.empty() ? "VS refused pingRoom" : result.vs_message);
  } else {
    notice->set_kind(presence::v1::NOTICE_KIND_UPSTREAM_UNAVAILABLE);
    notice->set_message(std::string(result.status.message()));
  }
  WriteLocked(std::move(response));
}

void SessionReactor::EndForDrain() {
  absl::MutexLock lock(&mu_);
  EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down"));
}

void SessionReactor::EndForBoot() {
  absl::MutexLock lock(&mu_);
  EndLocked(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "removed by VS"));
}

void SessionReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  EndLocked(grpc::Status::CANCELLED);
}

void SessionReactor::EndLocked(grpc::Status status) {
  if (end_status_.has_value()) return;
  end_status_ = status;
  if (phase_ == Phase::kJoined) {
    SendLeaveLocked(core_->presence(), /*best_effort=*/false);
    phase_ = Phase::kEnded;
  }
  if (cancelled_) queued_.clear();  // Nobody will read it.
  const char* code = StatusCodeName(status.error_code());
  if (phase_ != Phase::kJoining) {
    log::Info(
        "session_ended",
        {{"session", core_->id()},
         {"performer", absl::StrCat(join_.performer_id)},
         {"status", code},
         {"message", status.error_message()},
         {"seconds", absl::StrFormat("%.3f", absl::ToDoubleSeconds(absl::Now() - started_))}});
  }
  // A join in flight keeps the call open: its answer decides whether a leave
  // is owed, and then finishes (OnJoinResult).
  MaybeFinishLocked();
}

void SessionReactor::SendLeaveLocked(const vs::RoomPresence& leaving, bool best_effort) {
  if (leave_sent_) return;
  leave_sent_ = true;
  context_->registry->RemoveJoined(*core_);
  core_->Close();
  vs::RoomPresence presence = leaving;
  std::string id = core_->id();
  std::shared_ptr<session::SharedPresence> shared;
  if (shared_key_.has_value() && !best_effort) {
    // Other streams still share the presence: VS keeps it.
    if (!context_->presences->Detach(*shared_key_, core_.get())) return;
    shared = shared_;
    shared->Close();
    presence = shared->presence();
    id = shared->journal_id();
  }
  context_->counters.leaves_sent.fetch_add(1, std::memory_order_relaxed);
  ServiceContext* context = context_;
  absl::Status taken =
      context_->vs->LeaveRoom(presence, [context, id, best_effort, shared](vs::VsResult result) {
        if (shared != nullptr) context->presences->LeaveDone(shared->key(), shared.get());
        // VS answered (yes or no): nothing is left to do after a crash.
        if (context->journal != nullptr &&
            (result.accepted() || result.outcome == vs::VsOutcome::kRejected)) {
          context->journal->RecordLeft(id);
        }
        if (result.accepted()) {
          context->counters.leaves_accepted.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        context->counters.leaves_failed.fetch_add(1, std::memory_order_relaxed);
        (best_effort ? log::Info : log::Warning)("leave_failed",
                                                 {{"session", id},
                                                  {"best_effort", best_effort ? "true" : "false"},
                                                  {"outcome", vs::VsOutcomeName(result.outcome)},
                                                  {"attempts", absl::StrCat(result.attempts)},
                                                  {"error", std::string(result.status.message())}});
      });
  if (!taken.ok()) {
    if (shared != nullptr) context_->presences->LeaveDone(shared->key(), shared.get());
    context_->counters.leaves_failed.fetch_add(1, std::memory_order_relaxed);
    log::Error("leave_not_sent", {{"session", id}, {"error", taken.ToString()}});
  }
}

void SessionReactor::WriteLocked(SessionResponse response) {
  if (finish_called_) return;
  if (cancelled_) return;
  if (in_flight_.has_value()) {
    queued_.push_back(std::move(response));
    return;
  }
  in_flight_ = std::move(response);
  StartWrite(&*in_flight_);
}

void SessionReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  in_flight_.reset();
  if (!ok) {
    queued_.clear();
    EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream broke while writing"));
  } else if (!queued_.empty()) {
    in_flight_ = std::move(queued_.front());
    queued_.erase(queued_.begin());
    StartWrite(&*in_flight_);
    return;
  }
  MaybeFinishLocked();
}

void SessionReactor::MaybeFinishLocked() {
  if (!end_status_.has_value() || finish_called_ || phase_ == Phase::kJoining ||
      in_flight_.has_value() || !queued_.empty()) {
    return;
  }
  finish_called_ = true;
  Finish(*end_status_);
}

void SessionReactor::OnDone() {
  core_->Close();
  core_->Detach();
  {
    absl::MutexLock lock(&mu_);
    if (counted_) context_->registry->Close();
  }
  delete this;
}

}  // namespace presence::service
