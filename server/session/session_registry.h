#ifndef PRESENCE_SERVER_SESSION_SESSION_REGISTRY_H_
#define PRESENCE_SERVER_SESSION_SESSION_REGISTRY_H_

// SessionRegistry knows which sessions are open and who is present in which
// room through this server: the session limit, GetRoom, and the drain on
// shutdown read it.
//
// Thread-safe. Rooms are sharded by performer id so joins and leaves in
// different rooms rarely share a lock.

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "server/session/session_core.h"

namespace presence::session {

// Told of every stream that joins a room and leaves it (the fleet lists them
// in Redis for GetRoom on any replica). Called outside the registry's locks;
// must not block.
class RoomObserver {
 public:
  virtual ~RoomObserver() = default;
  virtual void StreamJoined(const SessionCore& session) = 0;
  virtual void StreamLeft(const SessionCore& session) = 0;
};

class SessionRegistry {
 public:
  explicit SessionRegistry(int64_t max_sessions) : max_sessions_(max_sessions) {}

  // Set once at start-up, before any stream joins.
  void set_observer(RoomObserver* observer) { observer_ = observer; }

  // Counts a new stream against the limit; false when the server is full.
  bool TryOpen();
  // Releases a stream counted by TryOpen.
  void Close();

  void AddJoined(std::shared_ptr<SessionCore> session);
  void RemoveJoined(const SessionCore& session);

  // Streams whose join is at VS (a boot must reach them too). Their
  // identity's performer and customer are set; the rest is not yet.
  void AddJoining(std::shared_ptr<SessionCore> session);
  void RemoveJoining(const SessionCore& session);
  std::vector<std::shared_ptr<SessionCore>> AllJoining() const;

  // The sessions present in a room, oldest join first.
  std::vector<std::shared_ptr<SessionCore>> Room(int64_t performer_id) const;
  // Every joined session (for the drain on shutdown).
  std::vector<std::shared_ptr<SessionCore>> AllJoined() const;

  int64_t open() const { return open_.load(std::memory_order_relaxed); }
  int64_t joined() const { return joined_.load(std::memory_order_relaxed); }
  int64_t max_sessions() const { return max_sessions_; }

 private:
  static constexpr int kShards = 64;
  using Room_ = absl::flat_hash_map<const SessionCore*, std::shared_ptr<SessionCore>>;
  struct Shard {
    mutable absl::Mutex mu;
    absl::flat_hash_map<int64_t, Room_> rooms ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(int64_t performer_id) const {
    return shards_[static_cast<uint64_t>(performer_id) % kShards];
  }

  const int64_t max_sessions_;
  RoomObserver* observer_ = nullptr;
  std::atomic<int64_t> open_{0};
  std::atomic<int64_t> joined_{0};
  mutable std::array<Shard, kShards> shards_;
  mutable absl::Mutex joining_mu_;
  absl::flat_hash_map<const SessionCore*, std::shared_ptr<SessionCore>> joining_
      ABSL_GUARDED_BY(joining_mu_);
};

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_SESSION_REGISTRY_H_
