#include "server/fleet/fleet.h"

#include <unistd.h>

#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "server/log/log.h"

namespace presence::fleet {
namespace {

constexpr char kReplicas[] = "presence:replicas";
constexpr char kBootChannel[] = "presence:boot";
constexpr char kStoppedChannel[] = "presence:stopped";
constexpr char kDropPrefix[] = "drop\t";
constexpr int64_t kRoomExpiryMs = 24 * 3600 * 1000;
constexpr int64_t kRecordsExpiryMs = 24 * 3600 * 1000;
constexpr size_t kFieldsPerCommand = 500;

// Takes a dead replica's records, once: nothing if it is alive after all.
// KEYS[1] its liveness key, KEYS[2] its presences hash, KEYS[3] the mark that
// they were taken (ARGV[1] by whom, ARGV[2] for how long), which tells the
// replica's restart that a survivor left them (not Redis losing them).
// KEYS[4] its holds, KEYS[5] the survivor's: the holds still in grace (at
// ARGV[4], unix ms) move to the survivor, with the dead replica's (ARGV[3])
// place in their shared presences (ARGV[5]: joined expiry); the others are
// deleted. Returns {records, holds (each its fields, and 'owner')}.
constexpr char kClaimReplicaScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local records = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
local holds = {}
for _, digest in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local key = 'presence:{h:' .. digest .. '}'
  local fields = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
  if h.holder == ARGV[3] and tonumber(h.expires) > tonumber(ARGV[4]) then
    redis.call('HSET', key, 'holder', ARGV[1])
    redis.call('SADD', KEYS[5], digest)
    local owner = '1'
    if h.shared == '1' then
      local p = 'presence:{p:' .. h.performer .. ':' .. h.customer .. '}'
      redis.call('HDEL', p, 'r:' .. ARGV[3])
      if redis.call('EXISTS', p) == 0 then
        redis.call('HSET', p, 'state', 'joined', 'nick', h.nick, 'owner', ARGV[1])
      end
      redis.call('HSET', p, 'r:' .. ARGV[1], '1')
      if redis.call('HGET', p, 'owner') == ARGV[3] then redis.call('HSET', p, 'owner', ARGV[1]) end
      redis.call('PEXPIRE', p, ARGV[5])
      if redis.call('HGET', p, 'owner') ~= ARGV[1] then owner = '0' end
    end
    table.insert(fields, 'owner')
    table.insert(fields, owner)
    table.insert(holds, fields)
  elseif h.holder == ARGV[3] then
    redis.call('DEL', key)
  end
end
redis.call('DEL', KEYS[4])
return {records, holds}
)lua";

// A session held for a resume. KEYS[1] the hold, KEYS[2] the holder's set.
// ARGV: holder, digest, expiry (ms), then fields and values. 'taken' when
// another replica took it meanwhile (a registration after a reconnection).
constexpr char kHoldScript[] = R"lua(
if redis.call('HEXISTS', KEYS[1], 'taken') == 1 then return 'taken' end
redis.call('HSET', KEYS[1], 'holder', ARGV[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[2])
return 'held'
)lua";

// A resume takes a held session over, in two steps, so that a taker whose
// answer is lost (a Redis timeout) cannot strand the presence:
//
// Take marks the hold as being taken by this replica (once: a second take
// finds it taken). KEYS[1] the hold. ARGV: taker, digest, performer,
// customer, registered, asked nickname, now (unix ms), the taker's presence
// id. Returns {session, display nickname, shared, owner (whether the taker
// will ping it)} or nil (no such hold for this viewer). The holder still
// holds it: unconfirmed, its grace's end is the holder's to act on.
constexpr char kTakeScript[] = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
local h = {}
for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
if not h.holder or h.taken or h.taking then return false end
if h.performer ~= ARGV[3] or h.customer ~= ARGV[4] or h.registered ~= ARGV[5] then return false end
if h.registered ~= '1' and h.asked ~= ARGV[6] then return false end
if tonumber(h.expires) <= tonumber(ARGV[7]) then return false end
local owner = 1
if h.shared == '1' then
  local p = 'presence:{p:' .. h.performer .. ':' .. h.customer .. '}'
  if redis.call('HGET', p, 'state') ~= 'joined' then return false end
  local current = redis.call('HGET', p, 'owner')
  if current ~= h.holder and current ~= ARGV[1] then owner = 0 end
end
redis.call('HSET', KEYS[1], 'taking', ARGV[1], 'by', ARGV[8])
return {h.session, h.nick, h.shared, owner}
)lua";

// Confirm: the taker has the stream; the presence becomes its. KEYS[1] the
// hold. ARGV: taker, digest, the taker's presence id, the owner channel
// prefix, the tombstone's slack (ms), now (unix ms). A solo presence's record
// moves to the taker; a shared one gains the taker as a holder (and owner, if
// the holder owned it). The hold becomes a tombstone naming the taker until a
// minute after its grace, and the holder (whoever holds it now) is told to
// let go. 'done' again when it ran already (a confirmation sent again because
// its answer was lost); 'late': the holder ended it first (its grace ran out,
// a boot).
constexpr char kConfirmScript[] = R"lua(
local fields = redis.call('HGETALL', KEYS[1])
local h = {}
for i = 1, #fields, 2 do h[fields[i]] = fields[i + 1] end
if h.taken == ARGV[1] then return 'done' end
if h.taking ~= ARGV[1] or h.by ~= ARGV[3] then return 'late' end
if h.shared == '1' then
  local p = 'presence:{p:' .. h.performer .. ':' .. h.customer .. '}'
  redis.call('HSET', p, 'r:' .. ARGV[1], '1')
  if redis.call('HGET', p, 'owner') == h.holder then redis.call('HSET', p, 'owner', ARGV[1]) end
else
  local from = 'presence:{r:' .. h.holder .. '}:presences'
  local record = redis.call('HGET', from, h.presence)
  if record then
    redis.call('HDEL', from, h.presence)
    redis.call('HSET', 'presence:{r:' .. ARGV[1] .. '}:presences', ARGV[3], record)
  end
end
redis.call('SREM', 'presence:{r:' .. h.holder .. '}:holds', ARGV[2])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'taken', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(h.expires) - tonumber(ARGV[6]), 0) + tonumber(ARGV[5]))
redis.call('PUBLISH', ARGV[4] .. h.holder, 'drop\t' .. ARGV[2])
return 'done'
)lua";

// A hold's grace ran out on its holder. KEYS[1] the hold, KEYS[2] the
// holder's set; ARGV: holder, digest. 'leave': it is the holder's to end
// (also when Redis forgot it, or a take was never confirmed); 'taken':
// another replica has it.
constexpr char kExpireScript[] = R"lua(
local holder = redis.call('HGET', KEYS[1], 'holder')
if redis.call('HEXISTS', KEYS[1], 'taken') == 1 or (holder and holder ~= ARGV[1]) then
  return 'taken'
end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return 'leave'
)lua";

// A hold ended on its holder for another reason. Same KEYS and ARGV.
constexpr char kEndHoldScript[] = R"lua(
if redis.call('HGET', KEYS[1], 'holder') == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
)lua";
// A hold's key outlives its grace by this much: the holder's own timer asks
// about it first, and a taken one's tombstone answers it.
constexpr int64_t kHoldSlackMs = 60 * 1000;
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

// A hold's fields, as kHoldScript stores them (the holder aside).
std::vector<std::string> HoldFields(const presences::HoldRecord& hold) {
  return {"digest",     hold.digest,
          "presence",   hold.presence_id,
          "session",    hold.session_id,
          "performer",  absl::StrCat(hold.performer_id),
          "customer",   CustomerText(hold.customer_id),
          "registered", hold.registered ? "1" : "0",
          "shared",     hold.shared ? "1" : "0",
          "asked",      hold.asked_nickname,
          "nick",       hold.display_nickname,
          "expires",    absl::StrCat(absl::ToUnixMillis(hold.expires))};
}

// A hold as the claim script returns it: fields and values, 'owner' last.
std::optional<presences::HoldRecord> ParseHold(const RedisReply& reply, bool* owner) {
  absl::flat_hash_map<std::string, std::string> f;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    f[reply.elements[i].str] = reply.elements[i + 1].str;
  }
  presences::HoldRecord hold;
  int64_t expires_ms = 0;
  if (!absl::SimpleAtoi(f["performer"], &hold.performer_id) ||
      !absl::SimpleAtoi(f["expires"], &expires_ms) || f["digest"].empty()) {
    return std::nullopt;
  }
  hold.digest = f["digest"];
  hold.presence_id = f["presence"];
  hold.session_id = f["session"];
  hold.customer_id = ParseCustomer(f["customer"]);
  hold.registered = f["registered"] == "1";
  hold.shared = f["shared"] == "1" && hold.customer_id.has_value();
  hold.asked_nickname = f["asked"];
  hold.display_nickname = f["nick"];
  hold.expires = absl::FromUnixMillis(expires_ms);
  *owner = f["owner"] != "0";
  return hold;
}

// The claimed holds still in grace, by presence.
absl::flat_hash_map<std::string, presences::AdoptedPresence> HeldByPresence(
    const RedisReply& holds) {
  absl::flat_hash_map<std::string, presences::AdoptedPresence> held;
  for (const RedisReply& reply : holds.elements) {
    bool owner = true;
    std::optional<presences::HoldRecord> hold = ParseHold(reply, &owner);
    if (!hold.has_value()) continue;
    presences::AdoptedPresence& adopted = held[hold->presence_id];
    adopted.id = hold->presence_id;
    adopted.owner = owner;
    adopted.holds.push_back(*std::move(hold));
  }
  return held;
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

std::string Fleet::HoldsKey(const std::string& replica) const {
  return absl::StrCat("presence:{r:", replica, "}:holds");
}

std::string Fleet::HoldKey(const std::string& digest) {
  return absl::StrCat("presence:{h:", digest, "}");
}

absl::Status Fleet::Start() {
  redis_->OnReady([this] { RegisterAgain(); });
  redis_->Subscribe(kBootChannel, [this](const std::string& message) { OnBootMessage(message); });
  redis_->Subscribe(OwnerChannel(options_.replica_id),
                    [this](const std::string& message) { OnOwnerMessage(message); });
  redis_->Subscribe(kStoppedChannel, [this](const std::string& message) {
    if (message != options_.replica_id) Wake();
  });
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
  if (stopped_.exchange(true)) {
    // Another thread is stopping the fleet (main's drain, while main's
    // watchdog cuts gRPC's teardown short): the caller is about to exit, so
    // it waits for that stop, or the liveness key could outlive the process.
    stop_done_.WaitForNotificationWithTimeout(timeout);
    return;
  }
  Wake();
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
    // Survivors take over what is still recorded (leaves VS did not answer,
    // sessions held for a resume) at once rather than after the TTL.
    Send({"DEL", AliveKey(options_.replica_id)});
    Send({"PUBLISH", kStoppedChannel, options_.replica_id});
    // Commands are answered in order: once this one is, all the above are.
    (void)Await({"PING"}, std::max(absl::ZeroDuration(), deadline - absl::Now()));
  }
  redis_->Stop();
  stop_done_.Notify();
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
  // On the Redis thread, right after a (re)connection: queue only. Not once
  // stopping: that would make this replica alive again for the survivors.
  if (stopped_.load()) return;
  registrations_.fetch_add(1);
  Send({"SET", AliveKey(options_.replica_id), "1", "PX",
        absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))});
  Send({"ZADD", kReplicas, absl::StrCat(absl::ToUnixMillis(absl::Now())), options_.replica_id});
  RegisterRecords();
  size_t rooms = RegisterRooms();
  size_t shared = RegisterShared();
  size_t holds = RegisterHolds();
  log::Info("fleet_registered", {{"replica", options_.replica_id},
                                 {"rooms", absl::StrCat(rooms)},
                                 {"shared_presences", absl::StrCat(shared)},
                                 {"holds", absl::StrCat(holds)}});
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

size_t Fleet::RegisterHolds() {
  std::vector<presences::HoldRecord> holds;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [digest, hold] : holds_) holds.push_back(hold);
  }
  // A hold taken elsewhere while this replica could not hear of it is
  // answered 'taken', and let go here.
  for (const presences::HoldRecord& hold : holds) SendHold(hold);
  return holds.size();
}

void Fleet::RenewLoop() {
  absl::Duration period = std::max(absl::Milliseconds(100), options_.replica_ttl / 3);
  while (true) {
    {
      absl::MutexLock lock(&wake_mu_);
      wake_mu_.AwaitWithTimeout(absl::Condition(&wake_), period);
      wake_ = false;
    }
    if (stopped_.load()) return;
    Renew();
  }
}

void Fleet::KeepAlive() {
  if (absl::Now() - alive_sent_ < options_.replica_ttl / 4) return;
  alive_sent_ = absl::Now();
  Send({"SET", AliveKey(options_.replica_id), "1", "PX",
        absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))});
}

void Fleet::Wake() {
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

void Fleet::Renew() {
  absl::Duration timeout = options_.redis.command_timeout * 2;
  absl::StatusOr<RedisReply> alive =
      Await({"SET", AliveKey(options_.replica_id), "1", "PX",
             absl::StrCat(absl::ToInt64Milliseconds(options_.replica_ttl))},
            timeout);
  if (!alive.ok()) return;  // Degraded: the metric and the client's log say so.
  alive_sent_ = absl::Now();
  std::vector<std::pair<std::string, std::string>> unconfirmed;
  {
    absl::MutexLock lock(&mu_);
    unconfirmed.swap(unconfirmed_);
  }
  for (const auto& [digest, presence_id] : unconfirmed) Confirm(digest, presence_id);
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  Send({"ZADD", kReplicas, absl::StrCat(now_ms), options_.replica_id});
  // Nothing outlives a fleet that is gone entirely: this replica's records
  // expire a day after its last renewal, and replicas not heard of for a day
  // leave the set.
  Send({"PEXPIRE", PresencesKey(options_.replica_id), absl::StrCat(kRecordsExpiryMs)});
  Send({"PEXPIRE", HoldsKey(options_.replica_id), absl::StrCat(kRecordsExpiryMs)});
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
      Await({"EVAL", kClaimReplicaScript, "5", AliveKey(dead), PresencesKey(dead), TakenKey(dead),
             HoldsKey(dead), HoldsKey(options_.replica_id), options_.replica_id,
             absl::StrCat(kTakenMarkMs), dead, absl::StrCat(absl::ToUnixMillis(absl::Now())),
             absl::StrCat(kJoinedExpiryMs)},
            timeout);
  // Not an array: alive after all.
  if (!claimed.ok() || claimed->elements.size() != 2) return false;
  const std::vector<RedisReply>& claimed_records = claimed->elements[0].elements;
  if (records != nullptr) *records = static_cast<int64_t>(claimed_records.size() / 2);
  absl::flat_hash_map<std::string, presences::AdoptedPresence> held =
      HeldByPresence(claimed->elements[1]);
  absl::flat_hash_set<int64_t> rooms;
  int64_t leaves = 0, adopted = 0;
  bool unfinished = false;
  for (size_t i = 0; i + 1 < claimed_records.size(); i += 2) {
    const std::string& id = claimed_records[i].str;
    const std::string& record = claimed_records[i + 1].str;
    KeepAlive();  // A long takeover must not make this replica look dead.
    switch (TakeOverRecord(dead, id, record, &held, &rooms)) {
      case Outcome::kLeft:
        ++leaves;
        break;
      case Outcome::kAdopted:
        ++adopted;
        break;
      case Outcome::kUnfinished:
        unfinished = true;
        break;
      case Outcome::kSkipped:
      case Outcome::kStays:
        break;
    }
  }
  for (int64_t performer : rooms) {
    Send({"EVAL", kCleanRoomScript, "1", RoomKey(performer), absl::StrCat(dead, "\t")});
  }
  if (!unfinished) Send({"ZREM", kReplicas, dead});
  takeovers_.fetch_add(1);
  takeover_leaves_.fetch_add(leaves);
  takeover_adopted_.fetch_add(adopted);
  log::Warning("replica_taken_over", {{"dead_replica", dead},
                                      {"by", options_.replica_id},
                                      {"leaves", absl::StrCat(leaves)},
                                      {"adopted_held", absl::StrCat(adopted)}});
  return true;
}

Fleet::Outcome Fleet::TakeOverRecord(
    const std::string& dead, const std::string& id, const std::string& record,
    absl::flat_hash_map<std::string, presences::AdoptedPresence>* held,
    absl::flat_hash_set<int64_t>* rooms) {
  bool shared = false;
  std::optional<vs::RoomPresence> presence = ParsePresenceRecord(record, &shared);
  if (!presence.has_value()) return Outcome::kSkipped;
  rooms->insert(presence->performer_id);
  if (auto it = held->find(id); it != held->end()) {
    // Held for a resume: pinged from here until resumed or its grace ends.
    it->second.presence = *presence;
    it->second.shared = shared;
    Adopt(std::move(it->second));
    return Outcome::kAdopted;
  }
  if (shared) {
    // Other replicas may still hold it: left only if none does.
    absl::StatusOr<std::optional<std::string>> last =
        ReleaseDead(dead, presence->performer_id, *presence->customer_id);
    if (!last.ok()) {
      // Put back: the next renewal takes it over again.
      Send({"HSET", PresencesKey(dead), id, record});
      log::Warning("takeover_release_failed",
                   {{"dead_replica", dead}, {"error", last.status().ToString()}});
      return Outcome::kUnfinished;
    }
    if (!last->has_value()) return Outcome::kStays;  // Live replicas still hold it.
    if (!(*last)->empty()) presence->nickname = **last;
    int64_t performer = presence->performer_id, customer = *presence->customer_id;
    Joined(id, *presence);
    leaves_->Send(id, *presence, presences::LeaveSender::Kind::kLeave,
                  [this, performer, customer] { Gone(performer, customer); });
    return Outcome::kLeft;
  }
  // Recorded under this replica first: if it dies too, the next survivor
  // sends the leave. VS's answer removes the record (Left).
  Joined(id, *presence);
  leaves_->Send(id, *presence, presences::LeaveSender::Kind::kLeave);
  return Outcome::kLeft;
}

void Fleet::Adopt(presences::AdoptedPresence adopted) {
  {
    absl::MutexLock lock(&mu_);
    if (adopted.shared) {
      shared_[std::make_pair(adopted.presence.performer_id, *adopted.presence.customer_id)] =
          adopted.presence.nickname;
    }
    for (const presences::HoldRecord& hold : adopted.holds) holds_[hold.digest] = hold;
  }
  if (on_adopt_) on_adopt_(adopted);
}

void Fleet::Held(const presences::HoldRecord& hold) {
  {
    absl::MutexLock lock(&mu_);
    holds_[hold.digest] = hold;
  }
  SendHold(hold);
}

void Fleet::SendHold(const presences::HoldRecord& hold) {
  const int64_t ttl_ms = absl::ToInt64Milliseconds(hold.expires - absl::Now()) + kHoldSlackMs;
  std::vector<std::string> argv = {"EVAL",
                                   kHoldScript,
                                   "2",
                                   HoldKey(hold.digest),
                                   HoldsKey(options_.replica_id),
                                   options_.replica_id,
                                   hold.digest,
                                   absl::StrCat(std::max<int64_t>(ttl_ms, 1))};
  for (std::string& field : HoldFields(hold)) argv.push_back(std::move(field));
  redis_->Command(std::move(argv), [this, digest = hold.digest](absl::StatusOr<RedisReply> reply) {
    if (reply.ok() && reply->str == "taken") Dropped(digest);
  });
}

void Fleet::Dropped(const std::string& digest) {
  {
    absl::MutexLock lock(&mu_);
    if (holds_.erase(digest) == 0) return;  // Not (or no longer) held here.
  }
  if (on_dropped_) on_dropped_(digest);
}

void Fleet::Take(const presences::HoldRecord& viewer, const std::string& presence_id,
                 absl::AnyInvocable<void(std::optional<Taken>) &&> done) {
  std::optional<std::pair<int64_t, int64_t>> key;
  if (viewer.customer_id.has_value()) key.emplace(viewer.performer_id, *viewer.customer_id);
  redis_->Command(
      {"EVAL", kTakeScript, "1", HoldKey(viewer.digest), options_.replica_id, viewer.digest,
       absl::StrCat(viewer.performer_id), CustomerText(viewer.customer_id),
       viewer.registered ? "1" : "0", viewer.asked_nickname,
       absl::StrCat(absl::ToUnixMillis(absl::Now())), presence_id},
      [this, key, digest = viewer.digest, presence_id,
       done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
        // No answer is no hold: the stream joins afresh. If the take ran, it
        // is never confirmed, and the holder ends the hold at its grace.
        if (!reply.ok() || reply->elements.size() != 4) {
          std::move(done)(std::nullopt);
          return;
        }
        Taken taken;
        taken.session_id = reply->elements[0].str;
        taken.display_nickname = reply->elements[1].str;
        taken.shared = reply->elements[2].str == "1" && key.has_value();
        taken.owner = reply->elements[3].integer == 1;
        if (taken.shared) {
          absl::MutexLock lock(&mu_);
          shared_[*key] = taken.display_nickname;
        }
        Confirm(digest, presence_id);
        std::move(done)(std::move(taken));
      });
}

void Fleet::Confirm(const std::string& digest, const std::string& presence_id) {
  redis_->Command(
      {"EVAL", kConfirmScript, "1", HoldKey(digest), options_.replica_id, digest, presence_id,
       OwnerChannel(""), absl::StrCat(kHoldSlackMs), absl::StrCat(absl::ToUnixMillis(absl::Now()))},
      [this, digest, presence_id](absl::StatusOr<RedisReply> reply) {
        if (!reply.ok()) {
          // Again at the next renewal, until Redis answers.
          absl::MutexLock lock(&mu_);
          unconfirmed_.emplace_back(digest, presence_id);
          return;
        }
        if (reply->str == "late") {
          log::Warning("resume_confirmed_late", {{"presence", presence_id},
                                                 {"why",
                                                  "the holder ended the hold first; VS may have "
                                                  "left the presence this replica now pings"}});
        }
      });
}

void Fleet::Expire(const std::string& digest, absl::AnyInvocable<void(Expiry) &&> done) {
  redis_->Command({"EVAL", kExpireScript, "2", HoldKey(digest), HoldsKey(options_.replica_id),
                   options_.replica_id, digest},
                  [this, digest, done = std::move(done)](absl::StatusOr<RedisReply> reply) mutable {
                    if (!reply.ok()) {
                      std::move(done)(Expiry::kRetry);
                      return;
                    }
                    {
                      absl::MutexLock lock(&mu_);
                      holds_.erase(digest);
                    }
                    std::move(done)(reply->str == "taken" ? Expiry::kTaken : Expiry::kLeave);
                  });
}

void Fleet::Ended(const std::string& digest) {
  {
    absl::MutexLock lock(&mu_);
    holds_.erase(digest);
  }
  Send({"EVAL", kEndHoldScript, "2", HoldKey(digest), HoldsKey(options_.replica_id),
        options_.replica_id, digest});
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
  if (absl::StartsWith(message, kDropPrefix)) {
    Dropped(message.substr(sizeof(kDropPrefix) - 1));
    return;
  }
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
  stats.takeover_adopted = takeover_adopted_.load();
  stats.registrations = registrations_.load();
  absl::MutexLock lock(&mu_);
  stats.live_replicas = static_cast<int64_t>(live_.size());
  return stats;
}

}  // namespace presence::fleet
