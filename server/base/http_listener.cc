#include "server/base/http_listener.h"

#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "httplib.h"

namespace presence::base {
namespace {

// httplib's ThreadPool with a bound on connections waiting for a worker.
class BoundedPool final : public httplib::TaskQueue {
 public:
  BoundedPool(int threads, int max_queued) : pool_(threads), max_queued_(max_queued) {}

  void enqueue(std::function<void()> fn) override {
    if (queued_.load(std::memory_order_relaxed) >= max_queued_) {
      fn();  // Back-pressure: the accept loop serves it, accepting nothing meanwhile.
      return;
    }
    queued_.fetch_add(1, std::memory_order_relaxed);
    pool_.enqueue([this, fn = std::move(fn)] {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  const int max_queued_;
  std::atomic<int> queued_{0};
};

}  // namespace

HttpListener::~HttpListener() { Stop(); }

absl::Status HttpListener::Start(const std::string& listen, const HttpListenerOptions& options,
                                 absl::FunctionRef<void(httplib::Server&)> routes) {
  if (!options.tls_cert_file.empty() || !options.tls_key_file.empty()) {
    server_ = std::make_unique<httplib::SSLServer>(options.tls_cert_file.c_str(),
                                                   options.tls_key_file.c_str());
  } else {
    server_ = std::make_unique<httplib::Server>();
  }
  if (!server_->is_valid()) {
    server_.reset();
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, ": could not load the TLS certificate or key"));
  }
  server_->new_task_queue = [threads = options.threads, queued = options.max_queued] {
    return new BoundedPool(threads, queued);
  };
  server_->set_keep_alive_timeout(options.keep_alive_seconds);
  server_->set_keep_alive_max_count(options.keep_alive_max_requests);
  server_->set_tcp_nodelay(options.tcp_nodelay);
  server_->set_read_timeout(absl::ToChronoSeconds(options.read_timeout));
  server_->set_payload_max_length(options.max_body_bytes);
  routes(*server_);
  if (absl::Status bound = Bind(listen, options); !bound.ok()) {
    server_.reset();
    return bound;
  }
  httplib::Server* raw = server_.get();
  thread_ = std::thread([raw] { raw->listen_after_bind(); });
  while (!raw->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

absl::Status HttpListener::Bind(const std::string& listen, const HttpListenerOptions& options) {
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.flag, " must be host:port, got '", listen, "'"));
  }
  auto listen_fd = std::make_shared<int>(-1);
  server_->set_socket_options([listen_fd](int sock) {
    // SO_REUSEADDR only: a restart may bind over TIME_WAIT, but a second
    // listener is refused (httplib's default adds SO_REUSEPORT).
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    *listen_fd = sock;
  });
  const std::string host = listen.substr(0, colon);
  port_ =
      port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", listen, " (", options.flag,
                                               "): the address is taken or invalid"));
  }
  // httplib listened with a backlog of 5; listening again only raises it.
  if (*listen_fd >= 0) ::listen(*listen_fd, options.backlog);
  return absl::OkStatus();
}

void HttpListener::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace presence::base
