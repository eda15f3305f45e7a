#ifndef PRESENCE_SERVER_PRESENCE_HOLD_EXCHANGE_H_
#define PRESENCE_SERVER_PRESENCE_HOLD_EXCHANGE_H_

// HoldExchange: where replicas share the sessions they hold for a resume (the
// fleet's Redis), so that a resume taken by any replica ends the hold where
// it is, and one replica, exactly, decides each hold's end.
//
//   Held     a lost stream's session is held here (queued; never waits).
//   Take     a join carries a token this replica does not hold: take the
//            hold from whoever does, atomically and once. The holder is told
//            to let it go without a leave (LocalDirectory::DropHeld); a solo
//            presence's record moves to this replica under `presence_id`,
//            and a shared one adds this replica as a holder.
//   Expire   the grace passed on the holder: kLeave (it still held it, or the
//            fleet forgot it: the holder ends it), kTaken (another replica
//            took it: let go without a leave), kRetry (no answer).
//   Ended    the hold ended here for another reason (resumed here, a boot, a
//            stop without hand-over): nobody may take it any more.
//
// Holds are named by the SHA-256 of their token, never by the token.
// Callbacks may run on any thread and never under the caller's locks.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "server/vs/vs_client.h"

namespace presence::presences {

// One held session, as the fleet shares it.
struct HoldRecord {
  std::string digest;  // Of its resume token.
  std::string presence_id;
  std::string session_id;  // The client's id; a resume keeps it.
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  bool registered = false;
  bool shared = false;  // A registered customer's presence the fleet coordinates.
  std::string asked_nickname;
  std::string display_nickname;
  absl::Time expires;  // Wall clock.
};

// A dead replica's presence whose sessions were still held: a survivor
// adopts it (pings it, ends each hold at its grace, takes resumes).
struct AdoptedPresence {
  std::string id;
  vs::RoomPresence presence;  // With VS's display nickname.
  bool shared = false;        // Through the fleet's shared presence.
  bool owner = true;          // This replica pings it.
  std::vector<HoldRecord> holds;
};

class HoldExchange {
 public:
  // What a resume took over.
  struct Taken {
    std::string session_id;
    std::string display_nickname;
    bool shared = false;  // Through the fleet's shared presence (else solo).
    bool owner = false;   // Shared: this replica pings it now.
  };
  enum class Expiry { kLeave, kTaken, kRetry };

  virtual ~HoldExchange() = default;

  virtual void Held(const HoldRecord& hold) = 0;
  // `viewer` names the joining stream's identity (digest, session id and
  // nicknames unused); `presence_id` is the taker's new presence. nullopt:
  // no such hold for this viewer (or no answer): join afresh.
  virtual void Take(const HoldRecord& viewer, const std::string& presence_id,
                    absl::AnyInvocable<void(std::optional<Taken>) &&> done) = 0;
  virtual void Expire(const std::string& digest, absl::AnyInvocable<void(Expiry) &&> done) = 0;
  virtual void Ended(const std::string& digest) = 0;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_HOLD_EXCHANGE_H_
