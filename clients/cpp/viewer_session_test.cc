// The C++ helper and example against the real gateway and VS simulator.

#include "clients/cpp/viewer_session.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/presence_server.h"
#include "server/vs_simulator/vs_simulator.h"

namespace presence::client {
namespace {

// A TCP proxy on loopback whose connections Cut() resets at once, as a
// network blip would (new connections still go through).
class Proxy {
 public:
  explicit Proxy(int target_port) : target_port_(target_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = Loopback(0);
    bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(listener_, 16);
    socklen_t len = sizeof(addr);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_ = std::thread([this] { Accept(); });
  }
  ~Proxy() {
    shutdown(listener_, SHUT_RDWR);
    close(listener_);
    accept_.join();
    Cut();
    for (std::thread& t : pipes_) t.join();
    absl::MutexLock lock(&mu_);
    for (int fd : opened_) close(fd);
  }
  int port() const { return port_; }
  void Cut() {
    absl::MutexLock lock(&mu_);
    for (int fd : fds_) {
      linger reset{1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      shutdown(fd, SHUT_RDWR);  // Wakes the pipe threads; they close.
    }
    fds_.clear();
  }

 private:
  static sockaddr_in Loopback(int port) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return addr;
  }
  void Accept() {
    while (true) {
      int client = accept(listener_, nullptr, nullptr);
      if (client < 0) return;
      int upstream = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr = Loopback(target_port_);
      connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
      absl::MutexLock lock(&mu_);
      fds_.push_back(client);
      fds_.push_back(upstream);
      opened_.push_back(client);
      opened_.push_back(upstream);
      pipes_.emplace_back([client, upstream] { Pipe(client, upstream); });
      pipes_.emplace_back([client, upstream] { Pipe(upstream, client); });
    }
  }
  static void Pipe(int from, int to) {
    char buf[16384];
    ssize_t n;
    while ((n = read(from, buf, sizeof(buf))) > 0) {
      if (write(to, buf, static_cast<size_t>(n)) != n) break;
    }
    shutdown(to, SHUT_RDWR);
  }

  const int target_port_;
  int listener_ = -1;
  int port_ = 0;
  std::thread accept_;
  absl::Mutex mu_;
  std::vector<int> fds_ ABSL_GUARDED_BY(mu_);     // Live: Cut resets them.
  std::vector<int> opened_ ABSL_GUARDED_BY(mu_);  // All: closed at the end.
  std::vector<std::thread> pipes_;                // Only the accept thread adds, until it ends.
};

class ViewerSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    vs::VsSimulatorOptions sim_options;
    sim_options.keep_alive_timeout_seconds = 1;
    sim_ = std::make_unique<vs::VsSimulator>(sim_options);
    ASSERT_TRUE(sim_->Start().ok());
    PresenceServerOptions options;
    options.listen = "127.0.0.1:0";
    options.ping_interval = absl::Milliseconds(300);
    options.vs.base_url = sim_->url();
    options.vs.key = sim_options.key;
    auto server = PresenceServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  void TearDown() override {
    server_.reset();
    sim_.reset();
  }

  static JoinParams Bob() {
    JoinParams join;
    join.performer_id = 42;
    join.nickname = "bob";
    join.customer_id = 7;
    join.ip_address = "203.0.113.5";
    join.registered = true;
    join.credits = 100;
    return join;
  }

  static ViewerOptions FastBackoff() {
    ViewerOptions options;
    options.initial_backoff = absl::Milliseconds(50);
    return options;
  }

  // Waits for `n` calls of `function` at VS, then checks no more arrive.
  int64_t Settled(const std::string& function, int64_t n) {
    sim_->WaitForCount(function, n, absl::Seconds(10));
    absl::SleepFor(absl::Milliseconds(200));
    return sim_->Count(function);
  }

  std::unique_ptr<vs::VsSimulator> sim_;
  std::unique_ptr<PresenceServer> server_;
  std::string address_;
};

// With --resume_grace, a viewer whose connection dies reconnects with its
// token and takes its session back: VS sees no leave and no second join.
TEST_F(ViewerSessionTest, ACutConnectionIsResumed) {
  PresenceServerOptions options;
  options.listen = "127.0.0.1:0";
  options.ping_interval = absl::Milliseconds(300);
  options.vs.base_url = sim_->url();
  options.vs.key = "simulator-key";
  options.resume_grace = absl::Seconds(10);
  server_.reset();
  auto server = PresenceServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  Proxy proxy(server_->port());
  auto viewer = ViewerSession::Open(DialPresence(absl::StrCat("127.0.0.1:", proxy.port())), Bob(),
                                    FastBackoff());
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  const std::string nickname = (*viewer)->display_nickname();
  const std::string session = (*viewer)->session_id();
  EXPECT_FALSE((*viewer)->resumed());
  proxy.Cut();
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!((*viewer)->reconnects() >= 1 && (*viewer)->resumed()) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE((*viewer)->resumed());
  EXPECT_EQ((*viewer)->display_nickname(), nickname);
  EXPECT_EQ((*viewer)->session_id(), session);
  EXPECT_TRUE((*viewer)->Close().ok());
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);
}

TEST_F(ViewerSessionTest, JoinsPingsUpdatesCreditsAndLeavesOnce) {
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob(), FastBackoff());
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  EXPECT_EQ((*viewer)->display_nickname(), "bob_1000");
  EXPECT_EQ((*viewer)->session_id().size(), 16u);
  absl::StatusOr<v1::CreditsUpdated> credits = (*viewer)->UpdateCredits(250);
  ASSERT_TRUE(credits.ok()) << credits.status();
  EXPECT_TRUE(credits->success());
  absl::SleepFor(absl::Milliseconds(1050));
  EXPECT_TRUE((*viewer)->Close().ok());
  EXPECT_EQ(sim_->Requests("joinRoom")[0].body,
            "function=joinRoom&performerId=42&nickname=bob&customerId=7&ipAddress=203.0.113.5"
            "&registered=1&credits=100");
  EXPECT_EQ(sim_->Requests("updateCredits")[0].body,
            "function=updateCredits&customerId=7&credits=250");
  int64_t pings = sim_->Count("pingRoom");
  EXPECT_GE(pings, 2);
  EXPECT_LE(pings, 4);
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].body,
            "function=leaveRoom&performerId=42&customerId=7&nickname=bob_1000");
}

TEST_F(ViewerSessionTest, InvalidArgumentIsFinal) {
  JoinParams join = Bob();
  join.performer_id = 0;
  auto viewer = ViewerSession::Open(DialPresence(address_), join, FastBackoff());
  EXPECT_EQ(viewer.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(viewer.status().message().find("join.performer_id"), std::string::npos);
  EXPECT_EQ(sim_->Count("joinRoom"), 0);
}

TEST_F(ViewerSessionTest, FailedPreconditionIsFinal) {
  vs::FaultRule reject;
  reject.function = "joinRoom";
  reject.reject = true;
  reject.message = "performer offline";
  sim_->AddFault(reject);
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob(), FastBackoff());
  EXPECT_EQ(viewer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(viewer.status().message(), "performer offline");
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

TEST_F(ViewerSessionTest, UnavailableReconnectsAndJoinsAgain) {
  vs::FaultRule down;
  down.function = "joinRoom";
  down.http_status = 503;
  down.times = 2;
  sim_->AddFault(down);
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob(), FastBackoff());
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  EXPECT_EQ((*viewer)->reconnects(), 2);
  EXPECT_EQ(sim_->Count("joinRoom"), 3);
  viewer->reset();  // Destruction leaves.
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
}

TEST_F(ViewerSessionTest, ExampleLeavesOnSigint) {
  std::string binary = "clients/cpp/viewer";
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    std::string server = "--server=" + address_;
    execl(binary.c_str(), binary.c_str(), server.c_str(), "--performer=9", "--nickname=zoe",
          "--ip=2001:db8::1", "--customer=3", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  FILE* from_child = fdopen(out[0], "r");
  char line[256] = {};
  ASSERT_NE(fgets(line, sizeof(line), from_child), nullptr);
  EXPECT_EQ(std::string(line).rfind("joined as zoe_1000", 0), 0u) << line;
  absl::SleepFor(absl::Milliseconds(700));
  kill(pid, SIGINT);
  ASSERT_NE(fgets(line, sizeof(line), from_child), nullptr);
  EXPECT_EQ(std::string(line), "left\n");
  int status = 0;
  waitpid(pid, &status, 0);
  fclose(from_child);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
  EXPECT_GE(sim_->Count("pingRoom"), 1);
}

}  // namespace
}  // namespace presence::client
