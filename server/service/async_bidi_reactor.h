#ifndef PRESENCE_SERVER_SERVICE_ASYNC_BIDI_REACTOR_H_
#define PRESENCE_SERVER_SERVICE_ASYNC_BIDI_REACTOR_H_

// AsyncBidiReactor serves one bidi stream on gRPC's async API (a completion
// queue of our own, drained by our own thread) while offering the callback
// API's reactor shape: StartRead / StartWrite / Finish, and the reactions
// OnReadDone / OnWriteDone / OnCancel / OnDone.
//
// Why not the callback API: it puts every call of the process on one
// completion queue, and Debian's gRPC (built without NDEBUG) searches a
// queue's list of outstanding operations, two per open stream, on every
// completion. Streams spread over several queues keep each list short
// (BENCHMARKS.md, "Would more completion queues fix it?").
//
// Life of a reactor: SessionQueues creates it before its call exists and
// asks gRPC for a call with context() and stream(); OnStarted runs when the
// call arrives (a reactor whose call never arrives, at server shutdown, is
// deleted unstarted). From then on it holds references: one for the call's
// done notification, one until Finish's operation completes, one for each
// read and write in flight. OnDone runs when the last is released, exactly
// as the callback API's OnDone: after the call is done, Finish has
// completed and no operation is outstanding. OnDone may delete the reactor.
//
// Rules, as with the callback API: at most one read and one write in flight;
// Finish once. Operations may be started from any thread (the caller
// serialises them, as SessionReactor does under its mutex); reactions run on
// the queue's thread.

#include <atomic>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"

namespace presence::service {

// Counts the reactors that exist, so that the queues are shut down only when
// no reactor can start an operation on them (gRPC aborts when an operation
// is started on a queue that is shut down).
class ReactorCount {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++live_;
  }
  void Remove() {
    absl::MutexLock lock(&mu_);
    --live_;
  }
  // True when none is left within `timeout`.
  bool AwaitNone(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&none), timeout);
  }
  int64_t live() const {
    absl::MutexLock lock(&mu_);
    return live_;
  }

 private:
  mutable absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

template <class Request, class Response>
class AsyncBidiReactor {
 public:
  using Stream = grpc::ServerAsyncReaderWriter<Response, Request>;

  explicit AsyncBidiReactor(ReactorCount* count) : count_(count) {
    count_->Add();
    context_.AsyncNotifyWhenDone(Tag(kDone));
  }
  virtual ~AsyncBidiReactor() { count_->Remove(); }
  AsyncBidiReactor(const AsyncBidiReactor&) = delete;
  AsyncBidiReactor& operator=(const AsyncBidiReactor&) = delete;

  // For the Request<Method> call that awaits this reactor's call.
  grpc::ServerContext* context() { return &context_; }
  Stream* stream() { return &stream_; }
  void* arrival_tag() { return Tag(kArrived); }
  static bool IsArrival(void* tag) { return OpOf(tag) == kArrived; }

  // Runs one completion of a reactor's operation: what the queue's thread
  // does with every event it takes.
  static void Complete(void* tag, bool ok) {
    auto* reactor =
        reinterpret_cast<AsyncBidiReactor*>(reinterpret_cast<uintptr_t>(tag) & ~kOpMask);
    reactor->Completed(OpOf(tag), ok);
  }

 protected:
  void StartRead(Request* request) {
    refs_.fetch_add(1, std::memory_order_relaxed);
    stream_.Read(request, Tag(kRead));
  }
  // `response` must stay valid until OnWriteDone.
  void StartWrite(const Response* response) {
    refs_.fetch_add(1, std::memory_order_relaxed);
    stream_.Write(*response, Tag(kWrite));
  }
  // Finish's operation takes over the reference held for it since OnStarted.
  void Finish(const grpc::Status& status) { stream_.Finish(status, Tag(kFinish)); }
  // Only once the call is done (OnCancel runs then): before, it is false.
  bool IsCancelled() const { return context_.IsCancelled(); }

  virtual void OnStarted() = 0;
  virtual void OnReadDone(bool ok) = 0;
  virtual void OnWriteDone(bool ok) = 0;
  // The call was cancelled, or its connection is gone.
  virtual void OnCancel() = 0;
  virtual void OnDone() = 0;

 private:
  enum Op : uintptr_t { kArrived = 0, kRead = 1, kWrite = 2, kFinish = 3, kDone = 4 };
  static constexpr uintptr_t kOpMask = 7;
  static_assert(alignof(grpc::ServerContext) >= 8, "the tag keeps its operation in 3 low bits");

  void* Tag(Op op) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(this) | op); }
  static Op OpOf(void* tag) { return static_cast<Op>(reinterpret_cast<uintptr_t>(tag) & kOpMask); }

  void Completed(Op op, bool ok) {
    switch (op) {
      case kArrived:
        if (!ok) {  // The server is shutting down: no call, no operation.
          delete this;
          return;
        }
        refs_.store(2, std::memory_order_relaxed);  // The done notification, Finish.
        OnStarted();
        return;
      case kRead:
        OnReadDone(ok);
        break;
      case kWrite:
        OnWriteDone(ok);
        break;
      case kFinish:
        break;
      case kDone:
        if (context_.IsCancelled()) OnCancel();
        break;
    }
    // After the reaction, which may have started the next operation.
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) OnDone();
  }

  ReactorCount* const count_;
  std::atomic<int32_t> refs_{0};
  grpc::ServerContext context_;
  Stream stream_{&context_};
};

}  // namespace presence::service

#endif  // PRESENCE_SERVER_SERVICE_ASYNC_BIDI_REACTOR_H_
