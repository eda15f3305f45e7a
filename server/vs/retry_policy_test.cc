#include "server/vs/retry_policy.h"

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

RetryOptions Options() {
  RetryOptions options;
  options.initial_backoff = absl::Milliseconds(100);
  options.max_backoff = absl::Seconds(1);
  options.multiplier = 2;
  options.jitter = 0.5;
  options.max_total = absl::Seconds(3);
  options.join_max_total = absl::Milliseconds(500);
  return options;
}

VsResult Outcome(VsOutcome outcome, int http_status = 0) {
  VsResult result;
  result.outcome = outcome;
  result.http_status = http_status;
  return result;
}

TEST(RetryPolicyTest, BackoffDoublesAndCapsWithoutJitterAtZero) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  EXPECT_EQ(policy.Backoff(1), absl::Milliseconds(100));
  EXPECT_EQ(policy.Backoff(2), absl::Milliseconds(200));
  EXPECT_EQ(policy.Backoff(4), absl::Milliseconds(800));
  EXPECT_EQ(policy.Backoff(5), absl::Seconds(1));
  EXPECT_EQ(policy.Backoff(30), absl::Seconds(1));
}

TEST(RetryPolicyTest, JitterShortensUpToItsFraction) {
  RetryPolicy policy(Options(), [] { return 0.999999; });
  EXPECT_GE(policy.Backoff(1), absl::Milliseconds(50));
  EXPECT_LT(policy.Backoff(1), absl::Microseconds(50001));
  RetryPolicy half(Options(), [] { return 0.5; });
  EXPECT_EQ(half.Backoff(2), absl::Milliseconds(150));
}

TEST(RetryPolicyTest, LeaveRetriesTransientFailuresWithinBudget) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration delay;
  for (VsResult r : {Outcome(VsOutcome::kTransportError), Outcome(VsOutcome::kTimeout),
                     Outcome(VsOutcome::kNotConnected), Outcome(VsOutcome::kHttpError, 503),
                     Outcome(VsOutcome::kHttpError, 429), Outcome(VsOutcome::kProtocolError)}) {
    EXPECT_TRUE(policy.ShouldRetry(VsFunction::kLeaveRoom, r, 1, absl::ZeroDuration(), &delay))
        << VsOutcomeName(r.outcome);
    EXPECT_EQ(delay, absl::Milliseconds(100));
    EXPECT_TRUE(policy.ShouldRetry(VsFunction::kUpdateCredits, r, 1, absl::ZeroDuration(), &delay));
  }
}

TEST(RetryPolicyTest, LeaveDoesNotRetryAnswersThatWillNotChange) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration delay;
  for (VsResult r : {Outcome(VsOutcome::kRejected), Outcome(VsOutcome::kHttpError, 400),
                     Outcome(VsOutcome::kHttpError, 404), Outcome(VsOutcome::kAccepted)}) {
    EXPECT_FALSE(policy.ShouldRetry(VsFunction::kLeaveRoom, r, 1, absl::ZeroDuration(), &delay))
        << VsOutcomeName(r.outcome) << " " << r.http_status;
  }
}

TEST(RetryPolicyTest, StopsWhenTheNextAttemptWouldPassTheBudget) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration delay;
  VsResult down = Outcome(VsOutcome::kNotConnected);
  EXPECT_TRUE(policy.ShouldRetry(VsFunction::kLeaveRoom, down, 5, absl::Seconds(2), &delay));
  EXPECT_EQ(delay, absl::Seconds(1));
  EXPECT_FALSE(
      policy.ShouldRetry(VsFunction::kLeaveRoom, down, 6, absl::Milliseconds(2001), &delay));
}

TEST(RetryPolicyTest, CountsAttemptsOfAWholeScheduleDeterministically) {
  // With no jitter and instant failures: 100+200+400+800+1000 = 2500 ms
  // fit in 3 s, the next 1000 ms does not: 6 attempts in all.
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration elapsed, delay;
  int attempt = 1;
  while (policy.ShouldRetry(VsFunction::kLeaveRoom, Outcome(VsOutcome::kTimeout), attempt, elapsed,
                            &delay)) {
    elapsed += delay;
    ++attempt;
  }
  EXPECT_EQ(attempt, 6);
  EXPECT_EQ(elapsed, absl::Milliseconds(2500));
}

TEST(RetryPolicyTest, JoinRetriesOnlyWhenItNeverReachedVs) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration delay;
  EXPECT_TRUE(policy.ShouldRetry(VsFunction::kJoinRoom, Outcome(VsOutcome::kNotConnected), 1,
                                 absl::ZeroDuration(), &delay));
  EXPECT_FALSE(policy.ShouldRetry(VsFunction::kJoinRoom, Outcome(VsOutcome::kNotConnected), 3,
                                  absl::Milliseconds(450), &delay));
  EXPECT_FALSE(policy.ShouldRetry(VsFunction::kJoinRoom, Outcome(VsOutcome::kTimeout), 1,
                                  absl::ZeroDuration(), &delay));
  EXPECT_FALSE(policy.ShouldRetry(VsFunction::kJoinRoom, Outcome(VsOutcome::kHttpError, 503), 1,
                                  absl::ZeroDuration(), &delay));
}

TEST(RetryPolicyTest, PingIsNeverRetried) {
  RetryPolicy policy(Options(), [] { return 0.0; });
  absl::Duration delay;
  EXPECT_FALSE(policy.ShouldRetry(VsFunction::kPingRoom, Outcome(VsOutcome::kNotConnected), 1,
                                  absl::ZeroDuration(), &delay));
}

}  // namespace
}  // namespace presence::vs
