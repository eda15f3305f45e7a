#ifndef PRESENCE_SERVER_FLEET_FLEET_H_
#define PRESENCE_SERVER_FLEET_FLEET_H_

// Fleet: what replicas of the gateway share on Redis (--redis_url), so that
// the fleet behaves as one gateway.
//
// - Liveness. Each replica has an id (host name and a random suffix) and a
//   key that expires after --replica_ttl unless the replica renews it.
// - Leaves that survive a replica. Every presence VS accepted is recorded
//   under its replica until VS answers its leave. When a replica's key
//   expires, one survivor claims its records atomically (a Lua script takes
//   and deletes them) and sends one leaveRoom for each. The claimed records
//   are recorded again under the survivor first, so a second death is
//   covered too.
// - Cluster-wide views. Every joined stream is listed in its room's hash, so
//   GetRoom on any replica lists the whole fleet's viewers (entries of dead
//   replicas are skipped and removed). A customerBoot received by one replica
//   is published to all of them.
// - Redis is weather. Nothing on a gRPC or VS thread waits for Redis: records
//   are queued, GetRoom answers from this replica alone when Redis does not
//   answer, and sessions keep being pinged and left exactly once. While Redis
//   is away the replica is "degraded" (log line, metric); when it is back,
//   or back empty, the replica registers again everything it holds.
//
// Keys (hash tags keep each replica's keys, and each room's, on one Redis
// Cluster slot; every Lua script touches one slot):
//   presence:replicas                 sorted set: replica id -> last renewal (ms);
//                                     members silent for a day are dropped
//   presence:{r:ID}:alive             the replica's liveness, PX --replica_ttl
//   presence:{r:ID}:presences         hash: presence id -> performer, customer, shared, nickname
//                                     (expires a day after the replica's last renewal)
//   presence:{r:ID}:taken             a survivor took the records over (a day)
//   presence:{p:PERFORMER:CUSTOMER}   a registered customer's shared presence:
//                                     state, owner, nick, r:<replica> per holder
//   presence:{room:PERFORMER}         hash: session id -> replica, customer, registered,
//                                     joined at, nickname (expires a day after its last write)
//   presence:{h:DIGEST}               a session held for a resume (DIGEST: SHA-256 of its
//                                     token): holder, presence, session, the viewer, the
//                                     display nickname, expires (unix ms), `taking`/`by` while
//                                     a take is unconfirmed; once taken, only `taken` (the
//                                     taker). Expires a minute after its grace.
//   presence:{r:ID}:holds             set: the digests of the holds a replica holds
//   channel presence:own:ID           to one replica: a shared presence it pings now, or
//                                     "drop\tDIGEST" (a hold it had was resumed elsewhere)
//   channel presence:stopped          a replica stopped: survivors take it over at once
//
// Resume across the fleet: a stream whose token this replica does not hold
// takes the hold from Redis (a script checks the viewer and the grace and
// marks it taken; a second one, once the taker has the stream, moves a solo
// presence's record to the taker or adds the taker to a shared presence, and
// tells the holder; a take never confirmed stays the holder's). Each hold's end at its grace is
// decided by one script on its holder (leave it, or it was taken). A stopped or dead replica's
// holds are adopted by the survivor that takes its records over: it pings them and ends them at
// their grace. Scripts name keys they compute (the holder's, the taker's): one Redis, not a
// Cluster.
//
// Thread-safe.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/fleet/redis_client.h"
#include "server/presence/hold_exchange.h"
#include "server/presence/leave_sender.h"
#include "server/presence/presence_coordinator.h"
#include "server/presence/presence_records.h"
#include "server/session/session_registry.h"

namespace presence::fleet {

struct FleetOptions {
  RedisOptions redis;
  // A replica whose liveness key is not renewed for this long is dead.
  absl::Duration replica_ttl = absl::Seconds(10);
  // Empty: the host name and a random suffix.
  std::string replica_id;
};

// One viewer in a room, as GetRoom lists it.
struct RoomEntry {
  std::string replica;
  std::string nickname;
  std::optional<int64_t> customer_id;
  bool registered = false;
  absl::Time joined_at;
};

struct FleetStats {
  RedisStats redis;
  bool degraded = true;
  int64_t takeovers = 0;         // Dead replicas whose records this replica claimed.
  int64_t takeover_leaves = 0;   // leaveRoom sent for a dead replica's presences.
  int64_t takeover_adopted = 0;  // Its presences held for a resume, adopted here.
  int64_t registrations = 0;     // Times this replica registered again all it holds.
  int64_t live_replicas = 0;     // As of the last renewal.
};

class Fleet final : public presences::PresenceRecords,
                    public presences::PresenceCoordinator,
                    public presences::HoldExchange,
                    public session::RoomObserver {
 public:
  // `leaves` sends the takeover leaves; `registry` is listed again after Redis
  // comes back. Both outlive the fleet.
  Fleet(FleetOptions options, presences::LeaveSender* leaves,
        const session::SessionRegistry* registry);
  ~Fleet() override;  // Stop(), if not called.

  // Connects (in the background) and starts renewing liveness.
  absl::Status Start();
  // On shutdown, once this replica's leaves were given their time: forgets the
  // presences `handed_over` to the next start of this server, then gives up
  // liveness at once, so that a survivor takes over what is still recorded
  // (leaves VS did not answer) without waiting for the TTL. Waits at most
  // `timeout` for Redis. Called again while a stop runs in another thread,
  // waits (at most `timeout`) for that one to finish.
  void Stop(const std::vector<std::string>& handed_over = {},
            absl::Duration timeout = absl::Seconds(2));

  const std::string& replica_id() const { return options_.replica_id; }

  // At start, for the replica this process succeeds (the same --state_dir):
  // takes over its records at once rather than after its TTL, on this thread
  // (start-up, not a gRPC one). True when that was done, so the local
  // journal need not leave the presences VS accepted: the fleet did, here or
  // on a survivor, exactly once. False when Redis did not answer in time.
  bool RecoverPrevious(const std::string& previous, absl::Duration timeout);

  // PresenceRecords.
  void Joined(const std::string& id, const vs::RoomPresence& presence) override;
  void Left(const std::string& id) override;
  // PresenceCoordinator: one VS presence per registered customer per room.
  void Claim(int64_t performer_id, int64_t customer_id,
             absl::AnyInvocable<void(Claimed) &&> done) override;
  void Joined(int64_t performer_id, int64_t customer_id, const std::string& nickname) override;
  void Abandon(int64_t performer_id, int64_t customer_id) override;
  void Release(int64_t performer_id, int64_t customer_id,
               absl::AnyInvocable<void(Released) &&> done) override;
  void Gone(int64_t performer_id, int64_t customer_id) override;
  // Set before Start: this replica became (or stopped being) the one that
  // pings a customer's shared presence.
  void set_on_owner(std::function<void(int64_t performer_id, int64_t customer_id, bool owner)> f) {
    on_owner_ = std::move(f);
  }

  // HoldExchange: sessions held for a resume, shared by the fleet.
  void Held(const presences::HoldRecord& hold) override;
  void Take(const presences::HoldRecord& viewer, const std::string& presence_id,
            absl::AnyInvocable<void(std::optional<Taken>) &&> done) override;
  void Expire(const std::string& digest, absl::AnyInvocable<void(Expiry) &&> done) override;
  void Ended(const std::string& digest) override;
  // Set before Start: a hold of this replica was resumed on another one.
  void set_on_dropped(std::function<void(const std::string& digest)> f) {
    on_dropped_ = std::move(f);
  }
  // Set before Start: a stopped or dead replica's held presence, adopted here.
  void set_on_adopt(std::function<void(const presences::AdoptedPresence&)> f) {
    on_adopt_ = std::move(f);
  }

  // RoomObserver.
  void StreamJoined(const session::SessionCore& session) override;
  void StreamLeft(const session::SessionCore& session) override;

  // The fleet's viewers in a room; an error when Redis does not answer (the
  // caller answers from this replica alone). `done` runs on the Redis thread.
  void Room(int64_t performer_id,
            absl::AnyInvocable<void(absl::StatusOr<std::vector<RoomEntry>>) &&> done);

  // Tells every other replica of VS's customerBoot; they end the customer's
  // streams with `on_boot`. performer 0: every room.
  void PublishBoot(int64_t customer_id, int64_t performer_id);
  // Set before Start: what a boot published by another replica does here.
  void set_on_boot(std::function<void(int64_t customer_id, int64_t performer_id)> on_boot) {
    on_boot_ = std::move(on_boot);
  }

  FleetStats stats() const;

 private:
  void RenewLoop();
  void Renew();
  // Wakes the renewal now (a replica stopped: take it over at once).
  void Wake();
  // Renews liveness if a quarter of the TTL passed since the last renewal
  // (the renewal thread, busy taking a replica over).
  void KeepAlive();
  // Claims a dead replica's records and leaves them, or adopts those it held
  // for a resume; false when it could not (Redis away, or the replica is
  // alive after all).
  bool TakeOver(const std::string& dead, int64_t* records = nullptr);
  enum class Outcome { kSkipped, kLeft, kAdopted, kStays, kUnfinished };
  // One of the dead replica's records; `held`: its holds, by presence id;
  // `rooms` gains the record's room (its entries there are removed after).
  Outcome TakeOverRecord(const std::string& dead, const std::string& id, const std::string& record,
                         absl::flat_hash_map<std::string, presences::AdoptedPresence>* held,
                         absl::flat_hash_set<int64_t>* rooms);
  void Adopt(presences::AdoptedPresence adopted);
  void SendHold(const presences::HoldRecord& hold);
  // The second step of a take: the presence becomes this replica's.
  void Confirm(const std::string& digest, const std::string& presence_id);
  // A hold of this replica was taken elsewhere.
  void Dropped(const std::string& digest);
  // After every (re)connection: liveness, then this replica's records, room
  // entries and shared presences, as if Redis had forgotten them.
  void RegisterAgain();
  void RegisterRecords();
  size_t RegisterRooms();  // Returns the number of rooms.
  size_t RegisterShared();
  size_t RegisterHolds();
  void OnBootMessage(const std::string& message);
  void OnOwnerMessage(const std::string& message);
  // Releases a dead replica's hold on a shared presence. The display
  // nickname when no live replica holds it any more (this one leaves it);
  // nullopt when one still does.
  absl::StatusOr<std::optional<std::string>> ReleaseDead(const std::string& dead,
                                                         int64_t performer_id, int64_t customer_id);
  // Fire and forget: a failure leaves the registration to the next reconnection.
  void Send(std::vector<std::string> argv);
  // Waits (on our own thread, never a gRPC or VS one) for one command.
  absl::StatusOr<RedisReply> Await(std::vector<std::string> argv, absl::Duration timeout);

  std::string PresencesKey(const std::string& replica) const;
  std::string AliveKey(const std::string& replica) const;
  std::string TakenKey(const std::string& replica) const;
  static std::string RoomKey(int64_t performer_id);
  static std::string SharedKey(int64_t performer_id, int64_t customer_id);
  std::string OwnerChannel(const std::string& replica) const;
  std::string HoldsKey(const std::string& replica) const;
  static std::string HoldKey(const std::string& digest);

  FleetOptions options_;
  presences::LeaveSender* const leaves_;
  const session::SessionRegistry* const registry_;
  std::unique_ptr<RedisClient> redis_;
  std::function<void(int64_t, int64_t)> on_boot_;
  std::function<void(int64_t, int64_t, bool)> on_owner_;
  std::function<void(const std::string&)> on_dropped_;
  std::function<void(const presences::AdoptedPresence&)> on_adopt_;
  std::thread renew_;
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;  // Renew now, or stop.
  std::atomic<bool> stopped_{false};
  absl::Notification stop_done_;  // The first Stop returned.
  absl::Time alive_sent_;         // The renewal thread's.

  std::atomic<int64_t> takeovers_{0};
  std::atomic<int64_t> takeover_leaves_{0};
  std::atomic<int64_t> takeover_adopted_{0};
  std::atomic<int64_t> registrations_{0};

  mutable absl::Mutex mu_;
  // What this replica has recorded, to record it again after Redis is back.
  absl::flat_hash_map<std::string, std::string> presences_ ABSL_GUARDED_BY(mu_);
  // The registered customers' shared presences this replica holds in the
  // fleet, by (performer, customer): VS's display nickname, empty while
  // joining. (Whether this replica pings one is its LocalPresence's.)
  absl::flat_hash_map<std::pair<int64_t, int64_t>, std::string> shared_ ABSL_GUARDED_BY(mu_);
  // Room entries removed while Redis was away (their removal is replayed).
  std::vector<std::pair<int64_t, std::string>> unremoved_ ABSL_GUARDED_BY(mu_);
  // The sessions this replica holds for a resume, by digest, to register
  // them again after Redis is back.
  absl::flat_hash_map<std::string, presences::HoldRecord> holds_ ABSL_GUARDED_BY(mu_);
  // Takes whose confirmation Redis did not answer: (digest, presence id).
  std::vector<std::pair<std::string, std::string>> unconfirmed_ ABSL_GUARDED_BY(mu_);
  // Replicas alive at the last renewal (GetRoom skips the others' entries).
  absl::flat_hash_set<std::string> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::fleet

#endif  // PRESENCE_SERVER_FLEET_FLEET_H_
