#ifndef PRESENCE_CLIENTS_CPP_VIEWER_SESSION_H_
#define PRESENCE_CLIENTS_CPP_VIEWER_SESSION_H_

// ViewerSession holds one viewer's presence through the presence gateway:
// it opens the Session stream, joins, waits for `joined` or a clear error,
// reports activity and credits, and leaves on Close (or destruction).
//
//   auto channel = presence::client::DialPresence("127.0.0.1:50051");
//   absl::StatusOr<std::unique_ptr<ViewerSession>> viewer =
//       ViewerSession::Open(channel, {.performer_id = 42, .nickname = "bob",
//                                     .ip_address = "203.0.113.5"});
//   if (!viewer.ok()) { /* viewer.status().code() tells why */ }
//   (*viewer)->display_nickname();   // "bob_1000"
//
// A lost connection, UNAVAILABLE or any other passing error makes it
// reconnect with capped, jittered exponential backoff and join again with the
// last resume token (a gateway with --resume_grace takes the session back; VS
// sees nothing). The codes IsFinal names end the session for good: Open
// returns them, and afterwards Wait and every call return them.
// Thread-safe. No user callback runs under the helper's lock, and no lock that
// the getters take is held across a blocking write.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"

namespace presence::client {

// How DialPresence reaches the gateway. The default is plaintext without a
// token: right for loopback or inside a service mesh that encrypts.
struct DialOptions {
  // TLS is on when `tls` is set or any file below is given.
  bool tls = false;
  std::string ca_file;    // PEM CA that verifies the gateway; empty: system roots.
  std::string cert_file;  // PEM client certificate, with key_file, for mutual TLS.
  std::string key_file;
  // Sent as "authorization: Bearer <token>" on every call (the gateway's
  // --auth_token_file). A secret: needs TLS, never logged here.
  std::string token;
};

// A channel with keepalive settings the server accepts: it allows client
// pings every 5 s or slower, so this pings every 20 s (10 s timeout).
// Errors: a file that cannot be read, a certificate without its key, a token
// without TLS.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialPresence(const std::string& target,
                                                            const DialOptions& options);
// Plaintext, no token.
std::shared_ptr<grpc::Channel> DialPresence(const std::string& target);

// Whether a status code ends a session for good rather than being retried:
// INVALID_ARGUMENT (a bad join), FAILED_PRECONDITION (VS refused it),
// RESOURCE_EXHAUSTED (the gateway is full), UNAUTHENTICATED (no or a wrong
// token), PERMISSION_DENIED (VS booted the customer).
bool IsFinal(absl::StatusCode code);

struct JoinParams {
  int64_t performer_id = 0;
  std::string nickname;
  std::optional<int64_t> customer_id;  // Unset for guests.
  std::string ip_address;
  bool registered = false;
  int64_t credits = 0;
};

struct ViewerOptions {
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(15);
  absl::Duration join_timeout = absl::Seconds(10);
  // Called on the session's reader thread for every notice, with no lock
  // held: it may call the session.
  std::function<void(const presence::v1::Notice&)> on_notice;
};

class ViewerSession {
 public:
  // Joins; returns once VS accepted the join, or the final error.
  static absl::StatusOr<std::unique_ptr<ViewerSession>> Open(std::shared_ptr<grpc::Channel> channel,
                                                             JoinParams join,
                                                             ViewerOptions options = {});
  ~ViewerSession();  // Close().

  ViewerSession(const ViewerSession&) = delete;
  ViewerSession& operator=(const ViewerSession&) = delete;

  std::string display_nickname() const;
  std::string session_id() const;
  // Whether the latest join took over the session the server held after a
  // lost stream (VS saw no leave and no join).
  bool resumed() const;
  int reconnects() const;

  // Reports activity: postpones the next pingRoom.
  absl::Status Activity(presence::v1::ActivityKind kind = presence::v1::ACTIVITY_KIND_CHAT);
  // Sends the customer's balance and waits for the gateway's answer to this
  // very update (an answer that comes after its caller gave up goes nowhere).
  absl::StatusOr<presence::v1::CreditsUpdated> UpdateCredits(
      int64_t credits, absl::Duration timeout = absl::Seconds(10));
  // Waits until the session is over for good (Close, or a final error such
  // as a boot: PERMISSION_DENIED); returns why, OK after Close or a clean end.
  // DEADLINE_EXCEEDED if it is still running after `timeout`.
  absl::Status Wait(absl::Duration timeout = absl::InfiniteDuration()) const;
  bool done() const;
  // Leaves (the gateway sends leaveRoom) and waits for the stream to end.
  // Returns at once during a reconnect's backoff or after the end.
  absl::Status Close();

 private:
  using Stream =
      grpc::ClientReaderWriter<presence::v1::SessionRequest, presence::v1::SessionResponse>;
  // One credits update's answer, filled by the reader thread.
  struct CreditsWaiter {
    std::optional<presence::v1::CreditsUpdated> answer;
    bool failed = false;
  };

  ViewerSession(std::shared_ptr<grpc::Channel> channel, JoinParams join, ViewerOptions options);
  void Run();
  // One stream from join to end; returns its final status.
  grpc::Status Attempt();
  // Handles one response; returns the notice to pass on, if any.
  std::optional<presence::v1::Notice> Handle(const presence::v1::SessionResponse& response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes on the current stream; `waiter`, if given, joins the credits line
  // in the order of the writes.
  absl::Status Write(const presence::v1::SessionRequest& request,
                     std::shared_ptr<CreditsWaiter> waiter = nullptr);
  // Why a call cannot be made now; OK when the stream is open.
  absl::Status Unusable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::unique_ptr<presence::v1::Presence::Stub> stub_;
  const ViewerOptions options_;

  // Serialises writes (a stream takes one writer at a time). Taken before
  // mu_, never the other way round; the getters and the reader never wait
  // for it.
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  // The join; after a Joined it carries that session's resume token.
  presence::v1::SessionRequest join_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  // The open stream; the reader thread clears it, then waits for write_mu_
  // before it finishes and destroys the stream.
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::string nickname_ ABSL_GUARDED_BY(mu_);
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  bool resumed_ ABSL_GUARDED_BY(mu_) = false;
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  // One per credits update written on the current stream, in writing order:
  // the gateway answers in that order.
  std::deque<std::shared_ptr<CreditsWaiter>> credits_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace presence::client

#endif  // PRESENCE_CLIENTS_CPP_VIEWER_SESSION_H_
