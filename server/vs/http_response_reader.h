#ifndef PRESENCE_SERVER_VS_HTTP_RESPONSE_READER_H_
#define PRESENCE_SERVER_VS_HTTP_RESPONSE_READER_H_

// HttpResponseReader reads one HTTP/1.x response from a byte stream, as the
// bytes arrive: status line, headers, then a body framed by Content-Length,
// by chunked transfer coding, or by the connection's end. Interim 1xx
// responses are skipped. It keeps the status, the body (up to a bound) and
// whether the connection may carry another request. Pure: no I/O; the
// built-in transport (http_transport.h) feeds it what recv returns.
//
// Not thread-safe; one per connection, Reset between responses.

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace presence::vs {

class HttpResponseReader {
 public:
  enum class State { kReading, kDone, kError };

  // Bodies past `max_body` bytes are an error (body_too_large()).
  explicit HttpResponseReader(size_t max_body) : max_body_(max_body) {}

  // Ready for the next response on the same connection.
  void Reset();

  // Consumes bytes of the response; returns how many it used (fewer than
  // given once the response is complete or broken: the rest is not its).
  size_t Feed(absl::string_view data);
  // The peer closed the connection: ends a body delimited by the close, and
  // is an error anywhere else in an unfinished response.
  void OnEof();

  State state() const { return state_; }
  // Any byte of the response has arrived.
  bool started() const { return started_; }
  int status() const { return status_; }
  const std::string& body() const { return body_; }
  bool body_too_large() const { return body_too_large_; }
  // Whether the connection may carry another request after this response.
  bool keep_alive() const { return keep_alive_; }
  // Why the response is broken (kError), for an error message.
  const std::string& error() const { return error_; }

 private:
  enum class Phase {
    kStatusLine,
    kHeaders,
    kBody,        // Content-Length: body_left_ bytes to go.
    kChunkSize,   // A chunk's size line.
    kChunkData,   // body_left_ bytes of the chunk to go.
    kChunkEnd,    // The CRLF after a chunk's data.
    kTrailers,    // Trailer lines, up to the empty one.
    kUntilClose,  // No framing: the body runs to the connection's end.
  };

  // Takes a line (without its CR LF) out of `data` into line_; false if the
  // line is not complete yet.
  bool TakeLine(absl::string_view data, size_t* used);
  void OnLine(absl::string_view line);
  void OnStatusLine(absl::string_view line);
  void OnHeader(absl::string_view line);
  void OnHeadersEnd();
  void OnChunkSize(absl::string_view line);
  size_t TakeBody(absl::string_view data);
  bool Append(absl::string_view bytes);
  void Fail(std::string why);
  void Done() { state_ = State::kDone; }

  const size_t max_body_;
  State state_ = State::kReading;
  Phase phase_ = Phase::kStatusLine;
  bool started_ = false;
  std::string line_;
  size_t header_bytes_ = 0;
  int status_ = 0;
  bool http10_ = false;
  bool close_ = false;              // Connection: close.
  bool keep_alive_header_ = false;  // Connection: keep-alive (HTTP/1.0).
  bool chunked_ = false;
  int64_t content_length_ = -1;
  uint64_t body_left_ = 0;
  std::string body_;
  bool body_too_large_ = false;
  bool keep_alive_ = false;
  std::string error_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_HTTP_RESPONSE_READER_H_
