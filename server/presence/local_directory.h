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
// In a fleet (PresenceContext::holds), every hold is shared too: a token this
// replica does not hold is taken from the replica that does (the stream's
// presence first asks the fleet, then joins afresh if nobody holds it), the
// holder lets the session go without a leave (DropHeld), each hold's end at
// its grace is decided by the fleet (one replica leaves it), and a stopped
// or dead replica's holds are adopted by a survivor (Adopt). Holds are
// indexed by their token's SHA-256: a survivor knows only that.
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
#include "server/presence/hold_exchange.h"
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

class LocalDirectory final : public PresenceDirectory, private PresenceOwner {
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
  // Another replica took the held session `digest` over: it is let go
  // without a leave.
  void DropHeld(const std::string& digest);
  // A dead or stopped replica's presence, with the sessions it held: this
  // replica pings it from now on, and ends each hold at its grace.
  void Adopt(const AdoptedPresence& adopted);
  int64_t shared_presences() const override;
  int64_t held_sessions() const override;

 private:
  // Attaches to the customer's presence in the room, creating it if needed.
  // Returns the new presence when this stream must send the join.
  std::shared_ptr<LocalPresence> AttachShared(const PresenceKey& key,
                                              const vs::JoinRoomRequest& join,
                                              const std::shared_ptr<session::SessionCore>& stream,
                                              Attachment* attachment);
  std::shared_ptr<LocalPresence> NewShared(const vs::JoinRoomRequest& join, const std::string& id);
  // PresenceOwner: a shared presence that is gone is forgotten.
  void Gone(const LocalPresence& presence) override;
  PresenceOwner* owner() { return this; }

  // A session held for a resume.
  struct Held {
    std::shared_ptr<LocalPresence> presence;
    std::string session_id;
    int64_t performer_id = 0;
    std::optional<int64_t> customer_id;
    bool registered = false;
    std::string asked_nickname;
    absl::Time expires;  // Of the scheduler's clock.
    std::string token;   // Empty when adopted from another replica (only its digest is known).
  };
  void Index(const std::string& digest, Held held);
  void Hold(std::shared_ptr<LocalPresence> presence, const session::SessionCore& stream) override;
  // The held session `digest` names, taken out, if `join` is its viewer's.
  std::optional<Held> TakeHeld(const std::string& digest, const vs::JoinRoomRequest& join);
  // A session held by another replica, whose token a stream on this one
  // brought: taken over through the fleet if that replica holds it.
  void TakeFromFleet(const std::string& digest, const vs::JoinRoomRequest& join,
                     const std::shared_ptr<session::SessionCore>& stream, Attachment* attachment);
  std::optional<Held> Unindex(const std::string& digest);
  void Expire(const std::string& digest);
  void OnExpiry(const std::string& digest, HoldExchange::Expiry expiry);
  // The grace of `digest` ran out: the hold ends, and the presence is left
  // if nothing else holds it.
  void EndExpired(const std::string& digest);
  std::shared_ptr<LocalPresence> NewPresence(const std::string& id,
                                             const vs::JoinRoomRequest& join);

  const PresenceContext* const context_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<PresenceKey, std::shared_ptr<LocalPresence>> shared_ ABSL_GUARDED_BY(mu_);
  // By the SHA-256 of the resume token.
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
  // The server stops and handed its holds over: they are not ended here.
  bool handed_over_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace presence::presences

#endif  // PRESENCE_SERVER_PRESENCE_LOCAL_DIRECTORY_H_
