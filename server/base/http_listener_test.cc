#include "server/base/http_listener.h"

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

}  // namespace
}  // namespace presence::base
