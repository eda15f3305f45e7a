#include "server/log/log.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace presence::log {
namespace {

// Runs `fn` with stderr redirected to a file; returns what it wrote.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  std::FILE* tmp = std::tmpfile();
  int saved = dup(STDERR_FILENO);
  dup2(fileno(tmp), STDERR_FILENO);
  fn();
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::fseek(tmp, 0, SEEK_SET);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), tmp)) > 0) out.append(buf, n);
  std::fclose(tmp);
  return out;
}

TEST(LogTest, TextLinesQuoteValuesThatNeedIt) {
  Configure({Level::kInfo, false});
  std::string out = CaptureStderr([] {
    Info("session_ended", {{"session", "abc"}, {"message", "the \"end\" = near"}});
  });
  EXPECT_NE(out.find(" info session_ended session=abc message=\"the \\\"end\\\" = near\"\n"),
            std::string::npos)
      << out;
}

TEST(LogTest, JsonLinesAreOneObjectWithEscapes) {
  Configure({Level::kInfo, true});
  std::string out = CaptureStderr([] { Warning("leave_failed", {{"error", "line\nbreak \x01"}}); });
  Configure({Level::kInfo, false});
  EXPECT_EQ(out.substr(0, 9), "{\"time\":\"");
  EXPECT_NE(out.find("\"level\":\"warning\",\"event\":\"leave_failed\",\"error\":\"line\\nbreak "
                     "\\u0001\"}\n"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // One line.
}

TEST(LogTest, LevelsBelowTheMinimumAreDropped) {
  Configure({Level::kWarning, false});
  std::string out = CaptureStderr([] {
    Debug("debug_event");
    Info("info_event");
    Error("error_event");
  });
  Configure({Level::kInfo, false});
  EXPECT_EQ(out.find("debug_event"), std::string::npos);
  EXPECT_EQ(out.find("info_event"), std::string::npos);
  EXPECT_NE(out.find(" error error_event"), std::string::npos);
  Level level;
  EXPECT_TRUE(ParseLevel("debug", &level));
  EXPECT_EQ(level, Level::kDebug);
  EXPECT_FALSE(ParseLevel("loud", &level));
}

}  // namespace
}  // namespace presence::log
