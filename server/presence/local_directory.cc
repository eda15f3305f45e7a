#include "server/presence/local_directory.h"

#include <utility>

namespace presence::presences {

using session::JoinAnswer;
using session::SessionCore;

Attachment LocalDirectory::Attach(const vs::JoinRoomRequest& join,
                                  std::shared_ptr<SessionCore> stream) {
  Attachment attachment;
  std::shared_ptr<LocalPresence> joining;
  if (join.registered && join.customer_id.has_value()) {
    joining = AttachShared({join.performer_id, *join.customer_id}, join, stream, &attachment);
  } else {
    joining = std::make_shared<LocalPresence>(context_, stream->id(), join);
  }
  if (joining != nullptr) {
    attachment.presence = joining;
    attachment.answer = joining->Join(std::move(stream));
  }
  return attachment;
}

std::shared_ptr<LocalPresence> LocalDirectory::AttachShared(
    const PresenceKey& key, const vs::JoinRoomRequest& join,
    const std::shared_ptr<SessionCore>& stream, Attachment* attachment) {
  absl::MutexLock lock(&mu_);
  auto it = shared_.find(key);
  if (it != shared_.end()) {
    JoinAnswer now;
    switch (it->second->Share(stream, &now)) {
      case LocalPresence::Shared::kWaiting:
        metrics::Increment(context_->counters->joins_shared);
        attachment->presence = it->second;
        return nullptr;
      case LocalPresence::Shared::kJoined:
        metrics::Increment(context_->counters->joins_shared);
        attachment->presence = it->second;
        attachment->answer = std::move(now);
        return nullptr;
      case LocalPresence::Shared::kLeaving: {
        // The customer's last leave is at VS: the join waits for its answer.
        std::shared_ptr<LocalPresence> successor = NewShared(key, join, *stream);
        if (!successor->JoinAfter(*it->second, stream)) break;  // Gone meanwhile.
        shared_[key] = successor;
        attachment->presence = std::move(successor);
        return nullptr;
      }
      case LocalPresence::Shared::kGone:
        break;  // As good as absent: replaced below.
    }
  }
  std::shared_ptr<LocalPresence> presence = NewShared(key, join, *stream);
  shared_[key] = presence;
  return presence;
}

std::shared_ptr<LocalPresence> LocalDirectory::NewShared(const PresenceKey& key,
                                                         const vs::JoinRoomRequest& join,
                                                         const SessionCore& first) {
  return std::make_shared<LocalPresence>(
      context_, first.id(), join, [this, key](const LocalPresence* gone) { Forget(key, gone); });
}

void LocalDirectory::Forget(const PresenceKey& key, const LocalPresence* presence) {
  absl::MutexLock lock(&mu_);
  auto it = shared_.find(key);
  if (it != shared_.end() && it->second.get() == presence) shared_.erase(it);
}

int64_t LocalDirectory::shared_presences() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(shared_.size());
}

}  // namespace presence::presences
