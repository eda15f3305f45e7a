#ifndef PRESENCE_SERVER_VS_PRIORITY_FIFO_H_
#define PRESENCE_SERVER_VS_PRIORITY_FIFO_H_

// PriorityFifo: VS requests waiting for a connection, taken in the order
// that matters when VS or this process cannot keep up: leaves first (a
// viewer VS must stop showing), then joins (a viewer who never appears),
// then credits, then pings (a ping can wait a second; a late one is
// coalesced with the next by the scheduler, never queued twice). Within a
// kind, first in, first out. Not thread-safe (the VS event loop owns it).

#include <array>
#include <cstddef>
#include <deque>
#include <vector>

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
  void Push(VsFunction function, T item) { queues_[Priority(function)].push_back(item); }
  bool empty() const { return size() == 0; }
  size_t size() const {
    size_t n = 0;
    for (const auto& q : queues_) n += q.size();
    return n;
  }
  // The most urgent item; the queue must not be empty.
  T Pop() {
    for (auto& q : queues_) {
      if (q.empty()) continue;
      T item = q.front();
      q.pop_front();
      return item;
    }
    return T{};
  }
  // Everything, most urgent first, leaving the queue empty.
  std::vector<T> TakeAll() {
    std::vector<T> all;
    for (auto& q : queues_) {
      all.insert(all.end(), q.begin(), q.end());
      q.clear();
    }
    return all;
  }

 private:
  std::array<std::deque<T>, 4> queues_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_PRIORITY_FIFO_H_
