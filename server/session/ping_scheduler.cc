#include "server/session/ping_scheduler.h"

#include <algorithm>
#include <utility>

namespace presence::session {
namespace {

// Due entries are taken in batches so the lock is not held while sending.
constexpr size_t kMaxBatch = 1024;
// The longest the thread sleeps without looking at the heap again.
constexpr absl::Duration kMaxWait = absl::Milliseconds(50);

// RunAt's timer: served once, then dropped (Serve).
class OneShot final : public PingTarget {
 public:
  explicit OneShot(absl::AnyInvocable<void() &&> fn) : PingTarget(TimerTag{}), fn_(std::move(fn)) {}
  void SendPing() override { std::move(fn_)(); }

 private:
  absl::AnyInvocable<void() &&> fn_;
};

}  // namespace

void PingScheduler::RunAt(absl::Time at, absl::AnyInvocable<void() &&> fn) {
  // Add schedules one interval after the time it is given.
  Add(std::make_shared<OneShot>(std::move(fn)), at - interval_);
}

PingScheduler::PingScheduler(absl::Duration interval, const base::Clock* clock, Mode mode)
    : interval_(interval), clock_(clock) {
  if (mode == Mode::kOwnThread) thread_ = std::thread([this] { Run(); });
}

PingScheduler::~PingScheduler() { Stop(); }

void PingScheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
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
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!AwaitDue()) return;
    }
    SendDue();
  }
}

bool PingScheduler::AwaitDue() {
  while (!stopping_) {
    absl::Time now = clock_->Now();
    if (!heap_.empty() && heap_.top().due <= now) return true;
    // Wake when the earliest entry is due, when Add puts an earlier one on
    // top, or on stopping.
    absl::Time top = heap_.empty() ? absl::InfiniteFuture() : heap_.top().due;
    auto changed = [this, top]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!heap_.empty() && heap_.top().due < top);
    };
    mu_.AwaitWithTimeout(absl::Condition(&changed), std::min(top - now, kMaxWait));
  }
  return false;
}

void PingScheduler::SendDue() {
  std::vector<Entry> batch;
  do {
    batch.clear();
    {
      absl::MutexLock lock(&mu_);
      absl::Time now = clock_->Now();
      while (!heap_.empty() && heap_.top().due <= now + kCoalesce && batch.size() < kMaxBatch) {
        // priority_queue::top is const; the entry is popped right after.
        batch.push_back(std::move(const_cast<Entry&>(heap_.top())));
        heap_.pop();
      }
    }
    for (Entry& entry : batch) Serve(entry);
    absl::MutexLock lock(&mu_);
    for (Entry& entry : batch) {
      if (entry.target != nullptr) heap_.push(std::move(entry));
    }
  } while (batch.size() == kMaxBatch);
}

void PingScheduler::Serve(Entry& entry) {
  if (entry.target->closed()) {
    entry.target.reset();  // Dropped.
    return;
  }
  if (entry.target->timer()) {
    entry.target->SendPing();
    entry.target.reset();
    return;
  }
  absl::Time active_until = entry.target->last_activity() + interval_;
  if (active_until > entry.due) {
    skipped_activity_.fetch_add(1, std::memory_order_relaxed);
    entry.due = active_until;
    return;
  }
  if (!entry.target->TryStartPing()) {
    skipped_in_flight_.fetch_add(1, std::memory_order_relaxed);
  } else {
    lateness_.Record(clock_->Now() - entry.due);
    sent_.fetch_add(1, std::memory_order_relaxed);
    entry.target->SendPing();
  }
  entry.due += interval_;
}

}  // namespace presence::session
