#include "server/vs/vs_client.h"

#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <mutex>
#include <queue>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/base/clock.h"
#include "server/vs/classify.h"
#include "server/vs/curl_handles.h"
#include "server/vs/curl_transport.h"
#include "server/vs/form.h"
#include "server/vs/http_transport.h"
#include "server/vs/priority_fifo.h"
#include "server/vs/redactor.h"

namespace presence::vs {

// https:// needs TLS, which only libcurl brings.
VsHttpClient EffectiveHttpClient(const VsClientOptions& options) {
  return absl::StartsWith(options.base_url, "https://") ? VsHttpClient::kLibcurl
                                                        : options.http_client;
}

// Statistics, written by the event thread, read by anyone.
struct VsClient::Counters {
  std::array<metrics::LatencyHistogram, 4> latency;  // By VsFunction.
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> sent_by_caller{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> connections{0};
};

// One VS call, from Submit until its callback has run. Owned by the intake
// queue, then by the event loop; touched only under the loop's lock once
// handed over (or started by the caller under it).
struct VsClient::Request : Attempt {
  VsFunction function;
  std::string form;  // The body; Attempt::body views it.
  VsCallback done;
  bool counted = false;                              // Counts against max_in_flight.
  absl::Duration budget = absl::InfiniteDuration();  // From the first attempt.
  int attempt = 0;
  absl::Time first_sent;  // Of the clock.
};

// Where callers' requests are counted in (the in-flight bound, the drain) and
// handed over: a short mutex-guarded queue per loop. Thread-safe.
class VsClient::Intake {
 public:
  Intake(int max_in_flight, int loops) : max_in_flight_(max_in_flight), queues_(loops) {}

  // Counts `request` in, or refuses it (stopping, or past the bound).
  absl::Status Admit(const Request& request) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return ShuttingDown();
    if (request.counted) {
      // Pings get three quarters of the bound: when VS falls behind, joins
      // and credits still find room (a ping refused now is sent next interval).
      const int64_t bound = request.function == VsFunction::kPingRoom
                                ? max_in_flight_ - max_in_flight_ / 4
                                : max_in_flight_;
      if (counted_ >= bound) {
        overloaded_.fetch_add(1, std::memory_order_relaxed);
        return absl::ResourceExhaustedError(
            absl::StrCat("too many VS requests in flight (limit ", bound, ")"));
      }
      ++counted_;
    }
    ++pending_;
    return absl::OkStatus();
  }

  // Queues an admitted `request` for event loop `loop`; `wake` is set when
  // that loop must be woken. Refused (and counted out) if a stop began since
  // it was admitted: the loop may have cancelled its queue already.
  absl::Status Enqueue(std::unique_ptr<Request> request, int loop, bool* wake) {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      --pending_;
      if (request->counted) --counted_;
      return ShuttingDown();
    }
    *wake = queues_[loop].empty();
    queues_[loop].push_back(std::move(request));
    return absl::OkStatus();
  }

  std::vector<std::unique_ptr<Request>> TakeAll(int loop) {
    absl::MutexLock lock(&mu_);
    return std::exchange(queues_[loop], {});
  }

  // A request's callback has run.
  void Finished(bool counted) {
    absl::MutexLock lock(&mu_);
    --pending_;
    if (counted) --counted_;
  }

  bool Drain(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }

  // Refuses new requests from now on; false if already stopping.
  bool BeginStop() {
    absl::MutexLock lock(&mu_);
    return !std::exchange(stopping_, true);
  }
  bool stopping() const {
    absl::MutexLock lock(&mu_);
    return stopping_;
  }
  int64_t pending() const {
    absl::MutexLock lock(&mu_);
    return pending_;
  }
  int64_t overloaded() const { return overloaded_.load(std::memory_order_relaxed); }

 private:
  static absl::Status ShuttingDown() { return absl::CancelledError("VS client is shutting down"); }

  const int max_in_flight_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<std::unique_ptr<Request>>> queues_ ABSL_GUARDED_BY(mu_);  // By loop.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // Taken and not finished.
  int64_t counted_ ABSL_GUARDED_BY(mu_) = 0;  // The part bounded by max_in_flight.
  std::atomic<int64_t> overloaded_{0};
};

// The event thread: a transport (libcurl's or ours) on an epoll set, the
// retry heap, and every completion. Its state is guarded by mu_, which the
// thread holds except while it waits in epoll_wait; a caller that finds the
// lock free (TryLock: callers never wait for it) may start its request
// there and then. Callbacks run only on the loop's thread (or on the
// stopping thread once that thread has exited).
class VsClient::EventLoop {
 public:
  // `options.max_connections` is this loop's share; `index` names its queue
  // in the intake.
  EventLoop(VsClientOptions options, int index, std::string url, Intake* intake, Counters* counters)
      : options_(std::move(options)),
        index_(index),
        url_(std::move(url)),
        redactor_(options_.key),
        policy_(options_.retry, options_.uniform01),
        clock_(base::MonotonicClock::Get()),
        intake_(intake),
        counters_(counters) {}

  ~EventLoop() { Stop(); }

  absl::Status Start() {
    absl::StatusOr<EpollWithWake> fds = MakeEpollWithWake();
    if (!fds.ok()) return fds.status();
    fds_ = *std::move(fds);
    TransportOptions transport;
    transport.url = url_;
    transport.connect_timeout = options_.connect_timeout;
    transport.dns_cache_ttl = options_.dns_cache_ttl;
    transport.connection_max_idle = options_.connection_max_idle;
    transport.ca_file = options_.ca_file;
    transport.max_connections = std::max(1, options_.max_connections);
    transport.epoll_fd = fds_.epoll.get();
    transport.connections_opened = &counters_->connections;
    absl::StatusOr<std::unique_ptr<Transport>> made =
        EffectiveHttpClient(options_) == VsHttpClient::kLibcurl
            ? MakeCurlTransport(std::move(transport))
            : MakeHttpTransport(std::move(transport));
    if (!made.ok()) return made.status();
    transport_ = *std::move(made);
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(fds_.wake.get(), &one, sizeof(one));
    (void)n;  // EAGAIN means a wake-up is already pending.
  }

  // Joins the thread, then fails everything still pending with kCancelled.
  void Stop() {
    if (!thread_.joinable()) return;
    Wake();
    thread_.join();
    CancelEverything();
  }

  const Redactor& redactor() const { return redactor_; }

  // On the caller's thread: starts `request` on a kept-alive connection at
  // once if the loop is between rounds, nothing is waiting before it and a
  // connection is free; otherwise gives it back, for the intake's queue.
  std::unique_ptr<Request> TryStartHere(std::unique_ptr<Request> request) {
    if (!mu_.TryLock()) return request;
    const size_t limit = static_cast<size_t>(std::max(1, options_.max_connections));
    if (stopped_ || !waiting_.empty() || transport_->active() >= limit ||
        !transport_->ReadyToSend()) {
      mu_.Unlock();
      return request;
    }
    Request* taken = request.release();
    bool wake = true;
    if (StartAttempt(taken).ok()) {
      counters_->sent_by_caller.fetch_add(1, std::memory_order_relaxed);
      // The loop sleeps until planned_wake_ at most: woken only if this
      // attempt finished already or is due before that.
      std::optional<absl::Time> due = transport_->NextDeadline();
      wake = due.has_value() && *due < planned_wake_;
    } else {
      waiting_.Push(taken->function, taken, clock_->Now());  // The loop finishes it.
    }
    mu_.Unlock();
    if (wake) Wake();
    return nullptr;
  }

 private:
  struct Retry {
    absl::Time due;
    Request* request;
    bool operator>(const Retry& other) const { return due > other.due; }
  };

  // The loop sleeps this long at most, so that a caller starting an attempt
  // itself need not wake it for the attempt's deadline (seconds away).
  static constexpr absl::Duration kMaxSleep = absl::Seconds(1);

  void Run() {
    constexpr int kMaxEvents = 256;
    epoll_event events[kMaxEvents];
    pthread_setname_np(pthread_self(), "vs-loop");  // For top -H and perf.
    mu_.Lock();
    while (!intake_->stopping()) {
      const int timeout_ms = NextTimeoutMs();
      mu_.Unlock();
      const int n = epoll_wait(fds_.epoll.get(), events, kMaxEvents, timeout_ms);
      const int wait_errno = errno;
      mu_.Lock();
      if (n < 0 && wait_errno != EINTR) break;
      for (int i = 0; i < n; ++i) OnReady(events[i]);
      const absl::Time now = clock_->Now();
      transport_->OnTimer(now);
      while (!retries_.empty() && retries_.top().due <= now) {
        waiting_.Push(retries_.top().request->function, retries_.top().request, now);
        retries_.pop();
      }
      // Send first, then run the answers' callbacks: a join that arrived
      // with a batch of ping answers goes out before they are handled.
      StartWaiting();
      ProcessCompletions();
    }
    stopped_ = true;
    mu_.Unlock();
  }

  void OnReady(const epoll_event& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (event.data.fd != fds_.wake.get()) {
      transport_->OnReady(event);
      return;
    }
    uint64_t count;
    while (read(fds_.wake.get(), &count, sizeof(count)) > 0) {
    }
    const absl::Time now = clock_->Now();
    for (auto& request : intake_->TakeAll(index_)) {
      VsFunction function = request->function;
      waiting_.Push(function, request.release(), now);
    }
  }

  // How long the loop may sleep; sets planned_wake_.
  int NextTimeoutMs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = clock_->Now();
    absl::Time next = now + kMaxSleep;
    if (std::optional<absl::Time> due = transport_->NextDeadline(); due && *due < next) next = *due;
    if (!retries_.empty() && retries_.top().due < next) next = retries_.top().due;
    planned_wake_ = next;
    const absl::Duration wait = next - now;
    if (wait <= absl::ZeroDuration()) return 0;
    return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  }

  // Hands waiting requests to the transport while a connection is free. The
  // transport could queue them itself (libcurl does), but its timeouts would
  // then count the wait, and the wait would ignore priorities.
  void StartWaiting() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const size_t limit = static_cast<size_t>(std::max(1, options_.max_connections));
    while (!waiting_.empty() && transport_->active() < limit) {
      Request* request = waiting_.Pop(clock_->Now());
      if (absl::Status started = StartAttempt(request); !started.ok()) {
        VsResult result;
        result.outcome = VsOutcome::kNotConnected;
        result.status = absl::UnavailableError(
            absl::StrCat("could not start a VS request: ", started.message()));
        Finish(request, std::move(result));
      }
    }
  }

  // Counts the attempt only if the transport took it.
  absl::Status StartAttempt(Request* request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (request->attempt == 0) request->first_sent = clock_->Now();
    request->body = request->form;
    // The attempt may not outlive the request's budget (a caller's deadline).
    request->timeout = std::max(absl::Milliseconds(1),
                                std::min(options_.request_timeout,
                                         request->budget - (clock_->Now() - request->first_sent)));
    if (absl::Status started = transport_->Start(request); !started.ok()) return started;
    ++request->attempt;
    counters_->sent.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  // Answers pings last (leaves, joins and credits first), each in the order
  // it came.
  void ProcessCompletions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    transport_->TakeFinished(&finished_);
    size_t pings = 0;  // Moved to the front as the others complete.
    for (Attempt* attempt : finished_) {
      auto* request = static_cast<Request*>(attempt);
      if (request->function == VsFunction::kPingRoom) {
        finished_[pings++] = attempt;
      } else {
        Complete(request);
      }
    }
    for (size_t i = 0; i < pings; ++i) Complete(static_cast<Request*>(finished_[i]));
  }

  // One attempt's outcome: retried later, or the request is finished.
  void Complete(Request* request) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    VsResult result = ClassifyAttempt(Report(*request), redactor_);
    absl::Duration delay;
    absl::Time now = clock_->Now();
    if (policy_.ShouldRetry(request->function, result, request->attempt, now - request->first_sent,
                            &delay, request->budget)) {
      counters_->retries.fetch_add(1, std::memory_order_relaxed);
      retries_.push(Retry{now + delay, request});
      return;
    }
    Finish(request, std::move(result));
  }

  AttemptReport Report(const Request& request) const {
    AttemptReport report;
    report.function = request.function;
    report.code = request.code;
    report.http_status = request.http_status;
    report.request_bytes = request.request_bytes;
    report.error_text = request.error_text;
    report.body = request.response;
    report.body_too_large = request.response_too_large;
    report.attempts = request.attempt;
    report.request_timeout = options_.request_timeout;
    return report;
  }

  // Runs the callback and forgets the request.
  void Finish(Request* request, VsResult result) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<Request> owned(request);
    result.attempts = owned->attempt;
    if (owned->attempt > 0) {
      counters_->latency[static_cast<int>(owned->function)].Record(clock_->Now() -
                                                                   owned->first_sent);
    }
    std::move(owned->done)(std::move(result));
    counters_->completed.fetch_add(1, std::memory_order_relaxed);
    intake_->Finished(owned->counted);
  }

  void CancelEverything() {
    absl::MutexLock lock(&mu_);
    std::vector<Request*> doomed;
    for (Attempt* attempt : transport_->Abandon()) doomed.push_back(static_cast<Request*>(attempt));
    for (; !retries_.empty(); retries_.pop()) doomed.push_back(retries_.top().request);
    for (Request* request : waiting_.TakeAll()) doomed.push_back(request);
    for (auto& request : intake_->TakeAll(index_)) doomed.push_back(request.release());
    for (Request* request : doomed) {
      VsResult result;
      result.outcome = VsOutcome::kCancelled;
      result.status = absl::CancelledError(absl::StrCat(
          "VS client shut down before ", VsFunctionName(request->function), " completed"));
      Finish(request, std::move(result));
    }
  }

  const VsClientOptions options_;
  const int index_;
  const std::string url_;
  const Redactor redactor_;
  const RetryPolicy policy_;
  const base::Clock* const clock_;
  Intake* const intake_;
  Counters* const counters_;

  // The transport's sockets are in the epoll set: it goes first.
  EpollWithWake fds_;
  absl::Mutex mu_;
  std::unique_ptr<Transport> transport_ ABSL_GUARDED_BY(mu_);
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retries_ ABSL_GUARDED_BY(mu_);
  // Ready, waiting for a connection: leaves first, pings last.
  PriorityFifo<Request*> waiting_ ABSL_GUARDED_BY(mu_);
  // ProcessCompletions' buffer, kept for its capacity.
  std::vector<Attempt*> finished_ ABSL_GUARDED_BY(mu_);
  // When the sleeping loop wakes at the latest (until it first sleeps: never,
  // so that a caller wakes it rather than assume).
  absl::Time planned_wake_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // The thread has left its loop.
  std::thread thread_;
};

absl::StatusOr<std::unique_ptr<VsClient>> VsClient::Create(VsClientOptions options) {
  absl::string_view base = options.base_url;
  if (!absl::StartsWith(base, "http://") && !absl::StartsWith(base, "https://")) {
    return absl::InvalidArgumentError("the VS URL must start with http:// or https://");
  }
  if (options.key.empty()) return absl::InvalidArgumentError("the VS key is empty");
  if (options.max_in_flight < 1) {
    return absl::InvalidArgumentError("max_in_flight must be at least 1");
  }
  static std::once_flag global_init;
  std::call_once(global_init, [] {
    curl_global_init(CURL_GLOBAL_ALL);
    // libcurl with OpenSSL can still raise SIGPIPE on a closed connection.
    signal(SIGPIPE, SIG_IGN);
  });
  if (!options.uniform01) {
    auto gen = std::make_shared<absl::BitGen>();
    auto mu = std::make_shared<absl::Mutex>();
    options.uniform01 = [gen, mu] {
      absl::MutexLock lock(mu.get());
      return absl::Uniform(*gen, 0.0, 1.0);
    };
  }
  std::unique_ptr<VsClient> client(new VsClient(std::move(options)));
  const VsClientOptions& opts = client->options_;
  std::string url =
      absl::StrCat(absl::StripSuffix(opts.base_url, "/"), "/customer?key=", FormEscape(opts.key));
  const int loops = std::max(1, opts.event_loops);
  for (int i = 0; i < loops; ++i) {
    // Each loop has its share of the connections.
    VsClientOptions share = opts;
    share.max_connections = std::max(1, opts.max_connections / loops);
    client->loops_.push_back(std::make_unique<EventLoop>(
        std::move(share), i, url, client->intake_.get(), client->counters_.get()));
    if (absl::Status started = client->loops_.back()->Start(); !started.ok()) return started;
  }
  return client;
}

VsClient::VsClient(VsClientOptions options)
    : options_(std::move(options)),
      counters_(std::make_unique<Counters>()),
      intake_(std::make_unique<Intake>(options_.max_in_flight, std::max(1, options_.event_loops))) {
}

VsClient::~VsClient() {
  intake_->BeginStop();
  for (auto& loop : loops_) loop->Stop();
}

std::string VsClient::JoinRoomBody(const JoinRoomRequest& r) {
  FormFields fields = {{"function", "joinRoom"},
                       {"performerId", absl::StrCat(r.performer_id)},
                       {"nickname", r.nickname}};
  if (r.customer_id.has_value()) fields.emplace_back("customerId", absl::StrCat(*r.customer_id));
  fields.emplace_back("ipAddress", r.ip_address);
  fields.emplace_back("registered", r.registered ? "1" : "0");
  fields.emplace_back("credits", absl::StrCat(r.credits));
  return FormEncode(fields);
}

std::string VsClient::PresenceBody(VsFunction function, const RoomPresence& p) {
  FormFields fields = {{"function", VsFunctionName(function)},
                       {"performerId", absl::StrCat(p.performer_id)}};
  if (p.customer_id.has_value()) fields.emplace_back("customerId", absl::StrCat(*p.customer_id));
  fields.emplace_back("nickname", p.nickname);
  return FormEncode(fields);
}

std::string VsClient::UpdateCreditsBody(const UpdateCreditsRequest& r) {
  return FormEncode({{"function", "updateCredits"},
                     {"customerId", absl::StrCat(r.customer_id)},
                     {"credits", absl::StrCat(r.credits)}});
}

absl::Status VsClient::Submit(VsFunction function, int64_t shard, std::string body, VsCallback done,
                              absl::Duration budget) {
  auto request = std::make_unique<Request>();
  request->budget = budget;
  request->function = function;
  request->form = std::move(body);
  request->done = std::move(done);
  request->counted = function != VsFunction::kLeaveRoom;
  if (absl::Status admitted = intake_->Admit(*request); !admitted.ok()) return admitted;
  const int index = static_cast<int>(static_cast<uint64_t>(shard) % loops_.size());
  EventLoop& loop = *loops_[index];
  request = loop.TryStartHere(std::move(request));
  if (request == nullptr) return absl::OkStatus();
  bool wake = false;
  absl::Status queued = intake_->Enqueue(std::move(request), index, &wake);
  if (wake) loop.Wake();
  return queued;
}

absl::Status VsClient::JoinRoom(const JoinRoomRequest& request, VsCallback done) {
  return Submit(VsFunction::kJoinRoom, request.performer_id, JoinRoomBody(request),
                std::move(done));
}

absl::Status VsClient::LeaveRoom(const RoomPresence& presence, VsCallback done) {
  return Submit(VsFunction::kLeaveRoom, presence.performer_id,
                PresenceBody(VsFunction::kLeaveRoom, presence), std::move(done));
}

absl::Status VsClient::PingRoom(const RoomPresence& presence, VsCallback done) {
  return Submit(VsFunction::kPingRoom, presence.performer_id,
                PresenceBody(VsFunction::kPingRoom, presence), std::move(done));
}

absl::Status VsClient::UpdateCredits(const UpdateCreditsRequest& request, VsCallback done,
                                     absl::Duration budget) {
  return Submit(VsFunction::kUpdateCredits, request.customer_id, UpdateCreditsBody(request),
                std::move(done), budget);
}

bool VsClient::Drain(absl::Time deadline) { return intake_->Drain(deadline); }

VsClientStats VsClient::stats() const {
  VsClientStats stats;
  stats.requests_sent = counters_->sent.load(std::memory_order_relaxed);
  stats.sent_by_caller = counters_->sent_by_caller.load(std::memory_order_relaxed);
  stats.retries = counters_->retries.load(std::memory_order_relaxed);
  stats.completed = counters_->completed.load(std::memory_order_relaxed);
  stats.overloaded = intake_->overloaded();
  stats.connections_opened = counters_->connections.load(std::memory_order_relaxed);
  stats.in_flight = intake_->pending();
  return stats;
}

const metrics::LatencyHistogram& VsClient::latency(VsFunction function) const {
  return counters_->latency[static_cast<int>(function)];
}

std::string VsClient::Redact(std::string text) const {
  return loops_.front()->redactor().Redact(std::move(text));
}

}  // namespace presence::vs
