#ifndef PRESENCE_SERVER_SESSION_SESSION_CORE_H_
#define PRESENCE_SERVER_SESSION_SESSION_CORE_H_

// SessionCore is the part of a Session stream that outlives it: what the VS
// event thread, the presences and the registry hold on to. The stream (its
// reactor, seen through the SessionStream interface) is attached while it
// lives; an answer that arrives later finds it detached and is dropped.
//
// Thread-safe. The identity is written by the stream in two steps, each
// before the core is published to the registry's matching set: who asked
// (set_identity, before it is listed as joining), then what VS answered
// (set_joined, before it is listed as joined). Readers read only what the
// set they found the core in guarantees.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/base/short_string.h"
#include "server/vs/vs_result.h"

namespace presence::session {

// What resuming a session needs. Allocated only with a resume grace, so a
// server without one pays a pointer per session for it.
struct Resumable {
  std::string asked_nickname;  // As the join gave it (a guest resumes by it).
  std::string session_id;      // The client's id: a resumed session keeps its first.
  std::string token;           // Takes the session over once its stream is lost.
};

// Who is present where, as VS knows it.
struct SessionIdentity {
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  bool registered = false;
  std::string display_nickname;                // As VS returned it.
  absl::Time joined_at;                        // Calendar time, for GetRoom.
  std::unique_ptr<const Resumable> resumable;  // Null: resume is off.
};

// The answer to a stream's join: VS's result, and the display nickname every
// stream of the presence uses when it was accepted.
struct JoinAnswer {
  vs::VsResult result;
  std::string display_nickname;
  // Set when the stream resumed a held session: that session's id.
  std::string resumed_session_id;
};

// What reaches a live stream from elsewhere. Implemented by the gRPC
// reactor. Each call comes through SessionCore::WithStream, never under a
// lock of the caller's that the stream could need.
class SessionStream {
 public:
  virtual void OnJoinAnswer(const JoinAnswer& answer) = 0;
  // A ping of this stream's presence failed.
  virtual void OnPingFailed(const vs::VsResult& result) = 0;
  virtual void OnCreditsAnswer(const vs::VsResult& result) = 0;
  // The drain on shutdown, in two passes over every stream: first the
  // presence is left (or held for a resume), so that every leave is on its
  // way to VS before gRPC spends its time ending streams; then UNAVAILABLE.
  virtual void LeaveForDrain() = 0;
  virtual void EndForDrain() = 0;
  // VS booted the customer: leave, then PERMISSION_DENIED.
  virtual void EndForBoot() = 0;

 protected:
  ~SessionStream() = default;
};

class SessionCore {
 public:
  SessionCore(absl::string_view id, SessionStream* stream) : id_(id), stream_(stream) {}

  std::string id() const { return id_.str(); }
  absl::string_view id_view() const { return id_.view(); }

  void set_identity(SessionIdentity identity) { identity_ = std::move(identity); }
  void set_joined(std::string display_nickname, absl::Time joined_at,
                  std::unique_ptr<const Resumable> resumable) {
    identity_.display_nickname = std::move(display_nickname);
    identity_.joined_at = joined_at;
    identity_.resumable = std::move(resumable);
  }
  const SessionIdentity& identity() const { return identity_; }
  // The id the client sees: a resumed session keeps its first stream's.
  std::string public_id() const {
    return identity_.resumable != nullptr ? identity_.resumable->session_id : id_.str();
  }

  // Runs fn(stream) while the stream is attached and returns true; returns
  // false when it is gone. The stream cannot go away while fn runs.
  template <typename Fn>
  bool WithStream(Fn&& fn) {
    absl::MutexLock lock(&mu_);
    if (stream_ == nullptr) return false;
    fn(stream_);
    return true;
  }

  // Called by the stream as it is destroyed.
  void Detach() {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
  }

 private:
  const base::ShortString id_;
  SessionIdentity identity_;
  absl::Mutex mu_;
  SessionStream* stream_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_SESSION_CORE_H_
