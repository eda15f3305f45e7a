#ifndef PRESENCE_SERVER_ADMIN_METRICS_SERVER_H_
#define PRESENCE_SERVER_ADMIN_METRICS_SERVER_H_

// Prometheus metrics for the gateway, in the text exposition format, served
// over HTTP (cpp-httplib) at GET /metrics on --metrics_listen.
//
// RenderMetrics only reads counters and histograms (atomics and short
// locks); it is safe to call from any thread. MetricsServer is thread-safe.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/base/http_listener.h"
#include "server/service/service_context.h"
#include "server/session/ping_scheduler.h"
#include "server/session/session_registry.h"
#include "server/vs/vs_client.h"

namespace presence::admin {

// What the page is made of. All pointers must outlive the server.
struct MetricsSources {
  const service::ServiceContext* service = nullptr;
  const vs::VsClient* vs = nullptr;
  const session::PingScheduler* scheduler = nullptr;
  const session::SessionRegistry* registry = nullptr;
};

std::string RenderMetrics(const MetricsSources& sources);

class MetricsServer {
 public:
  explicit MetricsServer(MetricsSources sources);
  ~MetricsServer();

  // Listens on "host:port" (port 0: any free port).
  absl::Status Start(const std::string& listen);
  void Stop();
  int port() const { return listener_.port(); }

 private:
  const MetricsSources sources_;
  base::HttpListener listener_;
};

}  // namespace presence::admin

#endif  // PRESENCE_SERVER_ADMIN_METRICS_SERVER_H_
