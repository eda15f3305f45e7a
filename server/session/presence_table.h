#ifndef PRESENCE_SERVER_SESSION_PRESENCE_TABLE_H_
#define PRESENCE_SERVER_SESSION_PRESENCE_TABLE_H_

// PresenceTable gives a registered customer one VS presence per room, however
// many streams they hold there (two tabs, a reconnect racing its old stream):
// joinRoom when the first stream joins, leaveRoom when the last one leaves.
// Every stream gets the same display nickname and its own session id. Guests
// (no customer_id) are never shared.
//
// Life of a shared presence:
//   kJoining  the first stream (the owner) sent joinRoom; later streams wait
//             for its answer and share it (accepted or not).
//   kJoined   members come and go; pings are the presence's, not a stream's.
//   kLeaving  the last member left and leaveRoom is out. A stream arriving
//             now gets UNAVAILABLE (retry): joining before VS has the leave
//             could reach VS first and be undone by it.
//
// Bookkeeping only: the callers make the VS calls. Thread-safe; no callback
// runs under its lock.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/session/ping_scheduler.h"
#include "server/session/session_core.h"
#include "server/vs/vs_client.h"

namespace presence::session {

struct PresenceKey {
  int64_t performer_id = 0;
  int64_t customer_id = 0;

  bool operator==(const PresenceKey& other) const {
    return performer_id == other.performer_id && customer_id == other.customer_id;
  }
  template <typename H>
  friend H AbslHashValue(H h, const PresenceKey& key) {
    return H::combine(std::move(h), key.performer_id, key.customer_id);
  }
};

// One VS presence. The scheduler pings it (not its streams).
class SharedPresence : public PingTarget {
 public:
  SharedPresence(PresenceKey key, std::string journal_id)
      : PingTarget(Kind::kSharedPresence), key_(key), journal_id_(std::move(journal_id)) {}

  const PresenceKey& key() const { return key_; }
  // The owner's session id: the presence's name in the journal.
  const std::string& journal_id() const { return journal_id_; }
  // Written once by JoinDone, before the presence is scheduled or shared.
  const std::string& display_nickname() const { return display_nickname_; }
  vs::RoomPresence presence() const {
    return vs::RoomPresence{key_.performer_id, key_.customer_id, display_nickname_};
  }

 private:
  friend class PresenceTable;
  const PresenceKey key_;
  const std::string journal_id_;
  std::string display_nickname_;
};

class PresenceTable {
 public:
  enum class Attached { kSendJoin, kWaitForJoin, kJoined, kLeaving };
  struct AttachResult {
    Attached what;
    std::shared_ptr<SharedPresence> presence;  // Null for kLeaving.
  };

  // A stream of `key` is joining.
  AttachResult Attach(const PresenceKey& key, std::shared_ptr<SessionCore> core);

  // The owner's joinRoom was answered. Accepted: the owner and the waiters
  // become members. Otherwise the presence is gone. Returns the waiters, to
  // be told the same outcome.
  std::vector<std::shared_ptr<SessionCore>> JoinDone(const PresenceKey& key, bool accepted,
                                                     const std::string& display_nickname);

  // A member's stream ended. True when it was the last member: the caller
  // sends leaveRoom and calls LeaveDone when VS has answered.
  bool Detach(const PresenceKey& key, const SessionCore* core);
  void LeaveDone(const PresenceKey& key, const SharedPresence* presence);

  // The members of `presence` (for ping notices).
  std::vector<std::shared_ptr<SessionCore>> Members(const SharedPresence& presence) const;

  int64_t size() const;

 private:
  enum class State { kJoining, kJoined, kLeaving };
  struct Entry {
    State state = State::kJoining;
    std::shared_ptr<SharedPresence> presence;
    std::shared_ptr<SessionCore> owner;
    std::vector<std::shared_ptr<SessionCore>> waiters;
    std::vector<std::shared_ptr<SessionCore>> members;
  };

  mutable absl::Mutex mu_;
  absl::flat_hash_map<PresenceKey, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_PRESENCE_TABLE_H_
