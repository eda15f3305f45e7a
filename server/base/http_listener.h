#ifndef PRESENCE_SERVER_BASE_HTTP_LISTENER_H_
#define PRESENCE_SERVER_BASE_HTTP_LISTENER_H_

// HttpListener serves a cpp-httplib server on "host:port" from its own
// thread, with the limits an operator endpoint needs next to a gateway that
// must keep its file descriptors for gRPC and VS:
//   - an exclusive bind (no SO_REUSEPORT): a second process on the same
//     address fails to start, naming it, instead of sharing the port;
//   - a listen backlog of `backlog`, not httplib's 5;
//   - `threads` workers and at most `max_queued` accepted connections waiting
//     for one; past that the accept loop serves the connection itself, so no
//     more are accepted until it ends (the rest wait in the kernel's backlog,
//     not as our descriptors);
//   - a read timeout and a body limit.
// Start returns once the accept loop runs (httplib's stop() is lost before).
//
// Thread-safe for Start/Stop from one owner; handlers run on the workers.

#include <memory>
#include <string>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace presence::base {

struct HttpListenerOptions {
  std::string flag;  // The flag that named the address, for messages.
  int threads = 2;
  int max_queued = 32;
  int backlog = 128;
  absl::Duration read_timeout = absl::Seconds(5);
  size_t max_body_bytes = 64 * 1024;
  int keep_alive_seconds = 1;
  size_t keep_alive_max_requests = 5;
  // Headers and body go out in separate writes; without TCP_NODELAY, Nagle
  // and the client's delayed ACK add 40 ms to every answer.
  bool tcp_nodelay = true;
  // HTTPS with this certificate and key (PEM files) when both are set.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpListener {
 public:
  HttpListener() = default;
  ~HttpListener();  // Stops.
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Binds `listen` (port 0: a free one), lets `routes` add the handlers, and
  // starts serving.
  absl::Status Start(const std::string& listen, const HttpListenerOptions& options,
                     absl::FunctionRef<void(httplib::Server&)> routes);
  void Stop();
  int port() const { return port_; }

 private:
  absl::Status Bind(const std::string& listen, const HttpListenerOptions& options);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace presence::base

#endif  // PRESENCE_SERVER_BASE_HTTP_LISTENER_H_
