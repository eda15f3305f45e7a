#ifndef PRESENCE_SERVER_VS_CURL_TRANSPORT_H_
#define PRESENCE_SERVER_VS_CURL_TRANSPORT_H_

// CurlTransport: attempts carried by libcurl's multi interface in its
// socket-action mode, on the event loop's epoll set (curl says which sockets
// to watch, epoll says which are ready). Used for https:// (TLS) and when
// --vs_http_client=libcurl. See transport.h.

#include <memory>

#include "absl/status/statusor.h"
#include "server/vs/transport.h"

namespace presence::vs {

absl::StatusOr<std::unique_ptr<Transport>> MakeCurlTransport(TransportOptions options);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_CURL_TRANSPORT_H_
