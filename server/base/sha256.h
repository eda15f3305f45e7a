#ifndef PRESENCE_SERVER_BASE_SHA256_H_
#define PRESENCE_SERVER_BASE_SHA256_H_

// SHA-256 as lowercase hex. A resume token is shared with the fleet only as
// its digest: whoever can read Redis cannot take a viewer's session over.

#include <string>

#include "absl/strings/string_view.h"

namespace presence::base {

std::string Sha256Hex(absl::string_view data);

}  // namespace presence::base

#endif  // PRESENCE_SERVER_BASE_SHA256_H_
