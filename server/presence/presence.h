#ifndef PRESENCE_SERVER_PRESENCE_PRESENCE_H_
#define PRESENCE_SERVER_PRESENCE_PRESENCE_H_

// The presence seam. A Presence is one VS presence (one joinRoom, pings while
// it is held, exactly one leaveRoom) held by one or more streams. A
// PresenceDirectory decides which presence a joining stream attaches to: a
// new one that sends joinRoom, or one it shares.
//
// The reactor only attaches a stream, relays the answers that reach it
// through SessionStream, and detaches the stream when it ends. Everything
// about VS (the join, the schedule, the journal, the one-leave rule) is
// behind this seam. Today's implementation holds presences on this replica
// (LocalDirectory, LocalPresence); a fleet (Redis) and presences held in
// grace for a resume are further implementations of the same two types.
//
// Thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "server/session/ping_scheduler.h"
#include "server/session/session_core.h"
#include "server/vs/vs_client.h"

namespace presence::presences {

// How a stream ended, as far as its presence is concerned.
enum class Departure {
  kLeft,  // `leave`, half-close, an error, a boot: the presence may go now.
  kLost,  // Cancelled, connection lost: with a resume grace, it is held.
};

class Presence : public session::PingTarget {
 public:
  // `stream` ended. The last stream out sends leaveRoom, unless a lost
  // stream's session is held for a resume (then it goes when the hold ends);
  // a stream detached while the join is at VS is left when VS accepts it.
  // Call once per attached stream.
  virtual void Detach(const session::SessionCore& stream, Departure how) = 0;
};

struct Attachment {
  // Null only when the stream could not attach at all (`answer` says why).
  std::shared_ptr<Presence> presence;
  // Set when the answer is known at once (the presence is joined already, or
  // VS would not take the join). Otherwise it reaches the stream later
  // through SessionStream::OnJoinAnswer, exactly once.
  std::optional<session::JoinAnswer> answer;
};

class PresenceDirectory {
 public:
  virtual ~PresenceDirectory() = default;

  // Attaches a stream that sent a valid join; with a `resume_token` that
  // names a held session of the same viewer, it takes that session over.
  virtual Attachment Attach(const vs::JoinRoomRequest& join,
                            std::shared_ptr<session::SessionCore> stream,
                            absl::string_view resume_token = {}) = 0;

  // Ends the holds of a customer's sessions (VS booted them); performer 0:
  // every room. Returns how many.
  virtual int EndHolds(int64_t customer_id, int64_t performer_id) = 0;
  // Ends every hold (the server stops and cannot hand them over).
  virtual void EndAllHolds() = 0;
  // The server stops and hands its holds over; the presences are not left,
  // and no hold ends here any more. In a fleet, the fleet has them already
  // (returns nothing); otherwise they are written to the journal for the next
  // start of this server. Returns the ids of the presences written.
  virtual std::vector<std::string> HandOverHolds() = 0;

  // Shared presences held (joining, joined or leaving).
  virtual int64_t shared_presences() const = 0;
  // Sessions held for a resume.
  virtual int64_t held_sessions() const = 0;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_PRESENCE_H_
