#include "server/base/http_listener.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace presence::base {
namespace {

void Hello(httplib::Server& server) {
  server.Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
}

HttpListenerOptions Options() {
  HttpListenerOptions options;
  options.flag = "--test_listen";
  return options;
}

TEST(HttpListenerTest, ServesOnAFreePort) {
  HttpListener listener;
  ASSERT_TRUE(listener.Start("127.0.0.1:0", Options(), Hello).ok());
  ASSERT_GT(listener.port(), 0);
  httplib::Client client("127.0.0.1", listener.port());
  auto res = client.Get("/hello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body, "hi");
}

TEST(HttpListenerTest, ASecondListenerOnTheSameAddressIsRefusedNamingIt) {
  HttpListener first;
  ASSERT_TRUE(first.Start("127.0.0.1:0", Options(), Hello).ok());
  std::string address = absl::StrCat("127.0.0.1:", first.port());
  HttpListener second;
  absl::Status started = second.Start(address, Options(), Hello);
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(started.message(), address)) << started;
  EXPECT_TRUE(absl::StrContains(started.message(), "--test_listen")) << started;
}

TEST(HttpListenerTest, RejectsAMalformedAddress) {
  HttpListener listener;
  absl::Status started = listener.Start("localhost", Options(), Hello);
  EXPECT_EQ(started.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(started.message(), "--test_listen must be host:port")) << started;
}

TEST(HttpListenerTest, RefusesABodyOverTheLimit) {
  HttpListenerOptions options = Options();
  options.max_body_bytes = 16;
  HttpListener listener;
  ASSERT_TRUE(listener
                  .Start("127.0.0.1:0", options,
                         [](httplib::Server& s) {
                           s.Post("/", [](const httplib::Request&, httplib::Response& res) {
                             res.set_content("ok", "text/plain");
                           });
                         })
                  .ok());
  httplib::Client client("127.0.0.1", listener.port());
  auto res = client.Post("/", std::string(1000, 'x'), "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
}

int OpenFds() {
  int n = 0;
  DIR* dir = opendir("/proc/self/fd");
  while (readdir(dir) != nullptr) ++n;
  closedir(dir);
  return n;
}

// Slow clients (connections that send nothing) cannot turn into our file
// descriptors past the workers and the queue: the rest wait in the kernel.
TEST(HttpListenerTest, IdleConnectionsPastTheQueueAreNotAccepted) {
  HttpListenerOptions options = Options();
  options.threads = 1;
  options.max_queued = 2;
  options.read_timeout = absl::Seconds(5);
  HttpListener listener;
  ASSERT_TRUE(listener.Start("127.0.0.1:0", options, Hello).ok());
  const int before = OpenFds();
  constexpr int kClients = 40;
  std::vector<int> clients;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(listener.port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int i = 0; i < kClients; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    clients.push_back(fd);
  }
  // One worker busy, two queued, one served by the accept loop itself.
  const int bound = options.threads + options.max_queued + 1;
  // Within the read timeout (5 s), nothing frees a worker.
  absl::Time deadline = absl::Now() + absl::Seconds(4);
  while (OpenFds() - before - kClients < bound && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(OpenFds() - before - kClients, bound);
  for (int fd : clients) close(fd);
}

}  // namespace
}  // namespace presence::base
