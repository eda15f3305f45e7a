// The presence seam against a real VS (the simulator on loopback): each test
// drives LocalDirectory as the reactor does and checks what VS saw.

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "server/base/clock.h"
#include "server/base/sha256.h"
#include "server/presence/leave_sender.h"
#include "server/presence/local_directory.h"
#include "server/vs_simulator/vs_simulator.h"

namespace presence::presences {
namespace {

using session::JoinAnswer;
using session::SessionCore;

constexpr absl::Duration kWait = absl::Seconds(10);

vs::FaultRule Fault(const std::string& function, int times = 1) {
  vs::FaultRule rule;
  rule.function = function;
  rule.times = times;
  return rule;
}
vs::FaultRule Slow(const std::string& function, absl::Duration latency) {
  vs::FaultRule rule = Fault(function);
  rule.latency = latency;
  return rule;
}

// A stream as the reactor would be: records the answers that reach it.
class FakeStream : public session::SessionStream {
 public:
  void OnJoinAnswer(const JoinAnswer& answer) override {
    absl::MutexLock lock(&mu_);
    answers_.push_back(answer);
  }
  void OnPingFailed(const vs::VsResult&) override {
    absl::MutexLock lock(&mu_);
    ++ping_failures_;
  }
  void OnCreditsAnswer(const vs::VsResult&) override {}
  void LeaveForDrain() override {}
  void EndForDrain() override {}
  void EndForBoot() override {}

  // Waits for the one answer a stream gets.
  std::optional<JoinAnswer> Answer() {
    absl::MutexLock lock(&mu_);
    auto has = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !answers_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&has), kWait)) return std::nullopt;
    return answers_.front();
  }
  int answers() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(answers_.size());
  }
  int ping_failures() {
    absl::MutexLock lock(&mu_);
    return ping_failures_;
  }

 private:
  absl::Mutex mu_;
  std::vector<JoinAnswer> answers_ ABSL_GUARDED_BY(mu_);
  int ping_failures_ ABSL_GUARDED_BY(mu_) = 0;
};

class LocalPresenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(sim_.Start().ok());
    vs::VsClientOptions options;
    options.base_url = sim_.url();
    options.key = "simulator-key";
    options.retry.max_total = absl::Seconds(2);
    auto client = vs::VsClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status();
    vs_ = *std::move(client);
    context_.vs = vs_.get();
    context_.scheduler = &scheduler_;
    context_.leaves = &leaves_;
    context_.counters = &counters_;
  }
  void TearDown() override {
    if (vs_) vs_->Drain(absl::Now() + kWait);
  }

  // A stream and its core.
  struct Stream {
    std::unique_ptr<FakeStream> fake = std::make_unique<FakeStream>();
    std::shared_ptr<SessionCore> core;
  };
  Stream NewStream(const std::string& id) {
    Stream s;
    s.core = std::make_shared<SessionCore>(id, s.fake.get());
    return s;
  }
  // The answer of an attachment: at once, or through the stream.
  static std::optional<JoinAnswer> AnswerOf(const Attachment& a, Stream& s) {
    return a.answer.has_value() ? a.answer : s.fake->Answer();
  }

  static vs::JoinRoomRequest Customer(int64_t performer, int64_t customer) {
    vs::JoinRoomRequest join;
    join.performer_id = performer;
    join.customer_id = customer;
    join.registered = true;
    join.nickname = "alice";
    join.ip_address = "10.0.0.1";
    return join;
  }
  static vs::JoinRoomRequest Guest(int64_t performer, const std::string& nickname) {
    vs::JoinRoomRequest join;
    join.performer_id = performer;
    join.nickname = nickname;
    join.ip_address = "10.0.0.2";
    return join;
  }

  vs::VsSimulator sim_;
  base::FakeClock clock_;
  session::PingScheduler scheduler_{absl::Seconds(10), &clock_,
                                    session::PingScheduler::Mode::kManual};
  metrics::GatewayCounters counters_;
  PresenceContext context_;
  LeaveSender leaves_{&context_};
  std::unique_ptr<vs::VsClient> vs_;
  LocalDirectory directory_{&context_};
};

TEST_F(LocalPresenceTest, AGuestJoinsAndLeavesOnce) {
  Stream s = NewStream("s1");
  Attachment a = directory_.Attach(Guest(7, "bob"), s.core);
  ASSERT_NE(a.presence, nullptr);
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value());
  EXPECT_TRUE(answer->result.accepted());
  EXPECT_TRUE(absl::StartsWith(answer->display_nickname, "bob_"));
  a.presence->Detach(*s.core, Departure::kLeft);
  a.presence->Detach(*s.core, Departure::kLeft);  // A second detach of the same stream is nothing.
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  auto leaves = sim_.Requests("leaveRoom");
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(leaves[0].Field("nickname"), answer->display_nickname);
  EXPECT_EQ(sim_.Count("joinRoom"), 1);
  EXPECT_EQ(directory_.shared_presences(), 0);
}

TEST_F(LocalPresenceTest, GuestsWithTheSameNicknameAreNeverShared) {
  Stream s1 = NewStream("s1"), s2 = NewStream("s2");
  Attachment a1 = directory_.Attach(Guest(7, "bob"), s1.core);
  Attachment a2 = directory_.Attach(Guest(7, "bob"), s2.core);
  ASSERT_TRUE(AnswerOf(a1, s1).has_value());
  ASSERT_TRUE(AnswerOf(a2, s2).has_value());
  EXPECT_NE(a1.presence, a2.presence);
  EXPECT_EQ(sim_.Count("joinRoom"), 2);
}

TEST_F(LocalPresenceTest, ACustomersStreamsShareOneJoinAndTheLastOneLeaves) {
  Stream s1 = NewStream("s1"), s2 = NewStream("s2");
  Attachment a1 = directory_.Attach(Customer(7, 42), s1.core);
  std::optional<JoinAnswer> first = AnswerOf(a1, s1);
  ASSERT_TRUE(first.has_value() && first->result.accepted());
  Attachment a2 = directory_.Attach(Customer(7, 42), s2.core);
  ASSERT_TRUE(a2.answer.has_value());  // Joined already: answered at once.
  EXPECT_EQ(a2.answer->display_nickname, first->display_nickname);
  EXPECT_EQ(a1.presence, a2.presence);
  EXPECT_EQ(counters_.joins_shared.load(), 1);
  a1.presence->Detach(*s1.core, Departure::kLeft);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
  a2.presence->Detach(*s2.core, Departure::kLeft);
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  EXPECT_EQ(sim_.Count("joinRoom"), 1);
}

TEST_F(LocalPresenceTest, StreamsArrivingDuringTheJoinGetTheSameAnswer) {
  sim_.AddFault(Slow("joinRoom", absl::Milliseconds(300)));
  Stream s1 = NewStream("s1"), s2 = NewStream("s2");
  Attachment a1 = directory_.Attach(Customer(7, 42), s1.core);
  Attachment a2 = directory_.Attach(Customer(7, 42), s2.core);
  EXPECT_FALSE(a1.answer.has_value());
  EXPECT_FALSE(a2.answer.has_value());
  std::optional<JoinAnswer> one = s1.fake->Answer(), two = s2.fake->Answer();
  ASSERT_TRUE(one.has_value() && two.has_value());
  EXPECT_TRUE(two->result.accepted());
  EXPECT_EQ(one->display_nickname, two->display_nickname);
  EXPECT_EQ(sim_.Count("joinRoom"), 1);
}

TEST_F(LocalPresenceTest, AJoinAcceptedAfterItsOnlyStreamEndedIsLeftAtOnce) {
  sim_.AddFault(Slow("joinRoom", absl::Milliseconds(300)));
  Stream s = NewStream("s1");
  Attachment a = directory_.Attach(Customer(7, 42), s.core);
  a.presence->Detach(*s.core, Departure::kLeft);
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  EXPECT_EQ(s.fake->answers(), 0);
  auto joins = sim_.Requests("joinRoom");
  auto leaves = sim_.Requests("leaveRoom");
  ASSERT_EQ(joins.size(), 1u);
  EXPECT_EQ(leaves[0].Field("nickname"), joins[0].answered_nickname);
}

TEST_F(LocalPresenceTest, ARefusedJoinIsRefusedForEveryWaitingStreamAndNeverLeft) {
  vs::FaultRule refuse = Slow("joinRoom", absl::Milliseconds(200));
  refuse.reject = true;
  sim_.AddFault(refuse);
  Stream s1 = NewStream("s1"), s2 = NewStream("s2");
  Attachment a1 = directory_.Attach(Customer(7, 42), s1.core);
  Attachment a2 = directory_.Attach(Customer(7, 42), s2.core);
  std::optional<JoinAnswer> one = s1.fake->Answer(), two = s2.fake->Answer();
  ASSERT_TRUE(one.has_value() && two.has_value());
  EXPECT_EQ(one->result.outcome, vs::VsOutcome::kRejected);
  EXPECT_EQ(two->result.outcome, vs::VsOutcome::kRejected);
  a1.presence->Detach(*s1.core, Departure::kLeft);
  a2.presence->Detach(*s2.core, Departure::kLeft);
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
  EXPECT_EQ(directory_.shared_presences(), 0);
  // The customer can join again: a fresh presence.
  Stream s3 = NewStream("s3");
  Attachment a3 = directory_.Attach(Customer(7, 42), s3.core);
  ASSERT_TRUE(AnswerOf(a3, s3).has_value());
  EXPECT_TRUE(AnswerOf(a3, s3)->result.accepted());
}

TEST_F(LocalPresenceTest, AJoinWithAnUnknownOutcomeGetsABestEffortLeave) {
  vs::FaultRule drop = Fault("joinRoom", -1);
  drop.drop_connection = true;
  sim_.AddFault(drop);
  Stream s = NewStream("s1");
  Attachment a = directory_.Attach(Guest(7, "bob"), s.core);
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value());
  EXPECT_FALSE(answer->result.accepted());
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  EXPECT_EQ(sim_.Requests("leaveRoom")[0].Field("nickname"), "bob");
}

TEST_F(LocalPresenceTest, PingsArePerPresenceAndFailuresReachEveryStream) {
  Stream s1 = NewStream("s1"), s2 = NewStream("s2");
  Attachment a1 = directory_.Attach(Customer(7, 42), s1.core);
  ASSERT_TRUE(AnswerOf(a1, s1).has_value());
  Attachment a2 = directory_.Attach(Customer(7, 42), s2.core);
  vs::FaultRule refuse = Fault("pingRoom");
  refuse.reject = true;
  sim_.AddFault(refuse);
  clock_.Advance(absl::Seconds(10));
  scheduler_.SendDue();
  ASSERT_TRUE(sim_.WaitForCount("pingRoom", 1, kWait));
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("pingRoom"), 1);
  EXPECT_EQ(s1.fake->ping_failures(), 1);
  EXPECT_EQ(s2.fake->ping_failures(), 1);
}

TEST_F(LocalPresenceTest, ACustomerArrivingWhileTheLastLeaveIsAtVsJoinsAfterIt) {
  Stream s1 = NewStream("s1");
  Attachment a1 = directory_.Attach(Customer(7, 42), s1.core);
  ASSERT_TRUE(AnswerOf(a1, s1).has_value());
  sim_.AddFault(Slow("leaveRoom", absl::Milliseconds(300)));
  a1.presence->Detach(*s1.core, Departure::kLeft);
  Stream s2 = NewStream("s2"), s3 = NewStream("s3");
  Attachment a2 = directory_.Attach(Customer(7, 42), s2.core);
  Attachment a3 = directory_.Attach(Customer(7, 42), s3.core);  // Shares the waiting one.
  EXPECT_FALSE(a2.answer.has_value());
  EXPECT_FALSE(a3.answer.has_value());
  EXPECT_EQ(a2.presence, a3.presence);
  std::optional<JoinAnswer> two = s2.fake->Answer(), three = s3.fake->Answer();
  ASSERT_TRUE(two.has_value() && three.has_value());
  EXPECT_TRUE(two->result.accepted());
  EXPECT_EQ(two->display_nickname, three->display_nickname);
  // VS saw join, leave, join: the second join never overtook the leave.
  std::vector<std::string> order;
  for (const auto& r : sim_.Requests()) order.push_back(r.function);
  EXPECT_EQ(order, (std::vector<std::string>{"joinRoom", "leaveRoom", "joinRoom"}));
}

// As the reactor does once a stream has joined: its id and resume token.
void MarkJoined(SessionCore& core, const JoinAnswer& answer, const std::string& token,
                const vs::JoinRoomRequest& join) {
  session::SessionIdentity who;
  who.performer_id = join.performer_id;
  who.customer_id = join.customer_id;
  who.registered = join.registered;
  core.set_identity(std::move(who));
  core.set_joined(answer.display_nickname, absl::Now(),
                  std::make_unique<const session::Resumable>(
                      session::Resumable{join.nickname, core.id(), token}));
}

TEST_F(LocalPresenceTest, ALostStreamIsHeldAndResumedWithoutVs) {
  context_.resume_grace = absl::Seconds(10);
  Stream s1 = NewStream("s1");
  vs::JoinRoomRequest join = Guest(7, "bob");
  Attachment a1 = directory_.Attach(join, s1.core);
  std::optional<JoinAnswer> first = AnswerOf(a1, s1);
  ASSERT_TRUE(first.has_value() && first->result.accepted());
  MarkJoined(*s1.core, *first, "token-1", join);
  a1.presence->Detach(*s1.core, Departure::kLost);
  EXPECT_EQ(directory_.held_sessions(), 1);
  Stream s2 = NewStream("s2");
  Attachment a2 = directory_.Attach(join, s2.core, "token-1");
  ASSERT_TRUE(a2.answer.has_value());
  EXPECT_TRUE(a2.answer->result.accepted());
  EXPECT_EQ(a2.answer->display_nickname, first->display_nickname);
  EXPECT_EQ(a2.answer->resumed_session_id, "s1");
  EXPECT_EQ(a2.presence, a1.presence);
  EXPECT_EQ(directory_.held_sessions(), 0);
  // Used once: the same token again joins afresh.
  Stream s3 = NewStream("s3");
  Attachment a3 = directory_.Attach(join, s3.core, "token-1");
  ASSERT_TRUE(AnswerOf(a3, s3).has_value());
  EXPECT_TRUE(AnswerOf(a3, s3)->resumed_session_id.empty());
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("joinRoom"), 2);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
}

TEST_F(LocalPresenceTest, AHoldThatRunsOutIsLeftOnce) {
  context_.resume_grace = absl::Seconds(10);
  Stream s = NewStream("s1");
  vs::JoinRoomRequest join = Customer(7, 42);
  Attachment a = directory_.Attach(join, s.core);
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value());
  MarkJoined(*s.core, *answer, "token-1", join);
  a.presence->Detach(*s.core, Departure::kLost);
  clock_.Advance(absl::Seconds(9));
  scheduler_.SendDue();
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
  EXPECT_EQ(sim_.Count("pingRoom"), 0);  // Within the first interval (10 s).
  clock_.Advance(absl::Seconds(1));
  scheduler_.SendDue();  // The grace is over: the hold ends, and so the presence.
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("leaveRoom"), 1);
  EXPECT_EQ(directory_.held_sessions(), 0);
  EXPECT_EQ(counters_.holds_expired.load(), 1);
}

TEST_F(LocalPresenceTest, AnExplicitLeaveIsNeverHeld) {
  context_.resume_grace = absl::Seconds(10);
  Stream s = NewStream("s1");
  vs::JoinRoomRequest join = Guest(7, "bob");
  Attachment a = directory_.Attach(join, s.core);
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value());
  MarkJoined(*s.core, *answer, "token-1", join);
  a.presence->Detach(*s.core, Departure::kLeft);
  EXPECT_EQ(directory_.held_sessions(), 0);
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
}

// The fleet's side of resumes, answered at once (the fleet itself is tested
// against a real Redis in tests/fleet).
class FakeHolds : public HoldExchange {
 public:
  void Held(const HoldRecord& hold) override { held.push_back(hold); }
  void Take(const HoldRecord& viewer, const std::string&,
            absl::AnyInvocable<void(std::optional<Taken>) &&> done) override {
    asked.push_back(viewer);
    std::move(done)(take_answer);
  }
  void Expire(const std::string&, absl::AnyInvocable<void(Expiry) &&> done) override {
    std::move(done)(expiry);
  }
  void Ended(const std::string& digest) override { ended.push_back(digest); }

  std::vector<HoldRecord> held;
  std::vector<HoldRecord> asked;
  std::vector<std::string> ended;
  std::optional<Taken> take_answer;
  Expiry expiry = Expiry::kLeave;
};

class FleetResumeTest : public LocalPresenceTest {
 protected:
  void SetUp() override {
    LocalPresenceTest::SetUp();
    context_.resume_grace = absl::Seconds(10);
    context_.holds = &holds_;
  }
  // A guest joined on this replica and lost with `token`: held.
  std::shared_ptr<Presence> HeldGuest(Stream& s, const std::string& token) {
    vs::JoinRoomRequest join = Guest(7, "bob");
    Attachment a = directory_.Attach(join, s.core);
    std::optional<JoinAnswer> answer = AnswerOf(a, s);
    EXPECT_TRUE(answer.has_value() && answer->result.accepted());
    MarkJoined(*s.core, *answer, token, join);
    a.presence->Detach(*s.core, Departure::kLost);
    return a.presence;
  }

  FakeHolds holds_;
};

TEST_F(FleetResumeTest, AHoldIsSharedByItsTokensDigestOnly) {
  Stream s = NewStream("s1");
  HeldGuest(s, "token-1");
  ASSERT_EQ(holds_.held.size(), 1u);
  const HoldRecord& hold = holds_.held[0];
  EXPECT_EQ(hold.digest, base::Sha256Hex("token-1"));
  EXPECT_EQ(hold.presence_id, "s1");
  EXPECT_EQ(hold.session_id, "s1");
  EXPECT_EQ(hold.asked_nickname, "bob");
  EXPECT_TRUE(absl::StartsWith(hold.display_nickname, "bob_"));
  EXPECT_FALSE(hold.shared);
  // Resumed here: the fleet is told the hold ended.
  Stream again = NewStream("s2");
  Attachment a = directory_.Attach(Guest(7, "bob"), again.core, "token-1");
  ASSERT_TRUE(a.answer.has_value());
  EXPECT_EQ(a.answer->resumed_session_id, "s1");
  EXPECT_TRUE(holds_.asked.empty());
  EXPECT_EQ(holds_.ended, std::vector<std::string>{hold.digest});
}

TEST_F(FleetResumeTest, ATokenHeldElsewhereIsTakenOverWithoutVsAndPingedAtOnce) {
  holds_.take_answer = HoldExchange::Taken{"s0", "bob_4242", false, true};
  Stream s = NewStream("s1");
  Attachment a = directory_.Attach(Guest(7, "bob"), s.core, "token-9");
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value() && answer->result.accepted());
  EXPECT_EQ(answer->display_nickname, "bob_4242");
  EXPECT_EQ(answer->resumed_session_id, "s0");
  ASSERT_EQ(holds_.asked.size(), 1u);
  EXPECT_EQ(holds_.asked[0].digest, base::Sha256Hex("token-9"));
  EXPECT_EQ(holds_.asked[0].performer_id, 7);
  scheduler_.SendDue();  // No time passed: the holder's last ping may be an interval old.
  ASSERT_TRUE(sim_.WaitForCount("pingRoom", 1, kWait));
  a.presence->Detach(*s.core, Departure::kLeft);
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  EXPECT_EQ(sim_.Count("joinRoom"), 0);
  EXPECT_EQ(counters_.resumes.load(), 1);
}

TEST_F(FleetResumeTest, ATokenNobodyHoldsJoinsAfresh) {
  Stream s = NewStream("s1");
  Attachment a = directory_.Attach(Guest(7, "bob"), s.core, "token-9");
  std::optional<JoinAnswer> answer = AnswerOf(a, s);
  ASSERT_TRUE(answer.has_value() && answer->result.accepted());
  EXPECT_TRUE(answer->resumed_session_id.empty());
  EXPECT_EQ(sim_.Count("joinRoom"), 1);
}

TEST_F(FleetResumeTest, AHoldTakenElsewhereIsLetGoWithoutALeave) {
  Stream s = NewStream("s1");
  HeldGuest(s, "token-1");
  directory_.DropHeld(base::Sha256Hex("token-1"));
  EXPECT_EQ(directory_.held_sessions(), 0);
  EXPECT_EQ(counters_.holds_moved.load(), 1);
  clock_.Advance(absl::Seconds(30));
  scheduler_.SendDue();  // Neither pings nor an expiry from here.
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("pingRoom"), 0);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
}

TEST_F(FleetResumeTest, AtTheGraceTheFleetDecidesWhetherToLeave) {
  Stream taken = NewStream("s1");
  HeldGuest(taken, "token-1");
  holds_.expiry = HoldExchange::Expiry::kTaken;
  clock_.Advance(absl::Seconds(10));
  scheduler_.SendDue();
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("leaveRoom"), 0);
  EXPECT_EQ(directory_.held_sessions(), 0);
  Stream ours = NewStream("s2");
  HeldGuest(ours, "token-2");
  holds_.expiry = HoldExchange::Expiry::kLeave;
  clock_.Advance(absl::Seconds(10));
  scheduler_.SendDue();
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  EXPECT_EQ(counters_.leaves_after_grace.load(), 1);
}

TEST_F(FleetResumeTest, AnAdoptedPresenceIsPingedAtOnceResumedOrLeftAtItsGrace) {
  auto adopted = [](const std::string& id, const std::string& token, absl::Duration left) {
    HoldRecord hold;
    hold.digest = base::Sha256Hex(token);
    hold.presence_id = id;
    hold.session_id = id;
    hold.performer_id = 7;
    hold.asked_nickname = "bob";
    hold.display_nickname = "bob_" + id;
    hold.expires = absl::Now() + left;
    return AdoptedPresence{id, vs::RoomPresence{7, std::nullopt, "bob_" + id}, false, true, {hold}};
  };
  directory_.Adopt(adopted("p1", "token-1", absl::Seconds(5)));
  directory_.Adopt(adopted("p2", "token-2", absl::Seconds(5)));
  EXPECT_EQ(directory_.held_sessions(), 2);
  EXPECT_EQ(counters_.holds_adopted.load(), 2);
  scheduler_.SendDue();
  ASSERT_TRUE(sim_.WaitForCount("pingRoom", 2, kWait));
  Stream back = NewStream("s3");
  Attachment a = directory_.Attach(Guest(7, "bob"), back.core, "token-1");
  ASSERT_TRUE(a.answer.has_value());
  EXPECT_EQ(a.answer->display_nickname, "bob_p1");
  EXPECT_EQ(a.answer->resumed_session_id, "p1");
  clock_.Advance(absl::Seconds(6));
  scheduler_.SendDue();  // p2's grace is over.
  ASSERT_TRUE(sim_.WaitForCount("leaveRoom", 1, kWait));
  vs_->Drain(absl::Now() + kWait);
  EXPECT_EQ(sim_.Count("leaveRoom"), 1);
  EXPECT_EQ(sim_.Count("joinRoom"), 0);
}

}  // namespace
}  // namespace presence::presences
