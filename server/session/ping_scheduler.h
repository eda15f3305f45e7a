#ifndef PRESENCE_SERVER_SESSION_PING_SCHEDULER_H_
#define PRESENCE_SERVER_SESSION_PING_SCHEDULER_H_

// PingScheduler keeps every presence's next pingRoom on one timer heap,
// served by one thread: no thread, timer or grpc::Alarm per session.
//
// Rules: the next ping is due one interval after the latest of the join, the
// last ping's scheduled time and the last activity. A ping is rescheduled from
// its scheduled time, not from when it completed, so pings do not drift. At
// most one ping per target is in flight; a ping due while the previous one is
// still out is skipped. Activity is an atomic store on the target: no heap
// operation, no allocation, no lock.
//
// Time comes from the injected monotonic Clock; in manual mode no thread is
// started and the owner calls SendDue (tests, with a FakeClock).
//
// Thread-safe. PingTarget::SendPing runs on the scheduler thread and must not
// block.

#include <atomic>
#include <cstdint>
#include <memory>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/base/clock.h"
#include "server/metrics/histogram.h"

namespace presence::session {

// What the scheduler pings: a VS presence.
class PingTarget {
 public:
  PingTarget() = default;
  virtual ~PingTarget() = default;

  // Sends one pingRoom and calls PingDone when VS has answered.
  virtual void SendPing() = 0;

  // `at` is a time of the scheduler's clock.
  void RecordActivity(absl::Time at) {
    last_activity_ns_.store(absl::ToUnixNanos(at), std::memory_order_relaxed);
  }
  absl::Time last_activity() const {
    return absl::FromUnixNanos(last_activity_ns_.load(std::memory_order_relaxed));
  }

  // After Close the scheduler drops the target at its next due time.
  void Close() { closed_.store(true, std::memory_order_release); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Marks a ping in flight; false when one already is.
  bool TryStartPing() { return !ping_in_flight_.exchange(true, std::memory_order_acq_rel); }
  void PingDone() { ping_in_flight_.store(false, std::memory_order_release); }

  // RunAt's timers share the heap but are not pings: served once at their
  // time, outside the ping statistics (lateness, sent, skips).
  bool timer() const { return timer_; }

 protected:
  struct TimerTag {};
  explicit PingTarget(TimerTag) : timer_(true) {}

 private:
  std::atomic<int64_t> last_activity_ns_{INT64_MIN};
  std::atomic<bool> closed_{false};
  std::atomic<bool> ping_in_flight_{false};
  const bool timer_ = false;
};

struct PingSchedulerStats {
  int64_t scheduled = 0;  // Targets added.
  int64_t pings_sent = 0;
  int64_t skipped_for_activity = 0;
  int64_t skipped_in_flight = 0;
  int64_t queued = 0;  // Heap entries, closed targets included.
};

class PingScheduler {
 public:
  enum class Mode { kOwnThread, kManual };

  // A ping goes at most this much before its due time: woken for the first
  // due ping, the thread also sends those due within kCoalesce after it, so
  // that at thousands of pings a second each wake-up (of this thread and of
  // the VS loop it hands them to) carries several. Due times stay on their
  // grid; only the send is early.
  static constexpr absl::Duration kCoalesce = absl::Milliseconds(1);

  PingScheduler(absl::Duration interval, const base::Clock* clock, Mode mode = Mode::kOwnThread);
  ~PingScheduler();  // Stops.

  // Stops the thread; pending pings are dropped, and Add still works (and
  // schedules nothing). Idempotent.
  void Stop();

  PingScheduler(const PingScheduler&) = delete;
  PingScheduler& operator=(const PingScheduler&) = delete;

  // Schedules `target`'s first ping one interval after `joined_at` (a time
  // of clock()).
  void Add(std::shared_ptr<PingTarget> target, absl::Time joined_at);

  // Runs `fn` once, on the scheduler thread, at `at` (a time of clock()).
  // For timers that are not pings (a resume grace running out); `fn` must
  // not block.
  void RunAt(absl::Time at, absl::AnyInvocable<void() &&> fn);

  // Sends every ping due by clock()->Now(). The thread's work; called
  // directly in manual mode.
  void SendDue();

  absl::Duration interval() const { return interval_; }
  const base::Clock* clock() const { return clock_; }
  PingSchedulerStats stats() const;
  // Sent minus scheduled time of every ping sent.
  const metrics::LatencyHistogram& lateness() const { return lateness_; }

 private:
  struct Entry {
    absl::Time due;
    std::shared_ptr<PingTarget> target;
    bool operator>(const Entry& other) const { return due > other.due; }
  };

  void Run();
  // Waits until an entry is due or stopping; false when stopping.
  bool AwaitDue() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Pings (or postpones) one due entry and moves its due time on.
  void Serve(Entry& entry);

  const absl::Duration interval_;
  const base::Clock* const clock_;

  mutable absl::Mutex mu_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<int64_t> scheduled_{0};
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> skipped_activity_{0};
  std::atomic<int64_t> skipped_in_flight_{0};
  metrics::LatencyHistogram lateness_;
  std::thread thread_;
};

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_PING_SCHEDULER_H_
