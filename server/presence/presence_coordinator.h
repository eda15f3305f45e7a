#ifndef PRESENCE_SERVER_PRESENCE_PRESENCE_COORDINATOR_H_
#define PRESENCE_SERVER_PRESENCE_PRESENCE_COORDINATOR_H_

// PresenceCoordinator: how replicas agree on a registered customer's one VS
// presence per room (the fleet's Redis). A replica's shared presence claims
// it before its first stream joins, and releases it when its last stream
// leaves:
//
//   Claim    kJoin: nobody holds it; this replica sends joinRoom (then Joined
//            or Abandon). kShare: it is joined elsewhere; this replica's
//            streams share it (same display nickname), without a join.
//            kWait: it is being joined or left elsewhere; claim again soon.
//            kAlone: the fleet cannot answer; act as a lone replica.
//   Release  kLast: no other replica holds it; this one sends leaveRoom (then
//            Gone). kStay: others still hold it; no leave. kRetry: the fleet
//            cannot answer; release again soon.
//
// Exactly one replica pings a presence (its owner: the one that joined it,
// then one that still holds it). Callbacks may run on any thread, must not
// block, and never run under the caller's locks.

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"

namespace presence::presences {

class PresenceCoordinator {
 public:
  struct Claimed {
    enum class Kind { kJoin, kShare, kWait, kAlone };
    Kind kind = Kind::kAlone;
    std::string nickname;  // kShare: VS's display nickname.
    bool owner = false;    // kShare: this replica pings it.
  };
  enum class Released { kLast, kStay, kRetry };

  virtual ~PresenceCoordinator() = default;

  virtual void Claim(int64_t performer_id, int64_t customer_id,
                     absl::AnyInvocable<void(Claimed) &&> done) = 0;
  // After kJoin: VS accepted, with this display nickname.
  virtual void Joined(int64_t performer_id, int64_t customer_id, const std::string& nickname) = 0;
  // After kJoin: VS did not take the join; another replica may try.
  virtual void Abandon(int64_t performer_id, int64_t customer_id) = 0;
  virtual void Release(int64_t performer_id, int64_t customer_id,
                       absl::AnyInvocable<void(Released) &&> done) = 0;
  // After kLast: VS answered the leave.
  virtual void Gone(int64_t performer_id, int64_t customer_id) = 0;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_PRESENCE_COORDINATOR_H_
