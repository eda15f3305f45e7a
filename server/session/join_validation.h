#ifndef PRESENCE_SERVER_SESSION_JOIN_VALIDATION_H_
#define PRESENCE_SERVER_SESSION_JOIN_VALIDATION_H_

// The rules a Join must meet before anything is sent to VS.
//
// Pure functions; thread-safe.

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "presence/v1/presence.pb.h"

namespace presence::session {

inline constexpr int kMaxNicknameCharacters = 64;

// OK, or InvalidArgument naming the first field that breaks a rule:
// performer_id > 0; nickname 1..64 characters of valid UTF-8 without control
// characters; ip_address an IPv4 or IPv6 literal; credits >= 0; customer_id > 0
// when set; registered requires customer_id.
absl::Status ValidateJoin(const presence::v1::Join& join);

// Whether `text` is valid UTF-8 (no overlongs, surrogates or code points past
// U+10FFFF). Sets `*characters` to the number of code points, and
// `*has_control` when any is a C0/C1 control character or DEL.
bool ValidUtf8(absl::string_view text, int* characters, bool* has_control);

// Whether `text` is an IPv4 dotted quad or an IPv6 literal (no zone, no brackets).
bool IsIpLiteral(absl::string_view text);

}  // namespace presence::session

#endif  // PRESENCE_SERVER_SESSION_JOIN_VALIDATION_H_
