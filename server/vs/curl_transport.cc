#include "server/vs/curl_transport.h"

#include <sys/epoll.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "server/base/clock.h"
#include "server/vs/classify.h"
#include "server/vs/curl_handles.h"

namespace presence::vs {
namespace {

long Millis(absl::Duration d) { return static_cast<long>(absl::ToInt64Milliseconds(d)); }

// An easy handle and the error buffer libcurl writes into, reused across
// attempts (the handle keeps its options).
struct Handle {
  CurlEasy easy;
  char error[CURL_ERROR_SIZE] = {};
};

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(TransportOptions options)
      : options_(std::move(options)), clock_(base::MonotonicClock::Get()) {}

  ~CurlTransport() override {
    // Handles leave the multi handle before either is cleaned up.
    for (auto& [attempt, handle] : active_) {
      curl_multi_remove_handle(multi_.get(), handle->easy.get());
    }
  }

  absl::Status Init() {
    // No "Expect: 100-continue" round trip before the body.
    absl::StatusOr<CurlHeaders> headers =
        MakeHeaders({"Content-Type: application/x-www-form-urlencoded", "Expect:"});
    if (!headers.ok()) return headers.status();
    headers_ = *std::move(headers);
    multi_.reset(curl_multi_init());
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    if (absl::Status set = ConfigureMulti(); !set.ok()) return set;
    // Validate the per-handle options once, up front.
    absl::StatusOr<std::unique_ptr<Handle>> handle = NewHandle();
    if (!handle.ok()) return handle.status();
    free_.push_back(*std::move(handle));
    return absl::OkStatus();
  }

  absl::Status Start(Attempt* attempt) override {
    if (free_.empty()) {
      absl::StatusOr<std::unique_ptr<Handle>> handle = NewHandle();
      if (!handle.ok()) return handle.status();
      free_.push_back(*std::move(handle));
    }
    Handle& handle = *free_.back();
    attempt->ClearOutcome();
    handle.error[0] = '\0';
    CURL* easy = handle.easy.get();
    for (absl::Status set : {
             SetOption(easy, CURLOPT_TIMEOUT_MS, std::max(1L, Millis(attempt->timeout))),
             SetOption(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(attempt->body.size())),
             SetOption(easy, CURLOPT_POSTFIELDS, attempt->body.data()),
             SetOption(easy, CURLOPT_WRITEDATA, attempt),
             SetOption(easy, CURLOPT_PRIVATE, attempt),
             SetOption(easy, CURLOPT_ERRORBUFFER, handle.error),
         }) {
      if (!set.ok()) return set;
    }
    CURLMcode rc = curl_multi_add_handle(multi_.get(), easy);
    if (rc != CURLM_OK) return absl::InternalError(curl_multi_strerror(rc));
    active_.emplace(attempt, std::move(free_.back()));
    free_.pop_back();
    return absl::OkStatus();
  }

  void OnReady(const epoll_event& event) override {
    const uint32_t events = event.events;
    int flags = 0;
    if (events & EPOLLIN) flags |= CURL_CSELECT_IN;
    if (events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
    if (events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
    int running = 0;
    curl_multi_socket_action(multi_.get(), event.data.fd, flags, &running);
    CollectFinished();
  }

  std::optional<absl::Time> NextDeadline() const override {
    if (!finished_.empty()) return absl::InfinitePast();
    return deadline_;
  }

  void OnTimer(absl::Time now) override {
    if (deadline_.has_value() && now >= *deadline_) {
      deadline_.reset();
      int running = 0;
      curl_multi_socket_action(multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    }
    CollectFinished();
  }

  void TakeFinished(std::vector<Attempt*>* finished) override {
    finished->clear();
    finished->swap(finished_);
  }

  std::vector<Attempt*> Abandon() override {
    std::vector<Attempt*> abandoned = std::exchange(finished_, {});
    for (auto& [attempt, handle] : active_) {
      curl_multi_remove_handle(multi_.get(), handle->easy.get());
      abandoned.push_back(attempt);
      free_.push_back(std::move(handle));
    }
    active_.clear();
    return abandoned;
  }

  size_t active() const override { return active_.size(); }

 private:
  absl::Status ConfigureMulti() {
    const long max_conns = std::max(1, options_.max_connections);
    for (absl::Status set : {
             SetMultiOption(multi_.get(), CURLMOPT_SOCKETFUNCTION, &CurlTransport::OnSocket),
             SetMultiOption(multi_.get(), CURLMOPT_SOCKETDATA, this),
             SetMultiOption(multi_.get(), CURLMOPT_TIMERFUNCTION, &CurlTransport::OnCurlTimer),
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

  absl::StatusOr<std::unique_ptr<Handle>> NewHandle() {
    auto handle = std::make_unique<Handle>();
    handle->easy.reset(curl_easy_init());
    if (handle->easy == nullptr) return absl::InternalError("curl_easy_init failed");
    CURL* e = handle->easy.get();
    for (absl::Status set : {
             SetOption(e, CURLOPT_URL, options_.url.c_str()),
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
             SetOption(e, CURLOPT_DNS_CACHE_TIMEOUT,
                       static_cast<long>(absl::ToInt64Seconds(options_.dns_cache_ttl))),
             SetOption(e, CURLOPT_MAXAGE_CONN,
                       std::max(1L, static_cast<long>(
                                        absl::ToInt64Seconds(options_.connection_max_idle)))),
             SetOption(e, CURLOPT_WRITEFUNCTION, &CurlTransport::OnWrite),
             SetOption(e, CURLOPT_SOCKOPTFUNCTION, &CurlTransport::OnNewSocket),
             SetOption(e, CURLOPT_SOCKOPTDATA, this),
             options_.ca_file.empty() ? absl::OkStatus()
                                      : SetOption(e, CURLOPT_CAINFO, options_.ca_file.c_str()),
         }) {
      if (!set.ok()) return set;
    }
    return handle;
  }

  void CollectFinished() {
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Attempt* attempt = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&attempt));
      auto it = active_.find(attempt);
      if (it == active_.end()) continue;
      attempt->code = msg->data.result;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &attempt->http_status);
      curl_easy_getinfo(msg->easy_handle, CURLINFO_REQUEST_SIZE, &attempt->request_bytes);
      attempt->error_text = it->second->error;
      curl_multi_remove_handle(multi_.get(), msg->easy_handle);
      free_.push_back(std::move(it->second));
      active_.erase(it);
      finished_.push_back(attempt);
    }
  }

  static int OnSocket(CURL* /*easy*/, curl_socket_t s, int what, void* userp, void* socketp) {
    auto* self = static_cast<CurlTransport*>(userp);
    const int epoll = self->options_.epoll_fd;
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

  static int OnCurlTimer(CURLM* /*multi*/, long timeout_ms, void* userp) {
    auto* self = static_cast<CurlTransport*>(userp);
    if (timeout_ms < 0) {
      self->deadline_.reset();
    } else {
      self->deadline_ = self->clock_->Now() + absl::Milliseconds(timeout_ms);
    }
    return 0;
  }

  static size_t OnWrite(char* data, size_t size, size_t nmemb, void* userp) {
    auto* attempt = static_cast<Attempt*>(userp);
    size_t bytes = size * nmemb;
    if (attempt->response.size() + bytes > kMaxResponseBytes) {
      attempt->response_too_large = true;
      return 0;  // Aborts the transfer with CURLE_WRITE_ERROR.
    }
    attempt->response.append(data, bytes);
    return bytes;
  }

  static int OnNewSocket(void* userp, curl_socket_t /*fd*/, curlsocktype purpose) {
    auto* self = static_cast<CurlTransport*>(userp);
    if (purpose == CURLSOCKTYPE_IPCXN && self->options_.connections_opened != nullptr) {
      self->options_.connections_opened->fetch_add(1, std::memory_order_relaxed);
    }
    return CURL_SOCKOPT_OK;
  }

  const TransportOptions options_;
  const base::Clock* const clock_;
  // Declared so that the multi handle goes before the easy handles and the
  // header list it may still point at.
  CurlHeaders headers_;
  std::vector<std::unique_ptr<Handle>> free_;
  absl::flat_hash_map<Attempt*, std::unique_ptr<Handle>> active_;
  CurlMulti multi_;
  std::optional<absl::Time> deadline_;
  std::vector<Attempt*> finished_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeCurlTransport(TransportOptions options) {
  auto transport = std::make_unique<CurlTransport>(std::move(options));
  if (absl::Status init = transport->Init(); !init.ok()) return init;
  return transport;
}

}  // namespace presence::vs
