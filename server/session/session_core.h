#ifndef PRESENCE_SERVER_SESSION_SESSION_CORE_H_
#define PRESENCE_SERVER_SESSION_SESSION_CORE_H_

// SessionCore is the part of a Session stream that outlives it: what the VS
// event thread and the ping scheduler hold on to. The stream's reactor is
// attached while the stream lives; a completion that arrives later finds it
// detached and does nothing with the stream.
//
// Thread-safe. Identity is written once, before the core is published to the
// registry or the scheduler, and only read after.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/session/ping_scheduler.h"
#include "server/vs/vs_client.h"

namespace presence::service {
class SessionReactor;
}  // namespace presence::service

namespace presence::session {

// Who is present where, as VS knows it.
struct SessionIdentity {
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  bool registered = false;
  std::string display_nickname;  // As VS returned it.
  absl::Time joined_at;
};

class SessionCore : public PingTarget {
 public:
  using Reactor = service::SessionReactor;

  SessionCore(std::string id, Reactor* reactor) : id_(std::move(id)), reactor_(reactor) {}

  const std::string& id() const { return id_; }

  void set_identity(SessionIdentity identity) { identity_ = std::move(identity); }
  const SessionIdentity& identity() const { return identity_; }

  vs::RoomPresence presence() const {
    return vs::RoomPresence{identity_.performer_id, identity_.customer_id,
                            identity_.display_nickname};
  }

  // Runs fn(reactor) while the stream is attached and returns true; returns
  // false when it is gone. The reactor cannot be deleted while fn runs.
  template <typename Fn>
  bool WithReactor(Fn&& fn) {
    absl::MutexLock lock(&mu_);
    if (reactor_ == nullptr) return false;
    fn(reactor_);
    return true;
  }

  // Called by the reactor in OnDone, before it deletes itself.
  void Detach() {
    absl::MutexLock lock(&mu_);
    reactor_ = nullptr;
  }

 private:
  const std::string id_;
  SessionIdentity identity_;
  absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_);
};

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_SESSION_CORE_H_
