#ifndef PRESENCE_SERVER_VS_PRIORITY_FIFO_H_
#define PRESENCE_SERVER_VS_PRIORITY_FIFO_H_

// PriorityFifo: VS requests waiting for a connection, taken in the order
// that matters when VS or this process cannot keep up: leaves first (a
// viewer VS must stop showing), then joins (a viewer who never appears),
// then credits, then pings (a ping can wait a second; a late one is
// coalesced with the next by the scheduler, never queued twice). A ping that
// has waited a second goes before joins, so a join flood cannot starve them.
// Within a kind, first in, first out. Not thread-safe (the VS event loop
// owns it).

#include <array>
#include <cstddef>
#include <deque>
#include <vector>

#include "absl/time/time.h"
#include "server/vs/vs_result.h"

namespace presence::vs {

// 0 is served first.
inline int Priority(VsFunction function) {
  switch (function) {
    case VsFunction::kLeaveRoom:
      return 0;
    case VsFunction::kJoinRoom:
      return 1;
    case VsFunction::kUpdateCredits:
      return 2;
    case VsFunction::kPingRoom:
      return 3;
  }
  return 3;
}

template <typename T>
class PriorityFifo {
 public:
  // A ping that has waited `max_ping_wait` goes before joins and credits
  // (never before leaves): a flood of joins (a mass reconnect) must not
  // starve pings until every session is late.
  explicit PriorityFifo(absl::Duration max_ping_wait = absl::Seconds(1))
      : max_ping_wait_(max_ping_wait) {}

  // `now` is a time of one monotonic clock, for every call.
  void Push(VsFunction function, T item, absl::Time now) {
    queues_[Priority(function)].push_back({item, now});
  }
  bool empty() const { return size() == 0; }
  size_t size() const {
    size_t n = 0;
    for (const auto& q : queues_) n += q.size();
    return n;
  }
  // The most urgent item; the queue must not be empty.
  T Pop(absl::Time now) {
    constexpr int kLeaves = 0, kPings = 3;
    int from = kLeaves;
    if (queues_[kLeaves].empty()) {
      const auto& pings = queues_[kPings];
      bool overdue = !pings.empty() && now - pings.front().since >= max_ping_wait_;
      from = overdue ? kPings : 1;
    }
    for (int i = from; i < static_cast<int>(queues_.size()); ++i) {
      if (queues_[i].empty()) continue;
      T item = queues_[i].front().item;
      queues_[i].pop_front();
      return item;
    }
    return T{};
  }
  // Everything, most urgent first, leaving the queue empty.
  std::vector<T> TakeAll() {
    std::vector<T> all;
    for (auto& q : queues_) {
      for (const Waiting& w : q) all.push_back(w.item);
      q.clear();
    }
    return all;
  }

 private:
  struct Waiting {
    T item;
    absl::Time since;
  };
  const absl::Duration max_ping_wait_;
  std::array<std::deque<Waiting>, 4> queues_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_PRIORITY_FIFO_H_
