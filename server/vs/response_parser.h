#ifndef PRESENCE_SERVER_VS_RESPONSE_PARSER_H_
#define PRESENCE_SERVER_VS_RESPONSE_PARSER_H_

// Parses VS's answer body: `{ success: true, message: "", nickname: "bob_1234" }`.
//
// VS documents its answers with unquoted keys and sends them as text/xml, so
// both strict JSON and that relaxed form are accepted, whatever the
// Content-Type. Parsing is nlohmann::json's, after quoting bare keys, except
// for the answer VS sends all day (a flat object of plain strings, booleans
// and integers), which a scanner reads without building a document: it is
// on every ping's path. Anything else goes to nlohmann::json, and both paths
// give the same result (a differential test holds them to it). Unknown
// fields are ignored. Pure functions; thread-safe.

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace presence::vs {

// What VS said.
struct VsReply {
  bool success = false;
  std::string message;
  std::string nickname;  // Only joinRoom answers carry it; empty otherwise.
};

// Parses `body`. A body that is not an object of the documented shape, or has
// no boolean `success`, is an InternalError "VS protocol error: ..." carrying a
// short, sanitized excerpt of the body (printable ASCII only, at most 64 bytes).
absl::StatusOr<VsReply> ParseVsReply(absl::string_view body);

namespace internal {
// The two paths ParseVsReply takes, for the differential test. The fast one
// answers only for a valid flat object whose `success` is usable, and
// nullopt for everything it does not read (which the other path then does).
std::optional<VsReply> ParseFlatVsReply(absl::string_view body);
absl::StatusOr<VsReply> ParseVsReplyAsJson(absl::string_view body);
}  // namespace internal

// Rewrites the relaxed form into strict JSON by quoting bare identifier keys
// (`{a: 1}` becomes `{"a": 1}`). Strings and everything else pass unchanged.
std::string QuoteBareKeys(absl::string_view body);

// A short excerpt of `text` safe to put in a log line or error message:
// control and non-ASCII bytes become '?', and it is cut at `max_bytes`.
std::string SanitizedExcerpt(absl::string_view text, size_t max_bytes = 64);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_RESPONSE_PARSER_H_
