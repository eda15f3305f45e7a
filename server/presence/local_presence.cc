#include "server/presence/local_presence.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/log/log.h"

namespace presence::presences {

using session::JoinAnswer;
using session::SessionCore;

namespace {

// How long a join waits for another replica to finish joining or leaving the
// customer's presence, and how often it asks again meanwhile.
constexpr absl::Duration kMaxFleetWait = absl::Seconds(10);
constexpr absl::Duration kMaxClaimPause = absl::Milliseconds(500);
constexpr absl::Duration kReleaseRetry = absl::Milliseconds(500);

}  // namespace

LocalPresence::LocalPresence(const PresenceContext* context, absl::string_view id,
                             vs::JoinRoomRequest join, PresenceOwner* owner, bool shared)
    : context_(context),
      id_(id),
      join_(std::move(join)),
      coordinated_(shared && context->coordinator != nullptr && join_.customer_id.has_value()),
      shared_(shared),
      owner_(owner) {}

std::optional<JoinAnswer> LocalPresence::Join(std::shared_ptr<SessionCore> first) {
  {
    absl::MutexLock lock(&mu_);
    streams_.push_back(first);
  }
  if (coordinated_) {
    Claim();
    return std::nullopt;
  }
  return SendJoin(first.get());
}

void LocalPresence::TakeOver(std::shared_ptr<SessionCore> first, HoldRecord viewer) {
  {
    absl::MutexLock lock(&mu_);
    streams_.push_back(std::move(first));
  }
  std::shared_ptr<LocalPresence> self = shared_from_this();
  context_->holds->Take(viewer, id_.str(), [self](std::optional<HoldExchange::Taken> taken) {
    self->OnTaken(std::move(taken));
  });
}

void LocalPresence::OnTaken(std::optional<HoldExchange::Taken> taken) {
  if (!taken.has_value()) {  // Nobody holds it for this viewer: a fresh join.
    if (coordinated_) {
      Claim();
    } else {
      SendJoin(nullptr);
    }
    return;
  }
  metrics::Increment(context_->counters->resumes);
  if (taken->shared) {
    via_.store(Via::kFleetShare);
    pinging_.store(taken->owner);
  }
  ping_at_once_.store(true);
  vs::VsResult resumed;
  resumed.outcome = vs::VsOutcome::kAccepted;
  FinishJoin({resumed, taken->display_nickname, taken->session_id}, nullptr, /*from_vs=*/false);
}

void LocalPresence::Claim() {
  if (waits_ == 0) wait_deadline_ = context_->scheduler->clock()->Now() + kMaxFleetWait;
  std::shared_ptr<LocalPresence> self = shared_from_this();
  context_->coordinator->Claim(
      join_.performer_id, *join_.customer_id,
      [self](PresenceCoordinator::Claimed claimed) { self->OnClaim(std::move(claimed)); });
}

void LocalPresence::OnClaim(PresenceCoordinator::Claimed claimed) {
  using Kind = PresenceCoordinator::Claimed::Kind;
  switch (claimed.kind) {
    case Kind::kJoin:
      via_.store(Via::kFleetJoin);
      SendJoin(nullptr);
      return;
    case Kind::kAlone:  // The fleet cannot answer: joined as a lone replica.
      SendJoin(nullptr);
      return;
    case Kind::kShare: {
      via_.store(Via::kFleetShare);
      pinging_.store(claimed.owner);
      metrics::Increment(context_->counters->joins_shared);
      vs::VsResult shared;
      shared.outcome = vs::VsOutcome::kAccepted;
      FinishJoin({shared, claimed.nickname, ""}, nullptr, /*from_vs=*/false);
      return;
    }
    case Kind::kWait: {
      const base::Clock* clock = context_->scheduler->clock();
      if (clock->Now() >= wait_deadline_) {
        vs::VsResult busy;
        busy.outcome = vs::VsOutcome::kTransportError;
        busy.status = absl::UnavailableError(
            "the customer's presence in this room is being joined or left through another "
            "replica; retry");
        FinishJoin({busy, "", ""}, nullptr, /*from_vs=*/false);
        return;
      }
      absl::Duration pause =
          std::min(absl::Milliseconds(20) * (1 << std::min(waits_, 5)), kMaxClaimPause);
      ++waits_;
      std::shared_ptr<LocalPresence> self = shared_from_this();
      context_->scheduler->RunAt(clock->Now() + pause, [self] { self->Claim(); });
      return;
    }
  }
}

bool LocalPresence::JoinAfter(LocalPresence& predecessor, std::shared_ptr<SessionCore> first) {
  {
    // Attached first: the join may go out the moment the predecessor is gone.
    absl::MutexLock lock(&mu_);
    streams_.push_back(std::move(first));
  }
  std::shared_ptr<LocalPresence> self = shared_from_this();
  return predecessor.AfterGone([self] {
    if (self->coordinated_) {
      self->Claim();
    } else {
      self->SendJoin(nullptr);
    }
  });
}

bool LocalPresence::AfterGone(absl::AnyInvocable<void() &&> then) {
  absl::MutexLock lock(&mu_);
  if (state_ == State::kGone) return false;
  after_gone_.push_back(std::move(then));
  return true;
}

std::optional<JoinAnswer> LocalPresence::SendJoin(const SessionCore* caller) {
  // Before VS can act on it: a crash while the join is at VS still leaves it.
  if (context_->journal != nullptr) {
    context_->journal->RecordIntent(
        {id_.str(), join_.performer_id, join_.customer_id, join_.nickname, /*confirmed=*/false});
  }
  std::shared_ptr<LocalPresence> self = shared_from_this();
  absl::Status taken =
      context_->vs->JoinRoom(join_, [self](vs::VsResult result) { self->OnJoinResult(result); });
  if (taken.ok()) return std::nullopt;
  JoinAnswer answer{vs::NotTaken(taken), "", ""};
  FinishJoin(answer, caller);
  return answer;
}

LocalPresence::Shared LocalPresence::Share(std::shared_ptr<SessionCore> stream, JoinAnswer* now) {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case State::kJoining:
      streams_.push_back(std::move(stream));
      return Shared::kWaiting;
    case State::kJoined:
      streams_.push_back(std::move(stream));
      now->result.outcome = vs::VsOutcome::kAccepted;
      now->display_nickname = display_nickname_;
      return Shared::kJoined;
    case State::kLeaving:
      return Shared::kLeaving;
    case State::kGone:
      break;
  }
  return Shared::kGone;
}

void LocalPresence::OnJoinResult(const vs::VsResult& result) {
  // VS should always name the display nickname; if it does not, the one we
  // sent is the best guess for the later calls.
  FinishJoin({result, result.nickname.empty() ? join_.nickname : result.nickname, ""}, nullptr);
}

void LocalPresence::FinishJoin(const JoinAnswer& answer, const SessionCore* told_by_caller,
                               bool from_vs) {
  const vs::VsResult& result = answer.result;
  if (from_vs) CountJoin(result);
  if (from_vs && via_.load() == Via::kFleetJoin) {
    // The other replicas waiting on this presence share it, or try themselves.
    if (result.accepted()) {
      context_->coordinator->Joined(join_.performer_id, *join_.customer_id,
                                    answer.display_nickname);
    } else {
      context_->coordinator->Abandon(join_.performer_id, *join_.customer_id);
    }
  }
  bool leave_now = false;
  std::vector<std::shared_ptr<SessionCore>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams = SettleJoinLocked(answer, &leave_now);
  }
  streams.erase(
      std::remove_if(streams.begin(), streams.end(),
                     [told_by_caller](const auto& s) { return s.get() == told_by_caller; }),
      streams.end());
  Tell(streams, answer);
  if (leave_now) {
    // Every stream ended while VS was answering: the presence VS just
    // accepted is taken back at once.
    StartLeave(LeaveSender::Kind::kLeave);
  } else if (!result.accepted()) {
    // VS may have taken a join it did not answer: take it back, with the
    // only nickname we know (the journal's intent is closed when VS answers
    // that leave). Otherwise nothing is owed.
    if (vs::OutcomeUnknown(result)) {
      StartLeave(LeaveSender::Kind::kBestEffort);
    } else if (context_->journal != nullptr) {
      context_->journal->RecordLeft(id_.str());
    }
    Gone();
  }
}

std::vector<std::shared_ptr<SessionCore>> LocalPresence::SettleJoinLocked(const JoinAnswer& answer,
                                                                          bool* leave_now) {
  if (!answer.result.accepted()) {
    state_ = State::kGone;
    return std::exchange(streams_, {});
  }
  display_nickname_ = answer.display_nickname;
  // A presence shared from another replica owes VS no leave of this
  // replica's own after a crash: the fleet's records cover it.
  if (context_->journal != nullptr && via_.load() != Via::kFleetShare) {
    context_->journal->RecordJoin(
        {id_.str(), join_.performer_id, join_.customer_id, display_nickname_});
  }
  if (context_->records != nullptr) context_->records->Joined(id_.str(), room_presence());
  *leave_now = streams_.empty();
  state_ = *leave_now ? State::kLeaving : State::kJoined;
  if (!*leave_now) {
    session::PingScheduler* scheduler = context_->scheduler;
    absl::Time now = scheduler->clock()->Now();
    scheduler->Add(shared_from_this(), ping_at_once_.load() ? now - scheduler->interval() : now);
  }
  return streams_;
}

void LocalPresence::CountJoin(const vs::VsResult& result) {
  CountOutcome(result, context_->counters->joins_accepted, context_->counters->joins_rejected,
               context_->counters->joins_failed);
}

void LocalPresence::Detach(const SessionCore& stream, Departure how) {
  bool hold = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(streams_.begin(), streams_.end(),
                           [&](const auto& s) { return s.get() == &stream; });
    if (it == streams_.end()) return;
    streams_.erase(it);
    hold = how == Departure::kLost && state_ == State::kJoined && owner_ != nullptr &&
           stream.identity().resumable != nullptr;
    if (hold) {
      ++held_;
    } else if (!LastOutLocked()) {
      return;
    }
  }
  if (hold) {
    owner_->Hold(shared_from_this(), stream);
  } else {
    StartLeave(LeaveSender::Kind::kLeave);
  }
}

void LocalPresence::RestoreHeld(std::string display_nickname, int holds, bool fleet_shared,
                                bool pinging) {
  if (fleet_shared) via_.store(Via::kFleetShare);
  pinging_.store(pinging);
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kJoined;
    display_nickname_ = std::move(display_nickname);
    held_ = holds;
  }
  if (context_->records != nullptr) context_->records->Joined(id_.str(), room_presence());
  session::PingScheduler* scheduler = context_->scheduler;
  scheduler->Add(shared_from_this(), scheduler->clock()->Now() - scheduler->interval());
}

bool LocalPresence::Resume(std::shared_ptr<SessionCore> stream, JoinAnswer* now) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kJoined || held_ == 0) return false;
  --held_;
  streams_.push_back(std::move(stream));
  now->result.outcome = vs::VsOutcome::kAccepted;
  now->display_nickname = display_nickname_;
  return true;
}

bool LocalPresence::AddHolds(int holds) {
  absl::MutexLock lock(&mu_);
  // Joining too: a stream of the customer is taking a hold over, or claiming
  // the presence, right now; the fleet's presence is the same one, so a
  // second local presence must not hold it too (its release would let the
  // fleet's go while this one still holds it).
  if (state_ != State::kJoined && state_ != State::kJoining) return false;
  held_ += holds;
  return true;
}

void LocalPresence::DropHold() {
  {
    absl::MutexLock lock(&mu_);
    if (held_ == 0) return;
    --held_;
    // A shared presence's taker became its owner if this replica was.
    if (via_.load() != Via::kVs) pinging_.store(false);
    if (!LastOutLocked()) return;
  }
  Close();  // No more pings from here.
  if (via_.load() != Via::kVs) {
    Release();  // The taker holds it: released without a leave.
    return;
  }
  // Solo: its record moved to the taker, which leaves it in time.
  if (context_->journal != nullptr) context_->journal->RecordLeft(id_.str());
  if (context_->records != nullptr) context_->records->Left(id_.str());
  Gone();
}

bool LocalPresence::EndHold() {
  {
    absl::MutexLock lock(&mu_);
    if (held_ == 0) return false;
    --held_;
    if (!LastOutLocked()) return false;
  }
  StartLeave(LeaveSender::Kind::kLeave);
  return true;
}

bool LocalPresence::LastOutLocked() {
  if (state_ != State::kJoined || !streams_.empty() || held_ > 0) return false;
  state_ = State::kLeaving;
  return true;
}

void LocalPresence::StartLeave(LeaveSender::Kind kind) {
  Close();  // No more pings.
  if (kind == LeaveSender::Kind::kLeave && via_.load() != Via::kVs) {
    Release();  // Left only if no other replica holds it.
    return;
  }
  vs::RoomPresence presence = room_presence();
  if (kind == LeaveSender::Kind::kBestEffort) presence.nickname = join_.nickname;
  std::shared_ptr<LocalPresence> self = shared_from_this();
  context_->leaves->Send(id_.str(), presence, kind, [self, kind] {
    if (kind == LeaveSender::Kind::kLeave) self->Gone();
  });
}

void LocalPresence::Release() {
  std::shared_ptr<LocalPresence> self = shared_from_this();
  context_->coordinator->Release(
      join_.performer_id, *join_.customer_id,
      [self](PresenceCoordinator::Released released) { self->OnRelease(released); });
}

void LocalPresence::OnRelease(PresenceCoordinator::Released released) {
  std::shared_ptr<LocalPresence> self = shared_from_this();
  switch (released) {
    case PresenceCoordinator::Released::kLast:
      context_->leaves->Send(id_.str(), room_presence(), LeaveSender::Kind::kLeave, [self] {
        self->context_->coordinator->Gone(self->join_.performer_id, *self->join_.customer_id);
        self->Gone();
      });
      return;
    case PresenceCoordinator::Released::kStay:
      // Other replicas hold it: nothing is owed to VS from here.
      if (context_->journal != nullptr) context_->journal->RecordLeft(id_.str());
      if (context_->records != nullptr) context_->records->Left(id_.str());
      Gone();
      return;
    case PresenceCoordinator::Released::kRetry:
      context_->scheduler->RunAt(context_->scheduler->clock()->Now() + kReleaseRetry,
                                 [self] { self->Release(); });
      return;
  }
}

void LocalPresence::Gone() {
  std::vector<absl::AnyInvocable<void() &&>> then;
  {
    absl::MutexLock lock(&mu_);
    state_ = State::kGone;
    then.swap(after_gone_);
  }
  if (owner_ != nullptr) owner_->Gone(*this);
  for (auto& fn : then) std::move(fn)();
}

vs::RoomPresence LocalPresence::room_presence() const {
  return vs::RoomPresence{join_.performer_id, join_.customer_id, display_nickname_};
}

void LocalPresence::SendPing() {
  if (!pinging_.load(std::memory_order_acquire)) {
    PingDone();  // Another replica pings this presence.
    return;
  }
  std::shared_ptr<LocalPresence> self = shared_from_this();
  absl::Status taken = context_->vs->PingRoom(room_presence(), [self](vs::VsResult result) {
    self->PingDone();
    CountOutcome(result, self->context_->counters->pings_accepted,
                 self->context_->counters->pings_rejected, self->context_->counters->pings_failed);
    if (!result.accepted()) self->TellPingFailed(result);
  });
  if (taken.ok()) return;
  PingDone();
  metrics::Increment(context_->counters->pings_failed);
  // Refused by this process's own in-flight bound: the next interval tries
  // again, and the viewers' backends are not told of a load that is ours.
  if (taken.code() == absl::StatusCode::kResourceExhausted) return;
  TellPingFailed(vs::NotTaken(taken));
}

void LocalPresence::TellPingFailed(const vs::VsResult& result) {
  std::vector<std::shared_ptr<SessionCore>> streams;
  {
    absl::MutexLock lock(&mu_);
    streams = streams_;
  }
  for (const auto& stream : streams) {
    stream->WithStream([&](session::SessionStream* s) { s->OnPingFailed(result); });
  }
}

void LocalPresence::Tell(const std::vector<std::shared_ptr<SessionCore>>& streams,
                         const JoinAnswer& answer) {
  for (const auto& stream : streams) {
    stream->WithStream([&](session::SessionStream* s) { s->OnJoinAnswer(answer); });
  }
}

}  // namespace presence::presences
