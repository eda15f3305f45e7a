#include "server/vs/response_parser.h"

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

TEST(ResponseParserTest, ParsesStrictJson) {
  absl::StatusOr<VsReply> reply =
      ParseVsReply(R"({"success":true,"message":"","nickname":"bob_1234"})");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->success);
  EXPECT_EQ(reply->message, "");
  EXPECT_EQ(reply->nickname, "bob_1234");
}

TEST(ResponseParserTest, ParsesTheRelaxedFormVsDocuments) {
  absl::StatusOr<VsReply> reply =
      ParseVsReply(R"({ success: true, message: "", nickname: "bob_1234" })");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->success);
  EXPECT_EQ(reply->nickname, "bob_1234");
}

TEST(ResponseParserTest, KeepsColonsAndKeywordsInsideStrings) {
  absl::StatusOr<VsReply> reply =
      ParseVsReply(R"({ success: false, message: "error: key: \"x\" true" })");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->success);
  EXPECT_EQ(reply->message, R"(error: key: "x" true)");
}

TEST(ResponseParserTest, IgnoresUnknownFields) {
  absl::StatusOr<VsReply> reply =
      ParseVsReply(R"({ success: true, extra: {nested: [1, 2]}, message: "ok" })");
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_EQ(reply->message, "ok");
}

TEST(ResponseParserTest, AcceptsNumericSuccess) {
  absl::StatusOr<VsReply> reply = ParseVsReply(R"({ success: 1 })");
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(reply->success);
}

TEST(ResponseParserTest, MissingSuccessIsAProtocolError) {
  absl::StatusOr<VsReply> reply = ParseVsReply(R"({ message: "hi" })");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(reply.status().message().find("no \"success\""), std::string::npos);
}

TEST(ResponseParserTest, GarbageIsAProtocolErrorWithSanitizedExcerpt) {
  absl::StatusOr<VsReply> reply = ParseVsReply("<html>\x01\x02 502 Bad Gateway</html>");
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(reply.status().message().find("<html>?? 502 Bad Gateway</html>"), std::string::npos)
      << reply.status();
}

TEST(ResponseParserTest, NonObjectsAndWrongTypesAreProtocolErrors) {
  EXPECT_FALSE(ParseVsReply("[1,2]").ok());
  EXPECT_FALSE(ParseVsReply("true").ok());
  EXPECT_FALSE(ParseVsReply("").ok());
  EXPECT_FALSE(ParseVsReply(R"({ success: "yes" })").ok());
  EXPECT_FALSE(ParseVsReply(R"({ success: 2 })").ok());
}

TEST(ResponseParserTest, ExcerptIsShortAndPrintable) {
  std::string long_body(500, 'a');
  long_body[3] = '\n';
  std::string excerpt = SanitizedExcerpt(long_body);
  EXPECT_EQ(excerpt.size(), 64u + 3u);
  EXPECT_EQ(excerpt.substr(0, 5), "aaa?a");
}

TEST(ResponseParserTest, QuoteBareKeysOnlyQuotesKeys) {
  EXPECT_EQ(QuoteBareKeys(R"({a: true, "b": null, c : "d: e"})"),
            R"({"a": true, "b": null, "c" : "d: e"})");
}

}  // namespace
}  // namespace presence::vs
