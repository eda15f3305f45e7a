#include "server/vs/response_parser.h"

#include <optional>
#include <random>
#include <string>
#include <vector>

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

// The scanner reads what VS sends all day; whatever it reads, it reads as
// the JSON library does.
TEST(ResponseParserTest, TheScannerReadsTheUsualAnswersLikeTheJsonLibrary) {
  for (absl::string_view body : {
           R"({ success: true, message: "", nickname: "viewer_1000" })",
           R"({"success":true,"message":"","nickname":"bob_1234"})",
           R"({ success: false, message: "Performer is offline" })",
           R"({ success: 1 })",
           R"( {success:0,extra:12,other:"x"} )",
           "{\n\tsuccess: true,\r\n message: \"a:b, c\" }",
       }) {
    std::optional<VsReply> flat = internal::ParseFlatVsReply(body);
    ASSERT_TRUE(flat.has_value()) << body;
    absl::StatusOr<VsReply> json = internal::ParseVsReplyAsJson(body);
    ASSERT_TRUE(json.ok()) << body;
    EXPECT_EQ(flat->success, json->success) << body;
    EXPECT_EQ(flat->message, json->message) << body;
    EXPECT_EQ(flat->nickname, json->nickname) << body;
  }
}

// Bodies built from the pieces where the two could part ways (escapes,
// repeats, numbers, nesting, non-ASCII, trailing bytes): where the scanner
// answers, the JSON library gives the same reply; where the scanner
// declines, ParseVsReply is the JSON library's answer.
TEST(ResponseParserTest, TheScannerAndTheJsonLibraryAgreeOnGeneratedBodies) {
  const std::vector<std::string> keys = {"success",  "\"success\"",      "message",
                                         "nickname", "\"nickname\"",     "extra",
                                         "$x",       "\"m\\u0065ssage\""};
  const std::vector<std::string> values = {
      "true",       "false",        "0",        "1",
      "-0",         "01",           "2",        "1.0",
      "1e0",        "null",         "\"\"",     "\"ok\"",
      "\"a\\\"b\"", "\"\xc3\xa9\"", "\"\xff\"", "[1]",
      "{a: 1}",     "yes",          "truex",    "123456789012345678901"};
  const std::vector<std::string> tails = {"", " ", ",", "x", "}"};
  std::mt19937 gen(17);
  int scanned = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = "{";
    const int fields = static_cast<int>(gen() % 4);
    for (int f = 0; f < fields; ++f) {
      if (f > 0) body += gen() % 2 ? "," : ", ";
      body += keys[gen() % keys.size()] + (gen() % 2 ? ":" : " : ") + values[gen() % values.size()];
    }
    body += "}" + tails[gen() % tails.size()];
    std::optional<VsReply> flat = internal::ParseFlatVsReply(body);
    absl::StatusOr<VsReply> json = internal::ParseVsReplyAsJson(body);
    absl::StatusOr<VsReply> reply = ParseVsReply(body);
    if (flat.has_value()) {
      ++scanned;
      ASSERT_TRUE(json.ok()) << body << ": " << json.status();
      EXPECT_EQ(flat->success, json->success) << body;
      EXPECT_EQ(flat->message, json->message) << body;
      EXPECT_EQ(flat->nickname, json->nickname) << body;
    } else {
      ASSERT_EQ(reply.ok(), json.ok()) << body;
      EXPECT_EQ(reply.status(), json.status()) << body;
    }
  }
  EXPECT_GT(scanned, 100);  // Both paths were taken.
}

}  // namespace
}  // namespace presence::vs
