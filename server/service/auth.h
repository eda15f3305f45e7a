#ifndef PRESENCE_SERVER_SERVICE_AUTH_H_
#define PRESENCE_SERVER_SERVICE_AUTH_H_

// Bearer-token auth for every Presence RPC (--auth_token_file): a call must
// carry "authorization: Bearer <token>". The comparison takes the same time
// whatever the presented value, so timing does not reveal the token.

#include <algorithm>
#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/grpcpp.h"

namespace presence::service {

// Constant-time in the length of `presented` and `expected`.
inline bool ConstantTimeEquals(absl::string_view presented, absl::string_view expected) {
  unsigned char diff = presented.size() == expected.size() ? 0 : 1;
  size_t n = std::max(presented.size(), expected.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned char a = i < presented.size() ? static_cast<unsigned char>(presented[i]) : 0;
    unsigned char b = i < expected.size() ? static_cast<unsigned char>(expected[i]) : 0;
    diff |= a ^ b;
  }
  return diff == 0;
}

// OK when no token is configured or the call carries the right one;
// otherwise UNAUTHENTICATED.
inline grpc::Status CheckAuth(const grpc::ServerContextBase* call, const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& metadata = call->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing 'authorization: Bearer <token>' metadata");
  }
  absl::string_view value(it->second.data(), it->second.size());
  constexpr absl::string_view kPrefix = "Bearer ";
  if (value.size() < kPrefix.size() || value.substr(0, kPrefix.size()) != kPrefix ||
      !ConstantTimeEquals(value.substr(kPrefix.size()), token)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "invalid bearer token");
  }
  return grpc::Status::OK;
}

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_AUTH_H_
