#ifndef PRESENCE_SERVER_VS_REDACTOR_H_
#define PRESENCE_SERVER_VS_REDACTOR_H_

// Redactor removes the VS key (as typed and as form-escaped in a URL or body)
// from text that might echo it: VS's answers, libcurl's error messages.
// Redact whole texts before cutting them short: a key across the cut would
// otherwise leak its prefix.
//
// Thread-safe (immutable).

#include <string>

namespace presence::vs {

class Redactor {
 public:
  explicit Redactor(std::string key);

  // Returns at once when there is nothing to redact (it runs on every answer).
  std::string Redact(std::string text) const;

 private:
  const std::string key_;
  const std::string escaped_key_;
};

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_REDACTOR_H_
