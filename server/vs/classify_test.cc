#include "server/vs/classify.h"

#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace presence::vs {
namespace {

constexpr char kKey[] = "s3cr3t-key-0123456789";

AttemptReport Answered(long http, absl::string_view body) {
  AttemptReport r;
  r.function = VsFunction::kJoinRoom;
  r.http_status = http;
  r.request_bytes = 200;
  r.body = body;
  r.attempts = 1;
  return r;
}

AttemptReport Failed(CURLcode code, long request_bytes, std::string error_text = "") {
  AttemptReport r;
  r.function = VsFunction::kLeaveRoom;
  r.code = code;
  r.request_bytes = request_bytes;
  r.error_text = std::move(error_text);
  r.attempts = 2;
  r.request_timeout = absl::Seconds(5);
  return r;
}

class ClassifyTest : public ::testing::Test {
 protected:
  Redactor redactor_{kKey};
};

TEST_F(ClassifyTest, SuccessTrueIsAcceptedWithTheDisplayNickname) {
  VsResult r = ClassifyAttempt(
      Answered(200, R"({ success: true, message: "", nickname: "alice_1234" })"), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kAccepted);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.nickname, "alice_1234");
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.attempts, 1);
}

TEST_F(ClassifyTest, SuccessFalseIsRejectedWithVsMessage) {
  VsResult r =
      ClassifyAttempt(Answered(200, R"({ success: false, message: "banned" })"), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kRejected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), "banned");
  EXPECT_EQ(r.vs_message, "banned");
}

TEST_F(ClassifyTest, NonSuccessHttpStatusIsAnHttpErrorWithAnExcerpt) {
  VsResult r = ClassifyAttempt(Answered(503, "Service Unavailable"), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kHttpError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "HTTP 503 to joinRoom")) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "Service Unavailable")) << r.status;
  EXPECT_EQ(r.http_status, 503);
}

TEST_F(ClassifyTest, An2xxThatDoesNotParseIsAProtocolError) {
  VsResult r = ClassifyAttempt(Answered(200, "<html>proxy</html>"), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kProtocolError);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInternal);
}

TEST_F(ClassifyTest, NothingSentIsNotConnected) {
  VsResult r = ClassifyAttempt(Failed(CURLE_COULDNT_CONNECT, 0), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kNotConnected);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "leaveRoom")) << r.status;
  EXPECT_EQ(r.attempts, 2);
}

TEST_F(ClassifyTest, ATimeoutAfterSendingIsATimeoutNamingTheLimit) {
  VsResult r = ClassifyAttempt(Failed(CURLE_OPERATION_TIMEDOUT, 120), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kTimeout);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "within 5s")) << r.status;
}

TEST_F(ClassifyTest, AResetAfterSendingIsATransportError) {
  VsResult r =
      ClassifyAttempt(Failed(CURLE_RECV_ERROR, 120, "Connection reset by peer"), redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kTransportError);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "Connection reset by peer")) << r.status;
}

TEST_F(ClassifyTest, AnOversizedAnswerIsAProtocolError) {
  AttemptReport report = Failed(CURLE_WRITE_ERROR, 120);
  report.body_too_large = true;
  VsResult r = ClassifyAttempt(report, redactor_);
  EXPECT_EQ(r.outcome, VsOutcome::kProtocolError);
  EXPECT_TRUE(absl::StrContains(r.status.message(), "larger than")) << r.status;
}

TEST_F(ClassifyTest, TheKeyNeverLeaksFromLibcurlsErrorText) {
  VsResult r = ClassifyAttempt(
      Failed(CURLE_RECV_ERROR, 120, std::string("failed on /customer?key=") + kKey), redactor_);
  EXPECT_FALSE(absl::StrContains(r.status.message(), kKey)) << r.status;
  EXPECT_TRUE(absl::StrContains(r.status.message(), "<key>")) << r.status;
}

TEST_F(ClassifyTest, AKeyAcrossTheExcerptCutLeaksNoPrefix) {
  // The excerpt is 64 bytes: the key starts at byte 58, across the cut.
  std::string body = std::string(58, 'x') + kKey;
  for (long http : {200L, 502L}) {
    VsResult r = ClassifyAttempt(Answered(http, body), redactor_);
    EXPECT_FALSE(absl::StrContains(r.status.message(), "s3cr3t")) << http << ": " << r.status;
  }
}

}  // namespace
}  // namespace presence::vs
