// End-to-end: VS's customer boot notification ends the matching sessions
// with PERMISSION_DENIED "removed by VS" (and sends their leaves); a forged
// or malformed notification ends nothing.

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "tests/testing/gateway_fixture.h"

namespace presence::testing {
namespace {

constexpr char kSecret[] = "boot-s3cret";

class BootE2eTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    PresenceServerOptions options = Options();
    options.boot_listen = "127.0.0.1:0";
    options.boot_secret = kSecret;
    StartServer(options);
  }

  Viewer Join(int64_t performer, std::optional<int64_t> customer, const std::string& nick) {
    return Joined(JoinRequest(performer, nick, customer, customer.has_value()));
  }

  httplib::Result Boot(const std::string& body, const std::string& key = kSecret) {
    httplib::Client http("127.0.0.1", server_->boot_port());
    return http.Post(("/boot?key=" + key).c_str(), body, "application/x-www-form-urlencoded");
  }
};

TEST_F(BootE2eTest, BootFromOneRoomEndsOnlyThatSession) {
  Viewer a = Join(1, 7, "alice");
  Viewer b = Join(2, 7, "alice");
  Viewer c = Join(1, 8, "carol");
  auto res = Boot("function=customerBoot&performerId=1&customerId=7&nickname=alice_1000");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("removed: 1"), std::string::npos) << res->body;
  grpc::Status status = a.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(status.error_message(), "removed by VS");
  EXPECT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5)));
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].Field("nickname"), "alice_1000");
  EXPECT_EQ(server_->registry().joined(), 2);
  b.context->TryCancel();
  c.context->TryCancel();
}

TEST_F(BootE2eTest, BootWithoutPerformerEndsEveryRoomOfTheCustomer) {
  Viewer a = Join(1, 7, "alice");
  Viewer b = Join(2, 7, "alice");
  Viewer c = Join(3, 9, "dave");
  auto res = Boot("function=customerBoot&customerId=7");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("removed: 2"), std::string::npos) << res->body;
  EXPECT_EQ(a.Drain().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(b.Drain().error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(sim_->WaitForCount("leaveRoom", 2, absl::Seconds(5)));
  EXPECT_EQ(server_->registry().joined(), 1);
  c.context->TryCancel();
}

TEST_F(BootE2eTest, ForgedOrMalformedBootsEndNothing) {
  Viewer a = Join(1, 7, "alice");
  auto forged = Boot("function=customerBoot&customerId=7", "guess");
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->status, 403);
  auto no_key =
      httplib::Client("127.0.0.1", server_->boot_port())
          .Post("/boot", "function=customerBoot&customerId=7", "application/x-www-form-urlencoded");
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 403);
  for (const char* bad : {"function=customerBoot", "function=customerBoot&customerId=x",
                          "function=other&customerId=7",
                          "function=customerBoot&customerId=7&"
                          "performerId=-1",
                          "%zz"}) {
    auto res = Boot(bad);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << bad;
  }
  auto nobody = Boot("function=customerBoot&customerId=12345");
  ASSERT_TRUE(nobody);
  EXPECT_NE(nobody->body.find("removed: 0"), std::string::npos);
  EXPECT_EQ(server_->registry().joined(), 1);
  EXPECT_EQ(sim_->Count("leaveRoom"), 0);
  a.context->TryCancel();
}

// A second process on the same addresses must not share them: gRPC and
// cpp-httplib bind with SO_REUSEPORT by default, and the kernel would spread
// clients and VS's boot POSTs across both.
TEST_F(BootE2eTest, ASecondServerOnTheSameAddressesRefusesToStartNamingIt) {
  PresenceServerOptions options;
  options.vs.base_url = sim_->url();
  options.vs.key = "simulator-key";
  options.boot_secret = kSecret;

  options.listen = absl::StrCat("127.0.0.1:", server_->port());
  absl::StatusOr<std::unique_ptr<PresenceServer>> second = PresenceServer::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(options.listen), absl::string_view::npos)
      << second.status();

  options.listen = "127.0.0.1:0";
  options.boot_listen = absl::StrCat("127.0.0.1:", server_->boot_port());
  second = PresenceServer::Start(options);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(options.boot_listen), absl::string_view::npos)
      << second.status();
  EXPECT_NE(second.status().message().find("--boot_listen"), absl::string_view::npos)
      << second.status();
}

}  // namespace
}  // namespace presence::testing
