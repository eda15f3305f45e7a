// vs_simulator: the VS simulator as a stand-alone process, for tests in other
// languages and for benchmarks. Prints "VS simulator listening on URL" and
// serves until SIGINT or SIGTERM.

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "server/vs_simulator/vs_simulator.h"

ABSL_FLAG(std::string, host, "127.0.0.1", "Address to listen on (loopback only in tests).");
ABSL_FLAG(int, port, 0, "Port to listen on; 0 picks a free one.");
ABSL_FLAG(std::string, key, "",
          "The partner key to accept; default: env VS_KEY, else 'simulator-key'.");
ABSL_FLAG(bool, strict_json, false, "Answer strict JSON instead of VS's relaxed form.");
ABSL_FLAG(bool, record, true, "Record requests for /_sim/requests (off for long benchmarks).");
ABSL_FLAG(int, threads, 128, "Worker threads (one per open keep-alive connection).");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  presence::vs::VsSimulatorOptions options;
  options.host = absl::GetFlag(FLAGS_host);
  options.port = absl::GetFlag(FLAGS_port);
  options.key = absl::GetFlag(FLAGS_key);
  if (options.key.empty()) {
    const char* env = std::getenv("VS_KEY");
    options.key = env != nullptr && *env != '\0' ? env : "simulator-key";
  }
  options.relaxed_json = !absl::GetFlag(FLAGS_strict_json);
  options.record = absl::GetFlag(FLAGS_record);
  options.threads = absl::GetFlag(FLAGS_threads);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  presence::vs::VsSimulator simulator(options);
  absl::Status started = simulator.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "vs_simulator: %s\n", started.ToString().c_str());
    return 1;
  }
  std::printf("VS simulator listening on %s\n", simulator.url().c_str());
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  simulator.Stop();
  return 0;
}
