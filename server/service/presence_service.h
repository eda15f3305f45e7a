#ifndef PRESENCE_SERVER_SERVICE_PRESENCE_SERVICE_H_
#define PRESENCE_SERVER_SERVICE_PRESENCE_SERVICE_H_

// PresenceService implements presence.v1.Presence: UpdateCredits and GetRoom
// on gRPC's callback API, Session on its async API (SessionQueues runs the
// streams, one SessionReactor each, and asks this service for them), and the
// drain.
//
// Thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/service/service_context.h"

namespace presence::service {

// Session on the async API, the unary calls on the callback API.
using PresenceBase = presence::v1::Presence::WithAsyncMethod_Session<
    presence::v1::Presence::WithCallbackMethod_UpdateCredits<
        presence::v1::Presence::WithCallbackMethod_GetRoom<presence::v1::Presence::Service>>>;

class PresenceService final : public PresenceBase {
 public:
  explicit PresenceService(ServiceContext* context) : context_(context) {}

  grpc::ServerUnaryReactor* UpdateCredits(grpc::CallbackServerContext* call,
                                          const presence::v1::UpdateCreditsRequest* request,
                                          presence::v1::UpdateCreditsResponse* response) override;

  grpc::ServerUnaryReactor* GetRoom(grpc::CallbackServerContext* call,
                                    const presence::v1::GetRoomRequest* request,
                                    presence::v1::GetRoomResponse* response) override;

  // The drain's first pass: refuses new sessions and calls with UNAVAILABLE
  // from now on, and leaves (or holds) every joined session's presence, so
  // that the leaves are on their way before any stream is ended. Sessions
  // still joining end when VS answers; streams that never joined end when
  // the gRPC server shuts down.
  void BeginDrain();
  // The drain's second pass, once VS has answered the leaves: ends the
  // streams of the sessions the first pass left, with UNAVAILABLE. Slow with
  // many streams (gRPC's work), which is why the leaves go first.
  void EndDrainedStreams();

 private:
  // The checks every unary call passes first: the token, then the drain.
  grpc::Status Admit(grpc::CallbackServerContext* call);
  // GetRoom's viewers on this replica alone.
  void AddLocalViewers(int64_t performer_id, presence::v1::GetRoomResponse* response) const;
  static void AddViewer(const std::string& nickname, std::optional<int64_t> customer_id,
                        bool registered, absl::Time joined_at,
                        presence::v1::GetRoomResponse* response);

  ServiceContext* const context_;
  // The sessions BeginDrain left, for EndDrainedStreams.
  std::vector<std::shared_ptr<session::SessionCore>> drained_;
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_PRESENCE_SERVICE_H_
