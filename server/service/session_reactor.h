#ifndef PRESENCE_SERVER_SERVICE_SESSION_REACTOR_H_
#define PRESENCE_SERVER_SESSION_REACTOR_H_

// SessionReactor serves one Session stream on gRPC's callback API: a viewer's
// presence from join to leave.
//
// Every exit (leave, half-close, cancel, a lost connection, a bad message, a
// VS refusal, the drain on shutdown) goes through End(), which sends leaveRoom
// exactly once when VS accepted the join, and finishes the call exactly once
// after the last queued write. One write is in flight at a time; the rest wait
// in a queue. The reactor deletes itself in OnDone and is never touched after:
// VS completions reach it only through its SessionCore, which it detaches
// first. Reactions never block: VS calls are handed to VsClient.
//
// Thread-safe: gRPC reactions, VS completions and the ping scheduler all take
// mu_. Lock order: SessionCore's lock, then mu_.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/service/service_context.h"
#include "server/session/session_core.h"
#include "server/vs/vs_client.h"

namespace presence::service {

class SessionReactor
    : public grpc::ServerBidiReactor<presence::v1::SessionRequest, presence::v1::SessionResponse> {
 public:
  SessionReactor(ServiceContext* context, grpc::CallbackServerContext* call);

  // VS completions, run through SessionCore::WithReactor.
  void OnJoinResult(vs::VsResult result);
  // The answer to the join of the presence this stream waited to share.
  void OnSharedJoinResult(const vs::VsResult& result);
  void OnPingResult(const vs::VsResult& result);
  void OnCreditsResult(const vs::VsResult& result);
  // The drain on shutdown: leave, then UNAVAILABLE.
  void EndForDrain();
  // VS booted the customer: leave, then PERMISSION_DENIED.
  void EndForBoot();

  // Sends a session's pingRoom (from the ping scheduler's thread).
  static void SendPing(ServiceContext* context, std::shared_ptr<session::SessionCore> core);
  // Sends a shared presence's pingRoom; a failure is noticed on every stream.
  static void SendSharedPing(ServiceContext* context,
                             std::shared_ptr<session::SharedPresence> presence);

 private:
  enum class Phase { kAwaitingJoin, kJoining, kJoined, kEnded };

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

  void HandleFirstMessageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleJoinedMessageLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendJoinLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleJoinResultLocked(const vs::VsResult& result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes a token for one client message; false when the stream is over its rate.
  bool TakeTokenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleCreditsLocked(int64_t credits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendCreditsLocked(int64_t credits) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplyCreditsLocked(bool success, std::string message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The one exit: records the final status, sends the leave if joined, and
  // finishes once the write queue is empty.
  void EndLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendLeaveLocked(const vs::RoomPresence& presence, bool best_effort)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Where activity is recorded: the shared presence, or this session.
  session::PingTarget* ping_target() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shared_ ? static_cast<session::PingTarget*>(shared_.get()) : core_.get();
  }
  void WriteLocked(presence::v1::SessionResponse response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ServiceContext* const context_;
  const std::shared_ptr<session::SessionCore> core_;
  const absl::Time started_;

  absl::Mutex mu_;
  Phase phase_ ABSL_GUARDED_BY(mu_) = Phase::kAwaitingJoin;
  bool counted_ ABSL_GUARDED_BY(mu_) = false;  // Holds a slot of --max_sessions.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool leave_sent_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> end_status_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  presence::v1::SessionRequest request_ ABSL_GUARDED_BY(mu_);
  vs::JoinRoomRequest join_ ABSL_GUARDED_BY(mu_);
  // A registered customer's stream shares a presence (see PresenceTable).
  std::optional<session::PresenceKey> shared_key_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<session::SharedPresence> shared_ ABSL_GUARDED_BY(mu_);
  bool owner_ ABSL_GUARDED_BY(mu_) = false;  // This stream sent the shared joinRoom.
  // The message being written (its address is what StartWrite holds), and
  // those waiting behind it. Nothing is allocated while the queue is idle.
  std::optional<presence::v1::SessionResponse> in_flight_ ABSL_GUARDED_BY(mu_);
  std::vector<presence::v1::SessionResponse> queued_ ABSL_GUARDED_BY(mu_);
  bool credits_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<int64_t> pending_credits_ ABSL_GUARDED_BY(mu_);
  // Token bucket for client messages after the join.
  double tokens_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time refilled_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SESSION_REACTOR_H_
