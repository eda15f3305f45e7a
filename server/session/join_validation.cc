#include "server/session/join_validation.h"

#include <arpa/inet.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace presence::session {

bool ValidUtf8(absl::string_view text, int* characters, bool* has_control) {
  *characters = 0;
  *has_control = false;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    uint32_t cp;
    int extra;
    if (c < 0x80) {
      cp = c;
      extra = 0;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      extra = 1;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      extra = 2;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      extra = 3;
    } else {
      return false;
    }
    if (i + extra >= text.size()) return false;  // Truncated sequence.
    for (int k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) *has_control = true;
    ++*characters;
    i += extra + 1;
  }
  return true;
}

bool IsIpLiteral(absl::string_view text) {
  if (text.empty() || text.size() > 45) return false;
  std::string s(text);
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

absl::Status ValidateJoin(const presence::v1::Join& join) {
  if (join.performer_id() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("join.performer_id must be > 0 (got ", join.performer_id(), ")"));
  }
  int characters = 0;
  bool has_control = false;
  if (!ValidUtf8(join.nickname(), &characters, &has_control)) {
    return absl::InvalidArgumentError("join.nickname must be valid UTF-8");
  }
  if (characters < 1 || characters > kMaxNicknameCharacters) {
    return absl::InvalidArgumentError(absl::StrCat("join.nickname must be 1 to ",
                                                   kMaxNicknameCharacters, " characters (got ",
                                                   characters, ")"));
  }
  if (has_control) {
    return absl::InvalidArgumentError("join.nickname must not contain control characters");
  }
  if (!IsIpLiteral(join.ip_address())) {
    return absl::InvalidArgumentError("join.ip_address must be an IPv4 or IPv6 address literal");
  }
  if (join.credits() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("join.credits must be >= 0 (got ", join.credits(), ")"));
  }
  if (join.has_customer_id() && join.customer_id() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("join.customer_id must be > 0 when set (got ", join.customer_id(), ")"));
  }
  if (join.registered() && !join.has_customer_id()) {
    return absl::InvalidArgumentError("join.registered requires join.customer_id");
  }
  return absl::OkStatus();
}

}  // namespace presence::session
