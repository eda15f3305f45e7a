// End-to-end: one VS presence per registered customer per room, however many
// streams hold it, with the races between them.

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/gateway_fixture.h"

namespace presence::testing {
namespace {

constexpr absl::Duration kPing = absl::Milliseconds(200);

// A customer's join (a guest's when `customer` is unset).
SessionRequest Join(int64_t performer, std::optional<int64_t> customer,
                    const std::string& nickname = "alice") {
  return JoinRequest(performer, nickname, customer, customer.has_value());
}

class SharedPresenceE2eTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    PresenceServerOptions options = Options();
    options.ping_interval = kPing;
    StartServer(options);
  }

  Viewer Open(const SessionRequest& join) {
    Viewer v = GatewayTest::Open();
    EXPECT_TRUE(v.stream->Write(join));
    return v;
  }

  static SessionResponse Next(Viewer& v) {
    SessionResponse resp;
    EXPECT_TRUE(v.stream->Read(&resp));
    return resp;
  }

  static grpc::Status Leave(Viewer& v) {
    SessionRequest leave;
    leave.mutable_leave();
    v.stream->Write(leave);
    v.stream->WritesDone();
    SessionResponse resp;
    while (v.stream->Read(&resp)) {
    }
    return v.stream->Finish();
  }

  // The count once `n` arrived and every VS call the gateway had pending has
  // completed (so nothing more is on its way).
  int64_t Settled(const std::string& function, int64_t n) {
    sim_->WaitForCount(function, n, absl::Seconds(5));
    EXPECT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
    return sim_->Count(function);
  }

  // Consecutive pings of one presence are about one interval apart (a
  // quarter to 1.75 intervals): one presence is pinged once per interval, not
  // once per stream.
  void ExpectPingsOneIntervalApart(int pings) {
    ASSERT_TRUE(sim_->WaitForCount("pingRoom", pings, absl::Seconds(10)));
    std::vector<vs::RecordedRequest> all = sim_->Requests("pingRoom");
    for (size_t i = 1; i < all.size(); ++i) {
      absl::Duration gap = all[i].at - all[i - 1].at;
      EXPECT_GT(gap, kPing / 4) << i;
      EXPECT_LT(gap, kPing * 1.75) << i;
    }
  }
};

TEST_F(SharedPresenceE2eTest, TwoStreamsOfOneCustomerInOneRoomShareOnePresence) {
  Viewer a = Open(Join(1, 7));
  SessionResponse ja = Next(a);
  Viewer b = Open(Join(1, 7));
  SessionResponse jb = Next(b);
  ASSERT_TRUE(ja.has_joined());
  ASSERT_TRUE(jb.has_joined());
  EXPECT_EQ(ja.joined().nickname(), "alice_1000");
  EXPECT_EQ(jb.joined().nickname(), "alice_1000");
  EXPECT_NE(ja.joined().session_id(), jb.joined().session_id());
  EXPECT_EQ(sim_->Count("joinRoom"), 1);

  // One presence is pinged once per interval, not once per stream.
  ExpectPingsOneIntervalApart(5);

  EXPECT_TRUE(Leave(a).ok());
  EXPECT_EQ(Settled("leaveRoom", 0), 0);  // b still holds it.
  EXPECT_TRUE(Leave(b).ok());
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].body,
            "function=leaveRoom&performerId=1&customerId=7&nickname=alice_1000");
}

TEST_F(SharedPresenceE2eTest, ActivityOnEitherStreamPostponesTheSharedPing) {
  Viewer a = Open(Join(1, 7));
  Next(a);
  Viewer b = Open(Join(1, 7));
  Next(b);
  SessionRequest activity;
  activity.mutable_activity();
  absl::Time end = absl::Now() + kPing * 5;
  while (absl::Now() < end) {
    ASSERT_TRUE(b.stream->Write(activity));
    absl::SleepFor(kPing / 4);
  }
  EXPECT_EQ(sim_->Count("pingRoom"), 0);
  Leave(a);
  Leave(b);
}

TEST_F(SharedPresenceE2eTest, AStreamArrivingDuringTheJoinSharesItsAnswer) {
  vs::FaultRule slow;
  slow.function = "joinRoom";
  slow.latency = absl::Milliseconds(400);
  sim_->AddFault(slow);
  Viewer a = Open(Join(1, 7));
  ASSERT_TRUE(sim_->WaitForCount("joinRoom", 1, absl::Seconds(5)));  // At VS.
  Viewer b = Open(Join(1, 7));
  SessionResponse ja = Next(a);
  SessionResponse jb = Next(b);
  EXPECT_EQ(ja.joined().nickname(), "alice_1000");
  EXPECT_EQ(jb.joined().nickname(), "alice_1000");
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
  Leave(a);
  Leave(b);
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
}

TEST_F(SharedPresenceE2eTest, ARefusedJoinIsRefusedForEveryStreamWaitingOnIt) {
  vs::FaultRule refuse;
  refuse.function = "joinRoom";
  refuse.latency = absl::Milliseconds(300);
  refuse.reject = true;
  refuse.message = "customer banned";
  sim_->AddFault(refuse);
  Viewer a = Open(Join(1, 7));
  ASSERT_TRUE(sim_->WaitForCount("joinRoom", 1, absl::Seconds(5)));  // At VS.
  Viewer b = Open(Join(1, 7));
  for (Viewer* v : {&a, &b}) {
    SessionResponse resp;
    while (v->stream->Read(&resp)) {
    }
    grpc::Status status = v->stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(), "customer banned");
  }
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
  EXPECT_EQ(Settled("leaveRoom", 0), 0);
  // The failed presence is gone: a new stream joins afresh.
  sim_->ClearFaults();
  Viewer c = Open(Join(1, 7));
  EXPECT_TRUE(Next(c).has_joined());
  Leave(c);
}

TEST_F(SharedPresenceE2eTest, TheOwnerCancellingDuringTheJoinLeavesTheOthersPresent) {
  vs::FaultRule slow;
  slow.function = "joinRoom";
  slow.latency = absl::Milliseconds(400);
  sim_->AddFault(slow);
  Viewer a = Open(Join(1, 7));
  ASSERT_TRUE(sim_->WaitForCount("joinRoom", 1, absl::Seconds(5)));  // At VS.
  Viewer b = Open(Join(1, 7));
  // b waits on a's join before a goes.
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server_->context().counters.joins_shared.load() < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  a.context->TryCancel();
  a.stream->Finish();
  EXPECT_TRUE(Next(b).has_joined());
  EXPECT_EQ(Settled("leaveRoom", 0), 0);
  EXPECT_TRUE(Leave(b).ok());
  EXPECT_EQ(Settled("leaveRoom", 1), 1);
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

TEST_F(SharedPresenceE2eTest, AReconnectAfterTheLastLeaveWaitsForTheLeaveToReachVs) {
  vs::FaultRule slow_leave;
  slow_leave.function = "leaveRoom";
  slow_leave.latency = absl::Milliseconds(500);
  sim_->AddFault(slow_leave);
  Viewer a = Open(Join(1, 7));
  Next(a);
  EXPECT_TRUE(Leave(a).ok());
  // The reconnect races the leave (still at VS): it waits for the leave's
  // answer, then joins. No retry is needed from the client.
  Viewer b = Open(Join(1, 7));
  EXPECT_TRUE(Next(b).has_joined());
  EXPECT_EQ(server_->context().counters.leaves_accepted.load(), 1);
  std::vector<vs::RecordedRequest> all = sim_->Requests();
  ASSERT_EQ(all.size(), 3u);  // join, leave, join: in that order at VS.
  EXPECT_EQ(all[0].function, "joinRoom");
  EXPECT_EQ(all[1].function, "leaveRoom");
  EXPECT_EQ(all[2].function, "joinRoom");
  Leave(b);
}

TEST_F(SharedPresenceE2eTest, GuestsAndOtherRoomsAreNotShared) {
  Viewer g1 = Open(Join(1, std::nullopt, "guest"));
  Viewer g2 = Open(Join(1, std::nullopt, "guest"));
  Viewer r1 = Open(Join(1, 7));
  Viewer r2 = Open(Join(2, 7));
  for (Viewer* v : {&g1, &g2, &r1, &r2}) EXPECT_TRUE(Next(*v).has_joined());
  EXPECT_EQ(sim_->Count("joinRoom"), 4);
  for (Viewer* v : {&g1, &g2, &r1, &r2}) Leave(*v);
  EXPECT_EQ(Settled("leaveRoom", 4), 4);
}

}  // namespace
}  // namespace presence::testing
