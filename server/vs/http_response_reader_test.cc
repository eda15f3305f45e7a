#include "server/vs/http_response_reader.h"

#include <string>

#include "gtest/gtest.h"

namespace presence::vs {
namespace {

using State = HttpResponseReader::State;

constexpr size_t kMaxBody = 64;

// Feeds `bytes` whole, and again a byte at a time into a second reader;
// both must agree. Returns the first.
HttpResponseReader Read(const std::string& bytes, bool eof = false) {
  HttpResponseReader whole(kMaxBody);
  const size_t used = whole.Feed(bytes);
  HttpResponseReader bytewise(kMaxBody);
  size_t used_bytewise = 0;
  for (char c : bytes) {
    if (bytewise.state() != State::kReading) break;
    used_bytewise += bytewise.Feed(std::string(1, c));
  }
  if (eof) {
    whole.OnEof();
    bytewise.OnEof();
  }
  EXPECT_EQ(used, used_bytewise);
  EXPECT_EQ(whole.state(), bytewise.state());
  EXPECT_EQ(whole.status(), bytewise.status());
  if (whole.state() == State::kDone) {
    EXPECT_EQ(whole.body(), bytewise.body());
  }
  EXPECT_EQ(whole.keep_alive(), bytewise.keep_alive());
  return whole;
}

TEST(HttpResponseReaderTest, ContentLengthBody) {
  HttpResponseReader r = Read(
      "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 17\r\n\r\n"
      "{ success: true }");
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.status(), 200);
  EXPECT_EQ(r.body(), "{ success: true }");
  EXPECT_TRUE(r.keep_alive());
}

TEST(HttpResponseReaderTest, BareLineFeedsAndHeaderCaseAreAccepted) {
  HttpResponseReader r = Read("HTTP/1.1 503 Busy\ncontent-LENGTH:  2 \n\nno");
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.status(), 503);
  EXPECT_EQ(r.body(), "no");
}

TEST(HttpResponseReaderTest, ChunkedBodyWithExtensionsAndTrailers) {
  HttpResponseReader r = Read(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;x=y\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.body(), "hello 0123456789");
  EXPECT_TRUE(r.keep_alive());
}

TEST(HttpResponseReaderTest, BodyWithoutFramingRunsToTheClose) {
  HttpResponseReader open = Read("HTTP/1.1 200 OK\r\n\r\n{ success: true }");
  EXPECT_EQ(open.state(), State::kReading);
  HttpResponseReader r = Read("HTTP/1.1 200 OK\r\n\r\n{ success: true }", /*eof=*/true);
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.body(), "{ success: true }");
  EXPECT_FALSE(r.keep_alive());
}

TEST(HttpResponseReaderTest, KeepAliveFollowsVersionAndConnectionHeader) {
  EXPECT_FALSE(
      Read("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive());
  EXPECT_FALSE(Read("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive());
  EXPECT_TRUE(
      Read("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").keep_alive());
  EXPECT_FALSE(Read("HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n")
                   .keep_alive());
}

TEST(HttpResponseReaderTest, InterimAnswersAreSkipped) {
  HttpResponseReader r = Read(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nContent-Length: 9\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.status(), 201);
  EXPECT_EQ(r.body(), "ok");
}

TEST(HttpResponseReaderTest, NoContentHasNoBody) {
  HttpResponseReader r = Read("HTTP/1.1 204 No Content\r\n\r\n");
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.body(), "");
  EXPECT_TRUE(r.keep_alive());
}

TEST(HttpResponseReaderTest, StopsAtTheEndOfTheResponse) {
  HttpResponseReader r(kMaxBody);
  const std::string two =
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb";
  const size_t used = r.Feed(two);
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.body(), "a");
  ASSERT_LT(used, two.size());
  r.Reset();
  EXPECT_FALSE(r.started());
  EXPECT_EQ(r.Feed(std::string(two).substr(used)), two.size() - used);
  EXPECT_EQ(r.state(), State::kDone);
  EXPECT_EQ(r.body(), "b");
}

TEST(HttpResponseReaderTest, BodiesPastTheBoundAreRefused) {
  HttpResponseReader declared = Read("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n");
  EXPECT_EQ(declared.state(), State::kError);
  EXPECT_TRUE(declared.body_too_large());
  const std::string big(kMaxBody + 1, 'x');
  HttpResponseReader chunked =
      Read("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n" + big + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.state(), State::kError);
  EXPECT_TRUE(chunked.body_too_large());
  HttpResponseReader unframed = Read("HTTP/1.1 200 OK\r\n\r\n" + big);
  EXPECT_EQ(unframed.state(), State::kError);
  EXPECT_TRUE(unframed.body_too_large());
  EXPECT_FALSE(unframed.keep_alive());
}

TEST(HttpResponseReaderTest, MalformedAnswersAreErrors) {
  for (const std::string bytes : {
           "<html>502 Bad Gateway</html>\r\n",
           "HTTP/2 200\r\n\r\n",
           "HTTP/1.1 2000 OK\r\n\r\n",
           "HTTP/1.1 OK\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
           "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
       }) {
    HttpResponseReader r = Read(bytes);
    EXPECT_EQ(r.state(), State::kError) << bytes;
    EXPECT_FALSE(r.error().empty()) << bytes;
    EXPECT_FALSE(r.keep_alive()) << bytes;
  }
}

TEST(HttpResponseReaderTest, EndlessHeadersAreCutOff) {
  HttpResponseReader r(kMaxBody);
  r.Feed("HTTP/1.1 200 OK\r\n");
  const std::string header = "X-Filler: " + std::string(1000, 'y') + "\r\n";
  for (int i = 0; i < 100 && r.state() == State::kReading; ++i) r.Feed(header);
  EXPECT_EQ(r.state(), State::kError);
  HttpResponseReader line(kMaxBody);
  line.Feed("HTTP/1.1 200 OK\r\nX-Long: " + std::string(10000, 'z'));
  EXPECT_EQ(line.state(), State::kError);
}

TEST(HttpResponseReaderTest, ACloseBeforeTheEndIsAnError) {
  HttpResponseReader nothing(kMaxBody);
  nothing.OnEof();
  EXPECT_EQ(nothing.state(), State::kError);
  EXPECT_FALSE(nothing.started());
  HttpResponseReader partial = Read("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true);
  EXPECT_EQ(partial.state(), State::kError);
  EXPECT_TRUE(partial.started());
  HttpResponseReader headers = Read("HTTP/1.1 200 OK\r\nContent-Le", true);
  EXPECT_EQ(headers.state(), State::kError);
}

}  // namespace
}  // namespace presence::vs
