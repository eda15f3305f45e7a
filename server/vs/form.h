#ifndef PRESENCE_SERVER_VS_FORM_H_
#define PRESENCE_SERVER_VS_FORM_H_

// application/x-www-form-urlencoded encoding and decoding, as VS reads it.
//
// Every byte but the unreserved ones (ALPHA DIGIT - . _ ~) is escaped, so a
// value can never inject a field: "Zoë & Co=1+1" becomes
// "Zo%C3%AB+%26+Co%3D1%2B1". Pure functions; thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace presence::vs {

// An ordered list of form fields: VS documents the order, and we keep it.
using FormFields = std::vector<std::pair<std::string, std::string>>;

// Percent-encodes `value` for a URL query or form body. Spaces become "+".
std::string FormEscape(absl::string_view value);

// Encodes `fields` as "k1=v1&k2=v2", in order.
std::string FormEncode(const FormFields& fields);

// Decodes a form body, keeping field order and duplicates. Returns
// InvalidArgument for a malformed escape ("%G1", a trailing "%").
absl::StatusOr<FormFields> FormDecode(absl::string_view body);

// Decodes one escaped component ("+" is a space).
absl::StatusOr<std::string> FormUnescape(absl::string_view value);

// The decoded value of query parameter `name` in a request target
// ("/path?a=1&key=x"); empty when absent or malformed.
std::string QueryValue(absl::string_view target, absl::string_view name);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_FORM_H_
