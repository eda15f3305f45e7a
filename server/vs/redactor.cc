#include "server/vs/redactor.h"

#include <utility>

#include "absl/strings/str_replace.h"
#include "server/vs/form.h"

namespace presence::vs {

Redactor::Redactor(std::string key) : key_(std::move(key)), escaped_key_(FormEscape(key_)) {}

std::string Redactor::Redact(std::string text) const {
  if (key_.empty() || text.empty()) return text;
  absl::StrReplaceAll({{key_, "<key>"}, {escaped_key_, "<key>"}}, &text);
  return text;
}

}  // namespace presence::vs
