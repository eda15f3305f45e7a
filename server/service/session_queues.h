#ifndef PRESENCE_SERVER_SERVICE_SESSION_QUEUES_H_
#define PRESENCE_SERVER_SERVICE_SESSION_QUEUES_H_

// SessionQueues serves Session streams on gRPC's async API: several
// completion queues, one thread each, and a SessionReactor per stream
// (async_bidi_reactor.h says why not the callback API). New calls are spread
// over the queues: each queue keeps `pending_per_queue` reactors waiting for
// a call and replaces each as its call arrives.
//
// Life, in the order PresenceServer follows:
//   SessionQueues queues(&builder, ...);  // Before BuildAndStart.
//   queues.Start();                       // After it.
//   server->Shutdown(...);                // Cancels what is still open.
//   queues.Stop();                        // Every reactor gone, then the queues.
//
// Thread-safe: Start and Stop from one thread; the rest runs on the queues'.

#include <memory>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/service/async_bidi_reactor.h"
#include "server/service/presence_service.h"
#include "server/service/service_context.h"

namespace presence::service {

class SessionQueues {
 public:
  SessionQueues(grpc::ServerBuilder* builder, int queues, int pending_per_queue,
                PresenceService* service, ServiceContext* context);
  ~SessionQueues();  // Stops, if Stop was not called.
  SessionQueues(const SessionQueues&) = delete;
  SessionQueues& operator=(const SessionQueues&) = delete;

  void Start();
  // Waits for every reactor to be done (at most `timeout`: the server's
  // Shutdown has cancelled their calls, so they end at once), then shuts the
  // queues down and joins their threads. False if reactors were left, in
  // which case the queues are left running too: shutting a queue down under
  // a live call aborts the process.
  bool Stop(absl::Duration timeout = absl::Seconds(10));

  // Reactors that exist: streams open or ending, and those awaiting a call.
  int64_t reactors() const { return count_.live(); }

 private:
  void Await(grpc::ServerCompletionQueue* queue);
  void Serve(grpc::ServerCompletionQueue* queue);

  const int pending_per_queue_;
  PresenceService* const service_;
  ServiceContext* const context_;
  ReactorCount count_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_SESSION_QUEUES_H_
