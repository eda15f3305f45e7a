#ifndef PRESENCE_SERVER_FLEET_REDIS_CLIENT_H_
#define PRESENCE_SERVER_FLEET_REDIS_CLIENT_H_

// RedisClient: hiredis's async API on an epoll loop of our own (one thread,
// one connection for commands, one for subscriptions), so that nothing on a
// gRPC or VS thread ever waits for Redis.
//
// Command() is thread-safe and never blocks: it queues the command for the
// Redis thread, whose answer (or error) reaches the callback on that thread.
// While Redis is unreachable, commands fail at once with UNAVAILABLE, and the
// client reconnects in the background with capped backoff; after every
// (re)connection the OnReady hooks run (the fleet re-registers what it holds)
// and subscriptions are made again. A command without an answer within the
// timeout fails with DEADLINE_EXCEEDED and the connection is recycled: a slow
// Redis is treated as an absent one.
//
// Callbacks run on the Redis thread and must not block.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisAsyncContext;
struct redisReply;

namespace presence::fleet {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus
  int64_t integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

using RedisCallback = absl::AnyInvocable<void(absl::StatusOr<RedisReply>) &&>;

struct RedisOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  // AUTH after every connection when set; never logged.
  std::string password;
  // A command without an answer by then fails, and the connection is recycled.
  absl::Duration command_timeout = absl::Seconds(1);
  absl::Duration max_reconnect_backoff = absl::Seconds(2);
};

// redis://host:port[/db]. Credentials in the URL are refused: a password
// goes in --redis_password_file, never in a flag.
absl::StatusOr<RedisOptions> ParseRedisUrl(const std::string& url);

struct RedisStats {
  int64_t round_trips = 0;         // Commands answered.
  int64_t failures = 0;            // Commands that failed (down, timeout, error reply).
  int64_t latency_micros_sum = 0;  // Of answered commands.
  int64_t connects = 0;            // Successful (re)connections.
  bool connected = false;
};

class RedisClient {
 public:
  explicit RedisClient(RedisOptions options);
  ~RedisClient();  // Stop().

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Starts the thread, which connects in the background.
  absl::Status Start();
  // Fails what is pending and joins the thread.
  void Stop();

  // Sends one command; `done` gets the reply, or UNAVAILABLE while Redis is
  // away, DEADLINE_EXCEEDED after the timeout, INTERNAL for an error reply.
  void Command(std::vector<std::string> argv, RedisCallback done);

  // Messages published on `channel` reach `on_message` (on the Redis
  // thread), across reconnections. Call before Start.
  void Subscribe(std::string channel, std::function<void(const std::string&)> on_message);
  // Runs on the Redis thread after every (re)connection, once AUTH and
  // SELECT are sent. Call before Start.
  void OnReady(std::function<void()> hook);

  bool connected() const { return connected_.load(std::memory_order_acquire); }
  RedisStats stats() const;

 private:
  struct Connection;
  struct Pending;

  void Loop();
  void Connect(Connection& connection);
  void ConnectIfDue(Connection& connection);
  void Handle(Connection& connection, uint32_t events);
  void DrainQueue();
  void CheckTimeouts();
  void Send(std::vector<std::string> argv, RedisCallback done);
  void Ready(Connection& connection);
  void Lost(Connection& connection);
  void Watch(Connection& connection);
  absl::Time NextWake() const;
  static void OnReply(redisAsyncContext* context, void* reply, void* privdata);
  static void OnMessage(redisAsyncContext* context, void* reply, void* privdata);
  static void OnConnect(const redisAsyncContext* context, int status);
  static void AddRead(void* data);
  static void DelRead(void* data);
  static void AddWrite(void* data);
  static void DelWrite(void* data);
  static void Cleanup(void* data);
  void Fail(RedisCallback done, absl::Status status);

  const RedisOptions options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};

  // Owned by the Redis thread.
  std::unique_ptr<Connection> commands_;
  std::unique_ptr<Connection> subscriber_;
  std::deque<Pending*> in_flight_;  // Sent on commands_, oldest first.
  std::vector<std::pair<std::string, std::function<void(const std::string&)>>> channels_;
  std::vector<std::function<void()>> ready_hooks_;

  mutable absl::Mutex mu_;
  std::vector<std::pair<std::vector<std::string>, RedisCallback>> queue_ ABSL_GUARDED_BY(mu_);
  RedisStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::fleet

#endif  // PRESENCE_SERVER_FLEET_REDIS_CLIENT_H_
