#ifndef PRESENCE_SERVER_VS_VS_CLIENT_H_
#define PRESENCE_SERVER_VS_VS_CLIENT_H_

// VsClient sends joinRoom, leaveRoom, pingRoom and updateCredits to VS over
// HTTP/1.1 keep-alive, asynchronously.
//
// Design: each event thread (--vs_event_loops, one per core in the server)
// runs an epoll set with a transport on it (transport.h): our own HTTP/1.1
// client for http:// (http_transport.h), libcurl's multi interface in its
// socket-action mode for https:// or on request (curl_transport.h). Either
// way thousands of transfers cost one thread and no per-transfer polling.
// Requests are sharded to the loops by room (ordering across requests is the
// presence layer's: a leave is sent only after its join's answer). Callers
// on any thread are counted in by the intake (the shared in-flight bound);
// when the request's loop is between rounds (its lock free), nothing waits
// before the request and a kept-alive connection is free, the caller sends it
// itself and the loop only reads the answer; otherwise the request is handed
// over through the intake's queue for that loop and an eventfd wake-up.
// Completion callbacks never run on the caller's thread. Requests wait for a
// free connection in priority order (leaves first, pings last); retries wait
// in a timer heap on the loop's thread. The other pieces: classify.h (pure
// outcome classification, in libcurl's codes whichever transport ran),
// retry_policy.h (pure), redactor.h.
//
// Thread-safe. Completion callbacks run on an event thread: they must be
// quick and must not block (hand work off instead).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/metrics/histogram.h"
#include "server/vs/retry_policy.h"
#include "server/vs/vs_result.h"

namespace presence::vs {

// Which HTTP client carries requests to an http:// VS URL (https:// always
// goes through libcurl, for TLS). See transport.h.
enum class VsHttpClient {
  kBuiltIn,  // Our own HTTP/1.1 keep-alive client: the least CPU per request.
  kLibcurl,
};

struct VsClientOptions;
// The client that will carry requests with these options: `http_client`,
// except that https:// is always libcurl's.
VsHttpClient EffectiveHttpClient(const VsClientOptions& options);

struct VsClientOptions {
  // Base URL of the VS API, "http://host:port" or "https://host:port";
  // requests go to {base_url}/customer?key=...
  std::string base_url;
  // The partner key. Never logged, never put in an error message.
  std::string key;
  absl::Duration connect_timeout = absl::Seconds(2);
  // Whole-request timeout of one attempt.
  absl::Duration request_timeout = absl::Seconds(5);
  // Upper bound on open connections to VS (the keep-alive pool); requests
  // beyond it wait in VsClient's own FIFO for a free connection.
  int max_connections = 64;
  // Event threads, each with its own libcurl multi handle, epoll set and
  // share of max_connections; requests are sharded by room (performer). 1
  // suits tests; the server uses one per core.
  int event_loops = 1;
  // Upper bound on requests accepted and not yet completed (sending, queued
  // or waiting for a retry). joinRoom, pingRoom and updateCredits past it are
  // refused with kOverloaded. leaveRoom is exempt: there is at most one per
  // session, so leaves are bounded by the session limit, and a leave must not
  // be lost.
  int max_in_flight = 50000;
  // How long a resolved VS address is reused before being resolved again.
  absl::Duration dns_cache_ttl = absl::Minutes(5);
  // A keep-alive connection idle longer than this is closed rather than
  // reused (a middlebox may have forgotten it without a word). libcurl's
  // default; libcurl counts whole seconds.
  absl::Duration connection_max_idle = absl::Seconds(118);
  VsHttpClient http_client = VsHttpClient::kBuiltIn;
  // For https:// URLs: a CA bundle to verify VS with (empty: system CAs).
  std::string ca_file;
  RetryOptions retry;
  // Random source in [0, 1) for backoff jitter; null: a real random source.
  std::function<double()> uniform01;
};

struct JoinRoomRequest {
  int64_t performer_id = 0;
  std::string nickname;
  std::optional<int64_t> customer_id;
  std::string ip_address;
  bool registered = false;
  int64_t credits = 0;
};

// leaveRoom and pingRoom name the same presence.
struct RoomPresence {
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  std::string nickname;  // The display nickname VS returned on join.
};

struct UpdateCreditsRequest {
  int64_t customer_id = 0;
  int64_t credits = 0;
};

using VsCallback = absl::AnyInvocable<void(VsResult) &&>;

// Counters for metrics and tests. Monotonic except in_flight.
struct VsClientStats {
  int64_t requests_sent = 0;  // Attempts, retries included.
  // Of those, sent by the submitting thread itself (its loop was between
  // rounds and a kept-alive connection was free): no hand-off to the loop.
  int64_t sent_by_caller = 0;
  int64_t retries = 0;
  int64_t completed = 0;
  int64_t overloaded = 0;
  int64_t in_flight = 0;
  int64_t connections_opened = 0;
};

class VsClient {
 public:
  // Fails with InvalidArgument for an unusable base_url or key.
  static absl::StatusOr<std::unique_ptr<VsClient>> Create(VsClientOptions options);

  // Fails every request still pending with kCancelled (their callbacks run
  // before this returns), then stops the event thread. Call Drain first to
  // give them a chance.
  ~VsClient();

  VsClient(const VsClient&) = delete;
  VsClient& operator=(const VsClient&) = delete;

  // Each call returns OK when the request was taken; `done` then runs exactly
  // once, on the event thread, with the final result. Otherwise (overload,
  // shutting down) it returns the error and `done` is never run.
  absl::Status JoinRoom(const JoinRoomRequest& request, VsCallback done);
  absl::Status LeaveRoom(const RoomPresence& presence, VsCallback done);
  absl::Status PingRoom(const RoomPresence& presence, VsCallback done);
  // `budget` bounds the whole request, retries included, from its first
  // attempt (a caller's deadline): each attempt's timeout is cut to what is
  // left of it.
  absl::Status UpdateCredits(const UpdateCreditsRequest& request, VsCallback done,
                             absl::Duration budget = absl::InfiniteDuration());

  // Waits until no request is pending or `deadline` passes. Returns whether
  // everything completed.
  bool Drain(absl::Time deadline);

  VsClientStats stats() const;

  // Time from a request's first attempt to its final result (retries
  // included), by function; requests refused up front are not counted.
  const metrics::LatencyHistogram& latency(VsFunction function) const;

  // Removes the key from `text` (for messages that might echo it).
  std::string Redact(std::string text) const;

  // The exact body each function sends (field order as VS documents it).
  static std::string JoinRoomBody(const JoinRoomRequest& request);
  static std::string PresenceBody(VsFunction function, const RoomPresence& presence);
  static std::string UpdateCreditsBody(const UpdateCreditsRequest& request);

 private:
  class EventLoop;
  class Intake;
  struct Counters;
  struct Request;

  explicit VsClient(VsClientOptions options);
  // `shard` picks the event loop (a room's requests share one).
  absl::Status Submit(VsFunction function, int64_t shard, std::string body, VsCallback done,
                      absl::Duration budget = absl::InfiniteDuration());

  const VsClientOptions options_;
  const std::unique_ptr<Counters> counters_;
  const std::unique_ptr<Intake> intake_;
  std::vector<std::unique_ptr<EventLoop>> loops_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_VS_CLIENT_H_
