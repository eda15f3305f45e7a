#ifndef PRESENCE_SERVER_LOG_LOG_H_
#define PRESENCE_SERVER_LOG_LOG_H_

// Structured log lines on stderr: "LEVEL time event key=value ..." or, for log
// collectors, one JSON object a line. Nothing here ever sees the VS key: the
// callers pass only what may be logged (nickname and IP only at debug level).
//
// Thread-safe: each line is written with a single write(2).

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace presence::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

struct Config {
  Level min_level = Level::kInfo;
  bool json = false;
};

// Set once at start-up, before other threads log.
void Configure(Config config);
bool Enabled(Level level);

using Fields = std::vector<std::pair<absl::string_view, std::string>>;

void Write(Level level, absl::string_view event, const Fields& fields);

inline void Debug(absl::string_view event, const Fields& fields = {}) {
  if (Enabled(Level::kDebug)) Write(Level::kDebug, event, fields);
}
inline void Info(absl::string_view event, const Fields& fields = {}) {
  if (Enabled(Level::kInfo)) Write(Level::kInfo, event, fields);
}
inline void Warning(absl::string_view event, const Fields& fields = {}) {
  if (Enabled(Level::kWarning)) Write(Level::kWarning, event, fields);
}
inline void Error(absl::string_view event, const Fields& fields = {}) {
  if (Enabled(Level::kError)) Write(Level::kError, event, fields);
}

// Parses "debug", "info", "warning", "error".
bool ParseLevel(absl::string_view text, Level* level);

}  // namespace presence::log

#endif  // PRESENCE_SERVER_LOG_LOG_H_
