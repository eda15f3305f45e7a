// End-to-end: a real PresenceServer on loopback, forwarding to a real VS
// simulator, driven by a real gRPC client. Every rule of the Session contract,
// each leave path, and VS faults during join, ping, leave and credits.

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/presence_server.h"
#include "server/vs_simulator/vs_simulator.h"
#include "tests/testing/gateway_fixture.h"

namespace presence::testing {
namespace {

using presence::v1::Presence;

constexpr absl::Duration kPing = absl::Milliseconds(200);

class SessionE2eTest : public GatewayTest {
 protected:
  void SetUp() override {
    GatewayTest::SetUp();
    StartServer(Options());
  }

  PresenceServerOptions Options() {
    PresenceServerOptions options = GatewayTest::Options();
    options.ping_interval = kPing;
    options.metrics_listen = "127.0.0.1:0";
    return options;
  }

  // Writes `first` and returns the final status of a stream that must end.
  grpc::Status Rejected(const SessionRequest& first) {
    Viewer v = Open();
    v.stream->Write(first);
    v.stream->WritesDone();
    return v.Drain();
  }

  // Waits until the simulator has seen `n` calls of `function` and every VS
  // call the gateway had pending has completed (no duplicate on its way),
  // then expects exactly `n`.
  void ExpectCount(const std::string& function, int64_t n) {
    sim_->WaitForCount(function, n, absl::Seconds(10));
    EXPECT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(20)));
    EXPECT_EQ(sim_->Count(function), n) << function;
  }
};

TEST_F(SessionE2eTest, JoinRepliesWithVsDisplayNicknameAndSessionId) {
  SessionResponse joined;
  Viewer v = Joined(JoinRequest(), &joined);
  EXPECT_EQ(joined.joined().nickname(), "bob_1000");
  EXPECT_EQ(joined.joined().session_id().size(), 16u);
  std::vector<vs::RecordedRequest> joins = sim_->Requests("joinRoom");
  ASSERT_EQ(joins.size(), 1u);
  EXPECT_EQ(joins[0].body,
            "function=joinRoom&performerId=42&nickname=bob&customerId=7&ipAddress=203.0.113.5"
            "&registered=1&credits=100");
  LeaveCleanly(v);
}

TEST_F(SessionE2eTest, FirstMessageMustBeJoin) {
  SessionRequest activity;
  activity.mutable_activity();
  grpc::Status status = Rejected(activity);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "the first message must be join, got activity");
  EXPECT_EQ(sim_->Requests().size(), 0u);
  EXPECT_EQ(Rejected(SessionRequest()).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(SessionE2eTest, EachValidationRuleFailsNamingTheFieldAndSendsNothing) {
  struct Case {
    std::function<void(v1::Join*)> breaks;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](v1::Join* j) { j->set_performer_id(0); }, "join.performer_id"},
      {[](v1::Join* j) { j->set_nickname(""); }, "join.nickname"},
      {[](v1::Join* j) { j->set_nickname(std::string(65, 'a')); }, "join.nickname"},
      // Not UTF-8: protobuf itself refuses to parse it on the server.
      {[](v1::Join* j) { j->set_nickname("bad\xff"); }, "UTF-8"},
      {[](v1::Join* j) { j->set_nickname("a\nb"); }, "join.nickname"},
      {[](v1::Join* j) { j->set_ip_address("not-an-ip"); }, "join.ip_address"},
      {[](v1::Join* j) { j->set_credits(-1); }, "join.credits"},
      {[](v1::Join* j) { j->set_customer_id(-5); }, "join.customer_id"},
      {[](v1::Join* j) { j->clear_customer_id(); }, "join.registered"},
  };
  for (const Case& c : cases) {
    SessionRequest req = JoinRequest();
    c.breaks(req.mutable_join());
    grpc::Status status = Rejected(req);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_NE(status.error_message().find(c.field), std::string::npos)
        << c.field << ": " << status.error_message();
  }
  EXPECT_EQ(sim_->Requests().size(), 0u);
}

TEST_F(SessionE2eTest, SecondJoinIsInvalidAndTheFirstIsLeft) {
  Viewer v = Joined();
  ASSERT_TRUE(v.stream->Write(JoinRequest()));
  SessionResponse resp;
  while (v.stream->Read(&resp)) {
  }
  grpc::Status status = v.stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "join was already received on this stream");
  ExpectCount("joinRoom", 1);
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, VsRefusingTheJoinIsFailedPreconditionWithItsMessage) {
  vs::FaultRule rule;
  rule.function = "joinRoom";
  rule.reject = true;
  rule.message = "performer is offline";
  sim_->AddFault(rule);
  grpc::Status status = Rejected(JoinRequest());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(status.error_message(), "performer is offline");
  ExpectCount("leaveRoom", 0);
}

TEST_F(SessionE2eTest, VsFailingTheJoinIsUnavailable) {
  vs::FaultRule rule;
  rule.function = "joinRoom";
  rule.http_status = 500;
  sim_->AddFault(rule);
  grpc::Status status = Rejected(JoinRequest());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(status.error_message().find("HTTP 500"), std::string::npos) << status.error_message();
  ExpectCount("leaveRoom", 0);

  sim_->ClearFaults();
  vs::FaultRule garbage;
  garbage.function = "joinRoom";
  garbage.garbage = true;
  sim_->AddFault(garbage);
  EXPECT_EQ(Rejected(JoinRequest()).error_code(), grpc::StatusCode::UNAVAILABLE);

  sim_->Stop();
  EXPECT_EQ(Rejected(JoinRequest()).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(SessionE2eTest, JoinWithUnknownOutcomeGetsABestEffortLeave) {
  PresenceServerOptions options = Options();
  options.vs.request_timeout = absl::Milliseconds(300);
  StartServer(options);
  vs::FaultRule slow;
  slow.function = "joinRoom";
  slow.latency = absl::Milliseconds(600);
  sim_->AddFault(slow);
  grpc::Status status = Rejected(JoinRequest());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  ExpectCount("leaveRoom", 1);
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].Field("nickname"), "bob");
}

TEST_F(SessionE2eTest, PingsEveryIntervalWithTheDisplayNickname) {
  Viewer v = Joined();
  ASSERT_TRUE(sim_->WaitForCount("pingRoom", 5, absl::Seconds(10)));
  std::vector<vs::RecordedRequest> pings = sim_->Requests("pingRoom");
  for (size_t i = 0; i < pings.size(); ++i) {
    EXPECT_EQ(pings[i].body, "function=pingRoom&performerId=42&customerId=7&nickname=bob_1000");
    if (i > 0) {  // One interval apart, within three quarters of one.
      EXPECT_GT(pings[i].at - pings[i - 1].at, kPing / 4) << i;
      EXPECT_LT(pings[i].at - pings[i - 1].at, kPing * 1.75) << i;
    }
  }
  LeaveCleanly(v);
  // The scheduler drops the left presence at its next due time: no ping
  // after that.
  ASSERT_TRUE(WaitFor([this] { return server_->scheduler().stats().queued == 0; }));
  int64_t after = sim_->Count("pingRoom");
  ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(sim_->Count("pingRoom"), after);
}

// An upstream in trouble is one notice per kind and minute on a stream, not
// one per failed ping: the rest are counted, not written.
TEST_F(SessionE2eTest, RepeatedPingFailuresAreOneNotice) {
  Viewer v = Joined();
  vs::FaultRule reject;
  reject.function = "pingRoom";
  reject.reject = true;
  reject.message = "not now";
  reject.times = 3;
  sim_->AddFault(reject);
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kNotice);
  EXPECT_EQ(resp.notice().kind(), v1::NOTICE_KIND_PING_REJECTED);
  // Three refused pings, then one that VS accepts.
  ASSERT_TRUE(WaitFor([this] {
    return server_->context().counters.notices_suppressed.load() == 2 &&
           server_->context().counters.pings_accepted.load() >= 1;
  }));
  // Nothing else was queued for the stream: the next thing it reads is `left`.
  LeaveCleanly(v);
  EXPECT_EQ(server_->context().counters.pings_rejected.load(), 3);
}

TEST_F(SessionE2eTest, ActivitySkipsPings) {
  // A 1 s interval with activity every 100 ms: only a stall of 900 ms on a
  // loaded machine could let a ping through.
  PresenceServerOptions options = Options();
  options.ping_interval = absl::Seconds(1);
  StartServer(options);
  Viewer v = Joined();
  SessionRequest activity;
  activity.mutable_activity()->set_kind(v1::ACTIVITY_KIND_CHAT);
  absl::Time end = absl::Now() + absl::Seconds(3);
  while (absl::Now() < end) {
    ASSERT_TRUE(v.stream->Write(activity));
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(sim_->Count("pingRoom"), 0);
  EXPECT_GE(server_->scheduler().stats().skipped_for_activity, 2);
  // Quiet again: pings resume one interval after the last activity.
  EXPECT_TRUE(sim_->WaitForCount("pingRoom", 1, absl::Seconds(3)));
  LeaveCleanly(v);
}

TEST_F(SessionE2eTest, FailedPingsSendNoticesAndTheSessionStays) {
  Viewer v = Joined();
  vs::FaultRule reject;
  reject.function = "pingRoom";
  reject.reject = true;
  reject.message = "no such customer";
  reject.times = 1;
  sim_->AddFault(reject);
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kNotice);
  EXPECT_EQ(resp.notice().kind(), v1::NOTICE_KIND_PING_REJECTED);
  EXPECT_EQ(resp.notice().message(), "no such customer");

  vs::FaultRule down;
  down.function = "pingRoom";
  down.http_status = 503;
  down.times = 1;
  sim_->AddFault(down);
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kNotice);
  EXPECT_EQ(resp.notice().kind(), v1::NOTICE_KIND_UPSTREAM_UNAVAILABLE);
  EXPECT_NE(resp.notice().message().find("HTTP 503"), std::string::npos);

  int64_t before = sim_->Count("pingRoom");
  sim_->WaitForCount("pingRoom", before + 1, absl::Seconds(5));
  LeaveCleanly(v);
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, CreditsForARegisteredCustomerReachVs) {
  Viewer v = Joined();
  SessionRequest credits;
  credits.mutable_credits()->set_credits(250);
  ASSERT_TRUE(v.stream->Write(credits));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kCreditsUpdated);
  EXPECT_TRUE(resp.credits_updated().success());
  std::vector<vs::RecordedRequest> sent = sim_->Requests("updateCredits");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].body, "function=updateCredits&customerId=7&credits=250");

  vs::FaultRule reject;
  reject.function = "updateCredits";
  reject.reject = true;
  reject.message = "balance too high";
  sim_->AddFault(reject);
  ASSERT_TRUE(v.stream->Write(credits));
  ASSERT_TRUE(v.stream->Read(&resp));
  EXPECT_FALSE(resp.credits_updated().success());
  EXPECT_EQ(resp.credits_updated().message(), "balance too high");

  credits.mutable_credits()->set_credits(-1);
  ASSERT_TRUE(v.stream->Write(credits));
  ASSERT_TRUE(v.stream->Read(&resp));
  EXPECT_FALSE(resp.credits_updated().success());
  EXPECT_EQ(resp.credits_updated().message(), "credits must be >= 0 (got -1)");
  EXPECT_EQ(sim_->Count("updateCredits"), 2);
  LeaveCleanly(v);
}

TEST_F(SessionE2eTest, CreditsWaitingBehindOneInFlightCoalesceToTheNewest) {
  Viewer v = Joined();
  vs::FaultRule slow;
  slow.function = "updateCredits";
  slow.latency = absl::Milliseconds(400);
  sim_->AddFault(slow);
  for (int credits : {10, 20, 30, 40}) {
    SessionRequest req;
    req.mutable_credits()->set_credits(credits);
    ASSERT_TRUE(v.stream->Write(req));
  }
  // 10 goes out at once; 20 waits, is superseded by 30, which is superseded
  // by 40; 40 goes out when 10 is answered.
  std::vector<std::pair<bool, std::string>> replies;
  SessionResponse resp;
  while (replies.size() < 4 && v.stream->Read(&resp)) {
    if (resp.has_credits_updated()) {
      replies.emplace_back(resp.credits_updated().success(), resp.credits_updated().message());
    }
  }
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_EQ(replies[0], std::make_pair(false, std::string("superseded by a newer credits update")));
  EXPECT_EQ(replies[1], std::make_pair(false, std::string("superseded by a newer credits update")));
  EXPECT_EQ(replies[2], std::make_pair(true, std::string()));
  EXPECT_EQ(replies[3], std::make_pair(true, std::string()));
  std::vector<vs::RecordedRequest> sent = sim_->Requests("updateCredits");
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0].Field("credits"), "10");
  EXPECT_EQ(sent[1].Field("credits"), "40");
  LeaveCleanly(v);
}

TEST_F(SessionE2eTest, CreditsForAGuestAreRefusedWithoutAVsCall) {
  Viewer v = Joined(JoinRequest(42, "guest", std::nullopt, false));
  SessionRequest credits;
  credits.mutable_credits()->set_credits(5);
  ASSERT_TRUE(v.stream->Write(credits));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  EXPECT_FALSE(resp.credits_updated().success());
  EXPECT_EQ(resp.credits_updated().message(), "credits updates are only for registered customers");
  EXPECT_EQ(sim_->Count("updateCredits"), 0);
  LeaveCleanly(v);
}

TEST_F(SessionE2eTest, LeaveSendsExactlyOneLeaveWithTheDisplayNickname) {
  Viewer v = Joined();
  LeaveCleanly(v);
  ExpectCount("leaveRoom", 1);
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].body,
            "function=leaveRoom&performerId=42&customerId=7&nickname=bob_1000");
}

TEST_F(SessionE2eTest, HalfCloseLeaves) {
  Viewer v = Joined();
  ASSERT_TRUE(v.stream->WritesDone());
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  EXPECT_EQ(resp.event_case(), SessionResponse::kLeft);
  EXPECT_TRUE(v.stream->Finish().ok());
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, CancelLeaves) {
  Viewer v = Joined();
  v.context->TryCancel();
  EXPECT_EQ(v.stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, EveryStreamsReactorIsGoneWhateverEndedIt) {
  const int64_t awaiting = server_->session_reactors();
  ASSERT_GT(awaiting, 0);
  std::vector<Viewer> viewers;
  for (int i = 0; i < 5; ++i)
    viewers.push_back(Joined(JoinRequest(42, absl::StrCat("v", i), 10 + i)));
  Viewer unjoined = Open();  // Its call reaches the server with its headers.
  ASSERT_TRUE(WaitFor([&] { return server_->session_reactors() == awaiting + 6; }));
  LeaveCleanly(viewers[0]);
  ASSERT_TRUE(viewers[1].stream->WritesDone());  // Half-close.
  viewers[2].context->TryCancel();
  ASSERT_TRUE(viewers[3].stream->Write(JoinRequest()));     // A second join.
  ASSERT_TRUE(viewers[4].stream->Write(SessionRequest()));  // Empty.
  ASSERT_TRUE(unjoined.stream->Write(SessionRequest()));    // Not a join.
  for (size_t i = 1; i < viewers.size(); ++i) viewers[i].Drain();
  EXPECT_EQ(unjoined.Drain().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(WaitFor([&] { return server_->session_reactors() == awaiting; }))
      << server_->session_reactors() << " reactors, " << awaiting << " awaiting calls";
  ExpectCount("leaveRoom", 5);
}

TEST_F(SessionE2eTest, DeadlineLeaves) {
  Viewer v;
  v.context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  v.stream = stub_->Session(v.context.get());
  ASSERT_TRUE(v.stream->Write(JoinRequest()));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  while (v.stream->Read(&resp)) {
  }
  EXPECT_EQ(v.stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, CancelDuringASlowJoinStillLeavesOnce) {
  vs::FaultRule slow;
  slow.function = "joinRoom";
  slow.latency = absl::Milliseconds(500);
  sim_->AddFault(slow);
  Viewer v = Open();
  ASSERT_TRUE(v.stream->Write(JoinRequest()));
  ASSERT_TRUE(sim_->WaitForCount("joinRoom", 1, absl::Seconds(5)));  // At VS, unanswered.
  v.context->TryCancel();
  v.stream->Finish();
  ExpectCount("joinRoom", 1);
  ExpectCount("leaveRoom", 1);
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].Field("nickname"), "bob_1000");
}

TEST_F(SessionE2eTest, LeaveIsDeliveredAfterVsComesBack) {
  Viewer v = Joined();
  sim_->Stop();
  LeaveCleanly(v);
  // VS comes back only after the leave has failed at least once.
  ASSERT_TRUE(WaitFor([this] { return server_->vs_client().stats().retries >= 1; }));
  ASSERT_TRUE(sim_->Start().ok());
  ExpectCount("leaveRoom", 1);
}

TEST_F(SessionE2eTest, ShutdownLeavesEverySessionAndEndsStreamsUnavailable) {
  std::vector<Viewer> viewers;
  for (int i = 0; i < 20; ++i)
    viewers.push_back(Joined(JoinRequest(1 + i % 3, absl::StrCat("v", i), 100 + i)));
  EXPECT_TRUE(server_->Shutdown(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(sim_->Count("leaveRoom"), 20);
  for (Viewer& v : viewers) {
    SessionResponse resp;
    while (v.stream->Read(&resp)) {
    }
    EXPECT_EQ(v.stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_F(SessionE2eTest, MaxSessionsRefusesWithResourceExhausted) {
  PresenceServerOptions options = Options();
  options.max_sessions = 2;
  StartServer(options);
  Viewer a = Joined();
  Viewer b = Joined(JoinRequest(42, "carol", 8));
  grpc::Status status = Rejected(JoinRequest(42, "dave", 9));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("maximum of 2"), std::string::npos);
  LeaveCleanly(a);
  // The slot is free once gRPC has finished a's call (OnDone).
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (server_->registry().open() > 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(server_->registry().open(), 1);
  Viewer c = Joined(JoinRequest(42, "erin", 10));
  LeaveCleanly(b);
  LeaveCleanly(c);
  ExpectCount("joinRoom", 3);
}

TEST_F(SessionE2eTest, GetRoomListsWhoIsPresent) {
  Viewer a = Joined(JoinRequest(5, "alice", 11, true));
  Viewer b = Joined(JoinRequest(5, "guest", std::nullopt, false));
  Viewer c = Joined(JoinRequest(6, "other", 12, true));
  grpc::ClientContext ctx;
  v1::GetRoomRequest req;
  req.set_performer_id(5);
  v1::GetRoomResponse resp;
  ASSERT_TRUE(stub_->GetRoom(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.viewers_size(), 2);
  EXPECT_EQ(resp.viewers(0).nickname(), "alice_1000");
  EXPECT_EQ(resp.viewers(0).customer_id(), 11);
  EXPECT_TRUE(resp.viewers(0).registered());
  EXPECT_EQ(resp.viewers(1).nickname(), "guest_1001");
  EXPECT_FALSE(resp.viewers(1).has_customer_id());
  EXPECT_GT(resp.viewers(0).joined_at().seconds(), 1700000000);
  LeaveCleanly(a);
  grpc::ClientContext ctx2;
  resp.Clear();
  ASSERT_TRUE(stub_->GetRoom(&ctx2, req, &resp).ok());
  EXPECT_EQ(resp.viewers_size(), 1);
  grpc::ClientContext ctx3;
  req.set_performer_id(0);
  EXPECT_EQ(stub_->GetRoom(&ctx3, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  LeaveCleanly(b);
  LeaveCleanly(c);
}

TEST_F(SessionE2eTest, UnaryUpdateCredits) {
  v1::UpdateCreditsRequest req;
  req.set_customer_id(7);
  req.set_credits(30);
  v1::UpdateCreditsResponse resp;
  {
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub_->UpdateCredits(&ctx, req, &resp).ok());
    EXPECT_EQ(sim_->Requests("updateCredits")[0].body,
              "function=updateCredits&customerId=7&credits=30");
  }
  {
    vs::FaultRule reject;
    reject.function = "updateCredits";
    reject.reject = true;
    reject.message = "unknown customer";
    reject.times = 1;
    sim_->AddFault(reject);
    grpc::ClientContext ctx;
    grpc::Status status = stub_->UpdateCredits(&ctx, req, &resp);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(status.error_message(), "unknown customer");
  }
  {
    grpc::ClientContext ctx;
    v1::UpdateCreditsRequest bad;
    bad.set_customer_id(0);
    EXPECT_EQ(stub_->UpdateCredits(&ctx, bad, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    PresenceServerOptions options = Options();
    options.vs.retry.max_total = absl::Milliseconds(200);
    StartServer(options);
    sim_->Stop();
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->UpdateCredits(&ctx, req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
}

TEST_F(SessionE2eTest, HundredsOfConcurrentSessionsBalanceJoinsAndLeaves) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      std::vector<Viewer> viewers;
      for (int i = 0; i < kPerThread; ++i) {
        viewers.push_back(
            Joined(JoinRequest(100 + t, absl::StrCat("t", t, "v", i), t * 1000 + i + 1)));
      }
      for (int i = 0; i < kPerThread; ++i) {
        Viewer& v = viewers[i];
        switch (i % 3) {
          case 0:
            LeaveCleanly(v);
            break;
          case 1: {
            v.stream->WritesDone();
            SessionResponse resp;
            while (v.stream->Read(&resp)) {
            }
            EXPECT_TRUE(v.stream->Finish().ok());
            break;
          }
          case 2:
            v.context->TryCancel();
            v.stream->Finish();
            break;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ExpectCount("joinRoom", kThreads * kPerThread);
  ExpectCount("leaveRoom", kThreads * kPerThread);
  // Every join's display nickname left exactly once.
  std::map<std::string, int> left;
  for (const auto& r : sim_->Requests("leaveRoom")) ++left[*r.Field("nickname")];
  EXPECT_EQ(left.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& [nick, n] : left) EXPECT_EQ(n, 1) << nick;
  EXPECT_TRUE(WaitFor([this] { return server_->registry().open() == 0; }));
  EXPECT_EQ(server_->registry().open(), 0);
  EXPECT_EQ(server_->registry().joined(), 0);
}

// Parses the Prometheus text format strictly enough to catch a broken page:
// every sample line is `name{labels} value` with a numeric value, and every
// sample's family was declared by # TYPE. Returns samples by "name{labels}".
std::map<std::string, double> ParseMetrics(const std::string& page) {
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream in(page);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name;
      t >> name;
      typed.insert(name);
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    EXPECT_NE(space, std::string::npos) << line;
    std::string key = line.substr(0, space);
    double value = 0;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value)) << line;
    std::string family = key.substr(0, key.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(family) && absl::EndsWith(family, suffix)) {
        family = family.substr(0, family.size() - strlen(suffix));
      }
    }
    EXPECT_TRUE(typed.count(family)) << "no # TYPE for " << family;
    samples[key] = value;
  }
  return samples;
}

TEST_F(SessionE2eTest, MetricsPageParsesAndItsNumbersMove) {
  ASSERT_GT(server_->metrics_port(), 0);
  httplib::Client http("127.0.0.1", server_->metrics_port());
  auto before = http.Get("/metrics");
  ASSERT_TRUE(before);
  EXPECT_EQ(before->status, 200);
  std::map<std::string, double> m0 = ParseMetrics(before->body);
  EXPECT_EQ(m0["presence_joins_total{outcome=\"accepted\"}"], 0);

  Viewer v = Joined();
  sim_->WaitForCount("pingRoom", 2, absl::Seconds(5));
  SessionRequest activity;
  activity.mutable_activity();
  for (int i = 0; i < 6; ++i) {  // Over more than one interval: some ping is skipped.
    ASSERT_TRUE(v.stream->Write(activity));
    absl::SleepFor(kPing / 4);  // The viewer's pace, not a wait.
  }
  ASSERT_TRUE(WaitFor([this] { return server_->scheduler().stats().skipped_for_activity >= 1; }));
  std::map<std::string, double> m1 = ParseMetrics(http.Get("/metrics")->body);
  EXPECT_EQ(m1["presence_sessions_joined"], 1);
  EXPECT_EQ(m1["presence_joins_total{outcome=\"accepted\"}"], 1);
  EXPECT_GE(m1["presence_pings_total{outcome=\"accepted\"}"], 2);
  EXPECT_GE(m1["presence_pings_skipped_total{reason=\"activity\"}"], 1);
  EXPECT_GE(m1["presence_ping_lateness_seconds_count"], 2);
  EXPECT_GE(m1["presence_vs_request_duration_seconds_count{function=\"joinRoom\"}"], 1);
  EXPECT_EQ(m1["presence_vs_request_duration_seconds_bucket{function=\"joinRoom\",le=\"+Inf\"}"],
            1);

  LeaveCleanly(v);
  sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5));
  ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
  std::map<std::string, double> m2 = ParseMetrics(http.Get("/metrics")->body);
  EXPECT_EQ(m2["presence_sessions_joined"], 0);
  EXPECT_EQ(m2["presence_leaves_total{outcome=\"sent\"}"], 1);
  EXPECT_EQ(m2["presence_leaves_total{outcome=\"accepted\"}"], 1);
  EXPECT_EQ(m2["presence_vs_requests_in_flight"], 0);
}

}  // namespace
}  // namespace presence::testing
