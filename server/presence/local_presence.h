#ifndef PRESENCE_SERVER_PRESENCE_LOCAL_PRESENCE_H_
#define PRESENCE_SERVER_PRESENCE_LOCAL_PRESENCE_H_

// LocalPresence is a VS presence held by streams on this replica: a guest's
// or a lone customer's (one stream), or a registered customer's shared by all
// their streams in the room (LocalDirectory finds it for them). One state
// machine serves both; a solo presence is the one-stream case.
//
//   kJoining  joinRoom is at VS. Streams that attach now wait for its answer,
//             and all get the same one.
//   kJoined   streams come and go; the scheduler pings the presence.
//   kLeaving  the last stream left; leaveRoom is at VS.
//   kGone     VS answered the leave, or the join was not accepted.
//
// The first stream's Join sends joinRoom; answers reach the streams through
// SessionStream::OnJoinAnswer, outside this presence's lock. A join accepted
// after every stream is gone is left at once; a join whose outcome is unknown
// gets a best-effort leave.
//
// In a fleet (PresenceContext::coordinator), a shared presence first claims
// the customer's presence from the fleet: it joins VS only when no replica
// holds it, shares the one another replica joined otherwise (no joinRoom, no
// pings unless it becomes the owner), and, when its last stream leaves,
// sends leaveRoom only if no other replica still holds it.
//
// Thread-safe.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/base/short_string.h"
#include "server/presence/leave_sender.h"
#include "server/presence/presence.h"
#include "server/presence/presence_context.h"

namespace presence::presences {

class LocalPresence;

// What a presence tells the directory that made it. (An interface rather
// than two callbacks: a pointer is what every held presence pays.)
class PresenceOwner {
 public:
  virtual ~PresenceOwner() = default;
  // A lost stream's session is held for a resume (the directory indexes its
  // token and arms the grace timer).
  virtual void Hold(std::shared_ptr<LocalPresence> presence,
                    const session::SessionCore& stream) = 0;
  // Once, when the presence reaches kGone (the directory forgets it).
  virtual void Gone(const LocalPresence& presence) = 0;
};

class LocalPresence final : public Presence, public std::enable_shared_from_this<LocalPresence> {
 public:
  // `id` names the presence in the journal and the log (its first stream's
  // session id). Without an `owner`, sessions are never held.
  // `shared`: a registered customer's presence, which a fleet coordinates.
  LocalPresence(const PresenceContext* context, absl::string_view id, vs::JoinRoomRequest join,
                PresenceOwner* owner = nullptr, bool shared = false);

  // The first stream: sends joinRoom. Returns the answer when VS would not
  // take the request; the other streams attached by then hear it too.
  std::optional<session::JoinAnswer> Join(std::shared_ptr<session::SessionCore> first);

  // The first stream of a presence whose joinRoom must wait until
  // `predecessor` (the same customer's presence, kLeaving) is gone: its leave
  // answered, so the join cannot overtake it at VS. Streams attach meanwhile
  // as to any joining presence. False when the predecessor is gone already
  // (nothing was attached: call Join instead).
  bool JoinAfter(LocalPresence& predecessor, std::shared_ptr<session::SessionCore> first);

  enum class Shared { kWaiting, kJoined, kLeaving, kGone };
  // A later stream of the same customer. kJoined: `*now` is its answer.
  // kWaiting: the answer comes with the join's. kLeaving, kGone: not attached.
  Shared Share(std::shared_ptr<session::SessionCore> stream, session::JoinAnswer* now);

  void Detach(const session::SessionCore& stream, Departure how) override;
  void SendPing() override;

  // The first stream, bringing the token of a session another replica holds
  // (`viewer`: the hold it must match). The fleet hands that session over
  // (no joinRoom; the stream's answer says it resumed), or, if nobody holds
  // it for this viewer, the presence joins as Join would.
  void TakeOver(std::shared_ptr<session::SessionCore> first, HoldRecord viewer);

  // A presence handed over joined (with `display_nickname`) and held `holds`
  // times: by the previous run of this server, or by a stopped or dead
  // replica of the fleet (`fleet_shared`: the customer's shared presence,
  // pinged here if `pinging`). Its pings start at once.
  void RestoreHeld(std::string display_nickname, int holds, bool fleet_shared = false,
                   bool pinging = true);
  // More held sessions for this presence (adopted from another replica):
  // false when it is leaving or gone.
  bool AddHolds(int holds);

  // A held session is taken over by `stream`: false when the presence is
  // no longer joined. Otherwise `*now` is its answer.
  bool Resume(std::shared_ptr<session::SessionCore> stream, session::JoinAnswer* now);
  // A hold ended without a resume (grace over, boot, shutdown). True when
  // that sent the presence's leaveRoom (nothing else held it).
  bool EndHold();
  // Another replica took a held session over: it holds the VS presence now
  // (a solo one moved there; a shared one is held there too). No leave from
  // here, and no more pings unless streams here still share it.
  void DropHold();

  // Whether this replica pings the presence: the fleet's owner does, the
  // other replicas holding it do not.
  void SetPinging(bool owner) { pinging_.store(owner, std::memory_order_release); }

  std::string id() const { return id_.str(); }
  const vs::JoinRoomRequest& join() const { return join_; }
  // A registered customer's presence, shared by the customer's streams.
  bool shared() const { return shared_; }
  // VS's display nickname; set once the join is accepted.
  const std::string& display_nickname() const { return display_nickname_; }
  // Held through the fleet's shared presence (not this replica's alone).
  bool fleet_shared() const { return via_.load() != Via::kVs; }

 private:
  enum class State { kJoining, kJoined, kLeaving, kGone };

  // How this presence came to be joined.
  enum class Via {
    kVs,          // This replica's joinRoom (alone, or the fleet's first).
    kFleetJoin,   // This replica's joinRoom, claimed from the fleet.
    kFleetShare,  // Joined by another replica; shared through the fleet.
  };

  // Sends joinRoom. When VS would not take it, every stream but `caller`
  // hears the answer, which is returned (for `caller`).
  std::optional<session::JoinAnswer> SendJoin(const session::SessionCore* caller);
  // The fleet's answer to this presence's claim (coordinated presences).
  void Claim();
  void OnClaim(PresenceCoordinator::Claimed claimed);
  // The fleet's answer to a resume of a session held elsewhere.
  void OnTaken(std::optional<HoldExchange::Taken> taken);
  // The fleet's answer to the release of a coordinated presence.
  void Release();
  void OnRelease(PresenceCoordinator::Released released);
  // Runs `then` once this presence is gone; false (and nothing) if it is.
  bool AfterGone(absl::AnyInvocable<void() &&> then);
  void OnJoinResult(const vs::VsResult& result);
  // The join's outcome, whichever way it came: settles the state, tells
  // every stream but `told_by_caller`, and takes back what VS may hold.
  void FinishJoin(const session::JoinAnswer& answer, const session::SessionCore* told_by_caller,
                  bool from_vs = true);
  // Joined, with no stream and no hold left: moves to kLeaving (the caller
  // sends the leave) and returns true.
  bool LastOutLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves kJoining on with VS's answer; returns the streams to tell.
  std::vector<std::shared_ptr<session::SessionCore>> SettleJoinLocked(
      const session::JoinAnswer& answer, bool* leave_now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CountJoin(const vs::VsResult& result);
  void StartLeave(LeaveSender::Kind kind);
  void Gone();
  void TellPingFailed(const vs::VsResult& result);
  static void Tell(const std::vector<std::shared_ptr<session::SessionCore>>& streams,
                   const session::JoinAnswer& answer);
  vs::RoomPresence room_presence() const;

  // Members are ordered so that the small ones share padding: every held
  // presence pays for this object.
  const PresenceContext* const context_;
  const base::ShortString id_;
  const vs::JoinRoomRequest join_;
  // Shared and in a fleet: claims and releases go through the coordinator.
  const bool coordinated_;
  const bool shared_;
  // False while another replica pings the presence (a fleet's follower).
  std::atomic<bool> pinging_{true};
  std::atomic<Via> via_{Via::kVs};
  // Taken over from another replica: the first ping goes at once, since that
  // replica's last one was up to an interval ago.
  std::atomic<bool> ping_at_once_{false};
  // Claims answered kWait so far, and when this one gives up waiting.
  int waits_ = 0;
  absl::Time wait_deadline_;
  PresenceOwner* const owner_;

  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kJoining;
  int held_ ABSL_GUARDED_BY(mu_) = 0;  // Sessions held for a resume.
  std::vector<std::shared_ptr<session::SessionCore>> streams_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::AnyInvocable<void() &&>> after_gone_ ABSL_GUARDED_BY(mu_);
  // Written once, when the join is accepted (before kJoined is visible).
  std::string display_nickname_;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_LOCAL_PRESENCE_H_
