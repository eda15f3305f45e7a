#include "server/base/clock.h"

#include "gtest/gtest.h"

namespace presence::base {
namespace {

TEST(MonotonicClockTest, NeverGoesBackwards) {
  const Clock* clock = MonotonicClock::Get();
  absl::Time last = clock->Now();
  for (int i = 0; i < 10000; ++i) {
    absl::Time now = clock->Now();
    ASSERT_GE(now, last);
    last = now;
  }
}

TEST(FakeClockTest, MovesOnlyWhenAdvanced) {
  FakeClock clock;
  absl::Time start = clock.Now();
  EXPECT_EQ(clock.Now(), start);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(clock.Now(), start + absl::Seconds(3));
}

}  // namespace
}  // namespace presence::base
