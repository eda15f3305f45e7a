// Fuzzes the VS answer parser: any bytes VS might send must give a reply or
// a protocol error, never a crash, and an error's excerpt stays short and
// printable.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/vs/response_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<presence::vs::VsReply> reply = presence::vs::ParseVsReply(body);
  if (!reply.ok()) {
    if (reply.status().code() != absl::StatusCode::kInternal) std::abort();
    for (char c : reply.status().message()) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f)
        std::abort();
    }
    if (reply.status().message().size() > 200) std::abort();
  }
  std::string excerpt = presence::vs::SanitizedExcerpt(body);
  if (excerpt.size() > 64 + 3) std::abort();
  return 0;
}
