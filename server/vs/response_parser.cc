#include "server/vs/response_parser.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace presence::vs {
namespace {

bool IsIdentStart(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '$';
}

bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9'); }

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

absl::Status ProtocolError(absl::string_view what, absl::string_view body) {
  return absl::InternalError(
      absl::StrCat("VS protocol error: ", what, " (body: \"", SanitizedExcerpt(body), "\")"));
}

}  // namespace

std::string SanitizedExcerpt(absl::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 3);
  for (size_t i = 0; i < text.size() && i < max_bytes; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7F && c != '"' && c != '\\' ? static_cast<char>(c) : '?');
  }
  if (text.size() > max_bytes) out += "...";
  return out;
}

std::string QuoteBareKeys(absl::string_view body) {
  std::string out;
  out.reserve(body.size() + 16);
  size_t i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (c == '"') {
      // Copy a string verbatim, escapes included.
      size_t j = i + 1;
      while (j < body.size() && body[j] != '"') j += body[j] == '\\' ? 2 : 1;
      j = std::min(j + 1, body.size());
      out.append(body.data() + i, std::min(j, body.size()) - i);
      i = j;
    } else if (IsIdentStart(c)) {
      size_t j = i;
      while (j < body.size() && IsIdentChar(body[j])) ++j;
      size_t k = j;
      while (k < body.size() && IsSpace(body[k])) ++k;
      absl::string_view ident = body.substr(i, j - i);
      if (k < body.size() && body[k] == ':') {
        absl::StrAppend(&out, "\"", ident, "\"");
      } else {
        out.append(ident.data(), ident.size());  // true, false, null, or garbage for the parser.
      }
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

namespace internal {
namespace {

// A cursor over a flat reply. Every reader returns false on what it does not
// read, and the caller then leaves the body to nlohmann::json.
class FlatScanner {
 public:
  explicit FlatScanner(absl::string_view body) : rest_(body) {}

  void SkipSpace() {
    while (!rest_.empty() && IsSpace(rest_.front())) rest_.remove_prefix(1);
  }
  bool Take(char c) {
    SkipSpace();
    if (rest_.empty() || rest_.front() != c) return false;
    rest_.remove_prefix(1);
    return true;
  }
  bool AtEnd() {
    SkipSpace();
    return rest_.empty();
  }
  // A bare identifier or a quoted string.
  bool Key(absl::string_view* key) {
    SkipSpace();
    if (!rest_.empty() && rest_.front() == '"') return PlainString(key);
    size_t n = 0;
    if (rest_.empty() || !IsIdentStart(rest_.front())) return false;
    while (n < rest_.size() && IsIdentChar(rest_[n])) ++n;
    *key = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  // A string of printable ASCII without escapes (JSON's own rules allow
  // more, which the other path reads).
  bool PlainString(absl::string_view* value) {
    if (!Take('"')) return false;
    size_t n = 0;
    while (n < rest_.size() && rest_[n] != '"') {
      unsigned char c = static_cast<unsigned char>(rest_[n]);
      if (c < 0x20 || c >= 0x7F || c == '\\') return false;
      ++n;
    }
    if (n == rest_.size()) return false;
    *value = rest_.substr(0, n);
    rest_.remove_prefix(n + 1);
    return true;
  }
  // true, false, or an integer in JSON's form (no leading zeros).
  enum class Kind { kString, kBool, kInteger };
  bool Value(Kind* kind, absl::string_view* text) {
    SkipSpace();
    if (rest_.empty()) return false;
    if (rest_.front() == '"') {
      *kind = Kind::kString;
      return PlainString(text);
    }
    for (absl::string_view word : {absl::string_view("true"), absl::string_view("false")}) {
      if (absl::StartsWith(rest_, word) &&
          (rest_.size() == word.size() || !IsIdentChar(rest_[word.size()]))) {
        *kind = Kind::kBool;
        *text = rest_.substr(0, word.size());
        rest_.remove_prefix(word.size());
        return true;
      }
    }
    size_t n = rest_.front() == '-' ? 1 : 0;
    size_t digits = n;
    while (digits < rest_.size() && rest_[digits] >= '0' && rest_[digits] <= '9') ++digits;
    if (digits == n || digits - n > 18 || (rest_[n] == '0' && digits - n > 1)) return false;
    if (digits < rest_.size() && (rest_[digits] == '.' || rest_[digits] == 'e' ||
                                  rest_[digits] == 'E' || IsIdentChar(rest_[digits]))) {
      return false;
    }
    *kind = Kind::kInteger;
    *text = rest_.substr(0, digits);
    rest_.remove_prefix(digits);
    return true;
  }

 private:
  absl::string_view rest_;
};

}  // namespace

std::optional<VsReply> ParseFlatVsReply(absl::string_view body) {
  FlatScanner scan(body);
  if (!scan.Take('{')) return std::nullopt;
  VsReply reply;
  bool has_success = false, has_message = false, has_nickname = false;
  bool first = true;
  while (!scan.Take('}')) {
    if (!first && !scan.Take(',')) return std::nullopt;
    first = false;
    absl::string_view key, text;
    FlatScanner::Kind kind;
    if (!scan.Key(&key) || !scan.Take(':') || !scan.Value(&kind, &text)) return std::nullopt;
    // A repeated field: which one counts is the JSON library's business.
    if (key == "success") {
      if (std::exchange(has_success, true)) return std::nullopt;
      if (kind == FlatScanner::Kind::kBool) {
        reply.success = text == "true";
      } else if (kind == FlatScanner::Kind::kInteger && (text == "0" || text == "1")) {
        reply.success = text == "1";
      } else {
        return std::nullopt;  // The other path words the error.
      }
    } else if (key == "message") {
      if (std::exchange(has_message, true)) return std::nullopt;
      if (kind == FlatScanner::Kind::kString) reply.message = std::string(text);
    } else if (key == "nickname") {
      if (std::exchange(has_nickname, true)) return std::nullopt;
      if (kind == FlatScanner::Kind::kString) reply.nickname = std::string(text);
    }
  }
  if (!scan.AtEnd() || !has_success) return std::nullopt;
  return reply;
}

absl::StatusOr<VsReply> ParseVsReplyAsJson(absl::string_view body) {
  nlohmann::json doc =
      nlohmann::json::parse(QuoteBareKeys(body), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return ProtocolError("the answer is not JSON", body);
  if (!doc.is_object()) return ProtocolError("the answer is not an object", body);

  VsReply reply;
  auto success = doc.find("success");
  if (success == doc.end()) return ProtocolError("the answer has no \"success\"", body);
  if (success->is_boolean()) {
    reply.success = success->get<bool>();
  } else if (success->is_number_integer() &&
             (success->get<int64_t>() == 0 || success->get<int64_t>() == 1)) {
    reply.success = success->get<int64_t>() == 1;
  } else {
    return ProtocolError("\"success\" is not a boolean", body);
  }

  auto message = doc.find("message");
  if (message != doc.end() && message->is_string()) reply.message = message->get<std::string>();
  auto nickname = doc.find("nickname");
  if (nickname != doc.end() && nickname->is_string()) {
    reply.nickname = nickname->get<std::string>();
  }
  return reply;
}

}  // namespace internal

absl::StatusOr<VsReply> ParseVsReply(absl::string_view body) {
  if (std::optional<VsReply> flat = internal::ParseFlatVsReply(body)) return *std::move(flat);
  return internal::ParseVsReplyAsJson(body);
}

}  // namespace presence::vs
