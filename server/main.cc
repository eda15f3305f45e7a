// presence_server: the presence gateway.
//
// With no --vs_url it starts the built-in VS simulator on a loopback port, so
// it runs with nothing else installed. SIGINT or SIGTERM drain it (leaves
// sent, streams ended with UNAVAILABLE) within --drain_timeout; a second
// signal exits at once.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "server/log/log.h"
#include "server/presence_server.h"
#include "server/vs_simulator/vs_simulator.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "gRPC listen address, host:port.");
ABSL_FLAG(std::string, vs_url, "",
          "VS API base URL (http:// or https://). Empty: start the built-in VS simulator.");
ABSL_FLAG(std::string, vs_key_file, "",
          "File holding the VS partner key. Default: the VS_KEY environment variable.");
ABSL_FLAG(absl::Duration, ping_interval, absl::Seconds(10), "pingRoom interval per session.");
ABSL_FLAG(absl::Duration, vs_timeout, absl::Seconds(5), "Timeout of one VS request.");
ABSL_FLAG(absl::Duration, vs_connect_timeout, absl::Seconds(2), "Timeout to connect to VS.");
ABSL_FLAG(int, vs_max_connections, 64, "Keep-alive connections to VS at most.");
ABSL_FLAG(int, vs_event_loops, 0,
          "Threads doing VS I/O, each with its share of --vs_max_connections; requests are "
          "sharded to them by room. 0: one per core.");
ABSL_FLAG(std::string, vs_http_client, "builtin",
          "HTTP client for an http:// --vs_url: builtin (our own HTTP/1.1 keep-alive client, "
          "half the CPU per request) or libcurl. https:// always uses libcurl.");
ABSL_FLAG(absl::Duration, leave_retry_window, absl::Seconds(60),
          "How long leaveRoom and updateCredits are retried while VS is down.");
ABSL_FLAG(absl::Duration, credits_retry_window, absl::Seconds(10),
          "How long a stream's credits update is retried before success:false. A unary "
          "UpdateCredits is retried until shortly before its own deadline instead.");
ABSL_FLAG(absl::Duration, resume_grace, absl::ZeroDuration(),
          "How long a session whose stream was lost (not left) is held for a resume: pings go "
          "on and no leaveRoom is sent. 0: off. Keep it well below VS's purge time.");
ABSL_FLAG(absl::Duration, join_timeout, absl::Seconds(10),
          "A stream that sends no join within this ends DEADLINE_EXCEEDED.");
ABSL_FLAG(int, max_streams_per_connection, 16384,
          "Concurrent Session streams on one HTTP/2 connection, at most.");
ABSL_FLAG(int, session_queues, 8,
          "gRPC completion queues (a thread each) Session streams are spread over.");
ABSL_FLAG(int64_t, max_sessions, 200000, "Open sessions at most; more get RESOURCE_EXHAUSTED.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(20),
          "On SIGTERM/SIGINT, how long to wait for the leaves to reach VS.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain for TLS on the gRPC listener.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert.");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require client certificates signed by it (mutual TLS).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token every RPC must carry ('authorization: Bearer <token>').");
ABSL_FLAG(double, max_messages_per_second, 20,
          "Per-stream limit on client messages after the join (burst: twice this); 0: none.");
ABSL_FLAG(
    std::string, boot_listen, "",
    "Accept VS customer boot notifications (POST /boot?key=SECRET) on host:port; empty: off.");
ABSL_FLAG(std::string, boot_secret_file, "",
          "File holding the shared secret VS puts in the boot URL's key parameter.");
ABSL_FLAG(std::string, redis_url, "",
          "redis://host:port[/db]: replicas share presence there (a fleet); empty: one replica.");
ABSL_FLAG(std::string, redis_password_file, "", "File holding the Redis password (AUTH).");
ABSL_FLAG(absl::Duration, replica_ttl, absl::Seconds(10),
          "A replica that does not renew its liveness for this long is dead: a survivor "
          "leaves its presences.");
ABSL_FLAG(absl::Duration, redis_timeout, absl::Seconds(1),
          "A Redis command without an answer by then fails (the replica works on degraded).");
ABSL_FLAG(std::string, state_dir, "",
          "Directory for the session journal: after a crash, the next start leaves every "
          "session that was open. Empty: no journal.");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9464",
          "Prometheus metrics at GET /metrics on host:port; empty: off.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(bool, log_json, false, "Log one JSON object per line.");

namespace {

// After every leave is answered, how long gRPC may take to tear down the
// ended streams before the process exits without it.
constexpr absl::Duration kTeardownGrace = absl::Seconds(2);

// Secrets never go through a flag: flags show up in `ps`.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, const char* flag) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", flag, " ", path));
  std::stringstream text;
  text << in.rdbuf();
  std::string secret(absl::StripAsciiWhitespace(text.str()));
  if (secret.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is empty"));
  return secret;
}

absl::StatusOr<std::string> ReadKey(const std::string& key_file) {
  if (!key_file.empty()) return ReadSecretFile(key_file, "--vs_key_file");
  const char* env = std::getenv("VS_KEY");
  std::string key(absl::StripAsciiWhitespace(env == nullptr ? "" : env));
  if (!key.empty()) return key;
  return absl::NotFoundError("no VS key: set VS_KEY or --vs_key_file");
}

// Nonsense is refused at start, naming the flag: a zero timeout would mean no
// timeout at all, a negative rate would switch the limit off silently.
absl::Status ValidateFlags() {
  struct Positive {
    const char* flag;
    absl::Duration value;
  };
  for (const Positive& d : {
           Positive{"--ping_interval", absl::GetFlag(FLAGS_ping_interval)},
           Positive{"--vs_timeout", absl::GetFlag(FLAGS_vs_timeout)},
           Positive{"--vs_connect_timeout", absl::GetFlag(FLAGS_vs_connect_timeout)},
           Positive{"--leave_retry_window", absl::GetFlag(FLAGS_leave_retry_window)},
           Positive{"--credits_retry_window", absl::GetFlag(FLAGS_credits_retry_window)},
           Positive{"--join_timeout", absl::GetFlag(FLAGS_join_timeout)},
           Positive{"--drain_timeout", absl::GetFlag(FLAGS_drain_timeout)},
           Positive{"--replica_ttl", absl::GetFlag(FLAGS_replica_ttl)},
           Positive{"--redis_timeout", absl::GetFlag(FLAGS_redis_timeout)},
       }) {
    if (d.value <= absl::ZeroDuration() || d.value == absl::InfiniteDuration()) {
      return absl::InvalidArgumentError(absl::StrCat(d.flag, " must be a positive duration, got ",
                                                     absl::FormatDuration(d.value)));
    }
  }
  if (absl::GetFlag(FLAGS_vs_event_loops) < 0 || absl::GetFlag(FLAGS_vs_event_loops) > 64) {
    return absl::InvalidArgumentError("--vs_event_loops must be between 0 (one per core) and 64");
  }
  if (absl::GetFlag(FLAGS_vs_http_client) != "builtin" &&
      absl::GetFlag(FLAGS_vs_http_client) != "libcurl") {
    return absl::InvalidArgumentError("--vs_http_client must be builtin or libcurl");
  }
  if (absl::GetFlag(FLAGS_vs_max_connections) < 1) {
    return absl::InvalidArgumentError("--vs_max_connections must be at least 1");
  }
  if (absl::GetFlag(FLAGS_max_streams_per_connection) < 1) {
    return absl::InvalidArgumentError("--max_streams_per_connection must be at least 1");
  }
  if (absl::GetFlag(FLAGS_session_queues) < 1 || absl::GetFlag(FLAGS_session_queues) > 256) {
    return absl::InvalidArgumentError("--session_queues must be between 1 and 256");
  }
  if (absl::GetFlag(FLAGS_max_sessions) < 1) {
    return absl::InvalidArgumentError("--max_sessions must be at least 1");
  }
  if (absl::Duration grace = absl::GetFlag(FLAGS_resume_grace);
      grace < absl::ZeroDuration() || grace > absl::Minutes(10)) {
    return absl::InvalidArgumentError(absl::StrCat("--resume_grace must be between 0 and 10m, got ",
                                                   absl::FormatDuration(grace)));
  }
  double rate = absl::GetFlag(FLAGS_max_messages_per_second);
  if (!(rate >= 0)) {  // Also NaN.
    return absl::InvalidArgumentError(
        absl::StrCat("--max_messages_per_second must be >= 0 (0: no limit), got ", rate));
  }
  return absl::OkStatus();
}

// --redis_url and its company: the fleet, or none.
absl::Status FleetFromFlags(presence::PresenceServerOptions* options) {
  std::string url = absl::GetFlag(FLAGS_redis_url);
  if (url.empty()) return absl::OkStatus();
  absl::StatusOr<presence::fleet::RedisOptions> redis = presence::fleet::ParseRedisUrl(url);
  if (!redis.ok()) return redis.status();
  options->fleet_enabled = true;
  options->fleet.redis = *std::move(redis);
  options->fleet.redis.command_timeout = absl::GetFlag(FLAGS_redis_timeout);
  options->fleet.replica_ttl = absl::GetFlag(FLAGS_replica_ttl);
  if (std::string file = absl::GetFlag(FLAGS_redis_password_file); !file.empty()) {
    absl::StatusOr<std::string> password = ReadSecretFile(file, "--redis_password_file");
    if (!password.ok()) return password.status();
    options->fleet.redis.password = *std::move(password);
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG; its deadlock detector would run
  // on every lock of every session.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  presence::log::Config log_config;
  if (!presence::log::ParseLevel(absl::GetFlag(FLAGS_log_level), &log_config.min_level)) {
    std::fprintf(stderr, "presence_server: unknown --log_level\n");
    return 2;
  }
  log_config.json = absl::GetFlag(FLAGS_log_json);
  presence::log::Configure(log_config);
  if (absl::Status valid = ValidateFlags(); !valid.ok()) {
    presence::log::Error("config_error", {{"error", std::string(valid.message())}});
    return 2;
  }

  // Signals are taken by a thread of their own (sigwait), never by handlers.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  presence::PresenceServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.ping_interval = absl::GetFlag(FLAGS_ping_interval);
  options.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.state_dir = absl::GetFlag(FLAGS_state_dir);
  options.boot_listen = absl::GetFlag(FLAGS_boot_listen);
  if (!options.boot_listen.empty()) {
    absl::StatusOr<std::string> secret =
        ReadSecretFile(absl::GetFlag(FLAGS_boot_secret_file), "--boot_secret_file");
    if (!secret.ok()) {
      presence::log::Error("config_error", {{"error", std::string(secret.status().message())}});
      return 2;
    }
    options.boot_secret = *std::move(secret);
  }
  if (absl::Status fleet = FleetFromFlags(&options); !fleet.ok()) {
    presence::log::Error("config_error", {{"error", std::string(fleet.message())}});
    return 2;
  }
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.max_messages_per_second = absl::GetFlag(FLAGS_max_messages_per_second);
  if (std::string token_file = absl::GetFlag(FLAGS_auth_token_file); !token_file.empty()) {
    absl::StatusOr<std::string> token = ReadSecretFile(token_file, "--auth_token_file");
    if (!token.ok()) {
      presence::log::Error("config_error", {{"error", std::string(token.status().message())}});
      return 2;
    }
    options.auth_token = *std::move(token);
  }
  options.vs.request_timeout = absl::GetFlag(FLAGS_vs_timeout);
  options.vs.connect_timeout = absl::GetFlag(FLAGS_vs_connect_timeout);
  options.vs.max_connections = absl::GetFlag(FLAGS_vs_max_connections);
  options.vs.event_loops = absl::GetFlag(FLAGS_vs_event_loops);
  if (options.vs.event_loops == 0) {
    options.vs.event_loops = std::max(1u, std::thread::hardware_concurrency());
  }
  options.vs.http_client = absl::GetFlag(FLAGS_vs_http_client) == "libcurl"
                               ? presence::vs::VsHttpClient::kLibcurl
                               : presence::vs::VsHttpClient::kBuiltIn;
  options.vs.retry.max_total = absl::GetFlag(FLAGS_leave_retry_window);
  options.credits_retry_window = absl::GetFlag(FLAGS_credits_retry_window);
  options.join_timeout = absl::GetFlag(FLAGS_join_timeout);
  options.resume_grace = absl::GetFlag(FLAGS_resume_grace);
  options.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  options.session_queues = absl::GetFlag(FLAGS_session_queues);

  std::unique_ptr<presence::vs::VsSimulator> simulator;
  options.vs.base_url = absl::GetFlag(FLAGS_vs_url);
  if (options.vs.base_url.empty()) {
    presence::vs::VsSimulatorOptions sim_options;
    sim_options.record = false;
    simulator = std::make_unique<presence::vs::VsSimulator>(sim_options);
    if (absl::Status started = simulator->Start(); !started.ok()) {
      presence::log::Error("simulator_failed", {{"error", started.ToString()}});
      return 1;
    }
    options.vs.base_url = simulator->url();
    options.vs.key = sim_options.key;
    presence::log::Info("vs_simulator_started",
                        {{"url", simulator->url()},
                         {"note", "no --vs_url given: forwarding to the built-in VS simulator"}});
  } else {
    absl::StatusOr<std::string> key = ReadKey(absl::GetFlag(FLAGS_vs_key_file));
    if (!key.ok()) {
      presence::log::Error("config_error", {{"error", std::string(key.status().message())}});
      return 2;
    }
    options.vs.key = *std::move(key);
  }

  absl::StatusOr<std::unique_ptr<presence::PresenceServer>> server =
      presence::PresenceServer::Start(options);
  if (!server.ok()) {
    presence::log::Error("start_failed", {{"error", server.status().ToString()}});
    return 1;
  }
  std::string listen = options.listen;
  size_t colon = listen.rfind(':');
  if (colon != std::string::npos) listen = listen.substr(0, colon);
  presence::log::Fields fields = {
      {"address", absl::StrCat(listen, ":", (*server)->port())},
      {"vs", options.vs.base_url},
      {"vs_http_client",
       presence::vs::EffectiveHttpClient(options.vs) == presence::vs::VsHttpClient::kLibcurl
           ? "libcurl"
           : "builtin"},
      {"ping_interval", absl::FormatDuration(options.ping_interval)}};
  // The admin ports too, so that a test or a script can start with port 0.
  if ((*server)->metrics_port() != 0) {
    fields.emplace_back("metrics_port", absl::StrCat((*server)->metrics_port()));
  }
  if ((*server)->boot_port() != 0) {
    fields.emplace_back("boot_port", absl::StrCat((*server)->boot_port()));
  }
  if ((*server)->fleet() != nullptr)
    fields.emplace_back("replica", (*server)->fleet()->replica_id());
  presence::log::Info("listening", fields);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  presence::log::Info("draining", {{"signal", absl::StrCat(signal_number)},
                                   {"sessions", absl::StrCat((*server)->registry().joined())}});
  // A second signal ends the process at once.
  std::thread([signals]() mutable {
    int second = 0;
    sigwait(&signals, &second);
    presence::log::Warning("exit_now", {{"signal", absl::StrCat(second)}});
    _exit(1);
  }).detach();
  // The process exits within --drain_timeout whatever happens: gRPC waiting
  // on its reactors, a slow VS or Redis cannot stretch it. What is not done
  // by then is not lost: the journal (--state_dir) or the fleet has it. Once
  // VS has answered every leave, gRPC's teardown of the ended streams (about
  // 18 s for 100k with Debian's gRPC) gets kTeardownGrace, then the process
  // exits without it: its clients were told UNAVAILABLE, or see the
  // connection close, which they treat the same.
  const absl::Time deadline = absl::Now() + absl::GetFlag(FLAGS_drain_timeout);
  auto finished = std::make_shared<absl::Notification>();
  std::thread([finished, deadline, server = server->get()] {
    const auto& c = server->context().counters;
    auto leaves = [&c]() -> presence::log::Fields {
      return {{"leaves_sent", absl::StrCat(c.leaves_sent.load())},
              {"leaves_accepted", absl::StrCat(c.leaves_accepted.load())}};
    };
    if (server->leaves_delivered().WaitForNotificationWithDeadline(deadline) &&
        !finished->WaitForNotificationWithDeadline(
            std::min(deadline, absl::Now() + kTeardownGrace))) {
      server->AbandonTeardown();
      auto fields = leaves();
      fields.emplace_back("complete", "true");
      fields.emplace_back("grpc_teardown", "cut_short");
      presence::log::Info("drained", fields);
      _exit(0);
    }
    if (finished->WaitForNotificationWithDeadline(deadline)) return;
    presence::log::Error("drain_timeout_exit", leaves());
    _exit(1);
  }).detach();
  bool drained = (*server)->Shutdown(deadline - absl::Milliseconds(300));
  finished->Notify();
  const auto& counters = (*server)->context().counters;
  presence::log::Info("drained",
                      {{"complete", drained ? "true" : "false"},
                       {"leaves_sent", absl::StrCat(counters.leaves_sent.load())},
                       {"leaves_accepted", absl::StrCat(counters.leaves_accepted.load())}});
  server->reset();
  if (simulator) simulator->Stop();
  return 0;
}
