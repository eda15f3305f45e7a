#include "server/session/presence_table.h"

#include <algorithm>
#include <utility>

namespace presence::session {

PresenceTable::AttachResult PresenceTable::Attach(const PresenceKey& key,
                                                  std::shared_ptr<SessionCore> core) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    Entry entry;
    entry.presence = std::make_shared<SharedPresence>(key, core->id());
    entry.owner = std::move(core);
    std::shared_ptr<SharedPresence> presence = entry.presence;
    entries_.emplace(key, std::move(entry));
    return {Attached::kSendJoin, std::move(presence)};
  }
  Entry& entry = it->second;
  switch (entry.state) {
    case State::kJoining:
      entry.waiters.push_back(std::move(core));
      return {Attached::kWaitForJoin, entry.presence};
    case State::kJoined:
      entry.members.push_back(std::move(core));
      return {Attached::kJoined, entry.presence};
    case State::kLeaving:
      break;
  }
  return {Attached::kLeaving, nullptr};
}

std::vector<std::shared_ptr<SessionCore>> PresenceTable::JoinDone(
    const PresenceKey& key, bool accepted, const std::string& display_nickname) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end()) return {};
  Entry& entry = it->second;
  std::vector<std::shared_ptr<SessionCore>> waiters = std::move(entry.waiters);
  entry.waiters.clear();
  if (!accepted) {
    entries_.erase(it);
    return waiters;
  }
  entry.presence->display_nickname_ = display_nickname;
  entry.state = State::kJoined;
  entry.members.push_back(std::move(entry.owner));
  entry.members.insert(entry.members.end(), waiters.begin(), waiters.end());
  return waiters;
}

bool PresenceTable::Detach(const PresenceKey& key, const SessionCore* core) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || it->second.state != State::kJoined) return false;
  auto& members = it->second.members;
  auto member = std::find_if(members.begin(), members.end(),
                             [core](const auto& m) { return m.get() == core; });
  if (member == members.end()) return false;
  members.erase(member);
  if (!members.empty()) return false;
  it->second.state = State::kLeaving;
  return true;
}

void PresenceTable::LeaveDone(const PresenceKey& key, const SharedPresence* presence) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.presence.get() == presence &&
      it->second.state == State::kLeaving) {
    entries_.erase(it);
  }
}

std::vector<std::shared_ptr<SessionCore>> PresenceTable::Members(
    const SharedPresence& presence) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(presence.key());
  if (it == entries_.end() || it->second.presence.get() != &presence) return {};
  return it->second.members;
}

int64_t PresenceTable::size() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

}  // namespace presence::session
