// End-to-end: what an independent acceptance run and a code review found
// (issue 14), each against the real gateway, a real VS simulator and real
// gRPC streams.

#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/testing/gateway_fixture.h"

namespace presence::testing {
namespace {

class HardeningE2eTest : public GatewayTest {};

// Item 1: a unary UpdateCredits answers UNAVAILABLE with VS's last error
// before its own deadline, however long the server would retry otherwise.
TEST_F(HardeningE2eTest, UnaryUpdateCreditsAnswersUnavailableBeforeItsDeadline) {
  StartServer(Options());
  vs::FaultRule unavailable = Fault("updateCredits");
  unavailable.http_status = 503;
  sim_->AddFault(unavailable);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  v1::UpdateCreditsRequest request;
  request.set_customer_id(7);
  request.set_credits(5);
  v1::UpdateCreditsResponse response;
  grpc::Status status = stub_->UpdateCredits(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "HTTP 503")) << status.error_message();
  EXPECT_GE(sim_->Count("updateCredits"), 2);  // It did retry, within the deadline.
}

// Item 1: a stream's credits update answers success:false within
// --credits_retry_window while VS keeps failing.
TEST_F(HardeningE2eTest, StreamCreditsAnswerWithinTheRetryWindow) {
  PresenceServerOptions options = Options();
  options.credits_retry_window = absl::Milliseconds(800);
  StartServer(options);
  vs::FaultRule unavailable = Fault("updateCredits");
  unavailable.http_status = 503;
  sim_->AddFault(unavailable);
  Viewer v = Joined();
  absl::Time sent = absl::Now();
  ASSERT_TRUE(v.stream->Write(Credits(5)));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_TRUE(resp.has_credits_updated()) << resp.DebugString();
  EXPECT_FALSE(resp.credits_updated().success());
  EXPECT_LT(absl::Now() - sent, absl::Seconds(3));
  LeaveCleanly(v);
}

// Item 2: sessions one after another reuse the keep-alive connections to
// VS, whether each leave is answered before the next join or the next join
// races it (two requests at once need two connections, never more).
TEST_F(HardeningE2eTest, SequentialSessionsReuseConnectionsToVs) {
  StartServer(Options());
  for (absl::Duration leave_latency : {absl::ZeroDuration(), absl::Milliseconds(100)}) {
    sim_->Reset();
    vs::FaultRule slow = Fault("leaveRoom");
    slow.latency = leave_latency;
    sim_->AddFault(slow);
    for (int i = 0; i < 10; ++i) {
      Viewer v = Joined(JoinRequest(42, absl::StrCat("seq", i), std::nullopt, false));
      // The previous leave may still be at VS during this join; not longer.
      ASSERT_TRUE(sim_->WaitForCount("leaveRoom", i, absl::Seconds(10)));
      ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
      LeaveCleanly(v);
    }
    ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 10, absl::Seconds(10)));
    EXPECT_EQ(sim_->Count("joinRoom"), 10);
    EXPECT_LE(sim_->Connections(), 2) << "leave latency " << leave_latency;
    ExpectLedgerBalanced();
  }
}

// Item 3: a stream opened while the server drains is refused UNAVAILABLE,
// and so is a unary call, until the process is gone.
TEST_F(HardeningE2eTest, StreamsAndCallsDuringTheDrainAreRefusedUnavailable) {
  StartServer(Options());
  std::vector<Viewer> viewers;
  for (int i = 0; i < 5; ++i) {
    viewers.push_back(Joined(JoinRequest(42, absl::StrCat("d", i), std::nullopt, false)));
  }
  vs::FaultRule slow = Fault("leaveRoom");
  slow.latency = absl::Seconds(1);
  sim_->AddFault(slow);
  std::thread drain([this] { server_->Shutdown(absl::Now() + absl::Seconds(10)); });
  ASSERT_TRUE(WaitFor([this] { return sim_->Count("leaveRoom") >= 1; }));  // Draining now.
  Viewer late = Open();
  late.stream->Write(JoinRequest(42, "late", std::nullopt, false));
  grpc::Status status = late.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  grpc::ClientContext context;
  v1::GetRoomRequest room;
  room.set_performer_id(42);
  v1::GetRoomResponse response;
  grpc::Status unary = stub_->GetRoom(&context, room, &response);
  EXPECT_EQ(unary.error_code(), grpc::StatusCode::UNAVAILABLE) << unary.error_message();
  drain.join();
  for (Viewer& v : viewers) EXPECT_EQ(v.Drain().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sim_->Count("joinRoom"), 5);
}

// Item 4: a registered customer's reconnect racing the leave of their old
// stream waits for that leave and then joins; it is not refused.
TEST_F(HardeningE2eTest, AReconnectRacingItsOwnLeaveWaitsAndJoins) {
  StartServer(Options());
  Viewer old = Joined();
  vs::FaultRule slow = Fault("leaveRoom", 1);
  slow.latency = absl::Milliseconds(500);
  sim_->AddFault(slow);
  old.context->TryCancel();
  old.Drain();
  // The leave is at VS (slow): the reconnect arrives now.
  ASSERT_TRUE(WaitFor([this] { return server_->context().counters.leaves_sent.load() == 1; }));
  SessionResponse joined;
  Viewer again = Joined(JoinRequest(), &joined);
  EXPECT_EQ(sim_->Count("leaveRoom"), 1);  // The join came after the leave.
  EXPECT_EQ(sim_->Count("joinRoom"), 2);
  LeaveCleanly(again);
  ExpectLedgerBalanced();
}

// Item 5: a client that never reads cannot grow the server's write queue
// without bound: the stream ends RESOURCE_EXHAUSTED and is left.
TEST_F(HardeningE2eTest, AClientThatNeverReadsIsEndedAtTheWriteQueueBound) {
  PresenceServerOptions options = Options();
  options.max_messages_per_second = 0;  // No rate limit: the queue is the bound.
  StartServer(options);
  // The client's receive window stays at its initial 64 KiB (no BDP probe
  // growing it), so about a thousand unread replies fill it.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  stub_ = v1::Presence::NewStub(grpc::CreateCustomChannel(
      absl::StrCat("127.0.0.1:", server_->port()), grpc::InsecureChannelCredentials(), args));
  Viewer v = Joined(JoinRequest(42, "guest", std::nullopt, false));
  // A guest's credits are answered at once, without VS. Writes fail once the
  // server has ended the stream.
  for (int i = 0; i < 100000; ++i) {
    if (!v.stream->Write(Credits(1))) break;
  }
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(20)));
  grpc::Status status = v.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "not reading")) << status.error_message();
  ExpectLedgerBalanced();
}

// Item 6: a stream that never joins is ended and frees its slot.
TEST_F(HardeningE2eTest, AStreamThatNeverJoinsIsEndedAfterTheJoinTimeout) {
  PresenceServerOptions options = Options();
  options.join_timeout = absl::Milliseconds(300);
  options.max_sessions = 1;
  StartServer(options);
  Viewer idle = Open();
  grpc::Status status = idle.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "no join within"))
      << status.error_message();
  ASSERT_TRUE(WaitFor([this] { return server_->registry().open() == 0; }));
  Viewer next = Joined(JoinRequest(42, "next", std::nullopt, false));
  LeaveCleanly(next);
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

// Item 6: streams on one HTTP/2 connection are capped; past the cap a new
// stream waits in the client (here until its deadline) and takes no slot.
TEST_F(HardeningE2eTest, StreamsPerConnectionAreCapped) {
  PresenceServerOptions options = Options();
  options.max_streams_per_connection = 2;
  StartServer(options);
  Viewer a = Joined(JoinRequest(42, "a", std::nullopt, false));
  Viewer b = Joined(JoinRequest(42, "b", std::nullopt, false));
  Viewer c;
  c.context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(500)));
  c.stream = stub_->Session(c.context.get());
  c.stream->Write(JoinRequest(42, "c", std::nullopt, false));
  EXPECT_EQ(c.Drain().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(sim_->Count("joinRoom"), 2);
  EXPECT_EQ(server_->registry().open(), 2);
  LeaveCleanly(a);
  LeaveCleanly(b);
}

// Item 7: a join answered by a proxy's 502/504, or by a 2xx that does not
// parse, may have been taken by VS: it gets a best-effort leave with the
// nickname that was asked for.
TEST_F(HardeningE2eTest, AJoinWithAProxyErrorOrAnUnreadable2xxGetsABestEffortLeave) {
  StartServer(Options());
  int expected_leaves = 0;
  for (int variant = 0; variant < 3; ++variant) {
    vs::FaultRule fault = Fault("joinRoom", 1);
    if (variant == 0) fault.http_status = 502;
    if (variant == 1) fault.http_status = 504;
    if (variant == 2) fault.garbage = true;
    sim_->AddFault(fault);
    std::string nick = absl::StrCat("unknown", variant);
    Viewer v = Open();
    v.stream->Write(JoinRequest(42, nick, std::nullopt, false));
    EXPECT_EQ(v.Drain().error_code(), grpc::StatusCode::UNAVAILABLE);
    ASSERT_TRUE(sim_->WaitForCount("leaveRoom", ++expected_leaves, absl::Seconds(10)));
    EXPECT_EQ(sim_->Requests("leaveRoom").back().Field("nickname"), nick);
  }
  // A plain 503 is VS saying no: nothing to take back.
  vs::FaultRule refused = Fault("joinRoom", 1);
  refused.http_status = 503;
  sim_->AddFault(refused);
  Viewer v = Open();
  v.stream->Write(JoinRequest(42, "refused", std::nullopt, false));
  EXPECT_EQ(v.Drain().error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(server_->vs_client().Drain(absl::Now() + absl::Seconds(10)));
  EXPECT_EQ(sim_->Count("leaveRoom"), expected_leaves);
}

// Item 13: a customerBoot also ends the customer's streams still joining;
// the join VS accepts meanwhile is left.
TEST_F(HardeningE2eTest, ABootEndsStreamsStillJoiningAndTheirJoinIsLeft) {
  PresenceServerOptions options = Options();
  options.boot_listen = "127.0.0.1:0";
  options.boot_secret = "boot-secret";
  StartServer(options);
  vs::FaultRule slow = Fault("joinRoom", 1);
  slow.latency = absl::Milliseconds(500);
  sim_->AddFault(slow);
  Viewer v = Open();
  v.stream->Write(JoinRequest());
  ASSERT_TRUE(sim_->WaitForCount("joinRoom", 1, absl::Seconds(10)));  // At VS, unanswered.
  EXPECT_EQ(presence::admin::BootServer::Boot(
                const_cast<service::ServiceContext*>(&server_->context()), 7, 42),
            1);
  grpc::Status status = v.Drain();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << status.error_message();
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  ExpectLedgerBalanced();
}

// Item 14: a guest join that carries a customer_id is a guest: it never
// shares the registered customer's presence, and each is left on its own.
TEST_F(HardeningE2eTest, AGuestWithACustomerIdNeverSharesTheRegisteredPresence) {
  StartServer(Options());
  SessionResponse registered_joined, guest_joined;
  Viewer registered = Joined(JoinRequest(42, "bob", 7, true), &registered_joined);
  Viewer guest = Joined(JoinRequest(42, "bob", 7, false), &guest_joined);
  EXPECT_EQ(sim_->Count("joinRoom"), 2);
  EXPECT_NE(registered_joined.joined().nickname(), guest_joined.joined().nickname());
  LeaveCleanly(guest);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  EXPECT_EQ(sim_->Requests("leaveRoom")[0].Field("nickname"), guest_joined.joined().nickname());
  LeaveCleanly(registered);
  ExpectLedgerBalanced();
}

// The server runs without gRPC's compression filter for what it sends (it
// never compresses) and without its per-call deadline timer (memory of every
// held stream): a client that compresses its messages is still read, and a
// client's deadline still ends its stream with the leave.
TEST_F(HardeningE2eTest, AClientThatCompressesItsMessagesIsRead) {
  StartServer(Options());
  Viewer v;
  v.context->set_compression_algorithm(GRPC_COMPRESS_GZIP);
  v.stream = stub_->Session(v.context.get());
  // Long and repetitive, so that gzip makes it smaller and gRPC sends it
  // compressed (it sends a message as is when compressing does not help).
  const std::string nickname(60, 'z');
  ASSERT_TRUE(v.stream->Write(JoinRequest(42, nickname)));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kJoined) << resp.DebugString();
  EXPECT_EQ(sim_->Requests("joinRoom")[0].Field("nickname"), nickname);
  LeaveCleanly(v);
  ExpectLedgerBalanced();
}

TEST_F(HardeningE2eTest, AClientDeadlineEndsTheStreamWithItsLeave) {
  StartServer(Options());
  Viewer v;
  v.context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(1500)));
  v.stream = stub_->Session(v.context.get());
  ASSERT_TRUE(v.stream->Write(JoinRequest()));
  SessionResponse resp;
  ASSERT_TRUE(v.stream->Read(&resp));
  ASSERT_EQ(resp.event_case(), SessionResponse::kJoined) << resp.DebugString();
  EXPECT_EQ(v.Drain().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(10)));
  ExpectLedgerBalanced();
}

}  // namespace
}  // namespace presence::testing
