#include "server/base/token_bucket.h"

#include "gtest/gtest.h"

namespace presence::base {
namespace {

TEST(TokenBucketTest, StartsFullAndRefusesPastTheBurst) {
  FakeClock clock;
  TokenBucket bucket(10, 20, &clock);
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(bucket.TryTake()) << i;
  EXPECT_FALSE(bucket.TryTake());
}

TEST(TokenBucketTest, RefillsAtTheRate) {
  FakeClock clock;
  TokenBucket bucket(10, 20, &clock);
  while (bucket.TryTake()) {
  }
  clock.Advance(absl::Milliseconds(250));  // 2.5 tokens.
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_TRUE(bucket.TryTake());
  EXPECT_FALSE(bucket.TryTake());
}

TEST(TokenBucketTest, NeverSavesMoreThanTheBurst) {
  FakeClock clock;
  TokenBucket bucket(10, 3, &clock);
  clock.Advance(absl::Hours(1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.TryTake()) << i;
  EXPECT_FALSE(bucket.TryTake());
}

TEST(TokenBucketTest, ZeroRateMeansNoLimit) {
  FakeClock clock;
  TokenBucket bucket(0, 0, &clock);
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(bucket.TryTake());
}

}  // namespace
}  // namespace presence::base
