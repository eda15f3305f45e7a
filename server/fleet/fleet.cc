#include "server/fleet/fleet.h"

#include <unistd.h>

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "server/log/log.h"

namespace presence::fleet {
namespace {

constexpr char kReplicas[] = "presence:replicas";
constexpr char kBootChannel[] = "presence:boot";
constexpr int64_t kRoomExpiryMs = 24 * 3600 * 1000;
constexpr int64_t kRecordsExpiryMs = 24 * 3600 * 1000;
constexpr size_t kFieldsPerCommand = 500;

// Takes a dead replica's records, once: nothing if it is alive after all.
// KEYS[1] its liveness key, KEYS[2] its presences hash, KEYS[3] the mark that
// they were taken (ARGV[1] by whom, ARGV[2] for how long), which tells the
// replica's restart that a survivor left them (not Redis losing them).
constexpr char kClaimReplicaScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local records = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return records
)lua";
constexpr int64_t kTakenMarkMs = 24 * 3600 * 1000;

// Removes a replica's entries from a room. KEYS[1] the room, ARGV[1] "ID\t".
constexpr char kCleanRoomScript[] = R"lua(
local entries = redis.call('HGETALL', KEYS[1])
local removed = 0
for i = 1, #entries, 2 do
  if string.sub(entries[i + 1], 1, #ARGV[1]) == ARGV[1] then
    redis.call('HDEL', KEYS[1], entries[i])
    removed = removed + 1
  end
end
return removed
)lua";

// A registered customer's presence in a room, shared by the fleet. Fields:
// state (joining, joined, leaving), owner (the replica that pings it, or that
// joins or leaves it), nick (VS's display nickname), r:<replica> (a replica
// holding it). KEYS[1] is its hash in every script below.
constexpr int64_t kJoiningExpiryMs = 30 * 1000;   // A join's whole retry budget.
constexpr int64_t kLeavingExpiryMs = 120 * 1000;  // A leave's whole retry budget.
constexpr int64_t kJoinedExpiryMs = 24 * 3600 * 1000;

// ARGV: replica, joining expiry, joined expiry.
constexpr char kClaimPresenceScript[] = R"lua(
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'joining', 'owner', ARGV[1], 'r:' .. ARGV[1], '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {'join'}
end
if state == 'joined' then
  redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], '1')
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  local owner = redis.call('HGET', KEYS[1], 'owner')
  return {'share', redis.call('HGET', KEYS[1], 'nick'), owner == ARGV[1] and 1 or 0}
end
return {'wait'}
)lua";

// ARGV: replica, display nickname, joined expiry.
constexpr char kJoinedScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and
   redis.call('HGET', KEYS[1], 'state') == 'joining' then
  redis.call('HSET', KEYS[1], 'state', 'joined', 'nick', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
)lua";

// ARGV: replica. Also Gone (ARGV[2] 'leaving').
constexpr char kDropScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] and
   redis.call('HGET', KEYS[1], 'state') == ARGV[2] then
  redis.call('DEL', KEYS[1])
end
return 1
)lua";

// ARGV: the replica letting go, the owner channel prefix, the replica that
// sends the leave if this was the last hold, leaving expiry. Returns 'last'
// (then the key is 'leaving', owned by the leave's sender) or 'stay' (another
// replica holds it; if the one letting go pinged it, a holder is told to).
constexpr char kReleaseScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 0 then return 'last' end
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
local holders = {}
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 2) == 'r:' then table.insert(holders, string.sub(f, 3)) end
end
if #holders == 0 then
  local nick = redis.call('HGET', KEYS[1], 'nick') or ''
  redis.call('HSET', KEYS[1], 'state', 'leaving', 'owner', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {'last', nick}
end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'owner', holders[1])
  redis.call('PUBLISH', ARGV[2] .. holders[1], KEYS[1])
end
return {'stay', ''}
)lua";

// After Redis came back (maybe empty): this replica holds the presence,
// joined with ARGV[2]. ARGV: replica, nickname, joined expiry. Returns the owner.
constexpr char kRegisterScript[] = R"lua(
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'joined', 'nick', ARGV[2], 'owner', ARGV[1])
end
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], '1')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('HGET', KEYS[1], 'owner')
)lua";

std::string DefaultReplicaId() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "replica");
  }
  absl::BitGen gen;
  return absl::StrFormat("%s-%06x", host, absl::Uniform<uint32_t>(gen, 0, 1u << 24));
}

std::string CustomerText(const std::optional<int64_t>& customer) {
  return customer.has_value() ? absl::StrCat(*customer) : "";
}

std::optional<int64_t> ParseCustomer(absl::string_view text) {
  int64_t customer = 0;
  if (text.empty() || !absl::SimpleAtoi(text, &customer)) return std::nullopt;
  return customer;
}

// "performer \t customer \t shared \t nickname" (the nickname last: it is
// free text). `shared`: held through the fleet's shared presence.
std::string PresenceRecord(const vs::RoomPresence& presence, bool shared) {
  return absl::StrCat(presence.performer_id, "\t", CustomerText(presence.customer_id), "\t",
                      shared ? 1 : 0, "\t", presence.nickname);
}

std::optional<vs::RoomPresence> ParsePresenceRecord(absl::string_view record, bool* shared) {
  std::vector<absl::string_view> parts = absl::StrSplit(record, absl::MaxSplits('\t', 3));
  vs::RoomPresence presence;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[0], &presence.performer_id)) {
    return std::nullopt;
  }
  presence.customer_id = ParseCustomer(parts[1]);
  *shared = parts[2] == "1" && presence.customer_id.has_value();
  presence.nickname = std::string(parts[3]);
  return presence;
}

// "replica \t customer \t registered \t joined at (unix ns) \t nickname".
std::string RoomRecord(const std::string& replica, const session::SessionIdentity& who) {
  return absl::StrCat(replica, "\t", CustomerText(who.customer_id), "\t", who.registered ? 1 : 0,
                      "\t", absl::ToUnixNanos(who.joined_at), "\t", who.display_nickname);
}

std::optional<RoomEntry> ParseRoomRecord(absl::string_view record) {
  std::vector<absl::string_view> parts = absl::StrSplit(record, absl::MaxSplits('\t', 4));
  int64_t joined_ns = 0;
  if (parts.size() != 5 || !absl::SimpleAtoi(parts[3], &joined_ns)) return std::nullopt;
  RoomEntry entry;
  entry.replica = std::string(parts[0]);
  entry.customer_id = ParseCustomer(parts[1]);
  entry.registered = parts[2] == "1";
  entry.joined_at = absl::FromUnixNanos(joined_ns);
  entry.nickname = std::string(parts[4]);
  return entry;
}

}  // namespace

Fleet::Fleet(FleetOptions options, presences::LeaveSender* leaves,
             const session::SessionRegistry* registry)
    : options_(std::move(options)), leaves_(leaves), registry_(registry) {
  if (options_.replica_id.empty()) options_.replica_id = DefaultReplicaId();
  redis_ = std::make_unique<RedisClient>(options_.redis);
}

Fleet::~Fleet() { Stop({}, absl::ZeroDuration()); }

std::string Fleet::PresencesKey(const std::string& replica) const {
  return absl::StrCat("presence:{r:", replica, "}:presences");
}

std::string Fleet::AliveKey(const std::string& replica) const {
  return absl::StrCat("presence:{r:", replica, "}:alive");
}

std::string Fleet::RoomKey(int64_t performer_id) {
  return absl::StrCat("presence:{room:", performer_id, "}");
}

std::string Fleet::SharedKey(int64_t performer_id, int64_t customer_id) {
  return absl::StrCat("presence:{p:", performer_id, ":", customer_id, "}");
}

std::string Fleet::OwnerChannel(const std::string& replica) const {
  return absl::StrCat("presence:own:", replica);
}

absl::Status Fleet::Start() {
  redis_->OnReady([this] { RegisterAgain(); });
  redis_->Subscribe(kBootChannel, [this](const std::string& message) { OnBootMessage(message); });
  redis_->Subscribe(OwnerChannel(options_.replica_id),
                    [this](const std::string& message) { OnOwnerMessage(message); });
  if (absl::Status started = redis_->Start(); !started.ok()) return started;
  {
    absl::MutexLock lock(&mu_);
    live_.insert(options_.replica_id);
  }
  renew_ = std::thread([this] { RenewLoop(); });
  log::Info("fleet_started",
            {{"replica", options_.replica_id},
             {"redis", absl::StrCat(options_.redis.host, ":", options_.redis.port)},
             {"replica_ttl", absl::FormatDuration(options_.replica_ttl)}});
  return absl::OkStatus();
}

void Fleet::Stop(const std::vector<std::string>& handed_over, absl::Duration timeout) {
  if (stopped_.exchange(true)) return;
  stop_.Notify();
  if (renew_.joinable()) renew_.join();
  if (timeout > absl::ZeroDuration() && redis_->connected()) {
    absl::Time deadline = absl::Now() + timeout;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& id : handed_over) presences_.erase(id);
    }
    for (const std::string& id : handed_over) Send({"HDEL", PresencesKey(options_.replica_id), id});
    bool nothing_owed = false;
    {
      absl::MutexLock lock(&mu_);
      nothing_owed = presences_.empty();
    }
    if (nothing_owed) {
      Send({"DEL", PresencesKey(options_.replica_id)});
      Send({"ZREM", kReplicas, options_.replica_id});
    }
    // Survivors take over what is still recorded (leaves VS did not answer)
    // at their next renewal rather than after the TTL.
    Send({"DEL", AliveKey(options_.replica_id)});
    // Commands are answered in order: once this one is, all the above are.
    (void)Await({"PING"}, std::max(absl::ZeroDuration(), deadline - absl::Now()));
  }
  redis_->Stop();
}

void Fleet::Send(std::vector<std::string> argv) {
  redis_->Command(std::move(argv), [](absl::StatusOr<RedisReply>) {});
}

absl::StatusOr<RedisReply> Fleet::Await(std::vector<std::string> argv, absl::Duration timeout) {
  struct Result {
    absl::Notification done;
    absl::StatusOr<RedisReply> reply;
  };
  auto result = std::make_shared<Result>();
  redis_->Command(std::move(argv), [result](absl::StatusOr<RedisReply> reply) {
    result->reply = std::move(reply);
    result->done.Notify();
  });
  if (!result->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError("Redis did not answer in time");
  }
  return result->reply;
}

void Fleet::Joined(const std::string& id, const vs::RoomPresence& presence) {
  std::string record;
  {
    absl::MutexLock lock(&mu_);
    bool shared = presence.customer_id.has_value() &&
                  shared_.contains(std::make_pair(presence.performer_id, *presence.customer_id));
    record = PresenceRecord(presence, shared);
    presences_[id] = record;
  }
  Send({"HSET", PresencesKey(options_.replica_id), id, std::move(record)});
}

void Fleet::Left(const std::string& id) {
  {
    absl::MutexLock lock(&mu_);
    presences_.erase(id);
  }
  Send({"HDEL", PresencesKey(options_.replica_id), id});
}

void Fleet::StreamJoined(const session::SessionCore& session) {
  std::string key = RoomKey(session.identity().performer_id);
  Send({"HSET", key, session.public_id(), RoomRecord(options_.replica_id, session.identity())});
  Send({"PEXPIRE", std::move(key), absl::StrCat(kRoomExpiryMs)});
}

void Fleet::StreamLeft(const session::SessionCore& session) {
  int64_t performer = session.identity().performer_id;
  std::string field = session.public_id();
  redis_->Command({"HDEL", RoomKey(performer), field},
                  [this, performer, field](absl::StatusOr<RedisReply> reply) {
                    if (reply.ok()) return;
                    // Replayed when Redis is back (RegisterAgain).
                    absl::MutexLock lock(&mu_);
                    unremoved_.emplace_back(performer, field);
                  });
}

void Fleet::RegisterAgain() {
  // On the Redis thread, right after a (re)connection: queue only.
  registrations_.fetch_add(1);
  Send({"SET", AliveKey(options_.replica_id), "1", "PX",
        absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))});
  Send({"ZADD", kReplicas, absl::StrCat(absl::ToUnixMillis(absl::Now())), options_.replica_id});
  RegisterRecords();
  size_t rooms = RegisterRooms();
  size_t shared = RegisterShared();
  log::Info("fleet_registered", {{"replica", options_.replica_id},
                                 {"rooms", absl::StrCat(rooms)},
                                 {"shared_presences", absl::StrCat(shared)}});
}

void Fleet::RegisterRecords() {
  const std::string key = PresencesKey(options_.replica_id);
  Send({"DEL", key});
  std::vector<std::string> hset = {"HSET", key};
  absl::MutexLock lock(&mu_);
  for (const auto& [id, record] : presences_) {
    hset.push_back(id);
    hset.push_back(record);
    if (hset.size() >= 2 + 2 * kFieldsPerCommand) Send(std::exchange(hset, {"HSET", key}));
  }
  if (hset.size() > 2) Send(std::move(hset));
}

size_t Fleet::RegisterRooms() {
  std::vector<std::pair<int64_t, std::string>> unremoved;
  {
    absl::MutexLock lock(&mu_);
    unremoved.swap(unremoved_);
  }
  for (auto& [performer, field] : unremoved) Send({"HDEL", RoomKey(performer), field});
  absl::flat_hash_map<int64_t, std::vector<std::string>> rooms;
  for (const auto& session : registry_->AllJoined()) {
    std::vector<std::string>& room = rooms[session->identity().performer_id];
    room.push_back(session->public_id());
    room.push_back(RoomRecord(options_.replica_id, session->identity()));
  }
  for (auto& [performer, fields] : rooms) {
    std::vector<std::string> argv = {"HSET", RoomKey(performer)};
    argv.insert(argv.end(), std::make_move_iterator(fields.begin()),
                std::make_move_iterator(fields.end()));
    Send(std::move(argv));
    Send({"PEXPIRE", RoomKey(performer), absl::StrCat(kRoomExpiryMs)});
  }
  return rooms.size();
}

size_t Fleet::RegisterShared() {
  std::vector<std::pair<std::pair<int64_t, int64_t>, std::string>> shared;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, nickname] : shared_) {
      if (!nickname.empty()) shared.emplace_back(key, nickname);
    }
  }
  for (const auto& [key, nickname] : shared) {
    // The first replica to register a presence Redis forgot pings it; the
    // others stop.
    redis_->Command({"EVAL", kRegisterScript, "1", SharedKey(key.first, key.second),
                     options_.replica_id, nickname, absl::StrCat(kJoinedExpiryMs)},
                    [this, key = key](absl::StatusOr<RedisReply> reply) {
                      if (!reply.ok()) return;
                      bool owner = reply->str == options_.replica_id;
                      {
                        absl::MutexLock lock(&mu_);
                        if (!shared_.contains(key)) return;  // Released meanwhile.
                      }
                      if (on_owner_) on_owner_(key.first, key.second, owner);
                    });
  }
  return shared.size();
}

void Fleet::RenewLoop() {
  absl::Duration period = std::max(absl::Milliseconds(100), options_.replica_ttl / 3);
  while (!stop_.WaitForNotificationWithTimeout(period)) Renew();
}

void Fleet::Renew() {
  absl::Duration timeout = options_.redis.command_timeout * 2;
  absl::StatusOr<RedisReply> alive =
      Await({"SET", AliveKey(options_.replica_id), "1", "PX",
             absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))},
            timeout);
  if (!alive.ok()) return;  // Degraded: the metric and the client's log say so.
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  Send({"ZADD", kReplicas, absl::StrCat(now_ms), options_.replica_id});
  // Nothing outlives a fleet that is gone entirely: this replica's records
  // expire a day after its last renewal, and replicas not heard of for a day
  // leave the set.
  Send({"PEXPIRE", PresencesKey(options_.replica_id), absl::StrCat(kRecordsExpiryMs)});
  Send({"ZREMRANGEBYSCORE", kReplicas, "-inf", absl::StrCat(now_ms - kRecordsExpiryMs)});
  absl::StatusOr<RedisReply> replicas = Await({"ZRANGE", kReplicas, "0", "-1"}, timeout);
  if (!replicas.ok()) return;
  std::vector<std::string> dead;
  absl::flat_hash_set<std::string> live = {options_.replica_id};
  for (const RedisReply& r : replicas->elements) {
    if (r.str == options_.replica_id) continue;
    absl::StatusOr<RedisReply> exists = Await({"EXISTS", AliveKey(r.str)}, timeout);
    if (!exists.ok()) return;
    if (exists->integer == 1) {
      live.insert(r.str);
    } else {
      dead.push_back(r.str);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    live_ = std::move(live);
  }
  for (const std::string& replica : dead) TakeOver(replica);
}

bool Fleet::RecoverPrevious(const std::string& previous, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (!redis_->connected() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  if (!redis_->connected()) return false;
  const absl::Duration wait = options_.redis.command_timeout * 2;
  // This process is that replica's successor: it is not alive any more.
  if (!Await({"DEL", AliveKey(previous)}, wait).ok()) return false;
  absl::StatusOr<RedisReply> taken = Await({"GET", TakenKey(previous)}, wait);
  if (!taken.ok()) return false;
  int64_t records = 0;
  if (!TakeOver(previous, &records)) return false;
  // Records taken here, or by a survivor before: the fleet left them. No
  // records and no mark: Redis lost them (restarted empty); the journal
  // knows better.
  return records > 0 || taken->type == RedisReply::Type::kString;
}

std::string Fleet::TakenKey(const std::string& replica) const {
  return absl::StrCat("presence:{r:", replica, "}:taken");
}

bool Fleet::TakeOver(const std::string& dead, int64_t* records) {
  absl::Duration timeout = options_.redis.command_timeout * 2;
  absl::StatusOr<RedisReply> claimed =
      Await({"EVAL", kClaimReplicaScript, "3", AliveKey(dead), PresencesKey(dead), TakenKey(dead),
             options_.replica_id, absl::StrCat(kTakenMarkMs)},
            timeout);
  if (!claimed.ok() || claimed->type != RedisReply::Type::kArray) return false;  // Alive after all.
  if (records != nullptr) *records = static_cast<int64_t>(claimed->elements.size() / 2);
  absl::flat_hash_set<int64_t> rooms;
  int64_t leaves = 0;
  bool unfinished = false;
  for (size_t i = 0; i + 1 < claimed->elements.size(); i += 2) {
    const std::string& id = claimed->elements[i].str;
    bool shared = false;
    std::optional<vs::RoomPresence> presence =
        ParsePresenceRecord(claimed->elements[i + 1].str, &shared);
    if (!presence.has_value()) continue;
    rooms.insert(presence->performer_id);
    if (shared) {
      // Other replicas may still hold it: left only if none does.
      absl::StatusOr<std::optional<std::string>> last =
          ReleaseDead(dead, presence->performer_id, *presence->customer_id);
      if (!last.ok()) {
        // Put back: the next renewal takes it over again.
        Send({"HSET", PresencesKey(dead), id, claimed->elements[i + 1].str});
        unfinished = true;
        log::Warning("takeover_release_failed",
                     {{"dead_replica", dead}, {"error", last.status().ToString()}});
        continue;
      }
      if (!last->has_value()) continue;  // Live replicas still hold it.
      if (!(*last)->empty()) presence->nickname = **last;
      int64_t performer = presence->performer_id, customer = *presence->customer_id;
      Joined(id, *presence);
      leaves_->Send(id, *presence, presences::LeaveSender::Kind::kLeave,
                    [this, performer, customer] { Gone(performer, customer); });
      ++leaves;
      continue;
    }
    // Recorded under this replica first: if it dies too, the next survivor
    // sends the leave. VS's answer removes the record (Left).
    Joined(id, *presence);
    leaves_->Send(id, *presence, presences::LeaveSender::Kind::kLeave);
    ++leaves;
  }
  for (int64_t performer : rooms) {
    Send({"EVAL", kCleanRoomScript, "1", RoomKey(performer), absl::StrCat(dead, "\t")});
  }
  if (!unfinished) Send({"ZREM", kReplicas, dead});
  takeovers_.fetch_add(1);
  takeover_leaves_.fetch_add(leaves);
  log::Warning(
      "replica_taken_over",
      {{"dead_replica", dead}, {"by", options_.replica_id}, {"leaves", absl::StrCat(leaves)}});
  return true;
}

void Fleet::Claim(int64_t performer_id, int64_t customer_id,
                  absl::AnyInvocable<void(Claimed) &&> done) {
  auto key = std::make_pair(performer_id, customer_id);
  redis_->Command(
      {"EVAL", kClaimPresenceScript, "1", SharedKey(performer_id, customer_id), options_.replica_id,
       absl::StrCat(kJoiningExpiryMs), absl::StrCat(kJoinedExpiryMs)},
      [this, key, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        Claimed claimed;
        if (!reply.ok() || reply->elements.empty()) {
          std::move(done)(claimed);  // kAlone: the fleet cannot answer.
          return;
        }
        const std::string& what = reply->elements[0].str;
        if (what == "join") {
          claimed.kind = Claimed::Kind::kJoin;
          absl::MutexLock lock(&mu_);
          shared_[key] = "";
        } else if (what == "share" && reply->elements.size() == 3) {
          claimed.kind = Claimed::Kind::kShare;
          claimed.nickname = reply->elements[1].str;
          claimed.owner = reply->elements[2].integer == 1;
          absl::MutexLock lock(&mu_);
          shared_[key] = claimed.nickname;
        } else {
          claimed.kind = Claimed::Kind::kWait;
        }
        std::move(done)(std::move(claimed));
      });
}

void Fleet::Joined(int64_t performer_id, int64_t customer_id, const std::string& nickname) {
  {
    absl::MutexLock lock(&mu_);
    shared_[std::make_pair(performer_id, customer_id)] = nickname;
  }
  Send({"EVAL", kJoinedScript, "1", SharedKey(performer_id, customer_id), options_.replica_id,
        nickname, absl::StrCat(kJoinedExpiryMs)});
}

void Fleet::Abandon(int64_t performer_id, int64_t customer_id) {
  {
    absl::MutexLock lock(&mu_);
    shared_.erase(std::make_pair(performer_id, customer_id));
  }
  Send({"EVAL", kDropScript, "1", SharedKey(performer_id, customer_id), options_.replica_id,
        "joining"});
}

void Fleet::Release(int64_t performer_id, int64_t customer_id,
                    absl::AnyInvocable<void(Released) &&> done) {
  auto key = std::make_pair(performer_id, customer_id);
  redis_->Command(
      {"EVAL", kReleaseScript, "1", SharedKey(performer_id, customer_id), options_.replica_id,
       OwnerChannel(""), options_.replica_id, absl::StrCat(kLeavingExpiryMs)},
      [this, key, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok() || reply->elements.empty()) {
          std::move(done)(Released::kRetry);
          return;
        }
        {
          absl::MutexLock lock(&mu_);
          shared_.erase(key);
        }
        std::move(done)(reply->elements[0].str == "last" ? Released::kLast : Released::kStay);
      });
}

void Fleet::Gone(int64_t performer_id, int64_t customer_id) {
  Send({"EVAL", kDropScript, "1", SharedKey(performer_id, customer_id), options_.replica_id,
        "leaving"});
}

absl::StatusOr<std::optional<std::string>> Fleet::ReleaseDead(const std::string& dead,
                                                              int64_t performer_id,
                                                              int64_t customer_id) {
  absl::StatusOr<RedisReply> reply =
      Await({"EVAL", kReleaseScript, "1", SharedKey(performer_id, customer_id), dead,
             OwnerChannel(""), options_.replica_id, absl::StrCat(kLeavingExpiryMs)},
            options_.redis.command_timeout * 2);
  if (!reply.ok()) return reply.status();
  if (reply->elements.size() != 2) return absl::InternalError("unexpected reply to the release");
  if (reply->elements[0].str != "last") return std::nullopt;
  return reply->elements[1].str;
}

void Fleet::OnOwnerMessage(const std::string& message) {
  // "presence:{p:PERFORMER:CUSTOMER}"
  int64_t performer = 0, customer = 0;
  std::vector<absl::string_view> parts = absl::StrSplit(message, absl::ByAnyChar(":{}"));
  std::vector<absl::string_view> numbers;
  for (absl::string_view p : parts) {
    if (!p.empty() && p != "presence" && p != "p") numbers.push_back(p);
  }
  if (numbers.size() != 2 || !absl::SimpleAtoi(numbers[0], &performer) ||
      !absl::SimpleAtoi(numbers[1], &customer)) {
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!shared_.contains(std::make_pair(performer, customer))) return;
  }
  if (on_owner_) on_owner_(performer, customer, true);
}

void Fleet::Room(int64_t performer_id,
                 absl::AnyInvocable<void(absl::StatusOr<std::vector<RoomEntry>>) &&> done) {
  redis_->Command(
      {"HGETALL", RoomKey(performer_id)},
      [this, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        if (!reply.ok()) {
          std::move(done)(reply.status());
          return;
        }
        std::vector<RoomEntry> entries;
        absl::MutexLock lock(&mu_);
        for (size_t i = 0; i + 1 < reply->elements.size(); i += 2) {
          std::optional<RoomEntry> entry = ParseRoomRecord(reply->elements[i + 1].str);
          // A replica not seen alive at the last renewal: its viewers are
          // being (or were) taken over.
          if (entry.has_value() && live_.contains(entry->replica)) {
            entries.push_back(*std::move(entry));
          }
        }
        std::sort(entries.begin(), entries.end(),
                  [](const RoomEntry& a, const RoomEntry& b) { return a.joined_at < b.joined_at; });
        std::move(done)(std::move(entries));
      });
}

void Fleet::PublishBoot(int64_t customer_id, int64_t performer_id) {
  Send({"PUBLISH", kBootChannel,
        absl::StrCat(options_.replica_id, "\t", customer_id, "\t", performer_id)});
}

void Fleet::OnBootMessage(const std::string& message) {
  std::vector<absl::string_view> parts = absl::StrSplit(message, '\t');
  int64_t customer = 0, performer = 0;
  if (parts.size() != 3 || parts[0] == options_.replica_id ||
      !absl::SimpleAtoi(parts[1], &customer) || !absl::SimpleAtoi(parts[2], &performer)) {
    return;
  }
  log::Info("boot_from_fleet", {{"from", std::string(parts[0])},
                                {"customer", absl::StrCat(customer)},
                                {"performer", absl::StrCat(performer)}});
  if (on_boot_) on_boot_(customer, performer);
}

FleetStats Fleet::stats() const {
  FleetStats stats;
  stats.redis = redis_->stats();
  stats.degraded = !redis_->connected();
  stats.takeovers = takeovers_.load();
  stats.takeover_leaves = takeover_leaves_.load();
  stats.registrations = registrations_.load();
  absl::MutexLock lock(&mu_);
  stats.live_replicas = static_cast<int64_t>(live_.size());
  return stats;
}

}  // namespace presence::fleet
