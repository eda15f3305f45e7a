#include "server/vs/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace presence::vs {
namespace {

// A failure after which the request may be sent again without harm. An
// answer we cannot read counts: a proxy's error page or a half-written body
// says nothing about whether VS took the request, and leaveRoom and
// updateCredits are safe to repeat.
bool IsTransient(const VsResult& result) {
  switch (result.outcome) {
    case VsOutcome::kTransportError:
    case VsOutcome::kTimeout:
    case VsOutcome::kNotConnected:
    case VsOutcome::kProtocolError:
      return true;
    case VsOutcome::kHttpError:
      return result.http_status == 429 || result.http_status >= 500;
    default:
      return false;
  }
}

}  // namespace

RetryPolicy::RetryPolicy(RetryOptions options, std::function<double()> uniform01)
    : options_(options), uniform01_(std::move(uniform01)) {}

absl::Duration RetryPolicy::Backoff(int attempt) const {
  double factor = std::pow(options_.multiplier, std::max(0, attempt - 1));
  absl::Duration delay = std::min(options_.initial_backoff * factor, options_.max_backoff);
  double jitter = std::clamp(options_.jitter, 0.0, 1.0);
  return delay * (1.0 - jitter * uniform01_());
}

bool RetryPolicy::ShouldRetry(VsFunction function, const VsResult& result, int attempt,
                              absl::Duration elapsed, absl::Duration* delay,
                              absl::Duration caller_budget) const {
  absl::Duration budget;
  switch (function) {
    case VsFunction::kLeaveRoom:
    case VsFunction::kUpdateCredits:
      if (!IsTransient(result)) return false;
      budget = std::min(options_.max_total, caller_budget);
      break;
    case VsFunction::kJoinRoom:
      // A join that may have reached VS is not sent twice: VS would count two
      // presences, and we could not tell which display nickname is live.
      if (result.outcome != VsOutcome::kNotConnected) return false;
      budget = std::min(options_.join_max_total, caller_budget);
      break;
    case VsFunction::kPingRoom:
      return false;  // The next ping is the retry.
  }
  absl::Duration next = Backoff(attempt);
  if (elapsed + next > budget) return false;
  *delay = next;
  return true;
}

}  // namespace presence::vs
