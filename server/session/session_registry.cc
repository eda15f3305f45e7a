#include "server/session/session_registry.h"

#include <algorithm>

namespace presence::session {

bool SessionRegistry::TryOpen() {
  int64_t now = open_.fetch_add(1, std::memory_order_relaxed);
  if (now >= max_sessions_) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void SessionRegistry::Close() { open_.fetch_sub(1, std::memory_order_relaxed); }

void SessionRegistry::AddJoined(std::shared_ptr<SessionCore> session) {
  const SessionCore* key = session.get();
  bool added = false;
  {
    Shard& shard = ShardFor(session->identity().performer_id);
    absl::MutexLock lock(&shard.mu);
    added = shard.rooms[session->identity().performer_id].emplace(key, std::move(session)).second;
  }
  if (!added) return;
  joined_.fetch_add(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->StreamJoined(*key);
}

void SessionRegistry::RemoveJoined(const SessionCore& session) {
  int64_t performer_id = session.identity().performer_id;
  bool removed = false;
  {
    Shard& shard = ShardFor(performer_id);
    absl::MutexLock lock(&shard.mu);
    auto room = shard.rooms.find(performer_id);
    if (room == shard.rooms.end()) return;
    removed = room->second.erase(&session) > 0;
    if (room->second.empty()) shard.rooms.erase(room);
  }
  if (!removed) return;
  joined_.fetch_sub(1, std::memory_order_relaxed);
  if (observer_ != nullptr) observer_->StreamLeft(session);
}

std::vector<std::shared_ptr<SessionCore>> SessionRegistry::Room(int64_t performer_id) const {
  std::vector<std::shared_ptr<SessionCore>> out;
  {
    Shard& shard = ShardFor(performer_id);
    absl::MutexLock lock(&shard.mu);
    auto room = shard.rooms.find(performer_id);
    if (room == shard.rooms.end()) return out;
    out.reserve(room->second.size());
    for (const auto& [key, session] : room->second) out.push_back(session);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    if (a->identity().joined_at != b->identity().joined_at) {
      return a->identity().joined_at < b->identity().joined_at;
    }
    return a->id_view() < b->id_view();
  });
  return out;
}

void SessionRegistry::AddJoining(std::shared_ptr<SessionCore> session) {
  absl::MutexLock lock(&joining_mu_);
  const SessionCore* key = session.get();
  joining_.emplace(key, std::move(session));
}

void SessionRegistry::RemoveJoining(const SessionCore& session) {
  absl::MutexLock lock(&joining_mu_);
  joining_.erase(&session);
}

std::vector<std::shared_ptr<SessionCore>> SessionRegistry::AllJoining() const {
  absl::MutexLock lock(&joining_mu_);
  std::vector<std::shared_ptr<SessionCore>> out;
  out.reserve(joining_.size());
  for (const auto& [key, session] : joining_) out.push_back(session);
  return out;
}

std::vector<std::shared_ptr<SessionCore>> SessionRegistry::AllJoined() const {
  std::vector<std::shared_ptr<SessionCore>> out;
  for (Shard& shard : shards_) {
    absl::MutexLock lock(&shard.mu);
    for (const auto& [performer, room] : shard.rooms) {
      for (const auto& [key, session] : room) out.push_back(session);
    }
  }
  return out;
}

}  // namespace presence::session
