#include "server/session/ping_scheduler.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace presence::session {
namespace {

constexpr absl::Duration kInterval = absl::Milliseconds(100);

// Records the scheduled time of every ping sent, per target.
class Recorder {
 public:
  PingScheduler::SendFn Fn(bool complete_immediately = true) {
    return [this, complete_immediately](const std::shared_ptr<PingTarget>& target,
                                        absl::Time scheduled) {
      absl::MutexLock lock(&mu_);
      sent_.emplace_back(target.get(), scheduled);
      if (complete_immediately) target->PingDone();
    };
  }
  std::vector<absl::Time> For(const PingTarget* target) {
    absl::MutexLock lock(&mu_);
    std::vector<absl::Time> out;
    for (const auto& [t, at] : sent_) {
      if (t == target) out.push_back(at);
    }
    return out;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::pair<const PingTarget*, absl::Time>> sent_;
};

TEST(PingSchedulerTest, PingsAtExactMultiplesOfTheIntervalWithoutDrift) {
  Recorder recorder;
  PingScheduler scheduler(kInterval, recorder.Fn());
  auto target = std::make_shared<PingTarget>();
  absl::Time joined = absl::Now();
  scheduler.Add(target, joined);
  absl::SleepFor(kInterval * 5.5);
  std::vector<absl::Time> pings = recorder.For(target.get());
  ASSERT_GE(pings.size(), 4u);
  ASSERT_LE(pings.size(), 6u);
  for (size_t i = 0; i < pings.size(); ++i) {
    EXPECT_EQ(pings[i], joined + kInterval * static_cast<int64_t>(i + 1)) << i;
  }
  EXPECT_EQ(scheduler.stats().pings_sent, static_cast<int64_t>(pings.size()));
  EXPECT_EQ(scheduler.lateness().count(), static_cast<int64_t>(pings.size()));
}

TEST(PingSchedulerTest, ActivityPostponesTheNextPingByOneInterval) {
  Recorder recorder;
  PingScheduler scheduler(kInterval, recorder.Fn());
  auto target = std::make_shared<PingTarget>();
  absl::Time joined = absl::Now();
  scheduler.Add(target, joined);
  absl::Time active = joined + kInterval / 2;
  absl::SleepFor(active - absl::Now());
  target->RecordActivity(active);
  absl::SleepFor(joined + kInterval * 1.8 - absl::Now());
  std::vector<absl::Time> pings = recorder.For(target.get());
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_EQ(pings[0], active + kInterval);
  EXPECT_EQ(scheduler.stats().skipped_for_activity, 1);
}

TEST(PingSchedulerTest, SkipsAPingWhileThePreviousIsInFlight) {
  Recorder recorder;
  PingScheduler scheduler(kInterval, recorder.Fn(/*complete_immediately=*/false));
  auto target = std::make_shared<PingTarget>();
  absl::Time joined = absl::Now();
  scheduler.Add(target, joined);
  absl::SleepFor(kInterval * 3.5);
  EXPECT_EQ(recorder.For(target.get()).size(), 1u);
  EXPECT_GE(scheduler.stats().skipped_in_flight, 1);
  target->PingDone();
  absl::SleepFor(kInterval * 1.2);
  std::vector<absl::Time> pings = recorder.For(target.get());
  ASSERT_EQ(pings.size(), 2u);
  // Still on the original grid.
  EXPECT_EQ((pings[1] - joined) % kInterval, absl::ZeroDuration());
}

TEST(PingSchedulerTest, ClosedTargetsAreNeverPingedAndAreDropped) {
  Recorder recorder;
  PingScheduler scheduler(kInterval, recorder.Fn());
  auto target = std::make_shared<PingTarget>();
  scheduler.Add(target, absl::Now());
  target->Close();
  absl::SleepFor(kInterval * 2);
  EXPECT_TRUE(recorder.For(target.get()).empty());
  EXPECT_EQ(scheduler.stats().queued, 0);
  EXPECT_EQ(target.use_count(), 1);
}

TEST(PingSchedulerTest, ManyTargetsEachGetTheirOwnPings) {
  Recorder recorder;
  PingScheduler scheduler(kInterval, recorder.Fn());
  std::vector<std::shared_ptr<PingTarget>> targets;
  absl::Time start = absl::Now();
  for (int i = 0; i < 1000; ++i) {
    targets.push_back(std::make_shared<PingTarget>());
    scheduler.Add(targets.back(), start + absl::Microseconds(i * 50));
  }
  absl::SleepFor(kInterval * 2.6);
  for (const auto& t : targets) {
    std::vector<absl::Time> pings = recorder.For(t.get());
    ASSERT_GE(pings.size(), 1u);
    ASSERT_LE(pings.size(), 3u);
  }
  EXPECT_GE(scheduler.stats().pings_sent, 2000);
}

}  // namespace
}  // namespace presence::session
