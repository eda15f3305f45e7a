#ifndef PRESENCE_SERVER_PRESENCE_LEAVE_SENDER_H_
#define PRESENCE_SERVER_PRESENCE_LEAVE_SENDER_H_

// LeaveSender is the only way a leaveRoom goes out: a presence's last stream
// ending, a best-effort leave after a join whose outcome is unknown, and the
// recovery of what a crashed run left open. Counters, the journal's "left"
// record and the log line are here, once.
//
// Thread-safe.

#include <string>

#include "absl/functional/any_invocable.h"
#include "server/presence/presence_context.h"

namespace presence::presences {

class LeaveSender {
 public:
  enum class Kind {
    kLeave,       // A presence VS accepted.
    kBestEffort,  // A join whose outcome is unknown, with the nickname we asked for.
  };
  // Runs once, after VS answered or the leave could not be sent.
  using Done = absl::AnyInvocable<void() &&>;

  explicit LeaveSender(const PresenceContext* context) : context_(context) {}

  // Sends leaveRoom for the presence named `journal_id` in the journal.
  void Send(const std::string& journal_id, const vs::RoomPresence& presence, Kind kind,
            Done done = nullptr);

 private:
  void OnAnswer(const std::string& journal_id, Kind kind, const vs::VsResult& result);

  const PresenceContext* const context_;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_LEAVE_SENDER_H_
