#include "server/vs/response_parser.h"

#include "absl/status/status.h"
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

absl::StatusOr<VsReply> ParseVsReply(absl::string_view body) {
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

}  // namespace presence::vs
