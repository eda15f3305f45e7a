#ifndef PRESENCE_SERVER_SERVICE_SESSION_REACTOR_H_
#define PRESENCE_SERVER_SERVICE_SESSION_REACTOR_H_

// SessionReactor serves one Session stream: a viewer's presence from join to
// leave. It runs on gRPC's async API through AsyncBidiReactor, which gives it
// the callback API's shape (SessionQueues creates it and awaits its call).
//
// It is one state machine (State, entered only through EnterLocked):
//
//   kAwaitingJoin --join--> kJoining --accepted--> kJoined
//         |                    |                      |
//         +-------- any end ---+----------------------+--> kEnding --> kFinished
//
// The VS side is behind the presence seam: the reactor attaches its stream
// to a presence when the join is valid and detaches it on entering kEnding,
// whatever ended it (leave, half-close, cancel, a lost connection, a bad
// message, a refused join, a boot, the drain); the presence owns the
// one-leave rule. kEnding waits for the last queued write; kFinished has
// called Finish. One write is in flight at a time; the rest wait in a queue
// of at most kMaxQueuedWrites: a client that stops reading is ended
// RESOURCE_EXHAUSTED (and left) rather than growing it.
// The reactor deletes itself in OnDone and is never touched after: answers
// reach it only through its SessionCore, which it detaches first. Reactions
// never block.
//
// Thread-safe: gRPC reactions, VS answers and the drain all take mu_. Lock
// order: SessionCore's lock, then mu_.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/base/token_bucket.h"
#include "server/presence/presence.h"
#include "server/service/async_bidi_reactor.h"
#include "server/service/service_context.h"
#include "server/session/session_core.h"

namespace presence::service {

class SessionReactor final
    : public AsyncBidiReactor<presence::v1::SessionRequest, presence::v1::SessionResponse>,
      public session::SessionStream {
 public:
  // Awaits a call: nothing happens until it arrives (OnStarted).
  SessionReactor(ServiceContext* context, ReactorCount* count)
      : AsyncBidiReactor(count), context_(context) {}

  // session::SessionStream: answers and orders from elsewhere.
  void OnJoinAnswer(const session::JoinAnswer& answer) override;
  void OnPingFailed(const vs::VsResult& result) override;
  void OnCreditsAnswer(const vs::VsResult& result) override;
  void LeaveForDrain() override;
  void EndForDrain() override;
  void EndForBoot() override;

 private:
  enum class State { kAwaitingJoin, kJoining, kJoined, kEnding, kFinished };

  void OnStarted() override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  // The one transition function: each state's entry actions, once.
  void EnterLocked(State next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnterJoiningLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnterJoinedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `reaction` on the scheduler's thread at `at`, if the stream is
  // still there.
  void RunAt(absl::Time at, void (SessionReactor::*reaction)());
  void OnJoinTimeout();
  // A joined stream's read ended and no OnCancel came: the client half-closed.
  void OnHalfClosed();
  void EnterEndingLocked(State from) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records the final status and enters kEnding (once; later calls do nothing).
  void EndLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The drain's end: UNAVAILABLE, held or left as the drain says.
  void EndForDrainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Finishes the call once kEnding has no write left.
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void HandleJoinLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleJoinAnswerLocked(const session::JoinAnswer& answer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleJoinedMessageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleCreditsLocked(int64_t credits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendCreditsLocked(int64_t credits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplyCreditsLocked(bool success, std::string message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `left` answers an explicit leave or half-close before the end.
  void EndWithLeftLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WriteLocked(presence::v1::SessionResponse response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ServiceContext* const context_;
  // Both set when the call arrives (OnStarted), before any other thread
  // can reach the reactor, and never changed.
  std::shared_ptr<session::SessionCore> core_;
  absl::Time started_;  // Of context_->clock.

  // Each member below is paid by every held stream: what only some phases
  // need is allocated for them, and the small ones are kept together so that
  // they share padding.
  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kAwaitingJoin;
  // Lost (cancelled, broken) rather than left: the session may be held.
  presences::Departure departure_ ABSL_GUARDED_BY(mu_) = presences::Departure::kLeft;
  bool counted_ ABSL_GUARDED_BY(mu_) = false;  // Holds a slot of --max_sessions.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool resumed_ ABSL_GUARDED_BY(mu_) = false;  // Took over a held session.
  // The client stopped reading: Finish without waiting for queued writes.
  bool abandon_writes_ ABSL_GUARDED_BY(mu_) = false;
  bool credits_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  // The kind of the last notice written (see last_notice_at_).
  presence::v1::NoticeKind last_notice_kind_ ABSL_GUARDED_BY(mu_) =
      presence::v1::NOTICE_KIND_UNSPECIFIED;
  // Set on entering kEnding.
  std::unique_ptr<const grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);
  presence::v1::SessionRequest request_ ABSL_GUARDED_BY(mu_);
  // From the join message until VS's answer.
  std::unique_ptr<const vs::JoinRoomRequest> join_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<presences::Presence> presence_ ABSL_GUARDED_BY(mu_);
  // The message being written (its address is what StartWrite holds), and
  // those waiting behind it. Allocated while writing: an idle stream pays a
  // pointer.
  struct Writes {
    presence::v1::SessionResponse in_flight;
    std::vector<presence::v1::SessionResponse> queued;
  };
  std::unique_ptr<Writes> writes_ ABSL_GUARDED_BY(mu_);
  std::optional<int64_t> pending_credits_ ABSL_GUARDED_BY(mu_);
  // Client messages after the join (set on entering kJoined).
  std::optional<base::TokenBucket> bucket_ ABSL_GUARDED_BY(mu_);
  // The last notice written (of context_->clock), and its kind: the same kind
  // again within kNoticeQuietPeriod is not written (an upstream in trouble
  // must not become a flood of gRPC writes).
  absl::Time last_notice_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_SESSION_REACTOR_H_
