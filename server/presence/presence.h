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

#include "server/session/ping_scheduler.h"
#include "server/session/session_core.h"
#include "server/vs/vs_client.h"

namespace presence::presences {

class Presence : public session::PingTarget {
 public:
  // `stream` ended, however it ended. The last stream out sends leaveRoom; a
  // stream detached while the join is at VS is left when VS accepts it.
  // Call once per attached stream.
  virtual void Detach(const session::SessionCore& stream) = 0;
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

  // Attaches a stream that sent a valid join.
  virtual Attachment Attach(const vs::JoinRoomRequest& join,
                            std::shared_ptr<session::SessionCore> stream) = 0;

  // Shared presences held (joining, joined or leaving).
  virtual int64_t shared_presences() const = 0;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_PRESENCE_H_
