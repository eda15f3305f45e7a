#ifndef PRESENCE_SERVER_BASE_TOKEN_BUCKET_H_
#define PRESENCE_SERVER_BASE_TOKEN_BUCKET_H_

// TokenBucket limits a rate with a burst: `rate` tokens a second, at most
// `burst` saved up. It starts full. A rate of 0 or less means no limit.
//
// Not thread-safe: its owner serialises calls (a stream's reactor lock).

#include "absl/time/time.h"
#include "server/base/clock.h"

namespace presence::base {

class TokenBucket {
 public:
  TokenBucket(double rate, double burst, const Clock* clock);

  // Takes one token; false when none is left.
  bool TryTake();

 private:
  double rate_;
  double burst_;
  const Clock* clock_;
  double tokens_;
  absl::Time refilled_;
};

}  // namespace presence::base

#endif  // PRESENCE_SERVER_BASE_TOKEN_BUCKET_H_
