#ifndef PRESENCE_SERVER_VS_SIMULATOR_VS_SIMULATOR_H_
#define PRESENCE_SERVER_VS_SIMULATOR_VS_SIMULATOR_H_

// VsSimulator is a real HTTP server on loopback that speaks the VS customer
// API (../shared/vs-api.md): it checks the key and the required fields,
// appends `_####` to joined nicknames, answers as VS does (text/xml, strict or
// relaxed JSON), records every request for tests to read, and injects faults
// on demand. The gateway starts one in-process when no VS URL is given.
//
// It also serves a small control API for tests in other languages:
//   GET  /_sim/requests          every recorded request, as JSON lines
//   GET  /_sim/counts            {"joinRoom": n, ...}
//   POST /_sim/faults            add a fault rule (JSON, fields of FaultRule)
//   POST /_sim/reset             forget requests and faults
//
// Thread-safe.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/base/http_listener.h"
#include "server/vs/form.h"

namespace httplib {
class Server;
}

namespace presence::vs {

struct VsSimulatorOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port.
  std::string key = "simulator-key";
  // Answer `{ success: true, ... }` (relaxed, as VS documents) or strict JSON.
  bool relaxed_json = true;
  // Worker threads; each keep-alive connection holds one while open.
  int threads = 128;
  // Idle keep-alive connections close after this; Stop() waits for them.
  int keep_alive_timeout_seconds = 5;
  // Serve HTTPS with this certificate and key (PEM files) when both are set.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Keep every request for Requests(); off for long benchmarks.
  bool record = true;
};

// One request as the simulator saw it.
struct RecordedRequest {
  std::string function;
  FormFields fields;  // In wire order, decoded.
  std::string body;   // Raw body bytes.
  std::string key;    // The `key` query parameter, decoded.
  std::string content_type;
  std::string connection;         // "ip:port" of the client's connection.
  int status = 0;                 // The HTTP status answered.
  bool success = false;           // The `success` answered.
  std::string answered_nickname;  // joinRoom answered success: the display nickname.
  absl::Time at;

  // The value of the first field named `name`, if any.
  std::optional<std::string> Field(const std::string& name) const;
};

// A fault to inject. Matching requests (by function and performer) get the
// fault instead of a normal answer, `times` times (-1: until cleared).
struct FaultRule {
  std::string function;      // "" matches every function.
  int64_t performer_id = 0;  // 0 matches any performer.
  absl::Duration latency;    // Delay before answering.
  int http_status = 0;       // Answer this status (with a short text body).
  bool reject = false;       // Answer success:false with `message`.
  std::string message = "rejected by the VS simulator";
  bool drop_connection = false;  // Close the connection mid-answer.
  bool garbage = false;          // Answer a body that is not JSON.
  int times = -1;
};

class VsSimulator {
 public:
  explicit VsSimulator(VsSimulatorOptions options = {});
  ~VsSimulator();

  VsSimulator(const VsSimulator&) = delete;
  VsSimulator& operator=(const VsSimulator&) = delete;

  // Binds and starts serving. Start after Stop rebinds the same port, so a
  // test can take VS down (connections refused) and bring it back.
  absl::Status Start();
  void Stop();

  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:port" (https:// with TLS)

  void AddFault(FaultRule rule);
  void ClearFaults();
  void Reset();  // Requests, counts and faults.

  std::vector<RecordedRequest> Requests() const;
  std::vector<RecordedRequest> Requests(const std::string& function) const;
  int64_t Count(const std::string& function) const;
  // Distinct client connections seen since the last Reset.
  int64_t Connections() const;

  // Waits until Count(function) >= n or `timeout` passes; returns whether it did.
  bool WaitForCount(const std::string& function, int64_t n, absl::Duration timeout) const;

 private:
  struct Answer;
  Answer Handle(const std::string& key, const std::string& body, const std::string& content_type,
                const std::string& connection);
  static void ApplyFault(const FaultRule& fault, Answer* answer, std::string* message,
                         std::string* nickname);
  std::optional<FaultRule> TakeFault(const std::string& function, int64_t performer_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AddCustomerRoute(httplib::Server& server);
  void AddControlRoutes(httplib::Server& server);

  const VsSimulatorOptions options_;
  int port_ = 0;
  bool running_ = false;
  base::HttpListener listener_;

  mutable absl::Mutex mu_;
  std::vector<RecordedRequest> requests_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int64_t> counts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, bool> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<FaultRule> faults_ ABSL_GUARDED_BY(mu_);
  int64_t joins_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_SIMULATOR_VS_SIMULATOR_H_
