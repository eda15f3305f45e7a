// VsClient against the real VS simulator over loopback sockets.

#include "server/vs/vs_client.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/vs_simulator/vs_simulator.h"
#include "tests/testing/test_pki.h"

namespace presence::vs {
namespace {

constexpr char kKey[] = "s3cr3t K&y=/%";

// Every case runs on both HTTP clients (https:// is libcurl's either way).
class VsClientTest : public ::testing::TestWithParam<VsHttpClient> {
 protected:
  void SetUp() override { StartSimulator(/*relaxed=*/true); }

  void StartSimulator(bool relaxed) {
    VsSimulatorOptions sim_options;
    sim_options.key = kKey;
    sim_options.relaxed_json = relaxed;
    sim_options.threads = 16;
    sim_options.keep_alive_timeout_seconds = 1;
    sim_ = std::make_unique<VsSimulator>(sim_options);
    ASSERT_TRUE(sim_->Start().ok());
  }

  VsClientOptions Options() {
    VsClientOptions options;
    options.base_url = sim_->url();
    options.key = kKey;
    options.http_client = GetParam();
    options.connect_timeout = absl::Milliseconds(500);
    options.request_timeout = absl::Seconds(2);
    options.max_connections = 4;
    options.retry.initial_backoff = absl::Milliseconds(20);
    options.retry.max_backoff = absl::Milliseconds(100);
    options.retry.max_total = absl::Seconds(5);
    options.retry.join_max_total = absl::Milliseconds(300);
    options.uniform01 = [] { return 0.0; };
    return options;
  }

  std::unique_ptr<VsClient> Client(VsClientOptions options) {
    absl::StatusOr<std::unique_ptr<VsClient>> client = VsClient::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status();
    return *std::move(client);
  }

  std::unique_ptr<VsClient> Client() { return Client(Options()); }

  // Runs one call and waits for its result.
  template <typename Call>
  static VsResult Await(Call call) {
    absl::Notification done;
    VsResult out;
    absl::Status taken = call([&](VsResult r) {
      out = std::move(r);
      done.Notify();
    });
    EXPECT_TRUE(taken.ok()) << taken;
    if (!taken.ok()) return out;
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
    return out;
  }

  static JoinRoomRequest Join() {
    JoinRoomRequest join;
    join.performer_id = 42;
    join.nickname = "bob";
    join.customer_id = 7;
    join.ip_address = "203.0.113.5";
    join.registered = true;
    join.credits = 150;
    return join;
  }

  static RoomPresence Presence() { return RoomPresence{42, 7, "bob_1000"}; }

  std::unique_ptr<VsSimulator> sim_;
};

TEST_P(VsClientTest, JoinRoomSendsTheDocumentedBytes) {
  auto client = Client();
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); });
  ASSERT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.nickname, "bob_1000");
  EXPECT_EQ(result.attempts, 1);
  std::vector<RecordedRequest> requests = sim_->Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].body,
            "function=joinRoom&performerId=42&nickname=bob&customerId=7&ipAddress=203.0.113.5"
            "&registered=1&credits=150");
  EXPECT_EQ(requests[0].content_type, "application/x-www-form-urlencoded");
  EXPECT_EQ(requests[0].key, kKey);
}

TEST_P(VsClientTest, LeavePingAndCreditsSendTheDocumentedBytes) {
  auto client = Client();
  ASSERT_TRUE(Await([&](VsCallback cb) {
                return client->LeaveRoom(Presence(), std::move(cb));
              }).accepted());
  ASSERT_TRUE(
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); }).accepted());
  ASSERT_TRUE(Await([&](VsCallback cb) {
                return client->UpdateCredits(UpdateCreditsRequest{7, 99}, std::move(cb));
              }).accepted());
  std::vector<RecordedRequest> requests = sim_->Requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].body, "function=leaveRoom&performerId=42&customerId=7&nickname=bob_1000");
  EXPECT_EQ(requests[1].body, "function=pingRoom&performerId=42&customerId=7&nickname=bob_1000");
  EXPECT_EQ(requests[2].body, "function=updateCredits&customerId=7&credits=99");
}

TEST_P(VsClientTest, GuestOmitsCustomerIdAndSendsRegisteredZero) {
  auto client = Client();
  JoinRoomRequest join = Join();
  join.customer_id.reset();
  join.registered = false;
  ASSERT_TRUE(
      Await([&](VsCallback cb) { return client->JoinRoom(join, std::move(cb)); }).accepted());
  EXPECT_EQ(sim_->Requests()[0].body,
            "function=joinRoom&performerId=42&nickname=bob&ipAddress=203.0.113.5&registered=0"
            "&credits=150");
  RoomPresence guest{42, std::nullopt, "bob_1000"};
  ASSERT_TRUE(
      Await([&](VsCallback cb) { return client->LeaveRoom(guest, std::move(cb)); }).accepted());
  EXPECT_EQ(sim_->Requests()[1].body, "function=leaveRoom&performerId=42&nickname=bob_1000");
}

TEST_P(VsClientTest, HostileNicknameArrivesByteExactAndInjectsNothing) {
  auto client = Client();
  JoinRoomRequest join = Join();
  join.nickname = "Zoë & Co=1+1&customerId=666&function=leaveRoom";
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(join, std::move(cb)); });
  ASSERT_TRUE(result.accepted()) << result.status;
  RecordedRequest seen = sim_->Requests()[0];
  EXPECT_EQ(seen.Field("nickname"), join.nickname);
  EXPECT_EQ(seen.Field("customerId"), "7");
  EXPECT_EQ(seen.Field("function"), "joinRoom");
  EXPECT_EQ(seen.fields.size(), 7u);
  EXPECT_EQ(result.nickname, join.nickname + "_1000");
}

TEST_P(VsClientTest, ParsesStrictJsonAnswersToo) {
  sim_.reset();
  StartSimulator(/*relaxed=*/false);
  auto client = Client();
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); });
  ASSERT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.nickname, "bob_1000");
}

TEST_P(VsClientTest, SuccessFalseIsRejectedWithVsMessage) {
  FaultRule rule;
  rule.function = "joinRoom";
  rule.reject = true;
  rule.message = "performer is offline";
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kRejected);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(result.status.message(), "performer is offline");
  EXPECT_EQ(result.http_status, 200);
}

TEST_P(VsClientTest, WrongKeyIsRejectedByTheSimulator) {
  VsClientOptions options = Options();
  options.key = "not-the-key";
  auto client = Client(options);
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kRejected);
  EXPECT_EQ(result.vs_message, "invalid key");
}

TEST_P(VsClientTest, LeaveIsRetriedAfter503UntilAccepted) {
  FaultRule rule;
  rule.function = "leaveRoom";
  rule.http_status = 503;
  rule.times = 2;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->LeaveRoom(Presence(), std::move(cb)); });
  EXPECT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.attempts, 3);
  EXPECT_EQ(sim_->Count("leaveRoom"), 3);
  EXPECT_EQ(client->stats().retries, 2);
}

TEST_P(VsClientTest, CreditsAreRetriedAfter429) {
  FaultRule rule;
  rule.function = "updateCredits";
  rule.http_status = 429;
  rule.times = 1;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result = Await([&](VsCallback cb) {
    return client->UpdateCredits(UpdateCreditsRequest{7, 1}, std::move(cb));
  });
  EXPECT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(sim_->Count("updateCredits"), 2);
}

TEST_P(VsClientTest, LeaveRetriesStopAtTheBudget) {
  FaultRule rule;
  rule.function = "leaveRoom";
  rule.http_status = 500;
  sim_->AddFault(rule);
  VsClientOptions options = Options();
  options.retry.max_total = absl::Milliseconds(300);
  auto client = Client(options);
  absl::Time start = absl::Now();
  VsResult result =
      Await([&](VsCallback cb) { return client->LeaveRoom(Presence(), std::move(cb)); });
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(result.outcome, VsOutcome::kHttpError);
  EXPECT_EQ(result.http_status, 500);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  // 20+40+80+100 = 240 ms of backoff fit in 300 ms; the next 100 ms does not.
  EXPECT_EQ(result.attempts, 5);
  EXPECT_EQ(sim_->Count("leaveRoom"), 5);
  EXPECT_LT(took, absl::Seconds(2));
}

TEST_P(VsClientTest, PingIsNeverRetried) {
  FaultRule rule;
  rule.function = "pingRoom";
  rule.http_status = 503;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kHttpError);
  EXPECT_EQ(result.attempts, 1);
  EXPECT_EQ(sim_->Count("pingRoom"), 1);
}

TEST_P(VsClientTest, JoinIsNotRetriedOnceItMayHaveReachedVs) {
  FaultRule rule;
  rule.function = "joinRoom";
  rule.http_status = 502;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kHttpError);
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

TEST_P(VsClientTest, DroppedConnectionIsATransportError) {
  FaultRule rule;
  rule.drop_connection = true;
  rule.times = 1;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kTransportError) << result.status;
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
  // The next call works on a fresh connection.
  EXPECT_TRUE(
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); }).accepted());
}

TEST_P(VsClientTest, GarbageBodyIsAProtocolError) {
  FaultRule rule;
  rule.garbage = true;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kProtocolError);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(result.status.message().find("502 Bad Gateway"), std::string::npos) << result.status;
}

TEST_P(VsClientTest, LeaveIsRetriedAfterAnAnswerItCannotRead) {
  FaultRule rule;
  rule.function = "leaveRoom";
  rule.garbage = true;
  rule.times = 2;
  sim_->AddFault(rule);
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->LeaveRoom(Presence(), std::move(cb)); });
  EXPECT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.attempts, 3);
}

TEST_P(VsClientTest, SlowVsIsATimeout) {
  FaultRule rule;
  rule.latency = absl::Milliseconds(800);
  sim_->AddFault(rule);
  VsClientOptions options = Options();
  options.request_timeout = absl::Milliseconds(200);
  auto client = Client(options);
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kTimeout);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_P(VsClientTest, RefusedConnectionIsNotConnected) {
  sim_->Stop();
  auto client = Client();
  VsResult result =
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
  EXPECT_EQ(result.outcome, VsOutcome::kNotConnected) << result.status;
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable);
}

TEST_P(VsClientTest, LeaveIsDeliveredWhenVsComesBack) {
  sim_->Stop();
  auto client = Client();
  absl::Notification done;
  VsResult out;
  ASSERT_TRUE(client
                  ->LeaveRoom(Presence(),
                              [&](VsResult r) {
                                out = std::move(r);
                                done.Notify();
                              })
                  .ok());
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(done.HasBeenNotified());
  ASSERT_TRUE(sim_->Start().ok());
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(out.accepted()) << out.status;
  EXPECT_GT(out.attempts, 1);
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);
}

TEST_P(VsClientTest, ReusesKeepAliveConnections) {
  auto client = Client();
  constexpr int kCalls = 200;
  absl::Mutex mu;
  int accepted = 0;
  for (int i = 0; i < kCalls; ++i) {
    ASSERT_TRUE(client
                    ->PingRoom(Presence(),
                               [&](VsResult r) {
                                 absl::MutexLock lock(&mu);
                                 if (r.accepted()) ++accepted;
                               })
                    .ok());
  }
  ASSERT_TRUE(client->Drain(absl::Now() + absl::Seconds(20)));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(accepted, kCalls);
  }
  EXPECT_EQ(sim_->Count("pingRoom"), kCalls);
  EXPECT_LE(sim_->Connections(), 4);
  EXPECT_LE(client->stats().connections_opened, 4);
}

TEST_P(VsClientTest, RefusesPastTheInFlightBoundButNeverRefusesLeaves) {
  FaultRule rule;
  rule.latency = absl::Milliseconds(300);
  sim_->AddFault(rule);
  VsClientOptions options = Options();
  options.max_in_flight = 2;
  auto client = Client(options);
  auto ignore = [](VsResult) {};
  EXPECT_TRUE(client->PingRoom(Presence(), ignore).ok());
  EXPECT_TRUE(client->PingRoom(Presence(), ignore).ok());
  absl::Status third = client->PingRoom(Presence(), ignore);
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third.message().find("limit 2"), std::string::npos);
  EXPECT_TRUE(client->LeaveRoom(Presence(), ignore).ok());
  EXPECT_TRUE(client->Drain(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(client->stats().overloaded, 1);
  EXPECT_TRUE(client->PingRoom(Presence(), ignore).ok());
}

// Several event loops: every request completes, once, within the connection
// budget they share.
TEST_P(VsClientTest, SeveralEventLoopsShareTheWorkAndTheConnections) {
  VsClientOptions options = Options();
  options.event_loops = 3;
  options.max_connections = 6;
  auto client = Client(options);
  std::atomic<int> answered{0};
  auto count = [&](VsResult r) {
    EXPECT_TRUE(r.accepted()) << r.status;
    answered.fetch_add(1);
  };
  constexpr int kRooms = 30;
  for (int round = 0; round < 5; ++round) {
    for (int performer = 1; performer <= kRooms; ++performer) {
      JoinRoomRequest join = Join();
      join.performer_id = performer;
      ASSERT_TRUE(client->JoinRoom(join, count).ok());
      ASSERT_TRUE(client->PingRoom(RoomPresence{performer, 7, "bob_1000"}, count).ok());
      ASSERT_TRUE(client->LeaveRoom(RoomPresence{performer, 7, "bob_1000"}, count).ok());
    }
  }
  ASSERT_TRUE(client->Drain(absl::Now() + absl::Seconds(20)));
  EXPECT_EQ(answered.load(), 5 * kRooms * 3);
  EXPECT_EQ(sim_->Requests().size(), static_cast<size_t>(5 * kRooms * 3));
  EXPECT_LE(client->stats().connections_opened, 6);
}

// Pings get three quarters of the bound: when VS falls behind, a join still
// finds room.
TEST_P(VsClientTest, PingsLeaveRoomForJoinsUnderTheInFlightBound) {
  FaultRule rule;
  rule.latency = absl::Milliseconds(300);
  sim_->AddFault(rule);
  VsClientOptions options = Options();
  options.max_in_flight = 4;
  auto client = Client(options);
  auto ignore = [](VsResult) {};
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(client->PingRoom(Presence(), ignore).ok());
  absl::Status fourth = client->PingRoom(Presence(), ignore);
  EXPECT_EQ(fourth.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(fourth.message().find("limit 3"), std::string::npos);
  EXPECT_TRUE(client->JoinRoom(Join(), ignore).ok());
  EXPECT_TRUE(client->Drain(absl::Now() + absl::Seconds(10)));
}

// On a free kept-alive connection the built-in client's caller sends its
// request itself (no hand-off to the loop); the answer's callback still runs
// on the loop's thread, never on the caller's.
TEST_P(VsClientTest, ACallerSendsOnAFreeConnectionButCallbacksRunOnTheLoop) {
  auto client = Client();
  ASSERT_TRUE(Await([&](VsCallback cb) {
                return client->JoinRoom(Join(), std::move(cb));
              }).accepted());  // Opens the connection.
  constexpr int kCalls = 50;
  for (int i = 0; i < kCalls; ++i) {
    std::thread::id ran_on;
    VsResult result = Await([&](VsCallback cb) {
      return client->PingRoom(Presence(), [&, cb = std::move(cb)](VsResult r) mutable {
        ran_on = std::this_thread::get_id();
        std::move(cb)(std::move(r));
      });
    });
    EXPECT_TRUE(result.accepted()) << result.status;
    EXPECT_NE(ran_on, std::this_thread::get_id());
  }
  const VsClientStats stats = client->stats();
  EXPECT_EQ(stats.requests_sent, kCalls + 1);
  if (GetParam() == VsHttpClient::kBuiltIn) {
    // Not every one: a caller finding the loop still finishing the previous
    // answer hands its request over.
    EXPECT_GT(stats.sent_by_caller, 0);
  } else {
    EXPECT_EQ(stats.sent_by_caller, 0);  // libcurl's multi is the loop's alone.
  }
  EXPECT_EQ(stats.connections_opened, 1);
}

// A request its caller sent must still time out when VS does not answer,
// whether its deadline falls before the sleeping loop's next wake-up (the
// caller wakes the loop) or after it (the loop's own wake-up finds it).
TEST_P(VsClientTest, ARequestTheCallerSentStillTimesOut) {
  for (absl::Duration timeout : {absl::Milliseconds(200), absl::Milliseconds(1500)}) {
    SCOPED_TRACE(absl::FormatDuration(timeout));
    VsClientOptions options = Options();
    options.request_timeout = timeout;
    auto client = Client(options);
    FaultRule slow;
    slow.function = "pingRoom";
    slow.latency = absl::Seconds(3);
    sim_->AddFault(slow);
    // Until one is sent by its caller (the built-in client: at most 10 tries;
    // libcurl's caller never sends). A timeout closes its connection: a join
    // opens the next one.
    const int tries = GetParam() == VsHttpClient::kBuiltIn ? 10 : 1;
    for (int i = 0; i < tries; ++i) {
      ASSERT_TRUE(
          Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); }).accepted());
      const int64_t by_caller = client->stats().sent_by_caller;
      const absl::Time start = absl::Now();
      VsResult result =
          Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); });
      EXPECT_EQ(result.outcome, VsOutcome::kTimeout) << result.status;
      EXPECT_GE(absl::Now() - start, timeout);
      if (client->stats().sent_by_caller > by_caller) break;
    }
    if (GetParam() == VsHttpClient::kBuiltIn) {
      EXPECT_GT(client->stats().sent_by_caller, 0);
    }
    sim_->ClearFaults();
  }
}

// A callback that submits (the presence layer's leave after a join it could
// not read): the loop holds its own lock then, so the request goes through
// the intake and the loop's next round.
TEST_P(VsClientTest, ACallbackCanSubmitTheNextRequest) {
  auto client = Client();
  absl::Notification left;
  VsResult leave;
  absl::Status leave_taken = absl::UnknownError("never submitted");
  VsResult join = Await([&](VsCallback cb) {
    return client->JoinRoom(Join(), [&, cb = std::move(cb)](VsResult r) mutable {
      leave_taken = client->LeaveRoom(Presence(), [&](VsResult l) {
        leave = std::move(l);
        left.Notify();
      });
      std::move(cb)(std::move(r));
    });
  });
  EXPECT_TRUE(join.accepted()) << join.status;
  ASSERT_TRUE(leave_taken.ok()) << leave_taken;
  ASSERT_TRUE(left.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_TRUE(leave.accepted()) << leave.status;
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);
}

// Many threads submitting while answers complete: the loop's lock is taken
// by callers (TryLock) and by the loop; every request is answered once.
TEST_P(VsClientTest, ConcurrentCallersEachGetOneAnswer) {
  VsClientOptions options = Options();
  options.event_loops = 2;
  auto client = Client(options);
  constexpr int kThreads = 8;
  constexpr int kEach = 150;
  std::atomic<int> accepted{0};
  std::atomic<int> on_a_caller{0};
  std::vector<std::thread::id> callers(kThreads);
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      {
        absl::MutexLock lock(&mu);
        callers[t] = std::this_thread::get_id();
      }
      for (int i = 0; i < kEach; ++i) {
        const RoomPresence room{t * 1000 + i, 7, "bob_1000"};
        auto answered = [&](VsResult r) {
          if (r.accepted()) accepted.fetch_add(1);
          absl::MutexLock lock(&mu);
          for (const std::thread::id& caller : callers) {
            if (caller == std::this_thread::get_id()) on_a_caller.fetch_add(1);
          }
        };
        absl::Status taken = i % 3 == 0   ? client->LeaveRoom(room, answered)
                             : i % 3 == 1 ? client->PingRoom(room, answered)
                                          : client->JoinRoom(Join(), answered);
        EXPECT_TRUE(taken.ok()) << taken;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(client->Drain(absl::Now() + absl::Seconds(20)));
  EXPECT_EQ(accepted.load(), kThreads * kEach);
  EXPECT_EQ(on_a_caller.load(), 0);
  EXPECT_EQ(sim_->Requests().size(), static_cast<size_t>(kThreads * kEach));
  EXPECT_EQ(client->stats().completed, kThreads * kEach);
}

TEST_P(VsClientTest, ShutdownCancelsWhatIsPendingExactlyOnce) {
  sim_->Stop();
  auto client = Client();
  int calls = 0;
  VsResult out;
  ASSERT_TRUE(client
                  ->LeaveRoom(Presence(),
                              [&](VsResult r) {
                                ++calls;
                                out = std::move(r);
                              })
                  .ok());
  absl::SleepFor(absl::Milliseconds(100));
  client.reset();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(out.outcome, VsOutcome::kCancelled);
}

TEST_P(VsClientTest, TheKeyNeverAppearsInErrors) {
  VsClientOptions options = Options();
  auto client = Client(options);
  FaultRule echo;
  echo.reject = true;
  echo.message = std::string("bad key ") + kKey;
  echo.times = 1;
  sim_->AddFault(echo);
  FaultRule garbage;
  garbage.garbage = true;
  garbage.times = 1;
  sim_->AddFault(garbage);
  std::vector<VsResult> results;
  for (int i = 0; i < 2; ++i) {
    results.push_back(
        Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); }));
  }
  sim_->Stop();
  results.push_back(
      Await([&](VsCallback cb) { return client->PingRoom(Presence(), std::move(cb)); }));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, VsOutcome::kRejected);
  EXPECT_EQ(results[1].outcome, VsOutcome::kProtocolError);
  EXPECT_EQ(results[2].outcome, VsOutcome::kNotConnected);
  for (const VsResult& r : results) {
    std::string text = r.status.ToString() + r.vs_message;
    EXPECT_EQ(text.find(kKey), std::string::npos) << text;
    EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << text;
  }
  EXPECT_EQ(results[0].vs_message, "bad key <key>");
}

TEST_P(VsClientTest, HttpsWorksAndVerifiesTheCertificate) {
  testing::TestPki tls("vs_tls");
  ASSERT_TRUE(tls.ok);
  VsSimulatorOptions sim_options;
  sim_options.key = kKey;
  sim_options.keep_alive_timeout_seconds = 1;
  sim_options.tls_cert_file = tls.server_cert;
  sim_options.tls_key_file = tls.server_key;
  VsSimulator https_sim(sim_options);
  ASSERT_TRUE(https_sim.Start().ok());
  ASSERT_EQ(https_sim.url().substr(0, 8), "https://");

  VsClientOptions options = Options();
  options.base_url = https_sim.url();
  options.ca_file = tls.ca;
  auto client = Client(options);
  VsResult result = Await([&](VsCallback cb) { return client->JoinRoom(Join(), std::move(cb)); });
  ASSERT_TRUE(result.accepted()) << result.status;
  EXPECT_EQ(result.nickname, "bob_1000");
  EXPECT_EQ(https_sim.Requests()[0].key, kKey);

  // Without the CA the certificate is refused.
  options.ca_file = "";
  auto untrusting = Client(options);
  VsResult refused =
      Await([&](VsCallback cb) { return untrusting->PingRoom(Presence(), std::move(cb)); });
  EXPECT_FALSE(refused.accepted());
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kUnavailable) << refused.status;
  EXPECT_EQ(https_sim.Count("pingRoom"), 0);
}

TEST_P(VsClientTest, CreateRejectsBadOptions) {
  VsClientOptions options = Options();
  options.base_url = "ftp://127.0.0.1:1";
  EXPECT_EQ(VsClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = Options();
  options.key = "";
  EXPECT_EQ(VsClient::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(HttpClients, VsClientTest,
                         ::testing::Values(VsHttpClient::kBuiltIn, VsHttpClient::kLibcurl),
                         [](const ::testing::TestParamInfo<VsHttpClient>& info) {
                           return info.param == VsHttpClient::kBuiltIn ? "BuiltIn" : "Libcurl";
                         });

TEST(EffectiveHttpClientTest, HttpsIsAlwaysLibcurls) {
  VsClientOptions options;
  options.base_url = "http://127.0.0.1:8080";
  EXPECT_EQ(EffectiveHttpClient(options), VsHttpClient::kBuiltIn);
  options.http_client = VsHttpClient::kLibcurl;
  EXPECT_EQ(EffectiveHttpClient(options), VsHttpClient::kLibcurl);
  options.base_url = "https://vs.example";
  options.http_client = VsHttpClient::kBuiltIn;
  EXPECT_EQ(EffectiveHttpClient(options), VsHttpClient::kLibcurl);
}

}  // namespace
}  // namespace presence::vs
