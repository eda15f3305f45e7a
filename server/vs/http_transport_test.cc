// The built-in HTTP client (http_transport.h), through VsClient, against a
// VS played over a raw loopback socket that answers each request with
// scripted bytes: framings and connection behaviour cpp-httplib (the VS
// simulator) never produces.

#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/vs/classify.h"
#include "server/vs/vs_client.h"

namespace presence::vs {
namespace {

constexpr char kOk[] = "{ success: true, message: \"\", nickname: \"bob_1\" }";

// One answer of the scripted VS.
struct Step {
  std::string answer;          // Raw bytes; empty with close_instead.
  bool close_after = false;    // Close the connection after answering.
  bool close_instead = false;  // Close the connection instead of answering.
  bool held = false;           // Answer only at ReleaseHeld().
};

std::string Answer(absl::string_view headers, absl::string_view body) {
  return absl::StrCat("HTTP/1.1 200 OK\r\n", headers, "\r\n", body);
}

std::string Sized(absl::string_view body) {
  return Answer(absl::StrCat("Content-Length: ", body.size(), "\r\n"), body);
}

// Plays VS on 127.0.0.1: request i (counted over all connections) gets
// steps[i]; requests past the script get a plain keep-alive answer.
class ScriptedVs {
 public:
  explicit ScriptedVs(std::vector<Step> steps) : steps_(std::move(steps)) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
    EXPECT_EQ(listen(listener_, 16), 0);
    getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedVs() {
    stop_ = true;
    thread_.join();
    for (Peer& peer : peers_) close(peer.fd);
    close(listener_);
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int connections() const { return connections_.load(); }
  int requests() const { return requests_.load(); }
  std::string first_request() {
    absl::MutexLock lock(&mu_);
    return first_request_;
  }

  // Sends the held answers, in the order their requests came, and returns
  // once the client's kernel has every byte of them (acknowledged).
  void ReleaseHeld() {
    release_ = true;
    while (release_) absl::SleepFor(absl::Milliseconds(1));
  }

 private:
  struct Peer {
    int fd;
    std::string in;
  };

  void Serve() {
    while (!stop_) {
      if (release_) {
        for (const auto& [fd, answer] : held_) {
          (void)send(fd, answer.data(), answer.size(), MSG_NOSIGNAL);
        }
        for (const auto& [fd, answer] : held_) {
          int unacknowledged = 1;
          while (ioctl(fd, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged > 0) {
            absl::SleepFor(absl::Microseconds(100));
          }
        }
        held_.clear();
        release_ = false;
      }
      std::vector<pollfd> fds = {{listener_, POLLIN, 0}};
      for (const Peer& peer : peers_) fds.push_back({peer.fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        peers_.push_back({accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC), ""});
        ++connections_;
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents != 0) Read(fds[i].fd);
      }
      peers_.erase(std::remove_if(peers_.begin(), peers_.end(),
                                  [](const Peer& peer) { return peer.fd < 0; }),
                   peers_.end());
    }
  }

  void Read(int fd) {
    Peer* peer = nullptr;
    for (Peer& p : peers_) {
      if (p.fd == fd) peer = &p;
    }
    char buffer[4096];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      close(fd);
      peer->fd = -1;
      return;
    }
    peer->in.append(buffer, static_cast<size_t>(n));
    while (peer->fd >= 0 && TakeRequest(&peer->in)) Respond(peer);
  }

  // Removes one whole request from `in`, if there is one.
  bool TakeRequest(std::string* in) {
    const size_t end = in->find("\r\n\r\n");
    if (end == std::string::npos) return false;
    const size_t at = in->find("Content-Length: ");
    size_t length = 0;
    if (at != std::string::npos && at < end) {
      const size_t eol = in->find("\r\n", at);
      EXPECT_TRUE(absl::SimpleAtoi(in->substr(at + 16, eol - at - 16), &length));
    }
    if (in->size() < end + 4 + length) return false;
    {
      absl::MutexLock lock(&mu_);
      if (first_request_.empty()) first_request_ = in->substr(0, end + 4 + length);
    }
    in->erase(0, end + 4 + length);
    return true;
  }

  void Respond(Peer* peer) {
    const size_t index = static_cast<size_t>(requests_++);
    const Step step = index < steps_.size() ? steps_[index] : Step{Sized(kOk)};
    if (step.held) {
      held_.emplace_back(peer->fd, step.answer);
      return;
    }
    if (!step.close_instead) {
      // The client may hang up part-way (an answer past its bound).
      (void)send(peer->fd, step.answer.data(), step.answer.size(), MSG_NOSIGNAL);
    }
    if (step.close_instead || step.close_after) {
      close(peer->fd);
      peer->fd = -1;
    }
  }

  const std::vector<Step> steps_;
  int listener_ = -1;
  int port_ = 0;
  std::vector<Peer> peers_;                        // Only the serving thread's.
  std::vector<std::pair<int, std::string>> held_;  // Only the serving thread's.
  std::atomic<bool> release_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  absl::Mutex mu_;
  std::string first_request_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

std::unique_ptr<VsClient> Client(const ScriptedVs& vs,
                                 absl::Duration max_idle = absl::Seconds(118)) {
  VsClientOptions options;
  options.connection_max_idle = max_idle;
  options.base_url = vs.url();
  options.key = "k&y";
  options.http_client = VsHttpClient::kBuiltIn;
  options.max_connections = 1;  // One connection at a time: the script's order is the calls'.
  options.request_timeout = absl::Seconds(5);
  options.uniform01 = [] { return 0.0; };
  absl::StatusOr<std::unique_ptr<VsClient>> client = VsClient::Create(std::move(options));
  EXPECT_TRUE(client.ok()) << client.status();
  return *std::move(client);
}

VsResult Ping(VsClient& client) {
  absl::Notification done;
  VsResult out;
  EXPECT_TRUE(client
                  .PingRoom(RoomPresence{42, 7, "bob_1"},
                            [&](VsResult r) {
                              out = std::move(r);
                              done.Notify();
                            })
                  .ok());
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  return out;
}

TEST(HttpTransportTest, SendsOneWellFormedRequest) {
  ScriptedVs vs({});
  auto client = Client(vs);
  ASSERT_TRUE(Ping(*client).accepted());
  const std::string body = "function=pingRoom&performerId=42&customerId=7&nickname=bob_1";
  EXPECT_EQ(
      vs.first_request(),
      absl::StrCat("POST /customer?key=k%26y HTTP/1.1\r\nHost: 127.0.0.1:", vs.url().substr(17),
                   "\r\nUser-Agent: presence-gateway/1\r\nAccept: */*\r\n"
                   "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ",
                   body.size(), "\r\n\r\n", body));
}

TEST(HttpTransportTest, ReadsEveryFramingAndHonoursConnectionClose) {
  ScriptedVs vs({
      {Answer("Transfer-Encoding: chunked\r\n",
              absl::StrCat("5;ext=1\r\n{ suc\r\n", absl::Hex(std::strlen(kOk) - 5), "\r\n", kOk + 5,
                           "\r\n0\r\n\r\n"))},
      {Answer("Content-Length: 17\r\nConnection: close\r\n", "{ success: true }")},
      {Answer("", "{ success: true }"), /*close_after=*/true},
      {Sized(kOk)},
      {Sized(kOk)},
  });
  auto client = Client(vs);
  for (int i = 0; i < 5; ++i) {
    VsResult result = Ping(*client);
    EXPECT_TRUE(result.accepted()) << i << ": " << result.status;
    EXPECT_EQ(result.attempts, 1);
  }
  EXPECT_EQ(vs.requests(), 5);
  // The chunked answer kept its connection; "Connection: close" and the
  // answer that ran to the close each ended theirs.
  EXPECT_EQ(vs.connections(), 3);
}

TEST(HttpTransportTest, AReusedConnectionFoundClosedIsRetriedOnceOnANewOne) {
  // The second request's connection is closed under it with no answer, the
  // race of a keep-alive connection VS closes while it is idle.
  ScriptedVs vs({{Sized(kOk)}, {"", false, /*close_instead=*/true}});
  auto client = Client(vs);
  ASSERT_TRUE(Ping(*client).accepted());
  VsResult result = Ping(*client);
  EXPECT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.attempts, 1);  // Not a retry of the request: the same attempt, resent.
  EXPECT_EQ(vs.requests(), 3);
  EXPECT_EQ(vs.connections(), 2);
}

TEST(HttpTransportTest, AFreshConnectionClosedWithoutAnAnswerIsNotResent) {
  ScriptedVs vs({{"", false, /*close_instead=*/true}});
  auto client = Client(vs);
  VsResult result = Ping(*client);
  EXPECT_EQ(result.outcome, VsOutcome::kTransportError) << result.status;
  EXPECT_EQ(vs.requests(), 1);
}

TEST(HttpTransportTest, AnAnswerCutShortIsATransportError) {
  ScriptedVs vs({{Answer("Content-Length: 100\r\n", "{ success: "), /*close_after=*/true}});
  auto client = Client(vs);
  VsResult result = Ping(*client);
  EXPECT_EQ(result.outcome, VsOutcome::kTransportError) << result.status;
  EXPECT_NE(result.status.message().find("closed"), std::string::npos) << result.status;
}

TEST(HttpTransportTest, AnAnswerPastTheBoundIsAProtocolError) {
  ScriptedVs vs({{Sized(std::string(kMaxResponseBytes + 1, ' '))}});
  auto client = Client(vs);
  VsResult result = Ping(*client);
  EXPECT_EQ(result.outcome, VsOutcome::kProtocolError) << result.status;
  EXPECT_NE(result.status.message().find("larger than"), std::string::npos) << result.status;
  // The connection was dropped, not left with the rest of the answer on it.
  EXPECT_TRUE(Ping(*client).accepted());
  EXPECT_EQ(vs.connections(), 2);
}

TEST(HttpTransportTest, AConnectionIdlePastItsBoundIsNotReused) {
  ScriptedVs vs({});
  auto client = Client(vs, /*max_idle=*/absl::Seconds(1));
  ASSERT_TRUE(Ping(*client).accepted());
  ASSERT_TRUE(Ping(*client).accepted());  // At once: the same connection.
  EXPECT_EQ(vs.connections(), 1);
  // Time itself is the condition here: the connection must age past its bound.
  absl::SleepFor(absl::Milliseconds(1200));
  VsResult result = Ping(*client);
  EXPECT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.attempts, 1);
  EXPECT_EQ(vs.requests(), 3);  // Nothing was sent on the aged connection.
  EXPECT_EQ(vs.connections(), 2);
  EXPECT_EQ(client->stats().connections_opened, 2);
}

// Answers that arrive together are run leaves (and joins, credits) first,
// pings last, whatever order they came in. The loop is kept busy in a join's
// callback while a ping's answer and then a leave's reach its sockets, so the
// next epoll_wait returns both in one batch.
TEST(HttpTransportTest, AnswersArrivingTogetherRunLeavesBeforePings) {
  Step held{Sized(kOk)};
  held.held = true;
  ScriptedVs vs({held, held});  // The ping's answer, then the leave's; the join's at once.
  VsClientOptions options;
  options.base_url = vs.url();
  options.key = "k";
  options.http_client = VsHttpClient::kBuiltIn;
  options.event_loops = 1;
  options.max_connections = 3;
  options.request_timeout = absl::Seconds(20);
  absl::StatusOr<std::unique_ptr<VsClient>> client = VsClient::Create(std::move(options));
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Mutex mu;
  std::vector<std::string> order;
  auto record = [&](const char* what) {
    return [&, what](VsResult r) {
      EXPECT_TRUE(r.accepted()) << what << ": " << r.status;
      absl::MutexLock lock(&mu);
      order.push_back(what);
    };
  };
  auto requests_reach = [&](int n) {
    for (int i = 0; i < 20000 && vs.requests() < n; ++i) absl::SleepFor(absl::Milliseconds(1));
    return vs.requests() >= n;
  };
  ASSERT_TRUE((*client)->PingRoom(RoomPresence{42, 7, "bob_1"}, record("ping")).ok());
  ASSERT_TRUE(requests_reach(1));
  ASSERT_TRUE((*client)->LeaveRoom(RoomPresence{43, 8, "eve_1"}, record("leave")).ok());
  ASSERT_TRUE(requests_reach(2));
  absl::Notification in_callback;
  absl::Notification go_on;
  ASSERT_TRUE((*client)
                  ->JoinRoom(JoinRoomRequest{44, "al", std::nullopt, "198.51.100.1", false, 0},
                             [&](VsResult r) {
                               in_callback.Notify();
                               go_on.WaitForNotification();
                               record("join")(std::move(r));
                             })
                  .ok());
  ASSERT_TRUE(in_callback.WaitForNotificationWithTimeout(absl::Seconds(20)));
  vs.ReleaseHeld();  // Both answers are in the client's socket buffers now.
  go_on.Notify();
  ASSERT_TRUE((*client)->Drain(absl::Now() + absl::Seconds(20)));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<std::string>{"join", "leave", "ping"}));
}

TEST(HttpTransportTest, UrlsItCannotServeAreRefusedUpFront) {
  for (const char* url : {"http://user:pw@127.0.0.1:1", "http://127.0.0.1:0", "http://:80",
                          "http://[::1", "http://127.0.0.1:http"}) {
    VsClientOptions options;
    options.base_url = url;
    options.key = "k";
    EXPECT_EQ(VsClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

}  // namespace
}  // namespace presence::vs
