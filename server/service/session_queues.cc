#include "server/service/session_queues.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/log/log.h"
#include "server/service/session_reactor.h"

namespace presence::service {

SessionQueues::SessionQueues(grpc::ServerBuilder* builder, int queues, int pending_per_queue,
                             PresenceService* service, ServiceContext* context)
    : pending_per_queue_(pending_per_queue), service_(service), context_(context) {
  for (int i = 0; i < queues; ++i) queues_.push_back(builder->AddCompletionQueue());
}

SessionQueues::~SessionQueues() {
  if (Stop()) return;
  // Reactors are left: their queues and threads must outlive them, so all
  // three are let go rather than torn down under them.
  for (std::thread& thread : threads_) thread.detach();
  for (std::unique_ptr<grpc::ServerCompletionQueue>& queue : queues_) queue.release();
}

void SessionQueues::Start() {
  for (const std::unique_ptr<grpc::ServerCompletionQueue>& queue : queues_) {
    for (int i = 0; i < pending_per_queue_; ++i) Await(queue.get());
    threads_.emplace_back([this, queue = queue.get()] { Serve(queue); });
  }
}

void SessionQueues::Await(grpc::ServerCompletionQueue* queue) {
  auto* reactor = new SessionReactor(context_, &count_);
  service_->RequestSession(reactor->context(), reactor->stream(), queue, queue,
                           reactor->arrival_tag());
}

void SessionQueues::Serve(grpc::ServerCompletionQueue* queue) {
  pthread_setname_np(pthread_self(), "session-queue");  // For top -H and perf.
  void* tag = nullptr;
  bool ok = false;
  while (queue->Next(&tag, &ok)) {
    // A call arrived: another reactor awaits the next one on this queue
    // (none once the server shuts down, when awaited calls fail).
    if (ok && SessionReactor::IsArrival(tag)) Await(queue);
    SessionReactor::Complete(tag, ok);
  }
}

bool SessionQueues::Stop(absl::Duration timeout) {
  if (stopped_) return true;
  if (threads_.empty()) {  // Never started: nothing was asked of the queues.
    stopped_ = true;
    for (const std::unique_ptr<grpc::ServerCompletionQueue>& queue : queues_) {
      queue->Shutdown();
      void* tag = nullptr;
      bool ok = false;
      while (queue->Next(&tag, &ok)) {
      }
    }
    return true;
  }
  if (!count_.AwaitNone(timeout)) {
    log::Error("session_queues_not_stopped", {{"reactors_left", absl::StrCat(count_.live())},
                                              {"waited", absl::FormatDuration(timeout)}});
    return false;
  }
  stopped_ = true;
  for (const std::unique_ptr<grpc::ServerCompletionQueue>& queue : queues_) queue->Shutdown();
  for (std::thread& thread : threads_) thread.join();
  return true;
}

}  // namespace presence::service
