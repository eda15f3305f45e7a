#include "server/presence/local_directory.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace presence::presences {

using session::JoinAnswer;
using session::SessionCore;

Attachment LocalDirectory::Attach(const vs::JoinRoomRequest& join,
                                  std::shared_ptr<SessionCore> stream,
                                  absl::string_view resume_token) {
  Attachment attachment;
  if (std::optional<Held> held = TakeHeld(resume_token, join); held.has_value()) {
    JoinAnswer now;
    if (held->presence->Resume(stream, &now)) {
      metrics::Increment(context_->counters->resumes);
      now.resumed_session_id = held->session_id;
      attachment.presence = held->presence;
      attachment.answer = std::move(now);
      return attachment;
    }
    // No longer joined (left for another reason meanwhile): the hold is
    // released, and the stream joins afresh.
    held->presence->EndHold();
  }
  std::shared_ptr<LocalPresence> joining;
  if (join.registered && join.customer_id.has_value()) {
    joining = AttachShared({join.performer_id, *join.customer_id}, join, stream, &attachment);
  } else {
    joining = NewPresence(stream->id(), join);
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
        std::shared_ptr<LocalPresence> successor = NewShared(key, join, stream->id());
        if (!successor->JoinAfter(*it->second, stream)) break;  // Gone meanwhile.
        shared_[key] = successor;
        attachment->presence = std::move(successor);
        return nullptr;
      }
      case LocalPresence::Shared::kGone:
        break;  // As good as absent: replaced below.
    }
  }
  std::shared_ptr<LocalPresence> presence = NewShared(key, join, stream->id());
  shared_[key] = presence;
  return presence;
}

std::shared_ptr<LocalPresence> LocalDirectory::NewShared(const PresenceKey& key,
                                                         const vs::JoinRoomRequest& join,
                                                         const std::string& id) {
  return std::make_shared<LocalPresence>(
      context_, id, join, [this, key](const LocalPresence* gone) { Forget(key, gone); },
      [this](std::shared_ptr<LocalPresence> p, const SessionCore& s) { Hold(std::move(p), s); },
      /*shared=*/true);
}

void LocalDirectory::SetOwner(int64_t performer_id, int64_t customer_id, bool owner) {
  std::shared_ptr<LocalPresence> presence;
  {
    absl::MutexLock lock(&mu_);
    auto it = shared_.find(PresenceKey{performer_id, customer_id});
    if (it == shared_.end()) return;
    presence = it->second;
  }
  presence->SetPinging(owner);
}

std::shared_ptr<LocalPresence> LocalDirectory::NewPresence(const std::string& id,
                                                           const vs::JoinRoomRequest& join) {
  return std::make_shared<LocalPresence>(
      context_, id, join, nullptr,
      [this](std::shared_ptr<LocalPresence> p, const SessionCore& s) { Hold(std::move(p), s); });
}

void LocalDirectory::Hold(std::shared_ptr<LocalPresence> presence, const SessionCore& stream) {
  const session::SessionIdentity& who = stream.identity();
  const session::Resumable& resumable = *who.resumable;
  metrics::Increment(context_->counters->holds_started);
  Index(resumable.token, Held{std::move(presence), resumable.session_id, who.performer_id,
                              who.customer_id, who.registered, resumable.asked_nickname,
                              context_->scheduler->clock()->Now() + context_->resume_grace});
}

void LocalDirectory::Index(const std::string& token, Held held) {
  absl::Time expires = held.expires;
  {
    absl::MutexLock lock(&mu_);
    held_[token] = std::move(held);
  }
  context_->scheduler->RunAt(expires, [this, token] { Expire(token); });
}

std::vector<std::string> LocalDirectory::HandOverHolds() {
  if (context_->journal == nullptr) return {};
  absl::MutexLock lock(&mu_);
  const absl::Time now = context_->scheduler->clock()->Now();
  absl::flat_hash_set<std::string> ids;
  for (const auto& [token, h] : held_) {
    context_->journal->RecordHold({h.presence->id(), token, h.session_id, h.performer_id,
                                   h.customer_id, h.registered, h.asked_nickname,
                                   absl::Now() + (h.expires - now)});
    ids.insert(h.presence->id());
  }
  return {ids.begin(), ids.end()};
}

bool LocalDirectory::Restore(const journal::JournaledSession& journaled,
                             const std::vector<journal::JournaledHold>& holds) {
  std::vector<const journal::JournaledHold*> live;
  for (const auto& h : holds) {
    if (h.presence_id == journaled.session_id && h.expires > absl::Now()) live.push_back(&h);
  }
  if (live.empty()) return false;
  vs::JoinRoomRequest join;
  join.performer_id = journaled.performer_id;
  join.customer_id = journaled.customer_id;
  join.registered = live[0]->registered;
  join.nickname = live[0]->asked_nickname;
  std::shared_ptr<LocalPresence> presence;
  if (join.registered && join.customer_id.has_value()) {
    PresenceKey key{join.performer_id, *join.customer_id};
    presence = NewShared(key, join, journaled.session_id);
    absl::MutexLock lock(&mu_);
    shared_[key] = presence;
  } else {
    presence = NewPresence(journaled.session_id, join);
  }
  presence->RestoreHeld(journaled.nickname, static_cast<int>(live.size()));
  const absl::Time now = context_->scheduler->clock()->Now();
  for (const journal::JournaledHold* h : live) {
    Index(h->token, Held{presence, h->session_id, h->performer_id, h->customer_id, h->registered,
                         h->asked_nickname, now + (h->expires - absl::Now())});
  }
  return true;
}

std::optional<LocalDirectory::Held> LocalDirectory::TakeHeld(absl::string_view resume_token,
                                                             const vs::JoinRoomRequest& join) {
  if (resume_token.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = held_.find(resume_token);
  if (it == held_.end()) return std::nullopt;
  const Held& h = it->second;
  // The same viewer: the same room, and the same customer (a guest: the same
  // nickname as asked). Anything else joins afresh and leaves the hold be.
  bool same = h.performer_id == join.performer_id && h.registered == join.registered &&
              h.customer_id == join.customer_id &&
              (h.registered || h.asked_nickname == join.nickname);
  if (!same) return std::nullopt;
  Held held = std::move(it->second);
  held_.erase(it);
  return held;
}

void LocalDirectory::Expire(const std::string& token) {
  std::shared_ptr<LocalPresence> presence;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(token);
    if (it == held_.end()) return;  // Resumed or ended already.
    presence = std::move(it->second.presence);
    held_.erase(it);
  }
  metrics::Increment(context_->counters->holds_expired);
  if (presence->EndHold()) metrics::Increment(context_->counters->leaves_after_grace);
}

int LocalDirectory::EndHolds(int64_t customer_id, int64_t performer_id) {
  std::vector<std::shared_ptr<LocalPresence>> ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = held_.begin(); it != held_.end();) {
      const Held& h = it->second;
      bool match =
          h.customer_id == customer_id && (performer_id == 0 || h.performer_id == performer_id);
      if (!match) {
        ++it;
        continue;
      }
      ended.push_back(std::move(it->second.presence));
      held_.erase(it++);
    }
  }
  for (const auto& presence : ended) presence->EndHold();
  return static_cast<int>(ended.size());
}

void LocalDirectory::EndAllHolds() {
  absl::flat_hash_map<std::string, Held> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(held_);
  }
  for (auto& [token, held] : all) held.presence->EndHold();
}

int64_t LocalDirectory::held_sessions() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(held_.size());
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
