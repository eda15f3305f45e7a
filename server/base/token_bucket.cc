#include "server/base/token_bucket.h"

#include <algorithm>

namespace presence::base {

TokenBucket::TokenBucket(double rate, double burst, const Clock* clock)
    : rate_(rate), burst_(burst), clock_(clock), tokens_(burst), refilled_(clock->Now()) {}

bool TokenBucket::TryTake() {
  if (rate_ <= 0) return true;
  absl::Time now = clock_->Now();
  tokens_ = std::min(burst_, tokens_ + rate_ * absl::ToDoubleSeconds(now - refilled_));
  refilled_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

}  // namespace presence::base
