#ifndef PRESENCE_SERVER_VS_HTTP_TRANSPORT_H_
#define PRESENCE_SERVER_VS_HTTP_TRANSPORT_H_

// HttpTransport: our own HTTP/1.1 client for http:// VS URLs, one request at
// a time per kept-alive connection, on the event loop's epoll set.
//
// Why not libcurl here: a ping is a ~100-byte POST answered by a ~60-byte
// body, and libcurl's general machinery (per-transfer state set-up, header
// parsing through sscanf, a liveness probe before each reuse, epoll
// re-registrations) cost about as much CPU as the rest of the gateway's ping
// path together. Here a request on a kept-alive connection is one send and
// one or two recv into buffers that are reused, with the socket registered
// once for its lifetime.
//
// What it does, as libcurl did for us: non-blocking connect with its own
// timeout, the address resolved once per dns_cache_ttl (getaddrinfo, on the
// loop's thread: an IP literal or /etc/hosts name costs nothing; a name that
// needs DNS blocks the loop while it resolves), Content-Length, chunked and
// close-delimited answers, interim 1xx answers skipped, Connection: close
// honoured, idle connections the server closed noticed and dropped, those
// idle past connection_max_idle closed instead of reused, and a request that
// finds its reused connection already closed by the server (no
// byte of an answer) sent once more on a new connection. Not supported:
// proxies, redirects, credentials in the URL, HTTP/2.

#include <memory>

#include "absl/status/statusor.h"
#include "server/vs/transport.h"

namespace presence::vs {

// Fails with InvalidArgument when options.url is not a plain http:// URL
// this transport can serve.
absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(TransportOptions options);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_HTTP_TRANSPORT_H_
