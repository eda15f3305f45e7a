// RedisClient against a real redis-server: answers, Redis away and back
// (restarted empty), subscriptions across reconnections, a slow Redis, AUTH.

#include "server/fleet/redis_client.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/testing/redis_process.h"

namespace presence::fleet {
namespace {

// Runs a command and waits for its answer.
absl::StatusOr<RedisReply> Await(RedisClient& client, std::vector<std::string> argv) {
  absl::Notification done;
  absl::StatusOr<RedisReply> result;
  client.Command(std::move(argv), [&](absl::StatusOr<RedisReply> reply) {
    result = std::move(reply);
    done.Notify();
  });
  done.WaitForNotificationWithTimeout(absl::Seconds(10));
  return result;
}

bool WaitConnected(RedisClient& client, bool want) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (client.connected() != want && absl::Now() < deadline)
    absl::SleepFor(absl::Milliseconds(5));
  return client.connected() == want;
}

RedisOptions Options(const testing::RedisProcess& redis) {
  absl::StatusOr<RedisOptions> options = ParseRedisUrl(redis.url());
  EXPECT_TRUE(options.ok());
  options->command_timeout = absl::Milliseconds(300);
  options->max_reconnect_backoff = absl::Milliseconds(100);
  return *options;
}

TEST(ParseRedisUrlTest, TakesHostPortAndDbAndRefusesCredentials) {
  absl::StatusOr<RedisOptions> options = ParseRedisUrl("redis://10.0.0.5:6380/2");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->host, "10.0.0.5");
  EXPECT_EQ(options->port, 6380);
  EXPECT_EQ(options->db, 2);
  options = ParseRedisUrl("redis://redis");
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->port, 6379);
  EXPECT_EQ(ParseRedisUrl("redis://:secret@redis:6379").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("http://redis:6379").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://redis:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseRedisUrl("redis://redis:6379/x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RedisClientTest, AnswersScriptsAndArrays) {
  testing::RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisClient client(Options(redis));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(WaitConnected(client, true));
  auto set = Await(client, {"SET", "k", std::string("a\0b", 3)});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, RedisReply::Type::kStatus);
  auto get = Await(client, {"GET", "k"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->str, std::string("a\0b", 3));
  auto script = Await(client, {"EVAL", "return {1, 'two', redis.call('INCR', KEYS[1])}", "1", "n"});
  ASSERT_TRUE(script.ok()) << script.status();
  ASSERT_EQ(script->elements.size(), 3u);
  EXPECT_EQ(script->elements[0].integer, 1);
  EXPECT_EQ(script->elements[1].str, "two");
  EXPECT_EQ(script->elements[2].integer, 1);
  auto missing = Await(client, {"GET", "nothing"});
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->type, RedisReply::Type::kNil);
  auto error = Await(client, {"INCR", "k"});
  EXPECT_EQ(error.status().code(), absl::StatusCode::kInternal);
  RedisStats stats = client.stats();
  EXPECT_EQ(stats.round_trips, 4);
  EXPECT_EQ(stats.failures, 1);
  EXPECT_GT(stats.latency_micros_sum, 0);
}

TEST(RedisClientTest, AwayFailsAtOnceAndBackReconnectsResubscribesAndRunsHooks) {
  testing::RedisProcess redis;
  // Declared before the client, which calls into them until it is destroyed.
  absl::Mutex mu;
  int ready = 0;
  std::vector<std::string> messages;
  RedisClient client(Options(redis));
  client.OnReady([&] {
    absl::MutexLock lock(&mu);
    ++ready;
  });
  client.Subscribe("events", [&](const std::string& message) {
    absl::MutexLock lock(&mu);
    messages.push_back(message);
  });
  ASSERT_TRUE(client.Start().ok());
  // Nothing listens on the port yet: commands fail at once.
  absl::Time before = absl::Now();
  EXPECT_EQ(Await(client, {"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));

  ASSERT_TRUE(redis.Start());
  ASSERT_TRUE(WaitConnected(client, true));
  auto published = [&](const std::string& message) {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      redis.Query({"PUBLISH", "events", message});
      absl::MutexLock lock(&mu);
      if (!messages.empty() && messages.back() == message) return true;
      mu.AwaitWithTimeout(absl::Condition(
                              +[](std::vector<std::string>* m) { return !m->empty(); }, &messages),
                          absl::Milliseconds(20));
    }
    return false;
  };
  EXPECT_TRUE(published("one"));
  ASSERT_TRUE(Await(client, {"SET", "k", "v"}).ok());

  redis.Kill();  // Gone, with everything it held.
  ASSERT_TRUE(WaitConnected(client, false));
  EXPECT_EQ(Await(client, {"GET", "k"}).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(redis.Start());  // Back, empty.
  ASSERT_TRUE(WaitConnected(client, true));
  auto get = Await(client, {"GET", "k"});
  ASSERT_TRUE(get.ok()) << get.status();
  EXPECT_EQ(get->type, RedisReply::Type::kNil);
  EXPECT_TRUE(published("two"));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(ready, 2);
}

TEST(RedisClientTest, ASlowRedisTimesOutAndTheClientRecovers) {
  testing::RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  RedisClient client(Options(redis));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(WaitConnected(client, true));
  // Redis holds every client's commands for 1.5 s from here.
  ASSERT_EQ(redis.Query({"CLIENT", "PAUSE", "1500", "ALL"}), "OK");
  absl::Time before = absl::Now();
  EXPECT_EQ(Await(client, {"PING"}).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - before, absl::Seconds(1));
  ASSERT_TRUE(WaitConnected(client, true));
  absl::StatusOr<RedisReply> pong;
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    pong = Await(client, {"PING"});
  } while (!pong.ok() && absl::Now() < deadline);
  ASSERT_TRUE(pong.ok()) << pong.status();
  EXPECT_EQ(pong->str, "PONG");
}

TEST(RedisClientTest, AuthenticatesWithThePassword) {
  testing::RedisProcess redis;
  ASSERT_TRUE(redis.Start("s3cret"));
  RedisOptions options = Options(redis);
  options.password = "s3cret";
  RedisClient client(options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(WaitConnected(client, true));
  auto set = Await(client, {"SET", "k", "v"});
  EXPECT_TRUE(set.ok()) << set.status();
}

}  // namespace
}  // namespace presence::fleet
