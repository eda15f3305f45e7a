#ifndef PRESENCE_SERVER_ADMIN_BOOT_SERVER_H_
#define PRESENCE_SERVER_ADMIN_BOOT_SERVER_H_

// BootServer takes VS's customer boot notifications: VS POSTs
//   function=customerBoot&performerId=..&customerId=..&nickname=..
// to the URL the partner registered, e.g. http://host:port/boot?key=SECRET.
// The matching sessions end with PERMISSION_DENIED "removed by VS": the
// customer's session in that room, or all of the customer's sessions when no
// performerId is given. Each ended session sends its leaveRoom as on any
// other exit, so the VS ledger stays one leave per join (VS may answer that
// leave with success:false; it is logged, not retried).
//
// The shared secret is compared in constant time; a request without it gets
// 403 and ends nothing. Thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "server/base/http_listener.h"
#include "server/service/service_context.h"

namespace presence::admin {

class BootServer {
 public:
  BootServer(service::ServiceContext* context, std::string secret);
  ~BootServer();

  absl::Status Start(const std::string& listen);
  void Stop();
  int port() const { return listener_.port(); }

  // Ends the matching sessions; returns how many. performer_id 0: any room.
  static int Boot(service::ServiceContext* context, int64_t customer_id, int64_t performer_id);

 private:
  // HTTP status and body for one POST.
  std::pair<int, std::string> HandleBoot(const std::string& target, const std::string& body,
                                         const std::string& from);

  service::ServiceContext* const context_;
  const std::string secret_;
  base::HttpListener listener_;
};

}  // namespace presence::admin

#endif  // PRESENCE_SERVER_ADMIN_BOOT_SERVER_H_
