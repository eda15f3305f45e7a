// Fuzzes Join validation with any bytes parsed as a Join: it never crashes,
// and whatever it accepts meets every rule, checked here independently.

#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "presence/v1/presence.pb.h"
#include "server/session/join_validation.h"

namespace {

// An independent count of UTF-8 code points: -1 when invalid.
int CountUtf8(const std::string& s) {
  int n = 0;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return -1;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return -1;
    }
    i += len;
    ++n;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  presence::v1::Join join;
  if (!join.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::Status status = presence::session::ValidateJoin(join);
  if (!status.ok()) {
    if (status.code() != absl::StatusCode::kInvalidArgument) std::abort();
    if (status.message().find("join.") == std::string::npos) std::abort();
    return 0;
  }
  if (join.performer_id() <= 0 || join.credits() < 0) std::abort();
  if (join.has_customer_id() && join.customer_id() <= 0) std::abort();
  if (join.registered() && !join.has_customer_id()) std::abort();
  int chars = CountUtf8(join.nickname());
  if (chars < 1 || chars > 64) std::abort();
  for (unsigned char c : join.nickname()) {
    if (c < 0x20 || c == 0x7f) std::abort();
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, join.ip_address().c_str(), buf) != 1 &&
      inet_pton(AF_INET6, join.ip_address().c_str(), buf) != 1) {
    std::abort();
  }
  return 0;
}
