#include "server/vs/vs_client.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <deque>
#include <mutex>
#include <queue>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/base/clock.h"
#include "server/vs/classify.h"
#include "server/vs/curl_handles.h"
#include "server/vs/form.h"
#include "server/vs/priority_fifo.h"
#include "server/vs/redactor.h"

namespace presence::vs {
namespace {

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

}  // namespace

// Statistics, written by the event thread, read by anyone.
struct VsClient::Counters {
  std::array<metrics::LatencyHistogram, 4> latency;  // By VsFunction.
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> retries{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> connections{0};
};

// One VS call, from Submit until its callback has run. Owned by the intake
// queue, then by the event loop; touched only on the event thread once
// handed over.
struct VsClient::Request {
  VsFunction function;
  std::string body;
  VsCallback done;
  bool counted = false;                              // Counts against max_in_flight.
  absl::Duration budget = absl::InfiniteDuration();  // From the first attempt.
  int attempt = 0;
  absl::Time first_sent;  // Of the clock.
  std::string response;
  bool response_too_large = false;
  CurlEasy easy;  // While an attempt is with libcurl.
  char error[CURL_ERROR_SIZE] = {};
};

// Where callers hand requests over: a short mutex-guarded queue, the
// in-flight bound and the drain. Thread-safe.
class VsClient::Intake {
 public:
  Intake(int max_in_flight, int loops) : max_in_flight_(max_in_flight), queues_(loops) {}

  // Queues `request` for event loop `loop`; `wake` is set when that loop
  // must be woken.
  absl::Status Submit(std::unique_ptr<Request> request, int loop, bool* wake) {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("VS client is shutting down");
    if (request->counted) {
      // Pings get three quarters of the bound: when VS falls behind, joins
      // and credits still find room (a ping refused now is sent next interval).
      const int64_t bound = request->function == VsFunction::kPingRoom
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
  const int max_in_flight_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<std::unique_ptr<Request>>> queues_ ABSL_GUARDED_BY(mu_);  // By loop.
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // Taken and not finished.
  int64_t counted_ ABSL_GUARDED_BY(mu_) = 0;  // The part bounded by max_in_flight.
  std::atomic<int64_t> overloaded_{0};
};

// The event thread: libcurl multi in socket-action mode on epoll, the retry
// heap, and every completion. All its state is confined to that thread (and
// to the stopping thread once that thread has exited).
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
    // No "Expect: 100-continue" round trip before the body.
    absl::StatusOr<CurlHeaders> headers =
        MakeHeaders({"Content-Type: application/x-www-form-urlencoded", "Expect:"});
    if (!headers.ok()) return headers.status();
    headers_ = *std::move(headers);
    multi_.reset(curl_multi_init());
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    if (absl::Status set = ConfigureMulti(); !set.ok()) return set;
    // Validate the per-handle options once, up front.
    absl::StatusOr<CurlEasy> easy = NewEasy();
    if (!easy.ok()) return easy.status();
    free_easy_.push_back(*std::move(easy));
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

 private:
  struct Retry {
    absl::Time due;
    Request* request;
    bool operator>(const Retry& other) const { return due > other.due; }
  };

  absl::Status ConfigureMulti() {
    const long max_conns = std::max(1, options_.max_connections);
    for (absl::Status set : {
             SetMultiOption(multi_.get(), CURLMOPT_SOCKETFUNCTION, &EventLoop::OnSocket),
             SetMultiOption(multi_.get(), CURLMOPT_SOCKETDATA, this),
             SetMultiOption(multi_.get(), CURLMOPT_TIMERFUNCTION, &EventLoop::OnTimer),
             SetMultiOption(multi_.get(), CURLMOPT_TIMERDATA, this),
             SetMultiOption(multi_.get(), CURLMOPT_MAX_HOST_CONNECTIONS, max_conns),
             SetMultiOption(multi_.get(), CURLMOPT_MAX_TOTAL_CONNECTIONS, max_conns),
             SetMultiOption(multi_.get(), CURLMOPT_MAXCONNECTS, max_conns),
             SetMultiOption(multi_.get(), CURLMOPT_PIPELINING, long{CURLPIPE_NOTHING}),
         }) {
      if (!set.ok()) return set;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<CurlEasy> NewEasy() {
    CurlEasy easy(curl_easy_init());
    if (easy == nullptr) return absl::InternalError("curl_easy_init failed");
    CURL* e = easy.get();
    for (absl::Status set : {
             SetOption(e, CURLOPT_URL, url_.c_str()),
             SetOption(e, CURLOPT_POST, 1L),
             SetOption(e, CURLOPT_HTTPHEADER, headers_.get()),
             SetOption(e, CURLOPT_USERAGENT, "presence-gateway/1"),
             SetOption(e, CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_1_1}),
             SetOption(e, CURLOPT_PROTOCOLS_STR, "http,https"),
             SetOption(e, CURLOPT_FOLLOWLOCATION, 0L),
             // Straight to --vs_url: no proxy from the environment (http_proxy
             // would see the VS key in every body), and no environment lookups
             // on every request (measured: getenv on the ping path).
             SetOption(e, CURLOPT_PROXY, ""),
             SetOption(e, CURLOPT_NOSIGNAL, 1L),
             SetOption(e, CURLOPT_TCP_NODELAY, 1L),
             SetOption(e, CURLOPT_TCP_KEEPALIVE, 1L),
             SetOption(e, CURLOPT_CONNECTTIMEOUT_MS, Millis(options_.connect_timeout)),
             SetOption(e, CURLOPT_TIMEOUT_MS, Millis(options_.request_timeout)),
             SetOption(e, CURLOPT_DNS_CACHE_TIMEOUT,
                       static_cast<long>(absl::ToInt64Seconds(options_.dns_cache_ttl))),
             SetOption(e, CURLOPT_WRITEFUNCTION, &EventLoop::OnWrite),
             SetOption(e, CURLOPT_SOCKOPTFUNCTION, &EventLoop::OnNewSocket),
             SetOption(e, CURLOPT_SOCKOPTDATA, this),
             options_.ca_file.empty() ? absl::OkStatus()
                                      : SetOption(e, CURLOPT_CAINFO, options_.ca_file.c_str()),
         }) {
      if (!set.ok()) return set;
    }
    return easy;
  }

  void Run() {
    constexpr int kMaxEvents = 256;
    epoll_event events[kMaxEvents];
    while (!intake_->stopping()) {
      int n = epoll_wait(fds_.epoll.get(), events, kMaxEvents, NextTimeoutMs());
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) OnReady(events[i]);
      absl::Time now = clock_->Now();
      if (curl_deadline_.has_value() && now >= *curl_deadline_) {
        curl_deadline_.reset();
        int running = 0;
        curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
      }
      while (!retries_.empty() && retries_.top().due <= now) {
        waiting_.Push(retries_.top().request->function, retries_.top().request, now);
        retries_.pop();
      }
      ProcessCompletions();
      StartWaiting();
    }
  }

  void OnReady(const epoll_event& event) {
    if (event.data.fd == fds_.wake.get()) {
      uint64_t count;
      while (read(fds_.wake.get(), &count, sizeof(count)) > 0) {
      }
      const absl::Time now = clock_->Now();
      for (auto& request : intake_->TakeAll(index_)) {
        VsFunction function = request->function;
        waiting_.Push(function, request.release(), now);
      }
      return;
    }
    int flags = 0;
    if (event.events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (event.events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (event.events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi_.get(), event.data.fd, flags, &running);
  }

  int NextTimeoutMs() const {
    std::optional<absl::Time> next = curl_deadline_;
    if (!retries_.empty() && (!next || retries_.top().due < *next)) next = retries_.top().due;
    if (!next.has_value()) return -1;
    absl::Duration wait = *next - clock_->Now();
    if (wait <= absl::ZeroDuration()) return 0;
    return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  }

  // Hands waiting requests to libcurl while a connection is free. libcurl
  // could queue them itself, but its pending list costs time per transfer
  // that grows with its length, and its timeouts would count the wait.
  void StartWaiting() {
    const size_t limit = static_cast<size_t>(std::max(1, options_.max_connections));
    while (!waiting_.empty() && active_.size() < limit) {
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

  absl::Status StartAttempt(Request* request) {
    if (request->easy == nullptr) {
      if (free_easy_.empty()) {
        absl::StatusOr<CurlEasy> easy = NewEasy();
        if (!easy.ok()) return easy.status();
        free_easy_.push_back(*std::move(easy));
      }
      request->easy = std::move(free_easy_.back());
      free_easy_.pop_back();
    }
    if (request->attempt == 0) request->first_sent = clock_->Now();
    ++request->attempt;
    request->response.clear();
    request->response_too_large = false;
    request->error[0] = '\0';
    CURL* easy = request->easy.get();
    // The attempt may not outlive the request's budget (a caller's deadline).
    absl::Duration timeout =
        std::min(options_.request_timeout, request->budget - (clock_->Now() - request->first_sent));
    for (absl::Status set : {
             SetOption(easy, CURLOPT_TIMEOUT_MS, std::max(1L, Millis(timeout))),
             SetOption(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request->body.size())),
             SetOption(easy, CURLOPT_POSTFIELDS, request->body.data()),
             SetOption(easy, CURLOPT_WRITEDATA, request),
             SetOption(easy, CURLOPT_PRIVATE, request),
             SetOption(easy, CURLOPT_ERRORBUFFER, request->error),
         }) {
      if (!set.ok()) return set;
    }
    CURLMcode rc = curl_multi_add_handle(multi_.get(), easy);
    if (rc != CURLM_OK) return absl::InternalError(curl_multi_strerror(rc));
    active_.insert(request);
    counters_->sent.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  void ProcessCompletions() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Request* request = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&request));
      CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_.get(), msg->easy_handle);
      active_.erase(request);
      VsResult result = ClassifyAttempt(Report(*request, code), redactor_);
      absl::Duration delay;
      absl::Time now = clock_->Now();
      if (policy_.ShouldRetry(request->function, result, request->attempt,
                              now - request->first_sent, &delay, request->budget)) {
        counters_->retries.fetch_add(1, std::memory_order_relaxed);
        retries_.push(Retry{now + delay, request});
        continue;
      }
      Finish(request, std::move(result));
    }
  }

  AttemptReport Report(const Request& request, CURLcode code) const {
    AttemptReport report;
    report.function = request.function;
    report.code = code;
    curl_easy_getinfo(request.easy.get(), CURLINFO_RESPONSE_CODE, &report.http_status);
    curl_easy_getinfo(request.easy.get(), CURLINFO_REQUEST_SIZE, &report.request_bytes);
    report.error_text = request.error;
    report.body = request.response;
    report.body_too_large = request.response_too_large;
    report.attempts = request.attempt;
    report.request_timeout = options_.request_timeout;
    return report;
  }

  // Runs the callback and forgets the request.
  void Finish(Request* request, VsResult result) {
    std::unique_ptr<Request> owned(request);
    if (owned->easy != nullptr) free_easy_.push_back(std::move(owned->easy));
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
    std::vector<Request*> doomed(active_.begin(), active_.end());
    active_.clear();
    for (Request* request : doomed) curl_multi_remove_handle(multi_.get(), request->easy.get());
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

  static int OnSocket(CURL* /*easy*/, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<EventLoop*>(userp);
    const int epoll = self->fds_.epoll.get();
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(epoll, EPOLL_CTL_DEL, s, nullptr);
      curl_multi_assign(self->multi_.get(), s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev.events |= EPOLLOUT;
    if (socketp == nullptr) {
      epoll_ctl(epoll, EPOLL_CTL_ADD, s, &ev);
      curl_multi_assign(self->multi_.get(), s, self);  // Any non-null marks "registered".
    } else {
      epoll_ctl(epoll, EPOLL_CTL_MOD, s, &ev);
    }
    return 0;
  }

  static int OnTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    auto* self = static_cast<EventLoop*>(userp);
    if (timeout_ms < 0) {
      self->curl_deadline_.reset();
    } else {
      self->curl_deadline_ = self->clock_->Now() + absl::Milliseconds(timeout_ms);
    }
    return 0;
  }

  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* userp) {
    auto* request = static_cast<Request*>(userp);
    size_t bytes = size * nmemb;
    if (request->response.size() + bytes > kMaxResponseBytes) {
      request->response_too_large = true;
      return 0;  // Aborts the transfer with CURLE_WRITE_ERROR.
    }
    request->response.append(data, bytes);
    return bytes;
  }

  static int OnNewSocket(void* userp, curl_socket_t /*fd*/, curlsocktype purpose) {
    if (purpose == CURLSOCKTYPE_IPCXN) {
      static_cast<EventLoop*>(userp)->counters_->connections.fetch_add(1,
                                                                       std::memory_order_relaxed);
    }
    return CURL_SOCKOPT_OK;
  }

  const VsClientOptions options_;
  const int index_;
  const std::string url_;
  const Redactor redactor_;
  const RetryPolicy policy_;
  const base::Clock* const clock_;
  Intake* const intake_;
  Counters* const counters_;

  // Declared so that the multi handle goes before the easy handles and the
  // header list it may still point at.
  EpollWithWake fds_;
  CurlHeaders headers_;
  std::vector<CurlEasy> free_easy_;
  CurlMulti multi_;
  std::optional<absl::Time> curl_deadline_;
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retries_;
  absl::flat_hash_set<Request*> active_;  // Handed to libcurl.
  // Ready, waiting for a connection: leaves first, pings last.
  PriorityFifo<Request*> waiting_;
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
  request->body = std::move(body);
  request->done = std::move(done);
  request->counted = function != VsFunction::kLeaveRoom;
  bool wake = false;
  const int loop = static_cast<int>(static_cast<uint64_t>(shard) % loops_.size());
  absl::Status taken = intake_->Submit(std::move(request), loop, &wake);
  if (wake) loops_[loop]->Wake();
  return taken;
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
