#include "server/session/ping_scheduler.h"

#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace presence::session {
namespace {

constexpr absl::Duration kInterval = absl::Milliseconds(100);

// Records the scheduled clock time of every ping it is asked to send.
class RecordingTarget : public PingTarget {
 public:
  RecordingTarget(const base::Clock* clock, bool complete_immediately = true)
      : clock_(clock), complete_immediately_(complete_immediately) {}

  void SendPing() override {
    absl::MutexLock lock(&mu_);
    sent_.push_back(clock_->Now());
    if (complete_immediately_) PingDone();
  }
  std::vector<absl::Time> sent() const {
    absl::MutexLock lock(&mu_);
    return sent_;
  }

 private:
  const base::Clock* clock_;
  const bool complete_immediately_;
  mutable absl::Mutex mu_;
  std::vector<absl::Time> sent_ ABSL_GUARDED_BY(mu_);
};

// Advances the clock in steps of `step` up to `by`, serving due pings after
// each step, as the thread would.
void AdvanceAndServe(base::FakeClock& clock, PingScheduler& scheduler, absl::Duration by,
                     absl::Duration step = absl::Milliseconds(1)) {
  for (absl::Duration d = absl::ZeroDuration(); d < by; d += step) {
    clock.Advance(step);
    scheduler.SendDue();
  }
}

// A ping is sent at its due time or at most kCoalesce before it.
void ExpectSentFor(absl::Time sent, absl::Time due) {
  EXPECT_LE(sent, due);
  EXPECT_GE(sent, due - PingScheduler::kCoalesce);
}

TEST(PingSchedulerTest, PingsAtExactMultiplesOfTheIntervalWithoutDrift) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  auto target = std::make_shared<RecordingTarget>(&clock);
  absl::Time joined = clock.Now();
  scheduler.Add(target, joined);
  AdvanceAndServe(clock, scheduler, kInterval * 5.5);
  std::vector<absl::Time> pings = target->sent();
  ASSERT_EQ(pings.size(), 5u);
  for (size_t i = 0; i < pings.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSentFor(pings[i], joined + kInterval * static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(scheduler.stats().pings_sent, 5);
  EXPECT_EQ(scheduler.lateness().count(), 5);
}

TEST(PingSchedulerTest, ALateTickStillSchedulesFromTheScheduledTime) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  auto target = std::make_shared<RecordingTarget>(&clock);
  absl::Time joined = clock.Now();
  scheduler.Add(target, joined);
  clock.Advance(kInterval + absl::Milliseconds(30));  // The thread woke late.
  scheduler.SendDue();
  AdvanceAndServe(clock, scheduler, kInterval);
  std::vector<absl::Time> pings = target->sent();
  ASSERT_EQ(pings.size(), 2u);
  ExpectSentFor(pings[1], joined + 2 * kInterval);
}

TEST(PingSchedulerTest, ActivityPostponesTheNextPingByOneInterval) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  auto target = std::make_shared<RecordingTarget>(&clock);
  absl::Time joined = clock.Now();
  scheduler.Add(target, joined);
  AdvanceAndServe(clock, scheduler, kInterval / 2);
  absl::Time active = clock.Now();
  target->RecordActivity(active);
  AdvanceAndServe(clock, scheduler, kInterval * 1.3);
  std::vector<absl::Time> pings = target->sent();
  ASSERT_EQ(pings.size(), 1u);
  ExpectSentFor(pings[0], active + kInterval);
  EXPECT_EQ(scheduler.stats().skipped_for_activity, 1);
}

TEST(PingSchedulerTest, SkipsAPingWhileThePreviousIsInFlight) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  auto target = std::make_shared<RecordingTarget>(&clock, /*complete_immediately=*/false);
  absl::Time joined = clock.Now();
  scheduler.Add(target, joined);
  AdvanceAndServe(clock, scheduler, kInterval * 3.5);
  EXPECT_EQ(target->sent().size(), 1u);
  EXPECT_EQ(scheduler.stats().skipped_in_flight, 2);
  target->PingDone();
  AdvanceAndServe(clock, scheduler, kInterval);
  std::vector<absl::Time> pings = target->sent();
  ASSERT_EQ(pings.size(), 2u);
  // Still on the original grid.
  ExpectSentFor(pings[1], joined + 4 * kInterval);
}

TEST(PingSchedulerTest, ClosedTargetsAreNeverPingedAndAreDropped) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  auto target = std::make_shared<RecordingTarget>(&clock);
  scheduler.Add(target, clock.Now());
  target->Close();
  AdvanceAndServe(clock, scheduler, kInterval * 2);
  EXPECT_TRUE(target->sent().empty());
  EXPECT_EQ(scheduler.stats().queued, 0);
  EXPECT_EQ(target.use_count(), 1);
}

TEST(PingSchedulerTest, ManyTargetsEachGetTheirOwnPings) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  std::vector<std::shared_ptr<RecordingTarget>> targets;
  absl::Time start = clock.Now();
  for (int i = 0; i < 3000; ++i) {  // More than one batch.
    targets.push_back(std::make_shared<RecordingTarget>(&clock));
    scheduler.Add(targets.back(), start + absl::Microseconds(i * 10));
  }
  AdvanceAndServe(clock, scheduler, kInterval * 2.6, absl::Milliseconds(5));
  for (const auto& t : targets) ASSERT_EQ(t->sent().size(), 2u);
  EXPECT_EQ(scheduler.stats().pings_sent, 6000);
}

TEST(PingSchedulerTest, ItsThreadSendsDuePingsOnTheMonotonicClock) {
  const base::Clock* clock = base::MonotonicClock::Get();
  PingScheduler scheduler(absl::Milliseconds(20), clock);
  auto target = std::make_shared<RecordingTarget>(clock);
  scheduler.Add(target, clock->Now());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (target->sent().size() < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));  // Polling a condition, bounded.
  }
  EXPECT_GE(target->sent().size(), 3u);
}

// RunAt's timers (join timeouts, hold expiries) share the heap: each runs
// once, at its time, and is not counted as a ping.
TEST(PingSchedulerTest, ATimerRunsOnceAtItsTimeAndIsNotAPing) {
  base::FakeClock clock;
  PingScheduler scheduler(kInterval, &clock, PingScheduler::Mode::kManual);
  const absl::Time at = clock.Now() + absl::Milliseconds(250);
  std::vector<absl::Time> ran;
  scheduler.RunAt(at, [&] { ran.push_back(clock.Now()); });
  AdvanceAndServe(clock, scheduler, kInterval * 10);
  ASSERT_EQ(ran.size(), 1u);
  ExpectSentFor(ran[0], at);
  PingSchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.pings_sent, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(scheduler.lateness().count(), 0);
}

}  // namespace
}  // namespace presence::session
