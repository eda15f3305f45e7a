#include "server/service/session_reactor.h"

#include <sys/random.h>

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/log/log.h"
#include "server/presence/presence_context.h"
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

// 128 bits from the kernel's CSPRNG, as hex: a resume token must not be
// guessable from other tokens or session ids.
std::string NewResumeToken() {
  uint64_t words[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof(words)) {
    ssize_t n = getrandom(reinterpret_cast<char*>(words) + got, sizeof(words) - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  return absl::StrFormat("%016x%016x", words[0], words[1]);
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

vs::JoinRoomRequest ToJoinRoom(const presence::v1::Join& join) {
  vs::JoinRoomRequest out;
  out.performer_id = join.performer_id();
  out.nickname = join.nickname();
  if (join.has_customer_id()) out.customer_id = join.customer_id();
  out.ip_address = join.ip_address();
  out.registered = join.registered();
  out.credits = join.credits();
  return out;
}

// Responses waiting behind the one being written, at most.
constexpr size_t kMaxQueuedWrites = 64;
// How long a joined stream's read end waits for OnCancel before it is taken
// as the client's half-close (a leave). A cancelled call's OnCancel follows
// its failed read within microseconds; this is the margin for a busy machine.
constexpr absl::Duration kHalfCloseSettle = absl::Milliseconds(100);
// A notice of the same kind is written to a stream at most once per period.
constexpr absl::Duration kNoticeQuietPeriod = absl::Seconds(60);

grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
}

}  // namespace

void SessionReactor::OnStarted() {
  core_ = std::make_shared<session::SessionCore>(NewSessionId(), this);
  started_ = context_->clock->Now();
  absl::MutexLock lock(&mu_);
  metrics::Increment(context_->counters.sessions_started);
  if (grpc::Status auth = CheckAuth(context(), context_->auth_token); !auth.ok()) {
    metrics::Increment(context_->counters.unauthenticated);
    EndLocked(auth);
    return;
  }
  if (context_->draining.load()) {
    EndLocked(ShuttingDown());
    return;
  }
  if (!context_->registry->TryOpen()) {
    metrics::Increment(context_->counters.sessions_refused_full);
    EndLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                           absl::StrCat("the server holds its maximum of ",
                                        context_->registry->max_sessions(), " sessions")));
    return;
  }
  counted_ = true;
  if (context_->join_timeout > absl::ZeroDuration()) {
    RunAt(started_ + context_->join_timeout, &SessionReactor::OnJoinTimeout);
  }
  StartRead(&request_);
}

void SessionReactor::RunAt(absl::Time at, void (SessionReactor::*reaction)()) {
  // On the scheduler's thread, not a grpc::Alarm: an alarm is a gRPC timer
  // that each join cancelled, which hands its callback to gRPC's executor
  // thread (a wake-up and an allocation per join). These timers are never
  // cancelled: the reaction finds the stream as it is then, or nothing.
  context_->scheduler->RunAt(at, [core = std::weak_ptr<session::SessionCore>(core_), reaction] {
    std::shared_ptr<session::SessionCore> alive = core.lock();
    if (alive == nullptr) return;
    // The core's stream is always a SessionReactor.
    alive->WithStream(
        [reaction](session::SessionStream* s) { (static_cast<SessionReactor*>(s)->*reaction)(); });
  });
}

void SessionReactor::OnJoinTimeout() {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kAwaitingJoin) return;
  EndLocked(
      grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                   absl::StrCat("no join within ", absl::FormatDuration(context_->join_timeout),
                                " of opening the stream (--join_timeout)")));
}

// ---- The state machine ----

void SessionReactor::EnterLocked(State next) {
  const State from = state_;
  state_ = next;
  switch (next) {
    case State::kAwaitingJoin:
      return;
    case State::kJoining:
      EnterJoiningLocked();
      return;
    case State::kJoined:
      EnterJoinedLocked();
      return;
    case State::kEnding:
      EnterEndingLocked(from);
      return;
    case State::kFinished:
      Finish(*end_status_);
      return;
  }
}

void SessionReactor::EnterJoiningLocked() {
  session::SessionIdentity identity;
  identity.performer_id = join_->performer_id;
  identity.customer_id = join_->customer_id;
  identity.registered = join_->registered;
  core_->set_identity(std::move(identity));
  context_->registry->AddJoining(core_);
}

void SessionReactor::EnterJoinedLocked() {
  context_->registry->RemoveJoining(*core_);
  context_->registry->AddJoined(core_);
  bucket_.emplace(context_->max_messages_per_second, 2 * context_->max_messages_per_second,
                  context_->clock);
  SessionResponse joined;
  joined.mutable_joined()->set_nickname(core_->identity().display_nickname);
  joined.mutable_joined()->set_session_id(core_->public_id());
  if (const session::Resumable* resumable = core_->identity().resumable.get()) {
    joined.mutable_joined()->set_resume_token(resumable->token);
  }
  joined.mutable_joined()->set_resumed(resumed_);
  WriteLocked(std::move(joined));
  if (context_->draining.load()) {
    EndForDrainLocked();
    return;
  }
  StartRead(&request_);
}

void SessionReactor::EnterEndingLocked(State from) {
  if (from == State::kJoining) context_->registry->RemoveJoining(*core_);
  if (from == State::kJoined) context_->registry->RemoveJoined(*core_);
  if (presence_ != nullptr) presence_->Detach(*core_, departure_);
  if (cancelled_ && writes_ != nullptr) writes_->queued.clear();  // Nobody will read it.
  log::Info("session_ended",
            {{"session", core_->id()},
             {"performer", absl::StrCat(core_->identity().performer_id)},
             {"status", StatusCodeName(end_status_->error_code())},
             {"message", end_status_->error_message()},
             {"seconds",
              absl::StrFormat("%.3f", absl::ToDoubleSeconds(context_->clock->Now() - started_))}});
  MaybeFinishLocked();
}

void SessionReactor::EndLocked(grpc::Status status) {
  if (state_ == State::kEnding || state_ == State::kFinished) return;
  end_status_ = std::make_unique<const grpc::Status>(std::move(status));
  EnterLocked(State::kEnding);
}

void SessionReactor::MaybeFinishLocked() {
  if (state_ != State::kEnding) return;
  if (!abandon_writes_ && writes_ != nullptr) return;
  EnterLocked(State::kFinished);
}

// ---- gRPC reactions ----

void SessionReactor::OnReadDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (!ok) {
    // The client half-closed, or the call is broken: gRPC reports both
    // alike, and a broken call's OnCancel comes after (microseconds, from
    // the same transport event). A joined session's end waits for it a
    // little, since it decides whether the session is left or lost.
    if (IsCancelled()) {
      departure_ = presences::Departure::kLost;
      EndLocked(grpc::Status::CANCELLED);
    } else if (state_ == State::kJoined) {
      RunAt(context_->clock->Now() + kHalfCloseSettle, &SessionReactor::OnHalfClosed);
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
  if (state_ == State::kAwaitingJoin) {
    HandleJoinLocked();
  } else if (state_ == State::kJoined) {
    HandleJoinedMessageLocked();
  }
}

void SessionReactor::OnHalfClosed() {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kJoined) EndWithLeftLocked();  // Not cancelled since.
}

void SessionReactor::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  if (ok && !writes_->queued.empty()) {
    writes_->in_flight = std::move(writes_->queued.front());
    writes_->queued.erase(writes_->queued.begin());
    StartWrite(&writes_->in_flight);
    return;
  }
  writes_.reset();
  if (!ok) {
    departure_ = presences::Departure::kLost;
    EndLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the stream broke while writing"));
  }
  MaybeFinishLocked();
}

void SessionReactor::OnCancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  departure_ = presences::Departure::kLost;
  EndLocked(grpc::Status::CANCELLED);
}

void SessionReactor::OnDone() {
  core_->Detach();
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kFinished) {
      log::Error("session_done_unfinished", {{"session", core_->id()}});
    }
    if (counted_) context_->registry->Close();
  }
  delete this;
}

// ---- The join ----

void SessionReactor::HandleJoinLocked() {
  if (request_.event_case() != SessionRequest::kJoin) {
    metrics::Increment(context_->counters.invalid_requests);
    EndLocked(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("the first message must be join, got ", EventName(request_.event_case()))));
    return;
  }
  if (absl::Status valid = session::ValidateJoin(request_.join()); !valid.ok()) {
    metrics::Increment(context_->counters.invalid_requests);
    EndLocked(ToGrpcStatus(valid));
    return;
  }
  join_ = std::make_unique<const vs::JoinRoomRequest>(ToJoinRoom(request_.join()));
  const std::string resume_token = request_.join().resume_token();
  request_.Clear();  // Frees the Join while the session lives.
  EnterLocked(State::kJoining);
  log::Debug("session_joining", {{"session", core_->id()},
                                 {"performer", absl::StrCat(join_->performer_id)},
                                 {"nickname", join_->nickname},
                                 {"ip", join_->ip_address}});
  presences::Attachment attached = context_->presences->Attach(*join_, core_, resume_token);
  presence_ = std::move(attached.presence);
  if (attached.answer.has_value()) HandleJoinAnswerLocked(*attached.answer);
}

void SessionReactor::OnJoinAnswer(const session::JoinAnswer& answer) {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kJoining) HandleJoinAnswerLocked(answer);
}

void SessionReactor::HandleJoinAnswerLocked(const session::JoinAnswer& answer) {
  const std::string performer = absl::StrCat(core_->identity().performer_id);
  const std::unique_ptr<const vs::JoinRoomRequest> join = std::move(join_);
  if (!answer.result.accepted()) {
    log::Info("session_join_failed", {{"session", core_->id()},
                                      {"performer", performer},
                                      {"outcome", vs::VsOutcomeName(answer.result.outcome)},
                                      {"error", std::string(answer.result.status.message())}});
    EndLocked(ToGrpcStatus(answer.result.status));
    return;
  }
  resumed_ = !answer.resumed_session_id.empty();
  std::unique_ptr<const session::Resumable> resumable;
  if (context_->resume_grace > absl::ZeroDuration()) {
    resumable = std::make_unique<const session::Resumable>(session::Resumable{
        join->nickname, resumed_ ? answer.resumed_session_id : core_->id(), NewResumeToken()});
  }
  core_->set_joined(answer.display_nickname, absl::Now(), std::move(resumable));
  log::Info("session_joined", {{"session", core_->id()},
                               {"performer", performer},
                               {"outcome", "accepted"},
                               {"resumed", resumed_ ? core_->public_id() : "no"}});
  EnterLocked(State::kJoined);
}

// ---- After the join ----

void SessionReactor::HandleJoinedMessageLocked() {
  if (!bucket_->TryTake()) {
    metrics::Increment(context_->counters.rate_limited);
    EndLocked(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("more than ", context_->max_messages_per_second,
                     " messages per second on one stream (burst ",
                     2 * context_->max_messages_per_second, "); the session was left")));
    return;
  }
  switch (request_.event_case()) {
    case SessionRequest::kActivity:
      if (presence_ != nullptr) presence_->RecordActivity(context_->clock->Now());
      StartRead(&request_);
      return;
    case SessionRequest::kCredits:
      HandleCreditsLocked(request_.credits().credits());
      StartRead(&request_);
      return;
    case SessionRequest::kLeave:
      EndWithLeftLocked();
      return;
    case SessionRequest::kJoin:
      metrics::Increment(context_->counters.invalid_requests);
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "join was already received on this stream"));
      return;
    case SessionRequest::EVENT_NOT_SET:
      metrics::Increment(context_->counters.invalid_requests);
      EndLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             "empty SessionRequest: set one of join, activity, credits, leave"));
      return;
  }
}

void SessionReactor::EndWithLeftLocked() {
  SessionResponse left;
  left.mutable_left();
  WriteLocked(std::move(left));
  EndLocked(grpc::Status::OK);
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
        core->WithStream([&](session::SessionStream* s) { s->OnCreditsAnswer(result); });
      },
      context_->credits_retry_window);
  if (!taken.ok()) {
    metrics::Increment(context_->counters.credits_failed);
    ReplyCreditsLocked(false, std::string(taken.message()));
    return;
  }
  credits_in_flight_ = true;
}

void SessionReactor::OnCreditsAnswer(const vs::VsResult& result) {
  absl::MutexLock lock(&mu_);
  credits_in_flight_ = false;
  presences::CountOutcome(result, context_->counters.credits_accepted,
                          context_->counters.credits_rejected, context_->counters.credits_failed);
  ReplyCreditsLocked(result.accepted(),
                     result.accepted() ? "" : std::string(result.status.message()));
  if (pending_credits_.has_value() && state_ == State::kJoined) {
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

void SessionReactor::OnPingFailed(const vs::VsResult& result) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kJoined) return;
  const presence::v1::NoticeKind kind = result.outcome == vs::VsOutcome::kRejected
                                            ? presence::v1::NOTICE_KIND_PING_REJECTED
                                            : presence::v1::NOTICE_KIND_UPSTREAM_UNAVAILABLE;
  const absl::Time now = context_->clock->Now();
  if (kind == last_notice_kind_ && now - last_notice_at_ < kNoticeQuietPeriod) {
    metrics::Increment(context_->counters.notices_suppressed);
    return;
  }
  last_notice_kind_ = kind;
  last_notice_at_ = now;
  SessionResponse response;
  presence::v1::Notice* notice = response.mutable_notice();
  notice->set_kind(kind);
  if (kind == presence::v1::NOTICE_KIND_PING_REJECTED) {
    notice->set_message(result.vs_message.empty() ? "VS refused pingRoom" : result.vs_message);
  } else {
    notice->set_message(std::string(result.status.message()));
  }
  WriteLocked(std::move(response));
}

void SessionReactor::LeaveForDrain() {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kJoined || presence_ == nullptr) return;
  if (context_->drain_holds.load()) departure_ = presences::Departure::kLost;
  presence_->Detach(*core_, departure_);
  presence_.reset();  // Left: ending the stream detaches nothing more.
}

void SessionReactor::EndForDrain() {
  absl::MutexLock lock(&mu_);
  EndForDrainLocked();
}

void SessionReactor::EndForDrainLocked() {
  // Held for the next start when the server hands sessions over.
  if (context_->drain_holds.load()) {
    departure_ = presences::Departure::kLost;
  }
  EndLocked(ShuttingDown());
}

void SessionReactor::EndForBoot() {
  absl::MutexLock lock(&mu_);
  EndLocked(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "removed by VS"));
}

void SessionReactor::WriteLocked(SessionResponse response) {
  if (state_ == State::kFinished || cancelled_ || abandon_writes_) return;
  if (writes_ != nullptr) {
    if (writes_->queued.size() >= kMaxQueuedWrites) {
      writes_->queued.clear();
      abandon_writes_ = true;
      EndLocked(
          grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                       absl::StrCat("the client is not reading its stream: ", kMaxQueuedWrites,
                                    " responses were waiting; the session was left")));
      return;
    }
    writes_->queued.push_back(std::move(response));
    return;
  }
  writes_ = std::make_unique<Writes>();
  writes_->in_flight = std::move(response);
  StartWrite(&writes_->in_flight);
}

}  // namespace presence::service
