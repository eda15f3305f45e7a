#ifndef PRESENCE_SERVER_PRESENCE_SERVER_H_
#define PRESENCE_SERVER_PRESENCE_SERVER_H_

// PresenceServer wires the gateway together: the VS client, the ping
// scheduler, the session registry and the gRPC server with PresenceService,
// health and reflection. main.cc and the end-to-end tests both start it.
//
// Thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/admin/boot_server.h"
#include "server/admin/metrics_server.h"
#include "server/base/clock.h"
#include "server/fleet/fleet.h"
#include "server/journal/session_journal.h"
#include "server/presence/leave_sender.h"
#include "server/presence/local_directory.h"
#include "server/presence/presence_context.h"
#include "server/service/presence_service.h"
#include "server/service/service_context.h"
#include "server/service/session_queues.h"
#include "server/session/ping_scheduler.h"
#include "server/session/session_registry.h"
#include "server/vs/vs_client.h"

namespace presence {

struct PresenceServerOptions {
  // host:port; port 0 picks a free one (see PresenceServer::port()).
  std::string listen = "127.0.0.1:50051";
  absl::Duration ping_interval = absl::Seconds(10);
  int64_t max_sessions = 200000;
  vs::VsClientOptions vs;
  // Server keepalive: ping an idle client every keepalive_time and drop it if
  // no answer comes within keepalive_timeout. Clients may ping as often as
  // every min_client_ping_interval.
  absl::Duration keepalive_time = absl::Seconds(10);
  absl::Duration keepalive_timeout = absl::Seconds(10);
  absl::Duration min_client_ping_interval = absl::Seconds(5);
  // TLS on the gRPC listener when both are set (PEM files); with a client CA,
  // clients must present a certificate it signed (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // Bearer token every Presence RPC must carry; empty: no auth.
  std::string auth_token;
  // Per-stream limit on client messages after the join (burst: twice this);
  // past it the stream ends RESOURCE_EXHAUSTED (its leave is sent). 0: none.
  double max_messages_per_second = 20;
  // How long a stream's credits update is retried before success:false.
  absl::Duration credits_retry_window = absl::Seconds(10);
  // How long a lost stream's session is held for a resume (pings go on, no
  // leave); 0: off. Keep it well below VS's purge time.
  absl::Duration resume_grace = absl::ZeroDuration();
  // A stream that sends no join within this ends DEADLINE_EXCEEDED and frees
  // its slot; nothing is sent to VS.
  absl::Duration join_timeout = absl::Seconds(10);
  // Concurrent streams on one HTTP/2 connection, at most (more wait in the
  // client until one ends).
  int max_streams_per_connection = 16384;
  // Completion queues (a thread each) that Session streams are spread over.
  int session_queues = 8;
  // Directory for the session journal (crash-safe leaves); empty: none. At
  // start, sessions a crashed run left open are left before serving, waiting
  // at most recovery_timeout (the rest go on in the background).
  std::string state_dir;
  absl::Duration recovery_timeout = absl::Seconds(30);
  // VS customer boot notifications at POST /boot?key=<boot_secret> on
  // host:port; empty: off. Needs boot_secret.
  std::string boot_listen;
  std::string boot_secret;
  // The fleet: replicas sharing presence on Redis. Empty redis.host: one
  // replica, local state only.
  fleet::FleetOptions fleet;
  bool fleet_enabled = false;
  // Prometheus metrics at GET /metrics on host:port; empty: no endpoint.
  std::string metrics_listen;
  // Client messages are a few hundred bytes at most.
  int max_receive_message_bytes = 16 * 1024;
};

class PresenceServer {
 public:
  static absl::StatusOr<std::unique_ptr<PresenceServer>> Start(PresenceServerOptions options);

  // Shuts down with a short deadline if Shutdown was not called.
  ~PresenceServer();

  int port() const { return port_; }
  // The metrics endpoint's port, or 0 when there is none.
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  // The boot endpoint's port, or 0 when there is none.
  int boot_port() const { return boot_ ? boot_->port() : 0; }

  // The graceful drain: health turns NOT_SERVING, new sessions are refused
  // with UNAVAILABLE, every session's leave is sent and its stream ended with
  // UNAVAILABLE, and the VS client is given until `deadline` to deliver the
  // leaves. Returns whether every VS request completed in time.
  bool Shutdown(absl::Time deadline);
  // Notified during Shutdown once VS answered every leave: what is left is
  // gRPC's teardown of streams that have ended.
  const absl::Notification& leaves_delivered() const { return leaves_delivered_; }
  // From another thread, while Shutdown waits on gRPC's teardown, before the
  // process exits without it: the fleet forgets this replica (survivors take
  // over whatever is still recorded) and the journal is synced.
  void AbandonTeardown();

  const service::ServiceContext& context() const { return context_; }
  // Null without --redis_url.
  const fleet::Fleet* fleet() const { return fleet_.get(); }
  vs::VsClient& vs_client() { return *vs_; }
  session::SessionRegistry& registry() { return *registry_; }
  session::PingScheduler& scheduler() { return *scheduler_; }
  // Session reactors that exist: one per stream not yet done, and those
  // awaiting calls.
  int64_t session_reactors() const { return session_queues_->reactors(); }

 private:
  PresenceServer() = default;

  // Start's steps, in order.
  absl::Status StartCore(const PresenceServerOptions& options);
  absl::Status StartFleet(const PresenceServerOptions& options);
  absl::Status OpenJournal(const PresenceServerOptions& options);
  absl::Status StartGrpc(const PresenceServerOptions& options);
  absl::Status StartAdmin(const PresenceServerOptions& options);

  // Leaves the sessions a crashed run left open (from the journal), and
  // holds again those a stopped run handed over for a resume.
  // `fleet_recovered`: the fleet took over the previous run's accepted
  // presences (RecoverPreviousReplica); the journal leaves only the joins
  // whose answer it never recorded.
  void RecoverFromJournal(absl::Duration timeout, bool fleet_recovered = false);
  // With a fleet and a journal: the id of the replica this process succeeds
  // is kept in the state directory; its records are taken over at once.
  bool RecoverPreviousReplica(const std::string& state_dir);
  // Sends their leaves; waits at most `timeout` for the answers and returns
  // how many came.
  int64_t LeaveAll(const std::vector<journal::JournaledSession>& sessions, absl::Duration timeout);

  // The drain's second pass (PresenceService::EndDrainedStreams) and the wait
  // for VS to answer what is in flight, in the order the drain needs.
  void EndStreams(bool handed_over, absl::Time deadline);

  // Returns freed memory to the system after many sessions end: glibc keeps
  // it in its arenas otherwise, and RSS after a peak would never come down.
  void TrimMemoryLoop();

  int port_ = 0;
  bool shut_down_ = false;
  absl::Notification stop_housekeeping_;
  absl::Notification leaves_delivered_;
  std::thread housekeeping_;
  // Declared in the order they may be destroyed last-to-first: VS answers
  // reach presences, the leave sender, the journal and the counters.
  service::ServiceContext context_;
  presences::PresenceContext presence_context_;
  std::unique_ptr<journal::SessionJournal> journal_;
  std::unique_ptr<presences::LeaveSender> leaves_;
  std::unique_ptr<vs::VsClient> vs_;
  std::unique_ptr<session::SessionRegistry> registry_;
  std::unique_ptr<presences::LocalDirectory> presences_;
  // After the leave sender and the registry, which it uses; before the
  // journal's recovery, which records what it restores.
  std::unique_ptr<fleet::Fleet> fleet_;
  std::unique_ptr<session::PingScheduler> scheduler_;
  std::unique_ptr<service::PresenceService> service_;
  // Its queues outlive the server; its threads stop after the server's Shutdown.
  std::unique_ptr<service::SessionQueues> session_queues_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<admin::MetricsServer> metrics_;
  std::unique_ptr<admin::BootServer> boot_;
};

}  // namespace presence

#endif  // PRESENCE_SERVER_PRESENCE_SERVER_H_
