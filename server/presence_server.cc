#include "server/presence_server.h"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/log/log.h"

namespace presence {
namespace {

// Session reactors each completion queue keeps waiting for a call; each is
// replaced as its call arrives, so this bounds only a burst's first wave.
constexpr int kAwaitedCallsPerQueue = 32;

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const PresenceServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "--tls_cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "--tls_key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem(options.tls_client_ca_file, "--tls_client_ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PresenceServer>> PresenceServer::Start(
    PresenceServerOptions options) {
  if (options.ping_interval <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("the ping interval must be positive");
  }
  if (options.max_sessions < 1) return absl::InvalidArgumentError("max_sessions must be >= 1");
  std::unique_ptr<PresenceServer> server(new PresenceServer());
  for (auto step :
       {&PresenceServer::StartCore, &PresenceServer::StartFleet, &PresenceServer::OpenJournal,
        &PresenceServer::StartGrpc, &PresenceServer::StartAdmin}) {
    if (absl::Status done = (server.get()->*step)(options); !done.ok()) return done;
  }
  server->housekeeping_ = std::thread([s = server.get()] { s->TrimMemoryLoop(); });
  return server;
}

absl::Status PresenceServer::StartCore(const PresenceServerOptions& options) {
  absl::StatusOr<std::unique_ptr<vs::VsClient>> vs = vs::VsClient::Create(options.vs);
  if (!vs.ok()) return vs.status();
  vs_ = *std::move(vs);
  const base::Clock* clock = base::MonotonicClock::Get();
  scheduler_ = std::make_unique<session::PingScheduler>(options.ping_interval, clock);
  registry_ = std::make_unique<session::SessionRegistry>(options.max_sessions);
  leaves_ = std::make_unique<presences::LeaveSender>(&presence_context_);
  presence_context_.vs = vs_.get();
  presence_context_.scheduler = scheduler_.get();
  presence_context_.leaves = leaves_.get();
  presence_context_.counters = &context_.counters;
  presence_context_.resume_grace = options.resume_grace;
  presences_ = std::make_unique<presences::LocalDirectory>(&presence_context_);
  context_.presences = presences_.get();
  context_.registry = registry_.get();
  context_.vs = vs_.get();
  context_.clock = clock;
  context_.scheduler = scheduler_.get();
  context_.auth_token = options.auth_token;
  context_.max_messages_per_second = options.max_messages_per_second;
  context_.credits_retry_window = options.credits_retry_window;
  context_.join_timeout = options.join_timeout;
  context_.resume_grace = options.resume_grace;
  service_ = std::make_unique<service::PresenceService>(&context_);
  return absl::OkStatus();
}

absl::Status PresenceServer::StartFleet(const PresenceServerOptions& options) {
  if (!options.fleet_enabled) return absl::OkStatus();
  fleet_ = std::make_unique<fleet::Fleet>(options.fleet, leaves_.get(), registry_.get());
  fleet_->set_on_boot([this](int64_t customer_id, int64_t performer_id) {
    admin::BootServer::Boot(&context_, customer_id, performer_id);
  });
  fleet_->set_on_owner([this](int64_t performer_id, int64_t customer_id, bool owner) {
    presences_->SetOwner(performer_id, customer_id, owner);
  });
  fleet_->set_on_dropped([this](const std::string& digest) { presences_->DropHeld(digest); });
  fleet_->set_on_adopt(
      [this](const presences::AdoptedPresence& adopted) { presences_->Adopt(adopted); });
  presence_context_.records = fleet_.get();
  presence_context_.coordinator = fleet_.get();
  presence_context_.holds = fleet_.get();
  registry_->set_observer(fleet_.get());
  context_.fleet = fleet_.get();
  return fleet_->Start();
}

absl::Status PresenceServer::OpenJournal(const PresenceServerOptions& options) {
  if (options.state_dir.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<journal::SessionJournal>> journal =
      journal::SessionJournal::Open(options.state_dir);
  if (!journal.ok()) return journal.status();
  journal_ = *std::move(journal);
  presence_context_.journal = journal_.get();
  bool fleet_recovered = fleet_ != nullptr && RecoverPreviousReplica(options.state_dir);
  RecoverFromJournal(options.recovery_timeout, fleet_recovered);
  return absl::OkStatus();
}

absl::Status PresenceServer::StartGrpc(const PresenceServerOptions& options) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(options.listen, *credentials, &port_);
  builder.RegisterService(service_.get());
  session_queues_ = std::make_unique<service::SessionQueues>(
      &builder, options.session_queues, kAwaitedCallsPerQueue, service_.get(), &context_);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  auto millis = [](absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); };
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, millis(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, millis(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             millis(options.min_client_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // A held stream carries no data for long stretches; without this gRPC stops
  // sending keepalive pings after two, and a client that vanishes later is
  // never noticed.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // An exclusive bind: a second server on the same port must fail to start,
  // not share the port with this one at the kernel's whim.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_streams_per_connection);
  // Two of gRPC's per-call filters this server does without, about 540 bytes
  // of every held stream (measured at 20k): the server's deadline timer (a
  // client's deadline still ends its call: the client cancels it, and a
  // client that vanished is found by keepalive), and compression of what the
  // server sends (it never compresses; compressed requests are still read).
  builder.AddChannelArgument(GRPC_ARG_ENABLE_DEADLINE_CHECKS, 0);
  builder.AddChannelArgument(GRPC_ARG_ENABLE_PER_MESSAGE_COMPRESSION, 0);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", options.listen,
                                               " (--listen): the address is taken or invalid"));
  }
  session_queues_->Start();
  server_->GetHealthCheckService()->SetServingStatus(true);
  return absl::OkStatus();
}

absl::Status PresenceServer::StartAdmin(const PresenceServerOptions& options) {
  if (!options.metrics_listen.empty()) {
    metrics_ = std::make_unique<admin::MetricsServer>(
        admin::MetricsSources{&context_, vs_.get(), scheduler_.get(), registry_.get()});
    if (absl::Status started = metrics_->Start(options.metrics_listen); !started.ok()) {
      return started;
    }
  }
  if (!options.boot_listen.empty()) {
    boot_ = std::make_unique<admin::BootServer>(&context_, options.boot_secret);
    return boot_->Start(options.boot_listen);
  }
  return absl::OkStatus();
}

bool PresenceServer::RecoverPreviousReplica(const std::string& state_dir) {
  const std::string path = state_dir + "/replica_id";
  std::string previous;
  {
    std::ifstream in(path);
    std::getline(in, previous);
  }
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << fleet_->replica_id() << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
  if (previous.empty()) return false;
  bool recovered = fleet_->RecoverPrevious(previous, absl::Seconds(3));
  log::Info("fleet_previous_replica",
            {{"previous", previous}, {"taken_over_here", recovered ? "true" : "false"}});
  return recovered;
}

void PresenceServer::RecoverFromJournal(absl::Duration timeout, bool fleet_recovered) {
  if (journal_->unfinished().empty()) return;
  std::vector<journal::JournaledSession> to_leave;
  int64_t restored = 0, by_fleet = 0;
  // Handed over at the last shutdown: removed from the fleet's records then,
  // so this start owes their leave if it cannot hold them again.
  absl::flat_hash_set<std::string> handed_over;
  for (const journal::JournaledHold& h : journal_->holds()) handed_over.insert(h.presence_id);
  for (const journal::JournaledSession& s : journal_->unfinished()) {
    // Handed over by the previous run for a resume: held again, not left.
    if (s.confirmed && presences_->Restore(s, journal_->holds())) {
      ++restored;
    } else if (s.confirmed && fleet_recovered && !handed_over.contains(s.session_id)) {
      // The fleet's records had it: left by the fleet (here, or by a
      // survivor before this start), exactly once.
      journal_->RecordLeft(s.session_id);
      ++by_fleet;
    } else {
      to_leave.push_back(s);
    }
  }
  int64_t answered = LeaveAll(to_leave, timeout);
  journal_->Sync();
  log::Info("recovered",
            {{"sessions_left_open_by_last_run", absl::StrCat(journal_->unfinished().size())},
             {"held_again_for_resume", absl::StrCat(restored)},
             {"left_by_the_fleet", absl::StrCat(by_fleet)},
             {"leaves_answered", absl::StrCat(answered)},
             {"open_after", absl::StrCat(journal_->open_sessions())}});
}

int64_t PresenceServer::LeaveAll(const std::vector<journal::JournaledSession>& sessions,
                                 absl::Duration timeout) {
  struct Countdown {
    absl::Mutex mu;
    int64_t answered ABSL_GUARDED_BY(mu) = 0;
  };
  auto countdown = std::make_shared<Countdown>();
  for (const journal::JournaledSession& s : sessions) {
    // A join that was at VS when the run ended is taken back as a
    // best-effort leave, with the nickname it asked for.
    leaves_->Send(s.session_id, vs::RoomPresence{s.performer_id, s.customer_id, s.nickname},
                  s.confirmed ? presences::LeaveSender::Kind::kLeave
                              : presences::LeaveSender::Kind::kBestEffort,
                  [countdown] {
                    absl::MutexLock lock(&countdown->mu);
                    ++countdown->answered;
                  });
  }
  const int64_t total = static_cast<int64_t>(sessions.size());
  absl::MutexLock lock(&countdown->mu);
  auto all_answered = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(countdown->mu) {
    return countdown->answered >= total;
  };
  countdown->mu.AwaitWithTimeout(absl::Condition(&all_answered), timeout);
  return countdown->answered;
}

void PresenceServer::TrimMemoryLoop() {
  int64_t peak = 0;
  bool settle = false;
  while (!stop_housekeeping_.WaitForNotificationWithTimeout(absl::Seconds(5))) {
    int64_t open = registry_->open();
    peak = std::max(peak, open);
    if (peak - open >= std::max<int64_t>(1000, peak / 10)) {
      malloc_trim(0);
      peak = open;
      settle = true;
    } else if (settle) {
      // Ended sessions free more after their streams close (leaves answered,
      // shared presences dropped): one more trim a tick later returns it.
      malloc_trim(0);
      settle = false;
    }
  }
}

namespace {
constexpr absl::Duration kCallsGrace = absl::Seconds(1);
}  // namespace

void PresenceServer::EndStreams(bool handed_over, absl::Time deadline) {
  // main's watchdog may end the process once VS has answered everything,
  // even while the streams are still being ended, since what remains is
  // gRPC's work and the clients treat a closed connection as the UNAVAILABLE
  // they would be told.
  if (handed_over) {
    // Nothing was left: the clients are told at once, while VS answers what
    // is in flight, to resume elsewhere within the grace.
    std::thread delivered([this, deadline] {
      if (vs_->Drain(deadline)) leaves_delivered_.Notify();
    });
    service_->EndDrainedStreams();
    delivered.join();
    return;
  }
  // The streams of left sessions end only once VS has answered the leaves.
  // Two reasons: a client told UNAVAILABLE joins again on another replica,
  // and that join must not reach VS before this replica's leave for the same
  // viewer; and ending 100k streams is seconds of gRPC's CPU, which taken
  // alongside more than doubled the time to deliver the leaves (7 s against
  // 20 s at 100k, BENCHMARKS.md).
  if (vs_->Drain(deadline)) leaves_delivered_.Notify();
  service_->EndDrainedStreams();
}

bool PresenceServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return true;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  // With a resume grace, the sessions are handed over rather than left: the
  // drain holds them. In a fleet, the holds are the fleet's already (any
  // replica takes their resumes; the survivor that takes this replica over
  // pings them and ends them at their grace). Otherwise, with a journal, they
  // are written down for the next start of this server. With neither, they
  // are left, as every session is.
  const bool grace = presence_context_.resume_grace > absl::ZeroDuration();
  const bool to_fleet = grace && fleet_ != nullptr;
  const bool to_journal = grace && !to_fleet && journal_ != nullptr;
  context_.drain_holds.store(to_fleet || to_journal);
  service_->BeginDrain();
  std::vector<std::string> handed_over;
  if (to_fleet || to_journal) {
    const int64_t held = presences_->held_sessions();
    handed_over = presences_->HandOverHolds();
    log::Info("handed_over",
              {{"to", to_fleet ? "fleet" : "next_start"}, {"held_sessions", absl::StrCat(held)}});
  } else {
    presences_->EndAllHolds();
  }
  EndStreams(/*handed_over=*/to_fleet || to_journal, deadline);
  // The listener stayed up while VS took the leaves, so a stream or call that
  // arrived meanwhile was refused UNAVAILABLE (retry elsewhere), not cancelled.
  // VS has answered what the calls wait for: a call still open now waits
  // only on its client (a stream ended by the drain whose client neither
  // half-closes nor cancels keeps gRPC waiting, seconds with Python's
  // clients), so the calls get a second before gRPC cancels them. Streams
  // that never joined are cancelled here too.
  server_->Shutdown(absl::ToChronoTime(std::min(deadline, absl::Now() + kCallsGrace)));
  server_->Wait();
  // Every call has ended (cancelled at the latest by Shutdown's deadline):
  // their reactors go at once, and then the queues.
  session_queues_->Stop();
  bool drained = vs_->Drain(deadline);
  // What is still recorded in the fleet (leaves VS did not answer in time)
  // is taken over by a survivor; what was handed over is this server's next
  // start's.
  if (fleet_ != nullptr) {
    fleet_->Stop(handed_over, std::min(absl::Seconds(2), deadline - absl::Now()));
  }
  return drained;
}

void PresenceServer::AbandonTeardown() {
  if (fleet_ != nullptr) fleet_->Stop({}, absl::Seconds(1));
  if (journal_ != nullptr) journal_->Sync();
}

PresenceServer::~PresenceServer() {
  if (server_ != nullptr) Shutdown(absl::Now() + absl::Seconds(5));
  // Order matters: nothing may call into the VS client or the scheduler once
  // they are gone, so the metrics page and the gRPC server go first.
  stop_housekeeping_.Notify();
  if (housekeeping_.joinable()) housekeeping_.join();
  boot_.reset();
  metrics_.reset();
  server_.reset();
  session_queues_.reset();
  service_.reset();
  // The scheduler's thread calls into VsClient: it stops first. VsClient's
  // shutdown then runs what is pending, and those answers reach presences,
  // the scheduler (still there, stopped) and the journal.
  scheduler_->Stop();
  vs_.reset();
  scheduler_.reset();
  journal_.reset();
}

}  // namespace presence
