// Measures VsClient throughput: pingRoom requests per second and CPU seconds
// per 10k requests, against a loopback VS simulator, with keep-alive.
//
//   bazel run -c opt //server/vs:vs_client_benchmark -- --requests=200000 --connections=64
//
// The simulator runs in this process too, so the figure that speaks for the
// client is the event thread's CPU time (read from /proc), printed apart from
// the process total.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/metrics/histogram.h"
#include "server/metrics/latency_samples.h"
#include "server/vs/form.h"
#include "server/vs/http_response_reader.h"
#include "server/vs/vs_client.h"
#include "server/vs_simulator/vs_simulator.h"

ABSL_FLAG(int, requests, 100000, "pingRoom requests to send.");
ABSL_FLAG(int, connections, 64, "Keep-alive connections to VS.");
ABSL_FLAG(int, window, 2000, "Requests outstanding at once.");
ABSL_FLAG(int, sequential, 0,
          "Instead: send this many joinRoom one at a time and print their latency percentiles "
          "(a direct HTTP call, to compare with a join through the gateway).");
ABSL_FLAG(bool, plain, false,
          "With --sequential: POST each joinRoom from the calling thread on one blocking "
          "keep-alive socket, not through VsClient (a direct POST, with no hand-off to an "
          "event loop). Needs an http://IPv4:PORT --vs_url.");
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

// One keep-alive connection, blocking: write a POST, read its answer.
class PlainPoster {
 public:
  ~PlainPoster() {
    if (fd_ >= 0) close(fd_);
  }

  // `url` is http://IPV4:PORT[/base] as --vs_url takes it.
  bool Connect(absl::string_view url, absl::string_view key) {
    absl::string_view rest = url;
    if (!absl::ConsumePrefix(&rest, "http://")) return false;
    const size_t slash = rest.find('/');
    const absl::string_view authority = rest.substr(0, slash);
    const absl::string_view base =
        slash == absl::string_view::npos ? "" : absl::StripSuffix(rest.substr(slash), "/");
    const size_t colon = authority.rfind(':');
    int port = 0;
    if (colon == absl::string_view::npos || !absl::SimpleAtoi(authority.substr(colon + 1), &port)) {
      return false;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, std::string(authority.substr(0, colon)).c_str(), &address.sin_addr) !=
        1) {
      return false;
    }
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return false;
    head_ = absl::StrCat("POST ", base, "/customer?key=", presence::vs::FormEscape(key),
                         " HTTP/1.1\r\nHost: ", authority,
                         "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                         "Content-Length: ");
    return true;
  }

  // Whether VS answered 200.
  bool Post(absl::string_view body) {
    const std::string request = absl::StrCat(head_, body.size(), "\r\n\r\n", body);
    if (send(fd_, request.data(), request.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(request.size())) {
      return false;
    }
    reader_.Reset();
    char buffer[16384];
    while (reader_.state() == presence::vs::HttpResponseReader::State::kReading) {
      const ssize_t got = recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return false;
      reader_.Feed(absl::string_view(buffer, static_cast<size_t>(got)));
    }
    return reader_.state() == presence::vs::HttpResponseReader::State::kDone &&
           reader_.status() == 200 && reader_.keep_alive();
  }

 private:
  int fd_ = -1;
  std::string head_;
  presence::vs::HttpResponseReader reader_{1 << 16};
};

// --sequential: joinRoom one at a time, through `client` or (--plain) as a
// plain POST from this thread; prints the latency percentiles.
int Sequential(int n, const std::string& url, const std::string& key,
               presence::vs::VsClient& client) {
  presence::vs::JoinRoomRequest join;
  join.performer_id = 1;
  join.nickname = "direct";
  join.ip_address = "198.51.100.9";
  const bool plain = absl::GetFlag(FLAGS_plain);
  PlainPoster poster;
  if (plain && !poster.Connect(url, key)) {
    std::fprintf(stderr, "--plain needs an http://IPV4:PORT --vs_url that accepts connections\n");
    return 1;
  }
  const std::string body = presence::vs::VsClient::JoinRoomBody(join);
  auto through_client = [&] {
    absl::Notification done;
    bool ok = false;
    absl::Status taken = client.JoinRoom(join, [&](presence::vs::VsResult r) {
      ok = r.accepted();
      done.Notify();
    });
    if (!taken.ok()) return false;
    done.WaitForNotification();
    return ok;
  };
  presence::metrics::LatencySamples latency;  // Exact, as the gateway's joins are.
  int failed = 0;
  for (int i = 0; i < n + 100; ++i) {  // The first 100 warm the connection.
    absl::Time start = absl::Now();
    const bool ok = plain ? poster.Post(body) : through_client();
    if (i < 100) continue;
    if (ok) {
      latency.Record(absl::Now() - start);
    } else {
      ++failed;
    }
  }
  std::printf("direct joinRoom one at a time%s: %d ok, %d failed; latency p50=%.0fus p99=%.0fus\n",
              plain ? " (plain POST)" : "", n - failed, failed,
              absl::ToDoubleMicroseconds(latency.Percentile(0.5)),
              absl::ToDoubleMicroseconds(latency.Percentile(0.99)));
  return failed == 0 ? 0 : 1;
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
    return Sequential(n, url, sim_options.key, **client);
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
      "requests=%d accepted=%d failed=%d connections=%d connections_opened=%ld "
      "sent_by_caller=%ld\n"
      "wall=%.2fs rate=%.0f req/s\n"
      "vs_client_event_thread_cpu=%.2fs (%.3f s per 10k requests; requests the submitting "
      "thread sent itself cost that thread, not this one)\n"
      "process_cpu=%.2fs (%.3f s per 10k requests; this process: the client, plus the "
      "simulator when it is in-process)\n",
      requests, accepted, failed, options.max_connections,
      static_cast<long>(stats.connections_opened), static_cast<long>(stats.sent_by_caller), seconds,
      requests / seconds, thread_cpu, thread_cpu / requests * 10000, cpu, cpu / requests * 10000);
  return failed == 0 ? 0 : 1;
}
