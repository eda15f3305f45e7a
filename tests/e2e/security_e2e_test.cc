// End-to-end: TLS, mutual TLS, bearer-token auth and the per-stream message
// limit, on a real PresenceServer forwarding to a real VS simulator.

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/presence_server.h"
#include "server/service/auth.h"
#include "server/vs_simulator/vs_simulator.h"
#include "tests/testing/test_pki.h"

namespace presence {
namespace {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

std::string ReadFile(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  std::string out;
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

SessionRequest Join() {
  SessionRequest req;
  req.mutable_join()->set_performer_id(42);
  req.mutable_join()->set_nickname("bob");
  req.mutable_join()->set_ip_address("203.0.113.5");
  req.mutable_join()->set_customer_id(7);
  req.mutable_join()->set_registered(true);
  return req;
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    vs::VsSimulatorOptions sim_options;
    sim_options.keep_alive_timeout_seconds = 1;
    sim_ = std::make_unique<vs::VsSimulator>(sim_options);
    ASSERT_TRUE(sim_->Start().ok());
  }

  PresenceServerOptions Options() {
    PresenceServerOptions options;
    options.listen = "127.0.0.1:0";
    options.ping_interval = absl::Seconds(10);
    options.vs.base_url = sim_->url();
    options.vs.key = "simulator-key";
    return options;
  }

  void Start(const PresenceServerOptions& options) {
    auto server = PresenceServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::string Address() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  // Opens a session with `credentials` (and `token` as a bearer token when
  // set); returns the final status, or OK with `*nickname` when it joined
  // (the session is left cleanly).
  grpc::Status TryJoin(std::shared_ptr<grpc::ChannelCredentials> credentials,
                       const std::string& token = "", std::string* nickname = nullptr) {
    auto stub = v1::Presence::NewStub(grpc::CreateChannel(Address(), credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
    auto stream = stub->Session(&context);
    stream->Write(Join());
    SessionResponse resp;
    if (stream->Read(&resp) && resp.has_joined()) {
      if (nickname != nullptr) *nickname = resp.joined().nickname();
      SessionRequest leave;
      leave.mutable_leave();
      stream->Write(leave);
      stream->WritesDone();
      while (stream->Read(&resp)) {
      }
    }
    return stream->Finish();
  }

  std::unique_ptr<vs::VsSimulator> sim_;
  std::unique_ptr<PresenceServer> server_;
};

TEST(AuthTest, ConstantTimeEqualsComparesWholeValues) {
  EXPECT_TRUE(service::ConstantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(service::ConstantTimeEquals("s3cret", "s3creT"));
  EXPECT_FALSE(service::ConstantTimeEquals("s3cre", "s3cret"));
  EXPECT_FALSE(service::ConstantTimeEquals("s3cret!", "s3cret"));
  EXPECT_FALSE(service::ConstantTimeEquals("", "s3cret"));
  EXPECT_TRUE(service::ConstantTimeEquals("", ""));
}

TEST_F(SecurityE2eTest, TlsListenerServesTlsClientsAndRefusesPlaintext) {
  testing::TestPki pki("tls");
  ASSERT_TRUE(pki.ok);
  PresenceServerOptions options = Options();
  options.tls_cert_file = pki.server_cert;
  options.tls_key_file = pki.server_key;
  Start(options);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(pki.ca);
  std::string nickname;
  grpc::Status status = TryJoin(grpc::SslCredentials(ssl), "", &nickname);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(nickname, "bob_1000");
  EXPECT_EQ(TryJoin(grpc::InsecureChannelCredentials()).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

TEST_F(SecurityE2eTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  testing::TestPki pki("mtls");
  ASSERT_TRUE(pki.ok);
  PresenceServerOptions options = Options();
  options.tls_cert_file = pki.server_cert;
  options.tls_key_file = pki.server_key;
  options.tls_client_ca_file = pki.ca;
  Start(options);

  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = ReadFile(pki.ca);
  EXPECT_EQ(TryJoin(grpc::SslCredentials(anonymous)).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(sim_->Count("joinRoom"), 0);

  grpc::SslCredentialsOptions with_cert = anonymous;
  with_cert.pem_cert_chain = ReadFile(pki.client_cert);
  with_cert.pem_private_key = ReadFile(pki.client_key);
  grpc::Status status = TryJoin(grpc::SslCredentials(with_cert));
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(sim_->Count("joinRoom"), 1);
}

TEST_F(SecurityE2eTest, StartRefusesUnreadableCertificates) {
  PresenceServerOptions options = Options();
  options.tls_cert_file = "/nonexistent/cert.pem";
  options.tls_key_file = "/nonexistent/key.pem";
  auto server = PresenceServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("--tls_cert"), std::string::npos);
}

TEST_F(SecurityE2eTest, BearerTokenIsCheckedOnEveryRpc) {
  PresenceServerOptions options = Options();
  options.auth_token = "s3cret-token";
  Start(options);
  auto insecure = grpc::InsecureChannelCredentials();

  grpc::Status missing = TryJoin(insecure);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(missing.error_message().find("authorization"), std::string::npos);
  EXPECT_EQ(TryJoin(insecure, "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(TryJoin(insecure, "s3cret-token-and-more").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(sim_->Requests().size(), 0u);
  EXPECT_TRUE(TryJoin(insecure, "s3cret-token").ok());
  EXPECT_EQ(sim_->Count("joinRoom"), 1);

  auto stub = v1::Presence::NewStub(grpc::CreateChannel(Address(), insecure));
  v1::GetRoomRequest room;
  room.set_performer_id(42);
  v1::GetRoomResponse room_resp;
  grpc::ClientContext no_token;
  EXPECT_EQ(stub->GetRoom(&no_token, room, &room_resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext with_token;
  with_token.AddMetadata("authorization", "Bearer s3cret-token");
  EXPECT_TRUE(stub->GetRoom(&with_token, room, &room_resp).ok());
  v1::UpdateCreditsRequest credits;
  credits.set_customer_id(7);
  credits.set_credits(1);
  v1::UpdateCreditsResponse credits_resp;
  grpc::ClientContext bad_token;
  bad_token.AddMetadata("authorization", "Bearer nope");
  EXPECT_EQ(stub->UpdateCredits(&bad_token, credits, &credits_resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(sim_->Count("updateCredits"), 0);
}

TEST_F(SecurityE2eTest, FloodingAStreamEndsItWithResourceExhaustedAndLeaves) {
  PresenceServerOptions options = Options();
  options.max_messages_per_second = 5;
  Start(options);
  auto stub =
      v1::Presence::NewStub(grpc::CreateChannel(Address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  auto stream = stub->Session(&context);
  ASSERT_TRUE(stream->Write(Join()));
  SessionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_joined());
  SessionRequest credits;
  credits.mutable_credits()->set_credits(1);
  for (int i = 0; i < 40; ++i) {
    if (!stream->Write(credits)) break;
  }
  while (stream->Read(&resp)) {
  }
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(status.error_message().find("more than 5 messages per second"), std::string::npos)
      << status.error_message();
  // The burst (10) passes; the flood does not reach VS as 40 updates.
  EXPECT_LE(sim_->Count("updateCredits"), 10);
  EXPECT_TRUE(sim_->WaitForCount("leaveRoom", 1, absl::Seconds(5)));
  EXPECT_EQ(server_->context().counters.rate_limited.load(), 1);
}

}  // namespace
}  // namespace presence
