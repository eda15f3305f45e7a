#ifndef PRESENCE_SERVER_JOURNAL_SESSION_JOURNAL_H_
#define PRESENCE_SERVER_JOURNAL_SESSION_JOURNAL_H_

// SessionJournal makes leaves crash-safe. It records, in --state_dir, every
// join as it goes to VS (its intent), every join VS accepted, and every leave
// VS answered. After a crash (kill -9, power loss) the next start reads it
// back: each presence joined, or whose join was at VS, and not yet left is
// left then, before the server serves.
//
// One process at a time: Open takes an exclusive lock on the directory, and
// a second server on the same --state_dir refuses to start.
//
// Format: an append-only text log, one record a line: "I <id> <performer>
// <customer|-> <nickname asked, form-escaped>", "J ..." (the same, with VS's
// display nickname) and "L <id>". A torn last line is ignored. A short write
// (a full disk) is cut back off the file and the batch is written again
// later, so records are never glued into one unreadable line. One writer thread does group commit:
// records are appended to a buffer by callers and written plus fdatasync'd in batches, so a join
// costs a buffer append, not a disk round trip. A record is durable within one batch (well under a
// millisecond on an idle disk; the window is measured in BENCHMARKS.md). Pings never touch the
// journal. The log is rewritten with only the open sessions whenever it grows past 4x their size.
//
// Thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace presence::journal {

struct JournaledSession {
  std::string session_id;
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  // The display nickname VS returned; for an intent, the one asked for.
  std::string nickname;
  // False for a join whose answer was never recorded (it was at VS).
  bool confirmed = true;
};

// A session held for a resume, handed over to the next start of the server
// (written at shutdown). The token is a secret: the file is 0600 in a 0700
// directory, and it is never logged.
struct JournaledHold {
  std::string presence_id;  // The JournaledSession it holds.
  std::string token;
  std::string session_id;
  int64_t performer_id = 0;
  std::optional<int64_t> customer_id;
  bool registered = false;
  std::string asked_nickname;
  absl::Time expires;  // Calendar time: it must survive the restart.
};

struct JournalStats {
  int64_t records = 0;
  int64_t batches = 0;  // Writes followed by an fdatasync.
  int64_t bytes = 0;
  int64_t compactions = 0;
  int64_t write_errors = 0;
};

class SessionJournal {
 public:
  // Opens (or creates) the journal in `dir`, reads what a previous run left
  // unfinished, and rewrites the log with just that.
  static absl::StatusOr<std::unique_ptr<SessionJournal>> Open(const std::string& dir);
  ~SessionJournal();  // Writes and syncs what is pending.

  // Sessions joined and not left when the previous run ended.
  const std::vector<JournaledSession>& unfinished() const { return unfinished_; }
  // The holds the previous run handed over, for presences in unfinished().
  const std::vector<JournaledHold>& holds() const { return holds_; }

  // A joinRoom about to be sent, with the nickname asked for.
  void RecordIntent(const JournaledSession& session);
  // VS accepted the join (replaces the intent).
  void RecordJoin(const JournaledSession& session);
  // VS answered the leave, or refused the join.
  void RecordLeft(const std::string& session_id);
  // A hold handed over at shutdown (read back by the next Open only).
  void RecordHold(const JournaledHold& hold);

  // Blocks until every record made before the call is on disk.
  void Sync();

  JournalStats stats() const;
  int64_t open_sessions() const;

 private:
  SessionJournal(std::string dir, int fd);
  void Live(const std::string& id, std::string line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Append(std::string line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes one batch (or compacts); false on a write error.
  bool WriteBatch(int fd, const std::string& batch, bool compact,
                  const std::vector<std::string>& live);
  void Run();
  bool Compact(const std::vector<std::string>& live);

  const std::string dir_;
  const std::string path_;
  int lock_fd_ = -1;  // flock(LOCK_EX) on <dir>/lock, held for the journal's life.
  std::vector<JournaledSession> unfinished_;
  std::vector<JournaledHold> holds_;

  mutable absl::Mutex mu_;
  int fd_ ABSL_GUARDED_BY(mu_);
  std::string pending_ ABSL_GUARDED_BY(mu_);
  int64_t appended_ ABSL_GUARDED_BY(mu_) = 0;  // Records appended to pending_.
  int64_t durable_ ABSL_GUARDED_BY(mu_) = 0;   // Records on disk.
  int64_t file_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t live_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, std::string> live_ ABSL_GUARDED_BY(mu_);  // id -> J line
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  JournalStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread writer_;
};

// One line of the log, parsed; nullopt for anything else (a torn line).
struct JournalRecord {
  enum class Kind { kIntent, kJoin, kLeft, kHold };
  Kind kind = Kind::kLeft;
  JournaledSession session;
  JournaledHold hold;  // kHold.
};
std::optional<JournalRecord> ParseJournalLine(const std::string& line);
std::string JoinLine(const JournaledSession& session);
std::string IntentLine(const JournaledSession& session);
std::string HoldLine(const JournaledHold& hold);

}  // namespace presence::journal

#endif  // PRESENCE_SERVER_JOURNAL_SESSION_JOURNAL_H_
