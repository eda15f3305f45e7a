#ifndef PRESENCE_SERVER_SERVICE_STATUS_CONVERSION_H_
#define PRESENCE_SERVER_SERVICE_STATUS_CONVERSION_H_

// The one place where internal absl::Status becomes the grpc::Status a client
// sees. INVALID_ARGUMENT, FAILED_PRECONDITION (VS said no), RESOURCE_EXHAUSTED
// (a limit), CANCELLED and OK pass through; every other failure (VS
// unreachable, slow, answering nonsense) is UNAVAILABLE: retry later.

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace presence::service {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return grpc::Status::OK;
    case absl::StatusCode::kInvalidArgument:
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, message);
    case absl::StatusCode::kFailedPrecondition:
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, message);
    case absl::StatusCode::kResourceExhausted:
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, message);
    case absl::StatusCode::kCancelled:
      return grpc::Status(grpc::StatusCode::CANCELLED, message);
    default:
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, message);
  }
}

// The code's name, for logs.
inline const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    default:
      return "OTHER";
  }
}

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_STATUS_CONVERSION_H_
