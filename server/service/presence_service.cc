#include "server/service/presence_service.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "server/presence/presence_context.h"
#include "server/service/auth.h"
#include "server/service/status_conversion.h"

namespace presence::service {

grpc::ServerUnaryReactor* PresenceService::UpdateCredits(
    grpc::CallbackServerContext* call, const presence::v1::UpdateCreditsRequest* request,
    presence::v1::UpdateCreditsResponse* /*response*/) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (grpc::Status refused = Admit(call); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  if (request->customer_id() <= 0) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("customer_id must be > 0 (got ", request->customer_id(), ")")));
    return reactor;
  }
  if (request->credits() < 0) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("credits must be >= 0 (got ", request->credits(), ")")));
    return reactor;
  }
  ServiceContext* context = context_;
  // Without a deadline (gRPC reports one centuries away) the stream's window.
  absl::Duration budget = absl::FromChrono(call->deadline()) - absl::Now();
  budget = budget > absl::Hours(24 * 365)
               ? context_->credits_retry_window
               : std::max(absl::ZeroDuration(), budget - context_->deadline_margin);
  absl::Status taken = context_->vs->UpdateCredits(
      vs::UpdateCreditsRequest{request->customer_id(), request->credits()},
      [reactor, context](vs::VsResult result) {
        presences::CountOutcome(result, context->counters.credits_accepted,
                                context->counters.credits_rejected,
                                context->counters.credits_failed);
        reactor->Finish(ToGrpcStatus(result.status));
      },
      budget);
  if (!taken.ok()) reactor->Finish(ToGrpcStatus(taken));
  return reactor;
}

grpc::ServerUnaryReactor* PresenceService::GetRoom(grpc::CallbackServerContext* call,
                                                   const presence::v1::GetRoomRequest* request,
                                                   presence::v1::GetRoomResponse* response) {
  grpc::ServerUnaryReactor* reactor = call->DefaultReactor();
  if (grpc::Status refused = Admit(call); !refused.ok()) {
    reactor->Finish(refused);
    return reactor;
  }
  if (request->performer_id() <= 0) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("performer_id must be > 0 (got ", request->performer_id(), ")")));
    return reactor;
  }
  if (context_->fleet == nullptr) {
    AddLocalViewers(request->performer_id(), response);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // The whole fleet's viewers; this replica's alone when Redis does not answer.
  context_->fleet->Room(request->performer_id(),
                        [this, reactor, response, performer = request->performer_id()](
                            absl::StatusOr<std::vector<fleet::RoomEntry>> entries) {
                          if (!entries.ok()) {
                            AddLocalViewers(performer, response);
                          } else {
                            for (const fleet::RoomEntry& entry : *entries) {
                              AddViewer(entry.nickname, entry.customer_id, entry.registered,
                                        entry.joined_at, response);
                            }
                          }
                          reactor->Finish(grpc::Status::OK);
                        });
  return reactor;
}

void PresenceService::AddLocalViewers(int64_t performer_id,
                                      presence::v1::GetRoomResponse* response) const {
  for (const auto& session : context_->registry->Room(performer_id)) {
    const session::SessionIdentity& who = session->identity();
    AddViewer(who.display_nickname, who.customer_id, who.registered, who.joined_at, response);
  }
}

void PresenceService::AddViewer(const std::string& nickname, std::optional<int64_t> customer_id,
                                bool registered, absl::Time joined_at,
                                presence::v1::GetRoomResponse* response) {
  presence::v1::Viewer* viewer = response->add_viewers();
  viewer->set_nickname(nickname);
  if (customer_id.has_value()) viewer->set_customer_id(*customer_id);
  viewer->set_registered(registered);
  *viewer->mutable_joined_at() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(joined_at));
}

grpc::Status PresenceService::Admit(grpc::CallbackServerContext* call) {
  if (grpc::Status auth = CheckAuth(call, context_->auth_token); !auth.ok()) {
    metrics::Increment(context_->counters.unauthenticated);
    return auth;
  }
  if (context_->draining.load()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the server is shutting down");
  }
  return grpc::Status::OK;
}

void PresenceService::BeginDrain() {
  context_->draining.store(true);
  drained_ = context_->registry->AllJoined();
  for (const auto& session : drained_) {
    session->WithStream([](session::SessionStream* s) { s->LeaveForDrain(); });
  }
}

void PresenceService::EndDrainedStreams() {
  for (const auto& session : std::exchange(drained_, {})) {
    session->WithStream([](session::SessionStream* s) { s->EndForDrain(); });
  }
}

}  // namespace presence::service
