#include "server/journal/session_journal.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace presence::journal {
namespace {

std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name);
  int removed = std::system(("rm -rf " + dir).c_str());
  (void)removed;
  return dir;
}

JournaledSession Session(int i) {
  return JournaledSession{absl::StrCat("s", i), 40 + i,
                          i % 2 ? std::optional<int64_t>(i) : std::nullopt,
                          absl::StrCat("Zoë & Co=", i, "_1000")};
}

TEST(SessionJournalTest, ReopenFindsJoinsWithoutLeaves) {
  std::string dir = FreshDir("reopen");
  {
    auto journal = SessionJournal::Open(dir);
    ASSERT_TRUE(journal.ok()) << journal.status();
    EXPECT_TRUE((*journal)->unfinished().empty());
    for (int i = 0; i < 5; ++i) (*journal)->RecordJoin(Session(i));
    (*journal)->RecordLeft("s1");
    (*journal)->RecordLeft("s3");
    (*journal)->RecordLeft("never-joined");
    (*journal)->Sync();
    EXPECT_EQ((*journal)->open_sessions(), 3);
  }
  auto again = SessionJournal::Open(dir);
  ASSERT_TRUE(again.ok());
  const auto& open = (*again)->unfinished();
  ASSERT_EQ(open.size(), 3u);
  EXPECT_EQ(open[0].session_id, "s0");
  EXPECT_EQ(open[0].nickname, "Zoë & Co=0_1000");
  EXPECT_FALSE(open[0].customer_id.has_value());
  EXPECT_EQ(open[1].session_id, "s2");
  EXPECT_EQ(open[2].session_id, "s4");
  EXPECT_EQ(open[2].performer_id, 44);
}

TEST(SessionJournalTest, WhatIsSyncedSurvivesWithoutAnOrderlyClose) {
  std::string dir = FreshDir("crash");
  auto journal = SessionJournal::Open(dir);
  ASSERT_TRUE(journal.ok());
  (*journal)->RecordJoin(Session(7));
  (*journal)->Sync();
  // Read the file as a crashed process would leave it: no destructor ran.
  std::ifstream in(dir + "/sessions.journal");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  std::optional<JournalRecord> record = ParseJournalLine(line);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->kind, JournalRecord::Kind::kJoin);
  EXPECT_EQ(record->session.session_id, "s7");
  EXPECT_EQ(record->session.customer_id, 7);
}

TEST(SessionJournalTest, ATornLastLineIsIgnored) {
  std::string dir = FreshDir("torn");
  {
    auto journal = SessionJournal::Open(dir);
    ASSERT_TRUE(journal.ok());
    (*journal)->RecordJoin(Session(1));
    (*journal)->RecordJoin(Session(2));
    (*journal)->Sync();
  }
  {
    std::ofstream out(dir + "/sessions.journal", std::ios::app);
    out << "L s1";  // Torn: no newline, so the leave never happened.
  }
  auto again = SessionJournal::Open(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->unfinished().size(), 2u);
}

TEST(SessionJournalTest, GarbageLinesAreSkipped) {
  EXPECT_FALSE(ParseJournalLine("").has_value());
  EXPECT_FALSE(ParseJournalLine("J s1 x - nick").has_value());
  EXPECT_FALSE(ParseJournalLine("J s1 1 - %zz").has_value());
  EXPECT_FALSE(ParseJournalLine("X s1").has_value());
  EXPECT_TRUE(ParseJournalLine("L s1").has_value());
  EXPECT_TRUE(ParseJournalLine(JoinLine(Session(3)).substr(0, JoinLine(Session(3)).size() - 1))
                  .has_value());
}

TEST(SessionJournalTest, CompactionKeepsOnlyOpenSessions) {
  std::string dir = FreshDir("compact");
  {
    auto journal = SessionJournal::Open(dir);
    ASSERT_TRUE(journal.ok());
    // Well past the 1 MiB compaction floor, nearly all of it left.
    for (int i = 0; i < 30000; ++i) {
      (*journal)->RecordJoin(Session(i));
      if (i % 1000 != 0) (*journal)->RecordLeft(absl::StrCat("s", i));
    }
    (*journal)->Sync();
    EXPECT_GE((*journal)->stats().compactions, 2);  // At open, and at least once after.
    EXPECT_EQ((*journal)->open_sessions(), 30);
  }
  std::ifstream in(dir + "/sessions.journal", std::ios::ate);
  EXPECT_LT(static_cast<int64_t>(in.tellg()), 1 << 20);
  auto again = SessionJournal::Open(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->unfinished().size(), 30u);
}

TEST(SessionJournalTest, OpenFailsClearlyOnAnUnusableDirectory) {
  auto journal = SessionJournal::Open("/proc/presence-no-such-dir/x");
  EXPECT_FALSE(journal.ok());
  EXPECT_NE(journal.status().message().find("--state_dir"), std::string::npos);
}

TEST(SessionJournalTest, ASecondJournalOnTheSameDirectoryIsRefused) {
  std::string dir = FreshDir("locked");
  auto first = SessionJournal::Open(dir);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = SessionJournal::Open(dir);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another presence_server"), std::string::npos)
      << second.status();
  first->reset();  // The lock goes with the journal.
  EXPECT_TRUE(SessionJournal::Open(dir).ok());
}

TEST(SessionJournalTest, AJoinStillAtVsIsRecoveredWithTheNicknameAskedFor) {
  std::string dir = FreshDir("intent");
  {
    auto journal = SessionJournal::Open(dir);
    ASSERT_TRUE(journal.ok());
    JournaledSession asked{"s1", 42, 7, "alice", /*confirmed=*/false};
    (*journal)->RecordIntent(asked);
    JournaledSession refused{"s2", 42, 8, "bob", false};
    (*journal)->RecordIntent(refused);
    (*journal)->RecordLeft("s2");  // VS refused it: nothing owed.
    JournaledSession joined{"s3", 42, 9, "carol", false};
    (*journal)->RecordIntent(joined);
    (*journal)->RecordJoin({"s3", 42, 9, "carol_1234"});
    (*journal)->Sync();
  }
  auto again = SessionJournal::Open(dir);
  ASSERT_TRUE(again.ok());
  const auto& open = (*again)->unfinished();
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].session_id, "s1");
  EXPECT_EQ(open[0].nickname, "alice");
  EXPECT_FALSE(open[0].confirmed);
  EXPECT_EQ(open[1].session_id, "s3");
  EXPECT_EQ(open[1].nickname, "carol_1234");
  EXPECT_TRUE(open[1].confirmed);
}

// RLIMIT_FSIZE makes the kernel cut writes short (and then fail them with
// EFBIG), as a full disk does.
TEST(SessionJournalTest, AShortWriteLosesNoRecordAndGluesNoLines) {
  std::string dir = FreshDir("short");
  signal(SIGXFSZ, SIG_IGN);
  rlimit original;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &original), 0);
  {
    auto journal = SessionJournal::Open(dir);
    ASSERT_TRUE(journal.ok());
    (*journal)->RecordJoin(Session(0));
    (*journal)->Sync();
    rlimit tight = original;
    tight.rlim_cur = 60;  // Room for the first record and part of the next.
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tight), 0);
    for (int i = 1; i < 5; ++i) (*journal)->RecordJoin(Session(i));
    (*journal)->Sync();
    EXPECT_GE((*journal)->stats().write_errors, 1);
    ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &original), 0);
    // The writer tries again (every 100 ms) and succeeds now; the destructor
    // waits for what is pending.
  }
  std::ifstream in(dir + "/sessions.journal");
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_TRUE(ParseJournalLine(line).has_value()) << "unreadable: " << line;
  }
  EXPECT_EQ(lines, 5);
  auto again = SessionJournal::Open(dir);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->unfinished().size(), 5u);
}

}  // namespace
}  // namespace presence::journal
