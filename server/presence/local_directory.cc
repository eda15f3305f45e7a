#include "server/presence/local_directory.h"

#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "server/base/sha256.h"

namespace presence::presences {

using session::JoinAnswer;
using session::SessionCore;

namespace {

// When the fleet does not answer whether a hold whose grace ran out was
// taken elsewhere, it is asked again this often, and after this long this
// replica ends the hold on its own.
constexpr absl::Duration kExpiryRetry = absl::Seconds(1);
constexpr absl::Duration kExpiryPatience = absl::Seconds(30);

// What a resume must match, as the fleet checks it.
HoldRecord ViewerOf(const std::string& digest, const vs::JoinRoomRequest& join) {
  HoldRecord viewer;
  viewer.digest = digest;
  viewer.performer_id = join.performer_id;
  viewer.customer_id = join.customer_id;
  viewer.registered = join.registered;
  viewer.asked_nickname = join.nickname;
  return viewer;
}

}  // namespace

Attachment LocalDirectory::Attach(const vs::JoinRoomRequest& join,
                                  std::shared_ptr<SessionCore> stream,
                                  absl::string_view resume_token) {
  Attachment attachment;
  const std::string digest = resume_token.empty() ? "" : base::Sha256Hex(resume_token);
  std::optional<Held> held = TakeHeld(digest, join);
  if (!held.has_value() && !digest.empty() && context_->holds != nullptr) {
    TakeFromFleet(digest, join, stream, &attachment);
    return attachment;
  }
  if (held.has_value()) {
    if (context_->holds != nullptr) context_->holds->Ended(digest);
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

void LocalDirectory::TakeFromFleet(const std::string& digest, const vs::JoinRoomRequest& join,
                                   const std::shared_ptr<SessionCore>& stream,
                                   Attachment* attachment) {
  std::shared_ptr<LocalPresence> joining;
  if (join.registered && join.customer_id.has_value()) {
    // Attached to the customer's presence this replica holds already: the
    // hold elsewhere is left to its grace (it ends without a leave, since
    // this replica holds the presence too).
    joining = AttachShared({join.performer_id, *join.customer_id}, join, stream, attachment);
    if (joining == nullptr) return;
  } else {
    joining = NewPresence(stream->id(), join);
  }
  attachment->presence = joining;
  joining->TakeOver(stream, ViewerOf(digest, join));
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
        std::shared_ptr<LocalPresence> successor = NewShared(join, stream->id());
        if (!successor->JoinAfter(*it->second, stream)) break;  // Gone meanwhile.
        shared_[key] = successor;
        attachment->presence = std::move(successor);
        return nullptr;
      }
      case LocalPresence::Shared::kGone:
        break;  // As good as absent: replaced below.
    }
  }
  std::shared_ptr<LocalPresence> presence = NewShared(join, stream->id());
  shared_[key] = presence;
  return presence;
}

std::shared_ptr<LocalPresence> LocalDirectory::NewShared(const vs::JoinRoomRequest& join,
                                                         const std::string& id) {
  return std::make_shared<LocalPresence>(context_, id, join, owner(), /*shared=*/true);
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
  return std::make_shared<LocalPresence>(context_, id, join, owner());
}

void LocalDirectory::Hold(std::shared_ptr<LocalPresence> presence, const SessionCore& stream) {
  const session::SessionIdentity& who = stream.identity();
  const session::Resumable& resumable = *who.resumable;
  metrics::Increment(context_->counters->holds_started);
  const std::string digest = base::Sha256Hex(resumable.token);
  if (context_->holds != nullptr) {
    context_->holds->Held({digest, presence->id(), resumable.session_id, who.performer_id,
                           who.customer_id, who.registered, presence->fleet_shared(),
                           resumable.asked_nickname, presence->display_nickname(),
                           absl::Now() + context_->resume_grace});
  }
  Index(digest,
        Held{std::move(presence), resumable.session_id, who.performer_id, who.customer_id,
             who.registered, resumable.asked_nickname,
             context_->scheduler->clock()->Now() + context_->resume_grace, resumable.token});
}

void LocalDirectory::Index(const std::string& digest, Held held) {
  absl::Time expires = held.expires;
  {
    absl::MutexLock lock(&mu_);
    held_[digest] = std::move(held);
  }
  context_->scheduler->RunAt(expires, [this, digest] { Expire(digest); });
}

void LocalDirectory::Adopt(const AdoptedPresence& adopted) {
  if (adopted.holds.empty()) return;
  const HoldRecord& first = adopted.holds.front();
  vs::JoinRoomRequest join;
  join.performer_id = adopted.presence.performer_id;
  join.customer_id = adopted.presence.customer_id;
  join.registered = first.registered;
  join.nickname = first.asked_nickname;
  const int holds = static_cast<int>(adopted.holds.size());
  std::shared_ptr<LocalPresence> presence;
  bool held_here = false;  // The customer's presence in the room is held here already.
  if (adopted.shared && join.customer_id.has_value()) {
    PresenceKey key{join.performer_id, *join.customer_id};
    absl::MutexLock lock(&mu_);
    auto it = shared_.find(key);
    held_here = it != shared_.end() && it->second->AddHolds(holds);
    if (held_here) {
      presence = it->second;
    } else {
      presence = NewShared(join, adopted.id);
      shared_[key] = presence;
    }
  } else {
    presence = NewPresence(adopted.id, join);
  }
  if (!held_here) {
    presence->RestoreHeld(adopted.presence.nickname, holds, adopted.shared, adopted.owner);
    if (context_->journal != nullptr && !adopted.shared) {
      context_->journal->RecordJoin(
          {adopted.id, join.performer_id, join.customer_id, adopted.presence.nickname});
    }
  }
  metrics::Add(context_->counters->holds_adopted, holds);
  const absl::Time now = context_->scheduler->clock()->Now();
  const absl::Time wall = absl::Now();
  for (const HoldRecord& h : adopted.holds) {
    Index(h.digest, Held{presence, h.session_id, h.performer_id, h.customer_id, h.registered,
                         h.asked_nickname, now + (h.expires - wall), ""});
  }
}

std::vector<std::string> LocalDirectory::HandOverHolds() {
  absl::MutexLock lock(&mu_);
  handed_over_ = true;
  if (context_->holds != nullptr) {
    // The fleet has every hold: the replica that takes this one over ends
    // them. Nothing is forgotten by the fleet, nothing written here.
    return {};
  }
  if (context_->journal == nullptr) return {};
  const absl::Time now = context_->scheduler->clock()->Now();
  absl::flat_hash_set<std::string> ids;
  for (const auto& [digest, h] : held_) {
    if (h.token.empty()) continue;  // Adopted: the fleet's, not this server's.
    context_->journal->RecordHold({h.presence->id(), h.token, h.session_id, h.performer_id,
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
    presence = NewShared(join, journaled.session_id);
    absl::MutexLock lock(&mu_);
    shared_[key] = presence;
  } else {
    presence = NewPresence(journaled.session_id, join);
  }
  presence->RestoreHeld(journaled.nickname, static_cast<int>(live.size()));
  const absl::Time now = context_->scheduler->clock()->Now();
  for (const journal::JournaledHold* h : live) {
    Index(base::Sha256Hex(h->token),
          Held{presence, h->session_id, h->performer_id, h->customer_id, h->registered,
               h->asked_nickname, now + (h->expires - absl::Now()), h->token});
  }
  return true;
}

std::optional<LocalDirectory::Held> LocalDirectory::TakeHeld(const std::string& digest,
                                                             const vs::JoinRoomRequest& join) {
  if (digest.empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = held_.find(digest);
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

std::optional<LocalDirectory::Held> LocalDirectory::Unindex(const std::string& digest) {
  absl::MutexLock lock(&mu_);
  auto it = held_.find(digest);
  if (it == held_.end()) return std::nullopt;  // Resumed or ended already.
  Held held = std::move(it->second);
  held_.erase(it);
  return held;
}

void LocalDirectory::Expire(const std::string& digest) {
  {
    absl::MutexLock lock(&mu_);
    // Handed over: the next start or the fleet's survivor ends it.
    if (handed_over_ || !held_.contains(digest)) return;  // Or resumed, taken, ended.
  }
  if (context_->holds == nullptr) {
    EndExpired(digest);
    return;
  }
  // In a fleet, the hold may have been taken elsewhere (and the message
  // saying so lost): the fleet decides, once, who ends it.
  context_->holds->Expire(
      digest, [this, digest](HoldExchange::Expiry expiry) { OnExpiry(digest, expiry); });
}

void LocalDirectory::OnExpiry(const std::string& digest, HoldExchange::Expiry expiry) {
  switch (expiry) {
    case HoldExchange::Expiry::kLeave:
      EndExpired(digest);
      return;
    case HoldExchange::Expiry::kTaken:
      DropHeld(digest);
      return;
    case HoldExchange::Expiry::kRetry:
      break;
  }
  absl::Time expires;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(digest);
    if (it == held_.end()) return;
    expires = it->second.expires;
  }
  const absl::Time now = context_->scheduler->clock()->Now();
  if (now - expires >= kExpiryPatience) {
    EndExpired(digest);  // The fleet stays silent: this replica decides alone.
    return;
  }
  context_->scheduler->RunAt(now + kExpiryRetry, [this, digest] { Expire(digest); });
}

void LocalDirectory::EndExpired(const std::string& digest) {
  std::optional<Held> held = Unindex(digest);
  if (!held.has_value()) return;
  metrics::Increment(context_->counters->holds_expired);
  if (held->presence->EndHold()) metrics::Increment(context_->counters->leaves_after_grace);
}

void LocalDirectory::DropHeld(const std::string& digest) {
  std::optional<Held> held = Unindex(digest);
  if (!held.has_value()) return;
  metrics::Increment(context_->counters->holds_moved);
  held->presence->DropHold();
}

int LocalDirectory::EndHolds(int64_t customer_id, int64_t performer_id) {
  std::vector<std::shared_ptr<LocalPresence>> ended;
  std::vector<std::string> digests;
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
      digests.push_back(it->first);
      held_.erase(it++);
    }
  }
  if (context_->holds != nullptr) {
    for (const std::string& digest : digests) context_->holds->Ended(digest);
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
  for (auto& [digest, held] : all) {
    if (context_->holds != nullptr) context_->holds->Ended(digest);
    held.presence->EndHold();
  }
}

int64_t LocalDirectory::held_sessions() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(held_.size());
}

void LocalDirectory::Gone(const LocalPresence& presence) {
  const vs::JoinRoomRequest& join = presence.join();
  if (!presence.shared() || !join.customer_id.has_value()) return;
  absl::MutexLock lock(&mu_);
  auto it = shared_.find(PresenceKey{join.performer_id, *join.customer_id});
  if (it != shared_.end() && it->second.get() == &presence) shared_.erase(it);
}

int64_t LocalDirectory::shared_presences() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(shared_.size());
}

}  // namespace presence::presences
