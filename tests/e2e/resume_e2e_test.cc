// End-to-end: resume without flicker (issue 13), on one server. A stream
// that is lost (not left) keeps its session held for --resume_grace; a new
// stream with its token takes it over and VS hears nothing.

#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/admin/boot_server.h"
#include "tests/testing/gateway_fixture.h"

namespace presence::testing {
namespace {

constexpr absl::Duration kPing = absl::Milliseconds(200);

class ResumeE2eTest : public GatewayTest {
 protected:
  void StartWithGrace(absl::Duration grace) {
    PresenceServerOptions options = Options();
    options.ping_interval = kPing;
    options.resume_grace = grace;
    options.boot_listen = "127.0.0.1:0";
    options.boot_secret = "boot-secret";
    StartServer(options);
  }

  // Joins and returns the Joined.
  v1::Joined Join(Viewer& v, const SessionRequest& join) {
    v = Open();
    EXPECT_TRUE(v.stream->Write(join));
    SessionResponse resp;
    EXPECT_TRUE(v.stream->Read(&resp));
    EXPECT_TRUE(resp.has_joined()) << resp.DebugString();
    return resp.joined();
  }

  static SessionRequest WithToken(SessionRequest join, const std::string& token) {
    join.mutable_join()->set_resume_token(token);
    return join;
  }

  static void Lose(Viewer& v) {
    v.context->TryCancel();
    v.Drain();
  }

  bool WaitForHeld(int64_t n) {
    return WaitFor([&] { return server_->context().presences->held_sessions() == n; });
  }
};

TEST_F(ResumeE2eTest, AResumeWithinTheGraceIsInvisibleToVs) {
  StartWithGrace(absl::Seconds(5));
  Viewer first;
  v1::Joined joined = Join(first, JoinRequest());
  EXPECT_EQ(joined.resume_token().size(), 32u);
  EXPECT_FALSE(joined.resumed());
  ASSERT_TRUE(sim_->WaitForCount("pingRoom", 1, absl::Seconds(5)));
  Lose(first);
  ASSERT_TRUE(WaitForHeld(1));
  // Pings go on while the session is held.
  int64_t pings = sim_->Count("pingRoom");
  ASSERT_TRUE(sim_->WaitForCount("pingRoom", pings + 2, absl::Seconds(5)));

  Viewer second;
  v1::Joined resumed = Join(second, WithToken(JoinRequest(), joined.resume_token()));
  EXPECT_TRUE(resumed.resumed());
  EXPECT_EQ(resumed.nickname(), joined.nickname());
  EXPECT_EQ(resumed.session_id(), joined.session_id());
  EXPECT_EQ(resumed.resume_token().size(), 32u);
  EXPECT_NE(resumed.resume_token(), joined.resume_token());
  EXPECT_EQ(server_->context().counters.resumes.load(), 1);
  ASSERT_TRUE(sim_->WaitForCount("pingRoom", sim_->Count("pingRoom") + 2, absl::Seconds(5)));
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
  EXPECT_EQ(sim_->Count("leaveRoom"), 0);
  // No gap in the pings longer than an interval and a second.
  std::vector<vs::RecordedRequest> all = sim_->Requests("pingRoom");
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i].at - all[i - 1].at, kPing + absl::Seconds(1)) << i;
  }
  LeaveCleanly(second);
  ExpectLedgerBalanced();
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);
}

TEST_F(ResumeE2eTest, WithoutAResumeTheGraceEndsInExactlyOneLeave) {
  const absl::Duration grace = absl::Milliseconds(600);
  StartWithGrace(grace);
  Viewer v;
  Join(v, JoinRequest());
  absl::Time lost = absl::Now();
  Lose(v);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  absl::Duration after = sim_->Requests("leaveRoom")[0].at - lost;
  EXPECT_GE(after, grace);
  EXPECT_LT(after, grace + absl::Seconds(1));
  EXPECT_EQ(server_->context().counters.holds_expired.load(), 1);
  EXPECT_EQ(server_->context().counters.leaves_after_grace.load(), 1);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, AnExplicitLeaveEndsTheSessionAndItsToken) {
  StartWithGrace(absl::Seconds(5));
  Viewer v;
  v1::Joined joined = Join(v, JoinRequest());
  LeaveCleanly(v);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5)));
  Viewer again;
  v1::Joined fresh = Join(again, WithToken(JoinRequest(), joined.resume_token()));
  EXPECT_FALSE(fresh.resumed());
  EXPECT_NE(fresh.session_id(), joined.session_id());
  EXPECT_EQ(sim_->Count("joinRoom"), 2);
  LeaveCleanly(again);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, AWrongRoomWrongCustomerOrReplayedTokenJoinsAfresh) {
  StartWithGrace(absl::Seconds(5));
  Viewer v;
  v1::Joined joined = Join(v, JoinRequest(42, "bob", 7));
  Lose(v);
  ASSERT_TRUE(WaitForHeld(1));
  Viewer other_room, other_customer, right, replay;
  EXPECT_FALSE(
      Join(other_room, WithToken(JoinRequest(43, "bob", 7), joined.resume_token())).resumed());
  EXPECT_FALSE(
      Join(other_customer, WithToken(JoinRequest(42, "bob", 8), joined.resume_token())).resumed());
  EXPECT_TRUE(Join(right, WithToken(JoinRequest(42, "bob", 7), joined.resume_token())).resumed());
  // Used once: the same token again is a fresh stream (sharing the customer's
  // presence, as any second stream of a registered customer does).
  v1::Joined replayed = Join(replay, WithToken(JoinRequest(42, "bob", 7), joined.resume_token()));
  EXPECT_FALSE(replayed.resumed());
  EXPECT_NE(replayed.session_id(), joined.session_id());
  EXPECT_EQ(sim_->Count("joinRoom"), 3);  // Room 42/customer 7 once, 43/7, 42/8.
  for (Viewer* x : {&other_room, &other_customer, &right, &replay}) LeaveCleanly(*x);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, AGuestResumesWithTheSameNicknameOnly) {
  StartWithGrace(absl::Seconds(5));
  Viewer v;
  v1::Joined joined = Join(v, JoinRequest(42, "guest", std::nullopt, false));
  Lose(v);
  ASSERT_TRUE(WaitForHeld(1));
  Viewer renamed;
  EXPECT_FALSE(
      Join(renamed, WithToken(JoinRequest(42, "other", std::nullopt, false), joined.resume_token()))
          .resumed());
  Viewer same;
  v1::Joined resumed =
      Join(same, WithToken(JoinRequest(42, "guest", std::nullopt, false), joined.resume_token()));
  EXPECT_TRUE(resumed.resumed());
  EXPECT_EQ(resumed.nickname(), joined.nickname());
  LeaveCleanly(renamed);
  LeaveCleanly(same);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, GraceZeroIsTodaysBehaviour) {
  StartWithGrace(absl::ZeroDuration());
  Viewer v;
  v1::Joined joined = Join(v, JoinRequest());
  EXPECT_TRUE(joined.resume_token().empty());
  Lose(v);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5)));
  EXPECT_EQ(server_->context().presences->held_sessions(), 0);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, ABootEndsAHeldSession) {
  StartWithGrace(absl::Seconds(30));
  Viewer v;
  v1::Joined joined = Join(v, JoinRequest(42, "bob", 7));
  Lose(v);
  ASSERT_TRUE(WaitForHeld(1));
  EXPECT_EQ(
      admin::BootServer::Boot(const_cast<service::ServiceContext*>(&server_->context()), 7, 42), 1);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5)));
  Viewer again;
  EXPECT_FALSE(Join(again, WithToken(JoinRequest(42, "bob", 7), joined.resume_token())).resumed());
  LeaveCleanly(again);
  ExpectLedgerBalanced();
}

TEST_F(ResumeE2eTest, AShutdownLeavesWhatItHolds) {
  StartWithGrace(absl::Seconds(30));
  Viewer v;
  Join(v, JoinRequest());
  Lose(v);
  ASSERT_TRUE(WaitForHeld(1));
  EXPECT_TRUE(server_->Shutdown(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);
  ExpectLedgerBalanced();
}

// Without Redis but with --state_dir, a stopped server hands its sessions to
// its next start: the drain holds them instead of leaving them, and the new
// process pings them at once and takes their resumes. VS sees nothing but
// pings, and one leave for the viewer who never came back, at its grace.
TEST_F(ResumeE2eTest, ARestartWithAStateDirTakesTheResumes) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  PresenceServerOptions options = Options();
  options.ping_interval = kPing;
  options.resume_grace = absl::Seconds(3);
  options.state_dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/handover");
  StartServer(options);
  Viewer a, b, c;
  v1::Joined ja = Join(a, JoinRequest(42, "alice", 7));
  v1::Joined jb = Join(b, JoinRequest(42, "bob", 8));
  v1::Joined jc = Join(c, JoinRequest(42, "carl", std::nullopt, false));
  EXPECT_TRUE(server_->Shutdown(absl::Now() + absl::Seconds(10)));
  for (Viewer* v : {&a, &b, &c}) {
    EXPECT_EQ(v->Drain().error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_EQ(sim_->Count("leaveRoom"), 0);

  StartServer(options);  // The next start of the same server.
  EXPECT_EQ(server_->context().presences->held_sessions(), 3);
  int64_t pings = sim_->Count("pingRoom");
  ASSERT_TRUE(sim_->WaitForCount("pingRoom", pings + 3, absl::Seconds(5)));
  Viewer a2, b2;
  v1::Joined ra = Join(a2, WithToken(JoinRequest(42, "alice", 7), ja.resume_token()));
  v1::Joined rb = Join(b2, WithToken(JoinRequest(42, "bob", 8), jb.resume_token()));
  EXPECT_TRUE(ra.resumed());
  EXPECT_TRUE(rb.resumed());
  EXPECT_EQ(ra.nickname(), ja.nickname());
  EXPECT_EQ(ra.session_id(), ja.session_id());
  EXPECT_EQ(rb.nickname(), jb.nickname());
  EXPECT_EQ(sim_->Count("joinRoom"), 3);
  // Carl never comes back: one leave when his grace (from the drain) ends.
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].Field("nickname"), jc.nickname());
  LeaveCleanly(a2);
  LeaveCleanly(b2);
  ExpectLedgerBalanced();
  EXPECT_EQ(sim_->Count("leaveRoom"), 3);
}

}  // namespace
}  // namespace presence::testing
