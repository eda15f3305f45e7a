// Fleet against a real redis-server: what its stop leaves in Redis.

#include "server/fleet/fleet.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/session/session_registry.h"
#include "tests/testing/redis_process.h"

namespace presence::fleet {
namespace {

absl::StatusOr<RedisReply> Await(RedisClient& client, std::vector<std::string> argv) {
  absl::Notification done;
  absl::StatusOr<RedisReply> result = absl::DeadlineExceededError("no answer");
  client.Command(std::move(argv), [&](absl::StatusOr<RedisReply> reply) {
    result = std::move(reply);
    done.Notify();
  });
  done.WaitForNotificationWithTimeout(absl::Seconds(10));
  return result;
}

// Polls `key`'s existence until it is `want` (10 s at most).
bool WaitExists(RedisClient& client, const std::string& key, bool want) {
  for (absl::Time deadline = absl::Now() + absl::Seconds(10); absl::Now() < deadline;
       absl::SleepFor(absl::Milliseconds(10))) {
    absl::StatusOr<RedisReply> exists = Await(client, {"EXISTS", key});
    if (exists.ok() && (exists->integer == 1) == want) return true;
  }
  return false;
}

// main's drain stops the fleet while main's watchdog, cutting gRPC's teardown
// short, stops it too and then exits: neither call may return before the
// replica's liveness key is gone, or survivors wait for its TTL.
TEST(FleetTest, AStopCalledWhileAnotherRunsReturnsOnlyWhenThatOneIsDone) {
  testing::RedisProcess redis;
  ASSERT_TRUE(redis.Start());
  absl::StatusOr<RedisOptions> redis_options = ParseRedisUrl(redis.url());
  ASSERT_TRUE(redis_options.ok());
  redis_options->command_timeout = absl::Seconds(5);  // Longer than the pause below.
  RedisClient checker(*redis_options);
  ASSERT_TRUE(checker.Start().ok());
  session::SessionRegistry registry(10);
  FleetOptions options;
  options.redis = *redis_options;
  options.replica_id = "stopping";
  Fleet fleet(options, /*leaves=*/nullptr, &registry);
  ASSERT_TRUE(fleet.Start().ok());
  const std::string alive = "presence:{r:stopping}:alive";
  ASSERT_TRUE(WaitExists(checker, alive, true));

  // Redis holds every client's commands for 800 ms (it answers this one at
  // once), so the first Stop cannot finish before then.
  const absl::Time paused = absl::Now();
  ASSERT_TRUE(Await(checker, {"CLIENT", "PAUSE", "800", "ALL"}).ok());
  absl::Duration returned_after[2];
  std::vector<std::thread> stops;
  for (int i = 0; i < 2; ++i) {
    stops.emplace_back([&, i] {
      fleet.Stop({}, absl::Seconds(5));
      returned_after[i] = absl::Now() - paused;
    });
  }
  for (std::thread& stop : stops) stop.join();
  EXPECT_GE(returned_after[0], absl::Milliseconds(700));
  EXPECT_GE(returned_after[1], absl::Milliseconds(700));
  EXPECT_TRUE(WaitExists(checker, alive, false));
}

}  // namespace
}  // namespace presence::fleet
