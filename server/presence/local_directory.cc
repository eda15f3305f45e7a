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
      case LocalPresence::Shared::kLeaving:
        attachment->answer = JoinAnswer{
            vs::NotTaken(absl::UnavailableError(
                "this customer's previous presence in the room is still being left at VS; "
                "retry in a moment")),
            ""};
        return nullptr;
      case LocalPresence::Shared::kGone:
        break;  // As good as absent: replaced below.
    }
  }
  auto presence = std::make_shared<LocalPresence>(
      context_, stream->id(), join, [this, key](const LocalPresence* gone) { Forget(key, gone); });
  shared_[key] = presence;
  return presence;
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
