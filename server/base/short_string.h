#ifndef PRESENCE_SERVER_BASE_SHORT_STRING_H_
#define PRESENCE_SERVER_BASE_SHORT_STRING_H_

// ShortString keeps up to 16 bytes inline, where std::string keeps 15 (and
// allocates 32 bytes of heap for a 16-character session id). Every held
// session carries two ids, so the allocation is worth this type. Longer
// strings still work (on the heap). Immutable; thread-compatible.

#include <string>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"

namespace presence::base {

class ShortString {
 public:
  ShortString() = default;
  explicit ShortString(absl::string_view text) : chars_(text.begin(), text.end()) {}

  absl::string_view view() const { return absl::string_view(chars_.data(), chars_.size()); }
  std::string str() const { return std::string(view()); }

  friend bool operator==(const ShortString& a, const ShortString& b) {
    return a.view() == b.view();
  }
  friend bool operator<(const ShortString& a, const ShortString& b) { return a.view() < b.view(); }

 private:
  absl::InlinedVector<char, 16> chars_;
};

}  // namespace presence::base

#endif  // PRESENCE_SERVER_BASE_SHORT_STRING_H_
