#ifndef PRESENCE_SERVER_VS_RETRY_POLICY_H_
#define PRESENCE_SERVER_VS_RETRY_POLICY_H_

// Which VS requests are retried, and when.
//
// Kept apart from the transport so it can be tested without a clock or a
// network: the random source is injected, and time is passed in.
// Thread-compatible: a const RetryPolicy may be shared.

#include <functional>

#include "absl/time/time.h"
#include "server/vs/vs_result.h"

namespace presence::vs {

struct RetryOptions {
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  double multiplier = 2.0;
  // Each delay is drawn uniformly from [delay * (1 - jitter), delay].
  double jitter = 0.5;
  // leaveRoom and updateCredits are retried until this long after the first
  // attempt was sent.
  absl::Duration max_total = absl::Seconds(60);
  // joinRoom is retried only when the request certainly never reached VS (the
  // connection was refused or the host did not resolve), and only this long:
  // the viewer is waiting.
  absl::Duration join_max_total = absl::Seconds(2);
};

class RetryPolicy {
 public:
  // `uniform01` returns values in [0, 1); tests pass a fixed source.
  RetryPolicy(RetryOptions options, std::function<double()> uniform01);

  // The delay before attempt `attempt + 1`, after `attempt` (>= 1) failed.
  absl::Duration Backoff(int attempt) const;

  // Whether a request of `function` whose attempt number `attempt` ended with
  // `result`, `elapsed` after its first attempt, is tried again; when it is,
  // `*delay` is set. `budget` shortens the function's retry budget (a
  // caller's deadline); it never lengthens it.
  bool ShouldRetry(VsFunction function, const VsResult& result, int attempt, absl::Duration elapsed,
                   absl::Duration* delay, absl::Duration budget = absl::InfiniteDuration()) const;

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
  std::function<double()> uniform01_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_RETRY_POLICY_H_
