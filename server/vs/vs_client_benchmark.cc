// Measures VsClient throughput: pingRoom requests per second and CPU seconds
// per 10k requests, against a loopback VS simulator, with keep-alive.
//
//   bazel run -c opt //server/vs:vs_client_benchmark -- --requests=200000 --connections=64
//
// The simulator runs in this process too, so the figure that speaks for the
// client is the event thread's CPU time (read from /proc), printed apart from
// the process total.

#include <sys/resource.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/metrics/histogram.h"
#include "server/vs/vs_client.h"
#include "server/vs_simulator/vs_simulator.h"

ABSL_FLAG(int, requests, 100000, "pingRoom requests to send.");
ABSL_FLAG(int, connections, 64, "Keep-alive connections to VS.");
ABSL_FLAG(int, window, 2000, "Requests outstanding at once.");
ABSL_FLAG(int, sequential, 0,
          "Instead: send this many joinRoom one at a time and print their latency percentiles "
          "(a direct HTTP call, to compare with a join through the gateway).");
ABSL_FLAG(std::string, vs_url, "",
          "Benchmark against this server instead of the built-in simulator.");

namespace {

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// CPU seconds of the thread named `name` in this process (utime + stime).
double ThreadCpuSeconds(long tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields = absl::StrSplit(line.substr(close + 2), ' ');
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) / sysconf(_SC_CLK_TCK);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // Debian's Abseil is built without NDEBUG: deadlock detection would run on
  // every lock. The server turns it off the same way.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int requests = absl::GetFlag(FLAGS_requests);
  const int window = absl::GetFlag(FLAGS_window);

  presence::vs::VsSimulatorOptions sim_options;
  sim_options.record = false;
  sim_options.threads = absl::GetFlag(FLAGS_connections) + 8;
  presence::vs::VsSimulator sim(sim_options);
  std::string url = absl::GetFlag(FLAGS_vs_url);
  if (url.empty()) {
    if (!sim.Start().ok()) return 1;
    url = sim.url();
  }

  presence::vs::VsClientOptions options;
  options.base_url = url;
  options.key = sim_options.key;
  options.max_connections = absl::GetFlag(FLAGS_connections);
  auto client = presence::vs::VsClient::Create(options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }

  if (int n = absl::GetFlag(FLAGS_sequential); n > 0) {
    presence::metrics::LatencyHistogram latency;
    presence::vs::JoinRoomRequest join;
    join.performer_id = 1;
    join.nickname = "direct";
    join.ip_address = "198.51.100.9";
    int failed = 0;
    for (int i = 0; i < n + 100; ++i) {  // The first 100 warm the connection.
      absl::Notification done;
      bool ok = false;
      absl::Time start = absl::Now();
      absl::Status taken = (*client)->JoinRoom(join, [&](presence::vs::VsResult r) {
        ok = r.accepted();
        done.Notify();
      });
      if (!taken.ok()) return 1;
      done.WaitForNotification();
      if (i < 100) continue;
      if (ok) {
        latency.Record(absl::Now() - start);
      } else {
        ++failed;
      }
    }
    std::printf("direct joinRoom one at a time: %d ok, %d failed; latency p50=%.0fus p99=%.0fus\n",
                n - failed, failed, absl::ToDoubleMicroseconds(latency.Percentile(0.5)),
                absl::ToDoubleMicroseconds(latency.Percentile(0.99)));
    return failed == 0 ? 0 : 1;
  }

  std::atomic<long> event_tid{0};
  absl::Mutex mu;
  int outstanding = 0;
  int accepted = 0;
  int failed = 0;
  presence::vs::RoomPresence presence{42, 7, "bench_1000"};

  // Warm-up: open the connections.
  for (int i = 0; i < 200; ++i) {
    {
      absl::MutexLock lock(&mu);
      ++outstanding;
    }
    (void)(*client)->PingRoom(presence, [&](presence::vs::VsResult) {
      event_tid = static_cast<long>(gettid());
      absl::MutexLock lock(&mu);
      --outstanding;
    });
  }
  (*client)->Drain(absl::Now() + absl::Seconds(30));

  double thread_cpu0 = ThreadCpuSeconds(event_tid);
  double cpu0 = ProcessCpuSeconds();
  absl::Time start = absl::Now();
  for (int i = 0; i < requests; ++i) {
    {
      absl::MutexLock lock(&mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return outstanding < window; };
      mu.Await(absl::Condition(&room));
      ++outstanding;
    }
    absl::Status taken = (*client)->PingRoom(presence, [&](presence::vs::VsResult r) {
      absl::MutexLock lock(&mu);
      --outstanding;
      if (r.accepted()) {
        ++accepted;
      } else {
        ++failed;
      }
    });
    if (!taken.ok()) {
      absl::MutexLock lock(&mu);
      --outstanding;
      ++failed;
    }
  }
  (*client)->Drain(absl::Now() + absl::Seconds(120));
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  double thread_cpu = ThreadCpuSeconds(event_tid) - thread_cpu0;
  double cpu = ProcessCpuSeconds() - cpu0;
  presence::vs::VsClientStats stats = (*client)->stats();
  std::printf(
      "requests=%d accepted=%d failed=%d connections=%d connections_opened=%ld\n"
      "wall=%.2fs rate=%.0f req/s\n"
      "vs_client_event_thread_cpu=%.2fs (%.3f s per 10k requests)\n"
      "process_cpu=%.2fs (this process: the client, plus the simulator when it is in-process)\n",
      requests, accepted, failed, options.max_connections,
      static_cast<long>(stats.connections_opened), seconds, requests / seconds, thread_cpu,
      thread_cpu / requests * 10000, cpu);
  return failed == 0 ? 0 : 1;
}
