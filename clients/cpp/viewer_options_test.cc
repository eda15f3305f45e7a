// The C++ helper's connection options, end of session and locking, against
// the real gateway and VS simulator: mutual TLS with a bearer token, a boot
// observed through Wait, a notice callback that calls the session, credits
// answers that reach their own callers, and Close during a backoff.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "clients/cpp/viewer_session.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/presence_server.h"
#include "server/vs_simulator/vs_simulator.h"
#include "tests/testing/test_pki.h"

namespace presence::client {
namespace {

constexpr char kToken[] = "cpp-client-token";
constexpr char kBootSecret[] = "boot-secret";

class ViewerOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    ASSERT_TRUE(pki_.ok);
    sim_ = std::make_unique<vs::VsSimulator>();
    ASSERT_TRUE(sim_->Start().ok());
  }

  void TearDown() override {
    server_.reset();
    sim_.reset();
  }

  // Starts the gateway; with `secure`, mutual TLS and a bearer token.
  void StartGateway(bool secure) {
    PresenceServerOptions options;
    options.listen = "127.0.0.1:0";
    options.ping_interval = absl::Milliseconds(300);
    options.vs.base_url = sim_->url();
    options.vs.key = "simulator-key";
    options.boot_listen = "127.0.0.1:0";
    options.boot_secret = kBootSecret;
    if (secure) {
      options.tls_cert_file = pki_.server_cert;
      options.tls_key_file = pki_.server_key;
      options.tls_client_ca_file = pki_.ca;
      options.auth_token = kToken;
    }
    auto server = PresenceServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  DialOptions Secure(const std::string& token = kToken) const {
    DialOptions dial;
    dial.ca_file = pki_.ca;
    dial.cert_file = pki_.client_cert;
    dial.key_file = pki_.client_key;
    dial.token = token;
    return dial;
  }

  static JoinParams Bob() {
    JoinParams join;
    join.performer_id = 42;
    join.nickname = "bob";
    join.customer_id = 7;
    join.ip_address = "203.0.113.5";
    join.registered = true;
    return join;
  }

  void Boot(int64_t customer) {
    httplib::Client http("127.0.0.1", server_->boot_port());
    auto res = http.Post(absl::StrCat("/boot?key=", kBootSecret),
                         absl::StrCat("function=customerBoot&customerId=", customer),
                         "application/x-www-form-urlencoded");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
  }

  void ExpectOneJoinAndOneLeave() {
    ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
    ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
    EXPECT_EQ(sim_->Count("joinRoom"), 1);
    EXPECT_EQ(sim_->Count("leaveRoom"), 1);
  }

  testing::TestPki pki_{"viewer-options-pki"};
  std::unique_ptr<vs::VsSimulator> sim_;
  std::unique_ptr<PresenceServer> server_;
  std::string address_;
};

TEST_F(ViewerOptionsTest, MutualTlsWithATokenJoinsAndABootIsObservable) {
  StartGateway(/*secure=*/true);
  auto channel = DialPresence(address_, Secure());
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto viewer = ViewerSession::Open(*channel, Bob());
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  EXPECT_EQ((*viewer)->display_nickname(), "bob_1000");
  EXPECT_EQ((*viewer)->Wait(absl::Milliseconds(50)).code(), absl::StatusCode::kDeadlineExceeded);

  Boot(7);
  absl::Status ended = (*viewer)->Wait(absl::Seconds(10));
  EXPECT_EQ(ended.code(), absl::StatusCode::kPermissionDenied) << ended;
  EXPECT_TRUE((*viewer)->done());
  EXPECT_EQ((*viewer)->reconnects(), 0);
  // Every call after the end says why, rather than dropping the request.
  EXPECT_EQ((*viewer)->Activity().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ((*viewer)->UpdateCredits(5).status().code(), absl::StatusCode::kPermissionDenied);
  ExpectOneJoinAndOneLeave();
}

TEST_F(ViewerOptionsTest, AWrongTokenIsFinalAndATokenNeedsTls) {
  StartGateway(/*secure=*/true);
  auto channel = DialPresence(address_, Secure("guess"));
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto viewer = ViewerSession::Open(*channel, Bob());
  EXPECT_EQ(viewer.status().code(), absl::StatusCode::kUnauthenticated) << viewer.status();

  DialOptions plaintext_token;
  plaintext_token.token = kToken;
  EXPECT_EQ(DialPresence(address_, plaintext_token).status().code(),
            absl::StatusCode::kInvalidArgument);
  DialOptions half_pair = Secure();
  half_pair.key_file.clear();
  EXPECT_EQ(DialPresence(address_, half_pair).status().code(), absl::StatusCode::kInvalidArgument);
  DialOptions missing = Secure();
  missing.ca_file = pki_.dir + "/no-such-ca.pem";
  EXPECT_EQ(DialPresence(address_, missing).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sim_->Count("joinRoom"), 0);
}

// The notice callback runs with no lock held: calling the session from it
// works (it deadlocked when the callback ran under the helper's lock).
TEST_F(ViewerOptionsTest, ANoticeCallbackMayCallTheSession) {
  StartGateway(/*secure=*/false);
  vs::FaultRule reject;
  reject.function = "pingRoom";
  reject.reject = true;
  reject.message = "no such room";
  reject.times = 1;
  sim_->AddFault(reject);
  absl::Notification noticed;
  std::string seen_nickname;
  ViewerSession* session = nullptr;
  absl::Notification opened;
  ViewerOptions options;
  options.on_notice = [&](const v1::Notice& notice) {
    opened.WaitForNotification();
    if (noticed.HasBeenNotified()) return;
    seen_nickname = session->display_nickname();
    EXPECT_TRUE(session->Activity().ok());
    EXPECT_EQ(notice.kind(), v1::NOTICE_KIND_PING_REJECTED);
    noticed.Notify();
  };
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob(), options);
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  session = viewer->get();
  opened.Notify();
  ASSERT_TRUE(noticed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(seen_nickname, "bob_1000");
  EXPECT_TRUE((*viewer)->Close().ok());
  ExpectOneJoinAndOneLeave();
}

// A caller that gave up on a slow answer does not leave it to the next one.
TEST_F(ViewerOptionsTest, CreditsAnswersReachTheirOwnCallers) {
  StartGateway(/*secure=*/false);
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob());
  ASSERT_TRUE(viewer.ok()) << viewer.status();
  vs::FaultRule slow_no;
  slow_no.function = "updateCredits";
  slow_no.latency = absl::Milliseconds(700);
  slow_no.reject = true;
  slow_no.message = "slow no";
  slow_no.times = 1;
  sim_->AddFault(slow_no);
  EXPECT_EQ((*viewer)->UpdateCredits(1, absl::Milliseconds(100)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  absl::StatusOr<v1::CreditsUpdated> next = (*viewer)->UpdateCredits(2);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_TRUE(next->success()) << "got the abandoned call's answer: " << next->message();
  EXPECT_TRUE((*viewer)->Close().ok());
  ExpectOneJoinAndOneLeave();
}

TEST_F(ViewerOptionsTest, CloseDuringABackoffIsPrompt) {
  StartGateway(/*secure=*/false);
  vs::FaultRule down;
  down.function = "joinRoom";
  down.http_status = 503;
  down.times = 1;
  sim_->AddFault(down);
  ViewerOptions options;
  options.initial_backoff = absl::Minutes(1);
  options.max_backoff = absl::Minutes(1);
  options.join_timeout = absl::Milliseconds(500);
  absl::Time started = absl::Now();
  // The join times out in the first backoff (at least 30 s); Open then closes.
  auto viewer = ViewerSession::Open(DialPresence(address_), Bob(), options);
  EXPECT_EQ(viewer.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - started, absl::Seconds(20));
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

}  // namespace
}  // namespace presence::client
