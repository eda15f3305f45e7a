#include "server/presence_server.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/log/log.h"
#include "server/service/session_reactor.h"

namespace presence {
namespace {

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
  absl::StatusOr<std::unique_ptr<vs::VsClient>> vs = vs::VsClient::Create(options.vs);
  if (!vs.ok()) return vs.status();
  server->vs_ = *std::move(vs);
  server->registry_ = std::make_unique<session::SessionRegistry>(options.max_sessions);
  service::ServiceContext* context = &server->context_;
  server->scheduler_ = std::make_unique<session::PingScheduler>(
      options.ping_interval,
      [context](const std::shared_ptr<session::PingTarget>& target, absl::Time /*scheduled*/) {
        if (target->kind() == session::PingTarget::Kind::kSharedPresence) {
          service::SessionReactor::SendSharedPing(
              context, std::static_pointer_cast<session::SharedPresence>(target));
        } else {
          service::SessionReactor::SendPing(context,
                                            std::static_pointer_cast<session::SessionCore>(target));
        }
      });
  context->vs = server->vs_.get();
  context->scheduler = server->scheduler_.get();
  context->registry = server->registry_.get();
  server->presences_ = std::make_unique<session::PresenceTable>();
  context->presences = server->presences_.get();
  context->auth_token = options.auth_token;
  context->max_messages_per_second = options.max_messages_per_second;
  server->service_ = std::make_unique<service::PresenceService>(context);
  if (!options.state_dir.empty()) {
    absl::StatusOr<std::unique_ptr<journal::SessionJournal>> journal =
        journal::SessionJournal::Open(options.state_dir);
    if (!journal.ok()) return journal.status();
    server->journal_ = *std::move(journal);
    context->journal = server->journal_.get();
    server->RecoverFromJournal(options.recovery_timeout);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials(options);
  if (!credentials.ok()) return credentials.status();
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.min_client_ping_interval)));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // A held stream carries no data for long stretches; without this gRPC stops
  // sending keepalive pings after two, and a client that vanishes later is
  // never noticed.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("could not listen on ", options.listen));
  }
  server->server_->GetHealthCheckService()->SetServingStatus(true);
  if (!options.metrics_listen.empty()) {
    server->metrics_ = std::make_unique<admin::MetricsServer>(admin::MetricsSources{
        context, server->vs_.get(), server->scheduler_.get(), server->registry_.get()});
    if (absl::Status started = server->metrics_->Start(options.metrics_listen); !started.ok()) {
      return started;
    }
  }
  if (!options.boot_listen.empty()) {
    server->boot_ = std::make_unique<admin::BootServer>(context, options.boot_secret);
    if (absl::Status started = server->boot_->Start(options.boot_listen); !started.ok()) {
      return started;
    }
  }
  server->housekeeping_ = std::thread([s = server.get()] { s->TrimMemoryLoop(); });
  return server;
}

void PresenceServer::RecoverFromJournal(absl::Duration timeout) {
  const auto& unfinished = journal_->unfinished();
  if (unfinished.empty()) return;
  auto done = std::make_shared<std::atomic<int64_t>>(0);
  for (const journal::JournaledSession& s : unfinished) {
    journal::SessionJournal* journal = journal_.get();
    std::string id = s.session_id;
    absl::Status taken =
        vs_->LeaveRoom(vs::RoomPresence{s.performer_id, s.customer_id, s.nickname},
                       [journal, id, done](vs::VsResult result) {
                         if (result.accepted() || result.outcome == vs::VsOutcome::kRejected) {
                           journal->RecordLeft(id);
                         }
                         done->fetch_add(1);
                       });
    if (!taken.ok()) done->fetch_add(1);
  }
  absl::Time deadline = absl::Now() + timeout;
  while (done->load() < static_cast<int64_t>(unfinished.size()) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  journal_->Sync();
  log::Info("recovered", {{"sessions_left_open_by_last_run", absl::StrCat(unfinished.size())},
                          {"leaves_answered", absl::StrCat(done->load())},
                          {"open_after", absl::StrCat(journal_->open_sessions())}});
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

bool PresenceServer::Shutdown(absl::Time deadline) {
  if (shut_down_) return true;
  shut_down_ = true;
  server_->GetHealthCheckService()->SetServingStatus(false);
  service_->BeginDrain();
  // Streams that never joined, and any still open, are cancelled here; their
  // reactors send their leaves as they end.
  server_->Shutdown(absl::ToChronoTime(deadline));
  server_->Wait();
  return vs_->Drain(deadline);
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
  service_.reset();
  scheduler_.reset();
  vs_.reset();
  journal_.reset();  // Last: leave completions record into it.
}

}  // namespace presence
