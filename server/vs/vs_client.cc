#include "server/vs/vs_client.h"

#include <curl/curl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <queue>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "server/vs/form.h"
#include "server/vs/response_parser.h"

namespace presence::vs {
namespace {

// VS answers are a few dozen bytes; anything past this is not VS.
constexpr size_t kMaxResponseBytes = 64 * 1024;

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

}  // namespace

// One VS call, from Submit until its callback has run. Owned by the event
// loop; touched only on the event thread once handed over.
struct VsClient::Request {
  VsFunction function;
  std::string body;
  VsCallback done;
  bool counted = false;  // Counts against max_in_flight.
  int attempt = 0;
  absl::Time first_sent;
  std::string response;
  bool response_too_large = false;
  CURL* easy = nullptr;
  char error[CURL_ERROR_SIZE] = {};
};

// The event thread: libcurl multi in socket-action mode on epoll. All state
// but the submission queue and the counters is confined to that thread.
class VsClient::EventLoop {
 public:
  EventLoop(const VsClientOptions& options, std::string url, RetryPolicy policy)
      : options_(options),
        url_(std::move(url)),
        escaped_key_(FormEscape(options.key)),
        policy_(std::move(policy)) {}

  ~EventLoop() {
    Stop();
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    for (CURL* easy : free_easy_) curl_easy_cleanup(easy);
    if (headers_ != nullptr) curl_slist_free_all(headers_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
  }

  absl::Status Start() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return absl::InternalError(absl::StrCat("epoll/eventfd: ", strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wake_fd_;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
      return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
    }
    headers_ = curl_slist_append(nullptr, "Content-Type: application/x-www-form-urlencoded");
    // No "Expect: 100-continue" round trip before the body.
    headers_ = curl_slist_append(headers_, "Expect:");
    multi_ = curl_multi_init();
    if (multi_ == nullptr || headers_ == nullptr) return absl::InternalError("curl_multi_init");
    const long max_conns = std::max(1, options_.max_connections);
    for (CURLMcode rc : {
             curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &EventLoop::OnSocket),
             curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this),
             curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &EventLoop::OnTimer),
             curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this),
             curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, max_conns),
             curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_conns),
             curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, max_conns),
             curl_multi_setopt(multi_, CURLMOPT_PIPELINING, long{CURLPIPE_NOTHING}),
         }) {
      if (rc != CURLM_OK) {
        return absl::InternalError(absl::StrCat("curl_multi_setopt: ", curl_multi_strerror(rc)));
      }
    }
    // Validate the per-handle options once, up front.
    absl::StatusOr<CURL*> easy = NewEasy();
    if (!easy.ok()) return easy.status();
    free_easy_.push_back(*easy);
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  absl::Status Submit(std::unique_ptr<Request> request) {
    bool wake = false;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::CancelledError("VS client is shutting down");
      if (request->counted) {
        if (counted_ >= options_.max_in_flight) {
          overloaded_.fetch_add(1, std::memory_order_relaxed);
          return absl::ResourceExhaustedError(
              absl::StrCat("too many VS requests in flight (limit ", options_.max_in_flight, ")"));
        }
        ++counted_;
      }
      ++pending_;
      wake = incoming_.empty();
      incoming_.push_back(std::move(request));
    }
    if (wake) Wake();
    return absl::OkStatus();
  }

  bool Drain(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return pending_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    Wake();
    if (thread_.joinable()) thread_.join();
    CancelEverything();
  }

  const metrics::LatencyHistogram& Latency(VsFunction f) const {
    return latency_[static_cast<int>(f)];
  }

  VsClientStats Stats() {
    VsClientStats stats;
    stats.requests_sent = sent_.load(std::memory_order_relaxed);
    stats.retries = retries_count_.load(std::memory_order_relaxed);
    stats.completed = completed_.load(std::memory_order_relaxed);
    stats.overloaded = overloaded_.load(std::memory_order_relaxed);
    stats.connections_opened = connections_.load(std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    stats.in_flight = pending_;
    return stats;
  }

  // Runs on every answer VS sends, so it returns at once when there is
  // nothing to redact.
  std::string Redact(std::string text) const {
    if (options_.key.empty() || text.empty()) return text;
    absl::StrReplaceAll({{options_.key, "<key>"}, {escaped_key_, "<key>"}}, &text);
    return text;
  }

 private:
  struct Retry {
    absl::Time due;
    Request* request;
    bool operator>(const Retry& other) const { return due > other.due; }
  };

  void Wake() {
    uint64_t one = 1;
    ssize_t n = write(wake_fd_, &one, sizeof(one));
    (void)n;  // EAGAIN means a wake-up is already pending.
  }

  absl::StatusOr<CURL*> NewEasy() {
    CURL* easy = curl_easy_init();
    if (easy == nullptr) return absl::InternalError("curl_easy_init failed");
    const CURLcode codes[] = {
        curl_easy_setopt(easy, CURLOPT_URL, url_.c_str()),
        curl_easy_setopt(easy, CURLOPT_POST, 1L),
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers_),
        curl_easy_setopt(easy, CURLOPT_USERAGENT, "presence-gateway/1"),
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_1_1}),
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L),
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
        curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L),
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L),
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, Millis(options_.connect_timeout)),
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, Millis(options_.request_timeout)),
        curl_easy_setopt(easy, CURLOPT_DNS_CACHE_TIMEOUT,
                         static_cast<long>(absl::ToInt64Seconds(options_.dns_cache_ttl))),
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &EventLoop::OnWrite),
        curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, &EventLoop::OnNewSocket),
        curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, this),
        options_.ca_file.empty() ? CURLE_OK
                                 : curl_easy_setopt(easy, CURLOPT_CAINFO, options_.ca_file.c_str()),
    };
    for (CURLcode code : codes) {
      if (code != CURLE_OK) {
        curl_easy_cleanup(easy);
        return absl::InvalidArgumentError(
            absl::StrCat("libcurl refused an option: ", curl_easy_strerror(code)));
      }
    }
    return easy;
  }

  void Run() {
    constexpr int kMaxEvents = 256;
    epoll_event events[kMaxEvents];
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) return;
      }
      int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_fd_) {
          uint64_t count;
          while (read(wake_fd_, &count, sizeof(count)) > 0) {
          }
          TakeIncoming();
          continue;
        }
        int flags = 0;
        if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        int running = 0;
        curl_multi_socket_action(multi_, events[i].data.fd, flags, &running);
      }
      absl::Time now = absl::Now();
      if (curl_deadline_.has_value() && now >= *curl_deadline_) {
        curl_deadline_.reset();
        int running = 0;
        curl_multi_socket_action(multi_, CURL_SOCKET_TIMEOUT, 0, &running);
      }
      while (!retries_.empty() && retries_.top().due <= now) {
        waiting_.push_back(retries_.top().request);
        retries_.pop();
      }
      ProcessCompletions();
      StartWaiting();
    }
  }

  int NextTimeoutMs() const {
    std::optional<absl::Time> next = curl_deadline_;
    if (!retries_.empty() && (!next || retries_.top().due < *next)) next = retries_.top().due;
    if (!next) return -1;
    absl::Duration wait = *next - absl::Now();
    if (wait <= absl::ZeroDuration()) return 0;
    return static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(wait, absl::Milliseconds(1))));
  }

  void TakeIncoming() {
    std::vector<std::unique_ptr<Request>> batch;
    {
      absl::MutexLock lock(&mu_);
      batch.swap(incoming_);
    }
    for (auto& request : batch) waiting_.push_back(request.release());
  }

  // Hands waiting requests to libcurl while a connection is free. libcurl
  // could queue them itself, but its pending list costs time per transfer
  // that grows with its length, and its timeouts would count the wait.
  void StartWaiting() {
    const size_t limit = static_cast<size_t>(std::max(1, options_.max_connections));
    while (!waiting_.empty() && active_.size() < limit) {
      Request* request = waiting_.front();
      waiting_.pop_front();
      StartAttempt(request);
    }
  }

  void StartAttempt(Request* request) {
    if (request->easy == nullptr) {
      if (free_easy_.empty()) {
        absl::StatusOr<CURL*> easy = NewEasy();
        if (!easy.ok()) {
          VsResult result;
          result.outcome = VsOutcome::kTransportError;
          result.status = absl::UnavailableError(easy.status().message());
          Finish(request, std::move(result));
          return;
        }
        free_easy_.push_back(*easy);
      }
      request->easy = free_easy_.back();
      free_easy_.pop_back();
    }
    if (request->attempt == 0) request->first_sent = absl::Now();
    ++request->attempt;
    request->response.clear();
    request->response_too_large = false;
    request->error[0] = '\0';
    CURL* easy = request->easy;
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(request->body.size()));
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request->body.data());
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, request);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, request);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->error);
    CURLMcode rc = curl_multi_add_handle(multi_, easy);
    if (rc != CURLM_OK) {
      VsResult result;
      result.outcome = VsOutcome::kNotConnected;
      result.status = absl::UnavailableError(
          absl::StrCat("could not start a VS request: ", curl_multi_strerror(rc)));
      Finish(request, std::move(result));
      return;
    }
    active_.insert(request);
    sent_.fetch_add(1, std::memory_order_relaxed);
  }

  void ProcessCompletions() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      CURLcode code = msg->data.result;
      Request* request = nullptr;
      curl_easy_getinfo(easy, CURLINFO_PRIVATE, reinterpret_cast<char**>(&request));
      curl_multi_remove_handle(multi_, easy);
      active_.erase(request);
      VsResult result = Classify(*request, code);
      absl::Duration delay;
      if (policy_.ShouldRetry(request->function, result, request->attempt,
                              absl::Now() - request->first_sent, &delay)) {
        retries_count_.fetch_add(1, std::memory_order_relaxed);
        retries_.push(Retry{absl::Now() + delay, request});
        continue;
      }
      Finish(request, std::move(result));
    }
  }

  VsResult Classify(const Request& request, CURLcode code) const {
    const char* fn = VsFunctionName(request.function);
    VsResult result;
    result.attempts = request.attempt;
    long http = 0;
    curl_easy_getinfo(request.easy, CURLINFO_RESPONSE_CODE, &http);
    result.http_status = static_cast<int>(http);
    if (code != CURLE_OK) {
      std::string detail = request.error[0] != '\0' ? request.error : curl_easy_strerror(code);
      long sent_bytes = 0;
      curl_easy_getinfo(request.easy, CURLINFO_REQUEST_SIZE, &sent_bytes);
      if (code == CURLE_WRITE_ERROR && request.response_too_large) {
        result.outcome = VsOutcome::kProtocolError;
        result.status =
            absl::InternalError(absl::StrCat("VS protocol error: the answer to ", fn,
                                             " is larger than ", kMaxResponseBytes, " bytes"));
      } else if (sent_bytes == 0 || code == CURLE_COULDNT_CONNECT ||
                 code == CURLE_COULDNT_RESOLVE_HOST) {
        result.outcome = VsOutcome::kNotConnected;
        result.status =
            absl::UnavailableError(absl::StrCat("could not connect to VS for ", fn, ": ", detail));
      } else if (code == CURLE_OPERATION_TIMEDOUT) {
        result.outcome = VsOutcome::kTimeout;
        result.status = absl::DeadlineExceededError(absl::StrCat(
            "VS did not answer ", fn, " within ", absl::FormatDuration(options_.request_timeout)));
      } else {
        result.outcome = VsOutcome::kTransportError;
        result.status =
            absl::UnavailableError(absl::StrCat("VS transport error during ", fn, ": ", detail));
      }
      result.status =
          absl::Status(result.status.code(), Redact(std::string(result.status.message())));
      return result;
    }
    if (http < 200 || http >= 300) {
      result.outcome = VsOutcome::kHttpError;
      result.status =
          absl::UnavailableError(absl::StrCat("VS answered HTTP ", http, " to ", fn, " (body: \"",
                                              Redact(SanitizedExcerpt(request.response)), "\")"));
      return result;
    }
    absl::StatusOr<VsReply> reply = ParseVsReply(request.response);
    if (!reply.ok()) {
      result.outcome = VsOutcome::kProtocolError;
      result.status = absl::InternalError(
          Redact(absl::StrCat(reply.status().message(), " in the answer to ", fn)));
      return result;
    }
    result.vs_message = Redact(reply->message);
    result.nickname = std::move(reply->nickname);
    if (reply->success) {
      result.outcome = VsOutcome::kAccepted;
      result.status = absl::OkStatus();
    } else {
      result.outcome = VsOutcome::kRejected;
      result.status = absl::FailedPreconditionError(
          result.vs_message.empty() ? absl::StrCat("VS refused ", fn) : result.vs_message);
    }
    return result;
  }

  // Runs the callback and forgets the request. Event thread, or the stopping
  // thread once the event thread has exited.
  void Finish(Request* request, VsResult result) {
    if (request->easy != nullptr) {
      free_easy_.push_back(request->easy);
      request->easy = nullptr;
    }
    result.attempts = request->attempt;
    if (request->attempt > 0) {
      latency_[static_cast<int>(request->function)].Record(absl::Now() - request->first_sent);
    }
    std::unique_ptr<Request> owned(request);
    std::move(owned->done)(std::move(result));
    completed_.fetch_add(1, std::memory_order_relaxed);
    absl::MutexLock lock(&mu_);
    --pending_;
    if (owned->counted) --counted_;
  }

  void CancelEverything() {
    std::vector<Request*> doomed(active_.begin(), active_.end());
    active_.clear();
    for (Request* request : doomed) curl_multi_remove_handle(multi_, request->easy);
    while (!retries_.empty()) {
      doomed.push_back(retries_.top().request);
      retries_.pop();
    }
    doomed.insert(doomed.end(), waiting_.begin(), waiting_.end());
    waiting_.clear();
    std::vector<std::unique_ptr<Request>> incoming;
    {
      absl::MutexLock lock(&mu_);
      incoming.swap(incoming_);
    }
    for (auto& request : incoming) doomed.push_back(request.release());
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
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_DEL, s, nullptr);
      curl_multi_assign(self->multi_, s, nullptr);
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = s;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev.events |= EPOLLOUT;
    if (socketp == nullptr) {
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_ADD, s, &ev);
      curl_multi_assign(self->multi_, s, self);  // Any non-null marks "registered".
    } else {
      epoll_ctl(self->epoll_fd_, EPOLL_CTL_MOD, s, &ev);
    }
    return 0;
  }

  static int OnTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    auto* self = static_cast<EventLoop*>(userp);
    if (timeout_ms < 0) {
      self->curl_deadline_.reset();
    } else {
      self->curl_deadline_ = absl::Now() + absl::Milliseconds(timeout_ms);
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
      static_cast<EventLoop*>(userp)->connections_.fetch_add(1, std::memory_order_relaxed);
    }
    return CURL_SOCKOPT_OK;
  }

  const VsClientOptions& options_;
  const std::string url_;
  const std::string escaped_key_;  // The key as it appears in a URL or body.
  const RetryPolicy policy_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Request>> incoming_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t pending_ ABSL_GUARDED_BY(mu_) = 0;  // Taken and not finished.
  int64_t counted_ ABSL_GUARDED_BY(mu_) = 0;  // The part bounded by max_in_flight.

  std::array<metrics::LatencyHistogram, 4> latency_;  // By VsFunction.
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> retries_count_{0};
  std::atomic<int64_t> completed_{0};
  std::atomic<int64_t> overloaded_{0};
  std::atomic<int64_t> connections_{0};

  // Event thread only (and the stopping thread after the event thread exits).
  CURLM* multi_ = nullptr;
  curl_slist* headers_ = nullptr;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::optional<absl::Time> curl_deadline_;
  std::priority_queue<Retry, std::vector<Retry>, std::greater<Retry>> retries_;
  absl::flat_hash_set<Request*> active_;  // Handed to libcurl.
  std::deque<Request*> waiting_;          // Ready, waiting for a connection.
  std::vector<CURL*> free_easy_;
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
  client->loop_ =
      std::make_unique<EventLoop>(opts, std::move(url), RetryPolicy(opts.retry, opts.uniform01));
  absl::Status started = client->loop_->Start();
  if (!started.ok()) return started;
  return client;
}

VsClient::VsClient(VsClientOptions options) : options_(std::move(options)) {}

VsClient::~VsClient() {
  if (loop_) loop_->Stop();
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

absl::Status VsClient::Submit(VsFunction function, std::string body, VsCallback done) {
  auto request = std::make_unique<Request>();
  request->function = function;
  request->body = std::move(body);
  request->done = std::move(done);
  request->counted = function != VsFunction::kLeaveRoom;
  return loop_->Submit(std::move(request));
}

absl::Status VsClient::JoinRoom(const JoinRoomRequest& request, VsCallback done) {
  return Submit(VsFunction::kJoinRoom, JoinRoomBody(request), std::move(done));
}

absl::Status VsClient::LeaveRoom(const RoomPresence& presence, VsCallback done) {
  return Submit(VsFunction::kLeaveRoom, PresenceBody(VsFunction::kLeaveRoom, presence),
                std::move(done));
}

absl::Status VsClient::PingRoom(const RoomPresence& presence, VsCallback done) {
  return Submit(VsFunction::kPingRoom, PresenceBody(VsFunction::kPingRoom, presence),
                std::move(done));
}

absl::Status VsClient::UpdateCredits(const UpdateCreditsRequest& request, VsCallback done) {
  return Submit(VsFunction::kUpdateCredits, UpdateCreditsBody(request), std::move(done));
}

bool VsClient::Drain(absl::Time deadline) { return loop_->Drain(deadline); }

VsClientStats VsClient::stats() const { return loop_->Stats(); }

const metrics::LatencyHistogram& VsClient::latency(VsFunction function) const {
  return loop_->Latency(function);
}

std::string VsClient::Redact(std::string text) const { return loop_->Redact(std::move(text)); }

}  // namespace presence::vs
