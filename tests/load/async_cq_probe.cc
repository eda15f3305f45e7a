// async_cq_probe: does spreading streams over several completion queues make
// joins fast again with 100k streams held, in Debian's gRPC? (It is built
// without NDEBUG, so each completing operation searches its queue's list of
// outstanding operations, two per held stream; the callback API puts every
// call of a process on one queue: BENCHMARKS.md, "Why a join is slow".)
//
// A bare presence.v1 Session server on gRPC's async API, no VS and no
// presence: Joined for a join, Left then OK for a leave, OK for a half-close;
// streams spread over --queues completion queues, one thread each. Driven by
// tests/load/load_generator; exits by itself after --run_for.
//
//   async_cq_probe --listen=127.0.0.1:50071 --queues=8 --run_for=300s

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50071", "Address to serve on.");
ABSL_FLAG(int, queues, 1, "Completion queues (a thread each); calls are spread round-robin.");
ABSL_FLAG(int, pending_per_queue, 64, "Calls awaited on each queue at once.");
ABSL_FLAG(absl::Duration, run_for, absl::Seconds(300), "Exit after this long.");

namespace {

using presence::v1::Presence;
using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

// One Session call. Every tag of a call completes on its queue's one thread,
// so a call needs no lock.
class Call {
 public:
  Call(Presence::AsyncService* service, grpc::ServerCompletionQueue* cq)
      : service_(service), cq_(cq), stream_(&context_) {
    context_.AsyncNotifyWhenDone(&done_);
    ++outstanding_;
    service_->RequestSession(&context_, &stream_, cq_, cq_, &arrived_);
  }

  struct Tag {
    Call* call;
    void (Call::*on)(bool ok);
    void Proceed(bool ok) {
      Call* c = call;
      if (this != &c->done_) --c->outstanding_;
      (c->*on)(ok);
      c->MaybeDelete();
    }
  };

 private:
  void OnArrived(bool ok) {
    if (!ok) {  // The server is shutting down.
      done_fired_ = true;
      return;
    }
    new Call(service_, cq_);  // The next call on this queue.
    Read();
  }

  void OnRead(bool ok) {
    if (!ok) {  // Half-closed, or cancelled.
      Finish();
      return;
    }
    if (request_.has_join()) {
      response_.mutable_joined()->set_nickname(request_.join().nickname());
      Write(/*then_finish=*/false);
    } else if (request_.has_leave()) {
      response_.mutable_left();
      Write(/*then_finish=*/true);
    } else {
      Read();
    }
  }

  void OnWritten(bool ok) {
    if (!ok || finish_after_write_) {
      Finish();
    } else {
      Read();
    }
  }

  void OnFinished(bool) {}
  void OnDone(bool) { done_fired_ = true; }

  void Read() {
    ++outstanding_;
    stream_.Read(&request_, &read_);
  }
  void Write(bool then_finish) {
    finish_after_write_ = then_finish;
    ++outstanding_;
    stream_.Write(response_, &written_);
  }
  void Finish() {
    if (finishing_) return;
    finishing_ = true;
    ++outstanding_;
    stream_.Finish(grpc::Status::OK, &finished_);
  }
  void MaybeDelete() {
    if (done_fired_ && outstanding_ == 0) delete this;
  }

  Presence::AsyncService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<SessionResponse, SessionRequest> stream_;
  SessionRequest request_;
  SessionResponse response_;
  int outstanding_ = 0;
  bool finish_after_write_ = false;
  bool finishing_ = false;
  bool done_fired_ = false;
  Tag arrived_{this, &Call::OnArrived};
  Tag read_{this, &Call::OnRead};
  Tag written_{this, &Call::OnWritten};
  Tag finished_{this, &Call::OnFinished};
  Tag done_{this, &Call::OnDone};
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  Presence::AsyncService service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues;
  for (int i = 0; i < absl::GetFlag(FLAGS_queues); ++i)
    queues.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) return 1;
  std::vector<std::thread> threads;
  for (auto& queue : queues) {
    for (int i = 0; i < absl::GetFlag(FLAGS_pending_per_queue); ++i)
      new Call(&service, queue.get());
    threads.emplace_back([cq = queue.get()] {
      void* tag;
      bool ok;
      while (cq->Next(&tag, &ok)) static_cast<Call::Tag*>(tag)->Proceed(ok);
    });
  }
  std::printf("listening address=%s queues=%zu\n", absl::GetFlag(FLAGS_listen).c_str(),
              queues.size());
  std::fflush(stdout);
  absl::SleepFor(absl::GetFlag(FLAGS_run_for));
  // A probe: the process ends without draining its queues.
  std::_Exit(0);
}
