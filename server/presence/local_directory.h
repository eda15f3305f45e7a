#ifndef PRESENCE_SERVER_PRESENCE_LOCAL_DIRECTORY_H_
#define PRESENCE_SERVER_PRESENCE_LOCAL_DIRECTORY_H_

// LocalDirectory attaches streams to presences held on this replica. A
// registered customer has one VS presence per room, however many streams
// they hold there (two tabs, a reconnect racing its old stream): joinRoom
// when the first stream joins, leaveRoom when the last one leaves, the same
// display nickname for all, each stream its own session id. Guests (no
// customer_id) are never shared: each stream gets a presence of its own.
//
// A stream arriving while the customer's last leave is at VS (a reconnect
// racing its own leave) waits for that leave's answer and then joins: joining
// first could reach VS before the leave and be undone by it. The wait is one
// VS round trip, or, while VS fails, as long as the leave is retried
// (--leave_retry_window).
//
// Resume: with a grace (--resume_grace), a joined stream that is lost
// (cancelled, connection gone) leaves its session held: the presence keeps
// being pinged and is not left. The session's token, indexed here, lets one
// later stream of the same viewer (same performer; same customer, or for a
// guest the same nickname) take it over within the grace, once. When the
// grace passes, a boot names the customer, or the server stops, the hold
// ends, and the presence is left if nothing else holds it.
//
// Thread-safe. Lock order: the directory's, then a presence's.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/journal/session_journal.h"
#include "server/presence/local_presence.h"
#include "server/presence/presence.h"
#include "server/presence/presence_context.h"

namespace presence::presences {

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

class LocalDirectory final : public PresenceDirectory {
 public:
  explicit LocalDirectory(const PresenceContext* context) : context_(context) {}

  Attachment Attach(const vs::JoinRoomRequest& join, std::shared_ptr<session::SessionCore> stream,
                    absl::string_view resume_token = {}) override;
  int EndHolds(int64_t customer_id, int64_t performer_id) override;
  void EndAllHolds() override;
  std::vector<std::string> HandOverHolds() override;

  // Takes back what the previous run handed over: `presence`, joined, held
  // by `holds` (those not expired). False when none is left to hold it (the
  // caller leaves it).
  bool Restore(const journal::JournaledSession& presence,
               const std::vector<journal::JournaledHold>& holds);
  // The fleet made this replica the one that pings a customer's shared
  // presence (`owner`), or another one.
  void SetOwner(int64_t performer_id, int64_t customer_id, bool owner);
  int64_t shared_presences() const override;
  int64_t held_sessions() const override;

 private:
  // Attaches to the customer's presence in the room, creating it if needed.
  // Returns the new presence when this stream must send the join.
  std::shared_ptr<LocalPresence> AttachShared(const PresenceKey& key,
                                              const vs::JoinRoomRequest& join,
                                              const std::shared_ptr<session::SessionCore>& stream,
                                              Attachment* attachment);
  std::shared_ptr<LocalPresence> NewShared(const PresenceKey& key, const vs::JoinRoomRequest& join,
                                           const std::string& id);
  void Forget(const PresenceKey& key, const LocalPresence* presence);

  // A session held for a resume.
  struct Held {
    std::shared_ptr<LocalPresence> presence;
    std::string session_id;
    int64_t performer_id = 0;
    std::optional<int64_t> customer_id;
    bool registered = false;
    std::string asked_nickname;
    absl::Time expires;  // Of the scheduler's clock.
  };
  void Index(const std::string& token, Held held);
  void Hold(std::shared_ptr<LocalPresence> presence, const session::SessionCore& stream);
  // The held session `resume_token` names, taken out, if `join` is its viewer's.
  std::optional<Held> TakeHeld(absl::string_view resume_token, const vs::JoinRoomRequest& join);
  void Expire(const std::string& token);
  std::shared_ptr<LocalPresence> NewPresence(const std::string& id,
                                             const vs::JoinRoomRequest& join);

  const PresenceContext* const context_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<PresenceKey, std::shared_ptr<LocalPresence>> shared_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);  // By resume token.
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_LOCAL_DIRECTORY_H_
