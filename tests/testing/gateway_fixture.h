#ifndef PRESENCE_TESTS_TESTING_GATEWAY_FIXTURE_H_
#define PRESENCE_TESTS_TESTING_GATEWAY_FIXTURE_H_

// A real gateway in front of a real VS simulator, both on loopback, and the
// helpers an end-to-end test needs to drive it with real gRPC streams. Tests
// wait on conditions (the simulator's counts, a stream's next message), never
// on fixed sleeps.

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/presence_server.h"
#include "server/vs_simulator/vs_simulator.h"

namespace presence::testing {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;
using Stream = grpc::ClientReaderWriter<SessionRequest, SessionResponse>;

inline SessionRequest JoinRequest(int64_t performer = 42, const std::string& nickname = "bob",
                                  std::optional<int64_t> customer = 7, bool registered = true) {
  SessionRequest req;
  v1::Join* join = req.mutable_join();
  join->set_performer_id(performer);
  join->set_nickname(nickname);
  if (customer.has_value()) join->set_customer_id(*customer);
  join->set_ip_address("203.0.113.5");
  join->set_registered(registered);
  join->set_credits(100);
  return req;
}

inline SessionRequest Credits(int64_t credits) {
  SessionRequest req;
  req.mutable_credits()->set_credits(credits);
  return req;
}

inline SessionRequest Leave() {
  SessionRequest req;
  req.mutable_leave();
  return req;
}

inline vs::FaultRule Fault(const std::string& function, int times = -1) {
  vs::FaultRule rule;
  rule.function = function;
  rule.times = times;
  return rule;
}

// One client stream and its context.
struct Viewer {
  std::unique_ptr<grpc::ClientContext> context = std::make_unique<grpc::ClientContext>();
  std::unique_ptr<Stream> stream;

  Viewer() = default;
  Viewer(Viewer&&) = default;
  Viewer& operator=(Viewer&&) = default;
  // A test that stops early must not leave a live call behind.
  ~Viewer() {
    if (context != nullptr) context->TryCancel();
  }

  // Reads until the stream ends; returns its status.
  grpc::Status Drain() {
    SessionResponse resp;
    while (stream->Read(&resp)) {
    }
    return stream->Finish();
  }
};

class GatewayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    vs::VsSimulatorOptions sim_options;
    sim_options.threads = 64;
    sim_options.keep_alive_timeout_seconds = 1;
    sim_ = std::make_unique<vs::VsSimulator>(sim_options);
    ASSERT_TRUE(sim_->Start().ok());
  }

  void TearDown() override {
    server_.reset();
    sim_.reset();
  }

  PresenceServerOptions Options() {
    PresenceServerOptions options;
    options.listen = "127.0.0.1:0";
    options.ping_interval = absl::Seconds(10);
    options.vs.base_url = sim_->url();
    options.vs.key = "simulator-key";
    options.vs.request_timeout = absl::Seconds(2);
    options.vs.retry.initial_backoff = absl::Milliseconds(20);
    options.vs.retry.max_backoff = absl::Milliseconds(200);
    options.vs.retry.max_total = absl::Seconds(20);
    return options;
  }

  void StartServer(PresenceServerOptions options) {
    server_.reset();
    absl::StatusOr<std::unique_ptr<PresenceServer>> server = PresenceServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Presence::NewStub(channel_);
  }

  Viewer Open() {
    Viewer v;
    v.stream = stub_->Session(v.context.get());
    return v;
  }

  // Opens a stream, joins, and expects Joined.
  Viewer Joined(const SessionRequest& join = JoinRequest(), SessionResponse* joined = nullptr) {
    Viewer v = Open();
    EXPECT_TRUE(v.stream->Write(join));
    SessionResponse resp;
    EXPECT_TRUE(v.stream->Read(&resp));
    EXPECT_EQ(resp.event_case(), SessionResponse::kJoined) << resp.DebugString();
    if (joined != nullptr) *joined = resp;
    return v;
  }

  // Sends leave and expects Left, then OK.
  void LeaveCleanly(Viewer& v) {
    ASSERT_TRUE(v.stream->Write(Leave()));
    SessionResponse resp;
    ASSERT_TRUE(v.stream->Read(&resp));
    EXPECT_EQ(resp.event_case(), SessionResponse::kLeft);
    EXPECT_FALSE(v.stream->Read(&resp)) << "a message after left: " << resp.DebugString();
    grpc::Status status = v.stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
  }

  // Waits for `pred`, polling (bounded); returns whether it became true.
  static bool WaitFor(const std::function<bool()>& pred,
                      absl::Duration timeout = absl::Seconds(10)) {
    absl::Time deadline = absl::Now() + timeout;
    while (!pred()) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return true;
  }

  // Every joinRoom VS accepted has exactly one leaveRoom with its display
  // nickname, once every pending VS call has completed.
  void ExpectLedgerBalanced() {
    ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(20)));
    std::map<std::string, int> leaves;
    for (const auto& r : sim_->Requests("leaveRoom")) ++leaves[r.Field("nickname").value_or("")];
    for (const auto& j : sim_->Requests("joinRoom")) {
      if (!j.success) continue;
      EXPECT_EQ(leaves[j.answered_nickname], 1) << j.answered_nickname;
      leaves.erase(j.answered_nickname);
    }
    for (const auto& [nick, n] : leaves)
      ADD_FAILURE() << "a leave without an accepted join: " << nick;
  }

  std::unique_ptr<vs::VsSimulator> sim_;
  std::unique_ptr<PresenceServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Presence::Stub> stub_;
};

}  // namespace presence::testing

#endif  // PRESENCE_TESTS_TESTING_GATEWAY_FIXTURE_H_
