#ifndef PRESENCE_SERVER_VS_TRANSPORT_H_
#define PRESENCE_SERVER_VS_TRANSPORT_H_

// Transport: how one VsClient event loop carries HTTP attempts to VS. Two
// implementations share the loop's epoll set and thread:
//   - HttpTransport (http_transport.h): our own HTTP/1.1 keep-alive client,
//     for http:// URLs. A ping is one send and one recv on a kept-alive
//     connection, with nothing allocated.
//   - CurlTransport (curl_transport.h): libcurl's multi interface, for
//     https:// URLs (TLS) and on request (--vs_http_client=libcurl).
// The loop owns what is above an attempt (queues, priorities, retries,
// classification); a transport owns connections and the bytes on them.
//
// Not thread-safe: called under the loop's lock, on the loop's thread or,
// when ReadyToSend(), on a caller's thread that starts its attempt itself.

#include <curl/curl.h>
#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace presence::vs {

// One HTTP POST to VS: what to send, and, once finished, what came back.
// Outcomes are reported in libcurl's codes, whichever transport ran, so that
// one classifier (classify.h) reads both.
struct Attempt {
  // In: set before Start, unchanged until the attempt is finished.
  absl::string_view body;  // The form body.
  absl::Duration timeout;  // The whole attempt, connecting included.

  // Out: valid once the transport hands the attempt back as finished.
  CURLcode code = CURLE_OK;
  long http_status = 0;    // 0: no answer.
  long request_bytes = 0;  // Bytes sent; 0: nothing reached VS.
  std::string error_text;  // May be empty.
  std::string response;    // The answer's body.
  bool response_too_large = false;

  void ClearOutcome() {
    code = CURLE_OK;
    http_status = 0;
    request_bytes = 0;
    error_text.clear();
    response.clear();
    response_too_large = false;
  }
};

struct TransportOptions {
  // {base}/customer?key=...; holds the key: never logged.
  std::string url;
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration dns_cache_ttl = absl::Minutes(5);
  absl::Duration connection_max_idle = absl::Seconds(118);
  std::string ca_file;  // https only.
  // This loop's share of the connections to VS.
  int max_connections = 32;
  // The loop's epoll set: the transport registers its sockets there, with
  // epoll_event.data.fd set to the socket (data.u64's upper half is the
  // transport's own).
  int epoll_fd = -1;
  // Counts connections opened (for VsClientStats).
  std::atomic<int64_t>* connections_opened = nullptr;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Begins `attempt`; the caller keeps it alive until it comes back from
  // TakeFinished or Abandon. Called only while active() < max_connections.
  // An error means the attempt was not taken.
  virtual absl::Status Start(Attempt* attempt) = 0;
  // A socket this transport registered is ready.
  virtual void OnReady(const epoll_event& event) = 0;
  // When OnTimer is next due; nullopt: no deadline. In the past when
  // finished attempts are waiting to be taken.
  virtual std::optional<absl::Time> NextDeadline() const = 0;
  virtual void OnTimer(absl::Time now) = 0;
  // Replaces `*finished` with the attempts finished since the last call,
  // outcomes filled in (swapping buffers: nothing is allocated per call).
  virtual void TakeFinished(std::vector<Attempt*>* finished) = 0;
  // Gives back every attempt not yet taken back, finished or not (the
  // unfinished ones' connections closed): the loop is shutting down.
  virtual std::vector<Attempt*> Abandon() = 0;
  // Attempts started and not finished: those holding a connection.
  virtual size_t active() const = 0;
  // Whether Start would send on a kept-alive connection at once, with no
  // connect or name lookup: then a caller's thread may start an attempt
  // itself (under the loop's lock), sparing the loop a wake-up.
  virtual bool ReadyToSend() const { return false; }
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_TRANSPORT_H_
