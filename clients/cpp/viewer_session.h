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
// On UNAVAILABLE it reconnects with capped, jittered exponential backoff and
// joins again; INVALID_ARGUMENT, FAILED_PRECONDITION and RESOURCE_EXHAUSTED
// are final. Thread-safe.

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

// A channel with keepalive settings the server accepts: it allows client
// pings every 5 s or slower, so this pings every 20 s (10 s timeout).
std::shared_ptr<grpc::Channel> DialPresence(const std::string& target);

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
  // Called on the session's reader thread for every notice.
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
  // Sends the customer's balance and waits for the gateway's answer.
  absl::StatusOr<presence::v1::CreditsUpdated> UpdateCredits(
      int64_t credits, absl::Duration timeout = absl::Seconds(10));
  // Leaves (the gateway sends leaveRoom) and waits for the stream to end.
  absl::Status Close();

 private:
  ViewerSession(std::shared_ptr<grpc::Channel> channel, JoinParams join, ViewerOptions options);
  void Run();
  absl::Status Write(const presence::v1::SessionRequest& request);

  const std::unique_ptr<presence::v1::Presence::Stub> stub_;
  // The join; after a Joined it carries that session's resume token.
  presence::v1::SessionRequest join_ ABSL_GUARDED_BY(mu_);
  const ViewerOptions options_;

  mutable absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  grpc::ClientReaderWriter<presence::v1::SessionRequest, presence::v1::SessionResponse>* stream_
      ABSL_GUARDED_BY(mu_) = nullptr;
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::string nickname_ ABSL_GUARDED_BY(mu_);
  std::string session_id_ ABSL_GUARDED_BY(mu_);
  bool resumed_ ABSL_GUARDED_BY(mu_) = false;
  int reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<presence::v1::CreditsUpdated> credits_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace presence::client

#endif  // PRESENCE_CLIENTS_CPP_VIEWER_SESSION_H_
