#include "server/vs/http_response_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace presence::vs {
namespace {

// Bounds on what precedes a body: a line, and the status line and headers
// together. VS's are a few hundred bytes.
constexpr size_t kMaxLine = 8 * 1024;
constexpr size_t kMaxHeaderBytes = 64 * 1024;

bool HasToken(absl::string_view list, absl::string_view token) {
  for (absl::string_view part : absl::StrSplit(list, ',')) {
    if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part), token)) return true;
  }
  return false;
}

}  // namespace

void HttpResponseReader::Reset() {
  state_ = State::kReading;
  phase_ = Phase::kStatusLine;
  started_ = false;
  line_.clear();  // clear() keeps the capacity: a keep-alive connection reads thousands.
  header_bytes_ = 0;
  status_ = 0;
  http10_ = close_ = keep_alive_header_ = chunked_ = false;
  content_length_ = -1;
  body_left_ = 0;
  body_.clear();
  body_too_large_ = keep_alive_ = false;
  error_.clear();
}

size_t HttpResponseReader::Feed(absl::string_view data) {
  size_t used = 0;
  if (!data.empty()) started_ = true;
  while (state_ == State::kReading && used < data.size()) {
    absl::string_view rest = data.substr(used);
    switch (phase_) {
      case Phase::kBody:
      case Phase::kChunkData:
      case Phase::kUntilClose:
        used += TakeBody(rest);
        break;
      default: {
        size_t taken = 0;
        const bool whole = TakeLine(rest, &taken);
        used += taken;
        if (whole) {
          OnLine(line_);
          line_.clear();
        }
      }
    }
  }
  return used;
}

void HttpResponseReader::OnEof() {
  if (state_ != State::kReading) return;
  if (phase_ == Phase::kUntilClose) {
    Done();
  } else {
    Fail(started_ ? "the connection closed in the middle of the answer"
                  : "the connection closed before any answer");
  }
}

bool HttpResponseReader::TakeLine(absl::string_view data, size_t* used) {
  const size_t newline = data.find('\n');
  const size_t take = newline == absl::string_view::npos ? data.size() : newline + 1;
  *used = take;
  header_bytes_ += take;
  if (line_.size() + take > kMaxLine || header_bytes_ > kMaxHeaderBytes) {
    Fail("an HTTP line or header block past its bound");
    return false;
  }
  line_.append(data.data(), newline == absl::string_view::npos ? take : newline);
  if (newline == absl::string_view::npos) return false;
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  return true;
}

void HttpResponseReader::OnLine(absl::string_view line) {
  switch (phase_) {
    case Phase::kStatusLine:
      return OnStatusLine(line);
    case Phase::kHeaders:
      if (line.empty()) return OnHeadersEnd();
      return OnHeader(line);
    case Phase::kChunkSize:
      return OnChunkSize(line);
    case Phase::kChunkEnd:
      if (!line.empty()) return Fail("a chunk longer than its size");
      phase_ = Phase::kChunkSize;
      return;
    case Phase::kTrailers:
      if (line.empty()) Done();
      return;
    default:
      return Fail("internal: a line in a body");
  }
}

void HttpResponseReader::OnStatusLine(absl::string_view line) {
  // "HTTP/1.1 200 OK"; the reason phrase may be empty or missing.
  if (absl::ConsumePrefix(&line, "HTTP/1.1 ")) {
    http10_ = false;
  } else if (absl::ConsumePrefix(&line, "HTTP/1.0 ")) {
    http10_ = true;
  } else {
    return Fail("not an HTTP/1.x status line");
  }
  if (line.size() < 3 || (line.size() > 3 && line[3] != ' ') ||
      !absl::SimpleAtoi(line.substr(0, 3), &status_) || status_ < 100) {
    return Fail("a malformed HTTP status code");
  }
  phase_ = Phase::kHeaders;
}

void HttpResponseReader::OnHeader(absl::string_view line) {
  const size_t colon = line.find(':');
  if (colon == absl::string_view::npos || colon == 0) return Fail("a malformed HTTP header");
  const absl::string_view name = line.substr(0, colon);
  const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
  if (absl::EqualsIgnoreCase(name, "Content-Length")) {
    int64_t length = -1;
    if (!absl::SimpleAtoi(value, &length) || length < 0 ||
        (content_length_ >= 0 && content_length_ != length)) {
      return Fail("a malformed Content-Length");
    }
    content_length_ = length;
  } else if (absl::EqualsIgnoreCase(name, "Transfer-Encoding")) {
    // Only chunked is understood (VS compresses nothing we did not ask for).
    if (!absl::EqualsIgnoreCase(value, "chunked")) {
      return Fail("an unsupported Transfer-Encoding");
    }
    chunked_ = true;
  } else if (absl::EqualsIgnoreCase(name, "Connection")) {
    if (HasToken(value, "close")) close_ = true;
    if (HasToken(value, "keep-alive")) keep_alive_header_ = true;
  }
}

void HttpResponseReader::OnHeadersEnd() {
  if (status_ < 200) {  // An interim answer (100 Continue): the real one follows.
    phase_ = Phase::kStatusLine;
    content_length_ = -1;
    chunked_ = close_ = keep_alive_header_ = false;
    return;
  }
  keep_alive_ = !close_ && (!http10_ || keep_alive_header_);
  if (status_ == 204 || status_ == 304) return Done();
  if (chunked_) {
    phase_ = Phase::kChunkSize;
  } else if (content_length_ >= 0) {
    if (static_cast<uint64_t>(content_length_) > max_body_) {
      body_too_large_ = true;
      return Fail("an answer larger than its bound");
    }
    body_left_ = static_cast<uint64_t>(content_length_);
    phase_ = Phase::kBody;
    if (body_left_ == 0) Done();
  } else {
    keep_alive_ = false;
    phase_ = Phase::kUntilClose;
  }
}

void HttpResponseReader::OnChunkSize(absl::string_view line) {
  // "1a" or "1a;name=value"; the extension is ignored.
  absl::string_view digits = absl::StripAsciiWhitespace(line.substr(0, line.find(';')));
  uint64_t size = 0;
  if (digits.empty() || digits.size() > 15 || !absl::SimpleHexAtoi(digits, &size)) {
    return Fail("a malformed chunk size");
  }
  if (size == 0) {
    phase_ = Phase::kTrailers;
    return;
  }
  body_left_ = size;
  phase_ = Phase::kChunkData;
}

size_t HttpResponseReader::TakeBody(absl::string_view data) {
  size_t take = data.size();
  if (phase_ != Phase::kUntilClose)
    take = static_cast<size_t>(std::min<uint64_t>(take, body_left_));
  if (!Append(data.substr(0, take))) return take;
  if (phase_ == Phase::kUntilClose) return take;
  body_left_ -= take;
  if (body_left_ == 0) {
    if (phase_ == Phase::kBody) {
      Done();
    } else {
      phase_ = Phase::kChunkEnd;
      header_bytes_ = 0;
    }
  }
  return take;
}

bool HttpResponseReader::Append(absl::string_view bytes) {
  if (body_.size() + bytes.size() > max_body_) {
    body_too_large_ = true;
    Fail("an answer larger than its bound");
    return false;
  }
  body_.append(bytes.data(), bytes.size());
  return true;
}

void HttpResponseReader::Fail(std::string why) {
  state_ = State::kError;
  keep_alive_ = false;
  error_ = std::move(why);
}

}  // namespace presence::vs
