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
constexpr size_t kFieldsPerCommand = 500;

// Takes a dead replica's records, once: nothing if it is alive after all.
// KEYS[1] its liveness key, KEYS[2] its presences hash.
constexpr char kClaimScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local records = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return records
)lua";

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

// "performer \t customer \t nickname" (the nickname last: it is free text).
std::string PresenceRecord(const vs::RoomPresence& presence) {
  return absl::StrCat(presence.performer_id, "\t", CustomerText(presence.customer_id), "\t",
                      presence.nickname);
}

std::optional<vs::RoomPresence> ParsePresenceRecord(absl::string_view record) {
  std::vector<absl::string_view> parts = absl::StrSplit(record, absl::MaxSplits('\t', 2));
  vs::RoomPresence presence;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &presence.performer_id)) {
    return std::nullopt;
  }
  presence.customer_id = ParseCustomer(parts[1]);
  presence.nickname = std::string(parts[2]);
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

absl::Status Fleet::Start() {
  redis_->OnReady([this] { RegisterAgain(); });
  redis_->Subscribe(kBootChannel, [this](const std::string& message) { OnBootMessage(message); });
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
  std::string record = PresenceRecord(presence);
  {
    absl::MutexLock lock(&mu_);
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
  const std::string presences_key = PresencesKey(options_.replica_id);
  std::vector<std::string> hset = {"HSET", presences_key};
  std::vector<std::pair<int64_t, std::string>> unremoved;
  Send({"SET", AliveKey(options_.replica_id), "1", "PX",
        absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))});
  Send({"ZADD", kReplicas, absl::StrCat(absl::ToUnixMillis(absl::Now())), options_.replica_id});
  Send({"DEL", presences_key});
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : presences_) {
      hset.push_back(id);
      hset.push_back(record);
      if (hset.size() >= 2 + 2 * kFieldsPerCommand) {
        Send(std::exchange(hset, {"HSET", presences_key}));
      }
    }
    unremoved.swap(unremoved_);
  }
  if (hset.size() > 2) Send(std::move(hset));
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
  log::Info("fleet_registered",
            {{"replica", options_.replica_id}, {"rooms", absl::StrCat(rooms.size())}});
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
  Send({"ZADD", kReplicas, absl::StrCat(absl::ToUnixMillis(absl::Now())), options_.replica_id});
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
  live_replicas_.store(static_cast<int64_t>(live.size()));
  {
    absl::MutexLock lock(&mu_);
    live_ = std::move(live);
  }
  TakeOverDead(dead);
}

void Fleet::TakeOverDead(const std::vector<std::string>& replicas) {
  for (const std::string& dead : replicas) TakeOver(dead);
}

void Fleet::TakeOver(const std::string& dead) {
  absl::Duration timeout = options_.redis.command_timeout * 2;
  absl::StatusOr<RedisReply> claimed =
      Await({"EVAL", kClaimScript, "2", AliveKey(dead), PresencesKey(dead)}, timeout);
  if (!claimed.ok() || claimed->type != RedisReply::Type::kArray) return;  // Alive after all.
  absl::flat_hash_set<int64_t> rooms;
  int64_t leaves = 0;
  for (size_t i = 0; i + 1 < claimed->elements.size(); i += 2) {
    const std::string& id = claimed->elements[i].str;
    std::optional<vs::RoomPresence> presence = ParsePresenceRecord(claimed->elements[i + 1].str);
    if (!presence.has_value()) continue;
    rooms.insert(presence->performer_id);
    // Recorded under this replica first: if it dies too, the next survivor
    // sends the leave. VS's answer removes the record (Left).
    Joined(id, *presence);
    leaves_->Send(id, *presence, presences::LeaveSender::Kind::kLeave);
    ++leaves;
  }
  for (int64_t performer : rooms) {
    Send({"EVAL", kCleanRoomScript, "1", RoomKey(performer), absl::StrCat(dead, "\t")});
  }
  Send({"ZREM", kReplicas, dead});
  takeovers_.fetch_add(1);
  takeover_leaves_.fetch_add(leaves);
  log::Warning(
      "replica_taken_over",
      {{"dead_replica", dead}, {"by", options_.replica_id}, {"leaves", absl::StrCat(leaves)}});
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
  stats.live_replicas = live_replicas_.load();
  return stats;
}

}  // namespace presence::fleet
