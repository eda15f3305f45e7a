#include "server/session/ping_scheduler.h"

#include <algorithm>
#include <utility>

namespace presence::session {

PingScheduler::PingScheduler(absl::Duration interval, SendFn send)
    : interval_(interval), send_(std::move(send)) {
  thread_ = std::thread([this] { Run(); });
}

PingScheduler::~PingScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void PingScheduler::Add(std::shared_ptr<PingTarget> target, absl::Time joined_at) {
  scheduled_.fetch_add(1, std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  heap_.push(Entry{joined_at + interval_, std::move(target)});
}

PingSchedulerStats PingScheduler::stats() const {
  PingSchedulerStats stats;
  stats.scheduled = scheduled_.load(std::memory_order_relaxed);
  stats.pings_sent = sent_.load(std::memory_order_relaxed);
  stats.skipped_for_activity = skipped_activity_.load(std::memory_order_relaxed);
  stats.skipped_in_flight = skipped_in_flight_.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  stats.queued = static_cast<int64_t>(heap_.size());
  return stats;
}

void PingScheduler::Run() {
  // Due entries are taken in batches so the lock is not held while sending.
  constexpr size_t kMaxBatch = 1024;
  std::vector<Entry> batch;
  std::vector<Entry> again;
  batch.reserve(kMaxBatch);
  again.reserve(kMaxBatch);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      for (Entry& e : again) heap_.push(std::move(e));
      again.clear();
      while (true) {
        if (stopping_) return;
        absl::Time now = absl::Now();
        if (!heap_.empty() && heap_.top().due <= now) break;
        // Wake when the earliest entry is due, when Add puts an earlier one on
        // top, or on stopping; the 50 ms cap guards against clock steps.
        absl::Time wake = heap_.empty() ? now + absl::Milliseconds(50)
                                        : std::min(heap_.top().due, now + absl::Milliseconds(50));
        absl::Time top = heap_.empty() ? absl::InfiniteFuture() : heap_.top().due;
        auto changed = [this, top]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || (!heap_.empty() && heap_.top().due < top);
        };
        mu_.AwaitWithDeadline(absl::Condition(&changed), wake);
      }
      absl::Time now = absl::Now();
      while (!heap_.empty() && heap_.top().due <= now && batch.size() < kMaxBatch) {
        // priority_queue::top is const; the entry is popped right after.
        batch.push_back(std::move(const_cast<Entry&>(heap_.top())));
        heap_.pop();
      }
    }
    for (Entry& entry : batch) {
      if (entry.target->closed()) continue;
      absl::Time active_until = entry.target->last_activity() + interval_;
      if (active_until > entry.due) {
        skipped_activity_.fetch_add(1, std::memory_order_relaxed);
        entry.due = active_until;
      } else if (!entry.target->TryStartPing()) {
        skipped_in_flight_.fetch_add(1, std::memory_order_relaxed);
        entry.due += interval_;
      } else {
        lateness_.Record(absl::Now() - entry.due);
        sent_.fetch_add(1, std::memory_order_relaxed);
        send_(entry.target, entry.due);
        entry.due += interval_;
      }
      again.push_back(std::move(entry));
    }
    batch.clear();
  }
}

}  // namespace presence::session
