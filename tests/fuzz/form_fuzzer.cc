// Fuzzes the form encoder against the decoder: any list of fields encodes to
// a body that decodes to exactly the same fields (no value can inject a
// field), and decoding arbitrary bytes never crashes.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/vs/form.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  (void)presence::vs::FormDecode(input);

  // Split the input into fields at NUL bytes: name, value, name, value...
  presence::vs::FormFields fields;
  size_t start = 0;
  std::string name;
  bool have_name = false;
  for (size_t i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\0') {
      std::string part = input.substr(start, i - start);
      if (have_name) {
        fields.emplace_back(name, part);
      } else {
        name = part;
      }
      have_name = !have_name;
      start = i + 1;
    }
  }
  // Empty names with empty values are dropped by the decoder ("&&"), so the
  // encoder's input keeps only pairs with a non-empty name.
  presence::vs::FormFields kept;
  for (auto& f : fields) {
    if (!f.first.empty()) kept.push_back(f);
  }
  std::string body = presence::vs::FormEncode(kept);
  for (char c : body) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '%' || c == '+' || c == '=' ||
              c == '&';
    if (!ok) std::abort();
  }
  absl::StatusOr<presence::vs::FormFields> decoded = presence::vs::FormDecode(body);
  if (!decoded.ok() || *decoded != kept) std::abort();
  return 0;
}
