#include "server/journal/session_journal.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/vs/form.h"

namespace presence::journal {
namespace {

constexpr char kFile[] = "sessions.journal";

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

namespace {

std::string SessionLine(const char* kind, const JournaledSession& s) {
  return absl::StrCat(kind, " ", s.session_id, " ", s.performer_id, " ",
                      s.customer_id.has_value() ? absl::StrCat(*s.customer_id) : "-", " ",
                      vs::FormEscape(s.nickname), "\n");
}

// Takes the directory's lock; -1 (errno set) when another process has it.
int LockDirectory(const std::string& dir) {
  int fd = ::open(absl::StrCat(dir, "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    ::close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

}  // namespace

std::string JoinLine(const JournaledSession& s) { return SessionLine("J", s); }

std::string HoldLine(const JournaledHold& h) {
  return absl::StrCat("H ", h.presence_id, " ", h.token, " ", h.session_id, " ", h.performer_id,
                      " ", h.customer_id.has_value() ? absl::StrCat(*h.customer_id) : "-", " ",
                      h.registered ? 1 : 0, " ", vs::FormEscape(h.asked_nickname), " ",
                      absl::ToUnixMillis(h.expires), "\n");
}

namespace {

std::optional<JournalRecord> ParseHold(const std::vector<std::string>& parts) {
  JournalRecord record;
  record.kind = JournalRecord::Kind::kHold;
  JournaledHold& h = record.hold;
  h.presence_id = parts[1];
  h.token = parts[2];
  h.session_id = parts[3];
  int64_t expires_ms = 0;
  if (h.presence_id.empty() || h.token.empty() || h.session_id.empty() ||
      !absl::SimpleAtoi(parts[4], &h.performer_id) || !absl::SimpleAtoi(parts[8], &expires_ms) ||
      (parts[6] != "0" && parts[6] != "1")) {
    return std::nullopt;
  }
  if (parts[5] != "-") {
    int64_t customer = 0;
    if (!absl::SimpleAtoi(parts[5], &customer)) return std::nullopt;
    h.customer_id = customer;
  }
  h.registered = parts[6] == "1";
  absl::StatusOr<std::string> nickname = vs::FormUnescape(parts[7]);
  if (!nickname.ok()) return std::nullopt;
  h.asked_nickname = *std::move(nickname);
  h.expires = absl::FromUnixMillis(expires_ms);
  record.session.session_id = h.presence_id;
  return record;
}

}  // namespace
std::string IntentLine(const JournaledSession& s) { return SessionLine("I", s); }

std::optional<JournalRecord> ParseJournalLine(const std::string& line) {
  std::vector<std::string> parts = absl::StrSplit(line, ' ');
  JournalRecord record;
  if (parts.size() == 9 && parts[0] == "H") return ParseHold(parts);
  if (parts.size() == 2 && parts[0] == "L" && !parts[1].empty()) {
    record.session.session_id = parts[1];
    return record;
  }
  if (parts.size() != 5 || (parts[0] != "J" && parts[0] != "I") || parts[1].empty()) {
    return std::nullopt;
  }
  record.kind = parts[0] == "J" ? JournalRecord::Kind::kJoin : JournalRecord::Kind::kIntent;
  record.session.confirmed = record.kind == JournalRecord::Kind::kJoin;
  record.session.session_id = parts[1];
  if (!absl::SimpleAtoi(parts[2], &record.session.performer_id)) return std::nullopt;
  if (parts[3] != "-") {
    int64_t customer = 0;
    if (!absl::SimpleAtoi(parts[3], &customer)) return std::nullopt;
    record.session.customer_id = customer;
  }
  absl::StatusOr<std::string> nickname = vs::FormUnescape(parts[4]);
  if (!nickname.ok() || nickname->empty()) return std::nullopt;
  record.session.nickname = *std::move(nickname);
  return record;
}

namespace {

// What the previous run left in `path`: presences joined (or at VS) and not
// left, in order, and the holds it handed over for them.
void ReadBack(const std::string& path, std::vector<JournaledSession>* unfinished,
              std::vector<JournaledHold>* holds) {
  std::vector<JournaledSession> order;
  absl::flat_hash_map<std::string, size_t> index;
  std::vector<bool> left;
  std::vector<JournaledHold> all_holds;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (in.eof()) break;  // No newline: a torn last record.
    std::optional<JournalRecord> record = ParseJournalLine(line);
    if (!record.has_value()) continue;
    auto it = index.find(record->session.session_id);
    if (record->kind == JournalRecord::Kind::kHold) {
      all_holds.push_back(record->hold);
    } else if (record->kind == JournalRecord::Kind::kLeft) {
      if (it != index.end()) left[it->second] = true;
    } else if (it != index.end()) {
      order[it->second] = record->session;  // The join confirms its intent.
    } else {
      index[record->session.session_id] = order.size();
      order.push_back(record->session);
      left.push_back(false);
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    if (!left[i]) unfinished->push_back(order[i]);
  }
  for (JournaledHold& hold : all_holds) {
    auto it = index.find(hold.presence_id);
    if (it != index.end() && !left[it->second]) holds->push_back(std::move(hold));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<SessionJournal>> SessionJournal::Open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot create --state_dir ", dir, ": ", strerror(errno)));
  }
  int lock_fd = LockDirectory(dir);
  if (lock_fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--state_dir ", dir, " is in use by another presence_server (",
                     errno == EWOULDBLOCK ? "its lock is held" : strerror(errno),
                     "): two servers must not share one journal"));
  }
  std::unique_ptr<SessionJournal> journal(new SessionJournal(dir, -1));
  journal->lock_fd_ = lock_fd;
  ReadBack(absl::StrCat(dir, "/", kFile), &journal->unfinished_, &journal->holds_);
  std::vector<std::string> live;
  {
    absl::MutexLock lock(&journal->mu_);
    for (const JournaledSession& s : journal->unfinished_) {
      std::string line = s.confirmed ? JoinLine(s) : IntentLine(s);
      journal->live_bytes_ += static_cast<int64_t>(line.size());
      journal->live_[s.session_id] = line;
      live.push_back(std::move(line));
    }
  }
  if (!journal->Compact(live)) {
    return absl::UnavailableError(
        absl::StrCat("cannot write the journal in ", dir, ": ", strerror(errno)));
  }
  journal->writer_ = std::thread([j = journal.get()] { j->Run(); });
  return journal;
}

SessionJournal::SessionJournal(std::string dir, int fd)
    : dir_(std::move(dir)), path_(absl::StrCat(dir_, "/", kFile)), fd_(fd) {}

SessionJournal::~SessionJournal() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // Releases the lock.
}

void SessionJournal::Append(std::string line) {
  pending_ += line;
  ++appended_;
}

void SessionJournal::RecordIntent(const JournaledSession& session) {
  absl::MutexLock lock(&mu_);
  Live(session.session_id, IntentLine(session));
}

void SessionJournal::RecordJoin(const JournaledSession& session) {
  absl::MutexLock lock(&mu_);
  Live(session.session_id, JoinLine(session));
}

void SessionJournal::Live(const std::string& id, std::string line) {
  std::string& slot = live_[id];
  live_bytes_ += static_cast<int64_t>(line.size()) - static_cast<int64_t>(slot.size());
  slot = line;
  Append(std::move(line));
}

void SessionJournal::RecordLeft(const std::string& session_id) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(session_id);
  if (it == live_.end()) return;  // Never journaled, or already left.
  live_bytes_ -= static_cast<int64_t>(it->second.size());
  live_.erase(it);
  Append(absl::StrCat("L ", session_id, "\n"));
}

void SessionJournal::RecordHold(const JournaledHold& hold) {
  absl::MutexLock lock(&mu_);
  Append(HoldLine(hold));
}

void SessionJournal::Sync() {
  absl::MutexLock lock(&mu_);
  int64_t target = appended_;
  auto done = [this, target]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return durable_ >= target || fd_ < 0; };
  mu_.Await(absl::Condition(&done));
}

JournalStats SessionJournal::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int64_t SessionJournal::open_sessions() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(live_.size());
}

// Writes `live` to a new file and puts it in place of the log.
bool SessionJournal::Compact(const std::vector<std::string>& live) {
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  std::string data;
  for (const std::string& line : live) data += line;
  if (!WriteAll(fd, data) || ::fdatasync(fd) != 0 || ::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    return false;
  }
  SyncDir(dir_);
  ::close(fd);
  int append_fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
  if (append_fd < 0) return false;
  absl::MutexLock lock(&mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = append_fd;
  file_bytes_ = static_cast<int64_t>(data.size());
  ++stats_.compactions;
  return true;
}

void SessionJournal::Run() {
  constexpr int64_t kMinCompactBytes = 1 << 20;
  while (true) {
    std::string batch;
    int64_t upto;
    int fd;
    bool compact;
    std::vector<std::string> live;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !pending_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (pending_.empty() && stopping_) return;
      batch.swap(pending_);
      upto = appended_;
      fd = fd_;
      compact = file_bytes_ + static_cast<int64_t>(batch.size()) >
                std::max(kMinCompactBytes, 4 * live_bytes_);
      if (compact) {
        live.reserve(live_.size());
        for (const auto& [id, line] : live_) live.push_back(line);
      }
    }
    bool ok = WriteBatch(fd, batch, compact, live);
    absl::MutexLock lock(&mu_);
    // A failed write (a full disk) must not stall the server: Sync returns,
    // and the error is counted. The batch is not lost: it goes back in front
    // of what came since and is written again after a pause.
    durable_ = upto;
    stats_.records = upto;
    ++stats_.batches;
    if (ok) {
      if (!compact) file_bytes_ += static_cast<int64_t>(batch.size());
      stats_.bytes += static_cast<int64_t>(batch.size());
      continue;
    }
    ++stats_.write_errors;
    pending_.insert(0, batch);
    if (stopping_) return;  // Nothing more can be done at exit.
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(100));
  }
}

bool SessionJournal::WriteBatch(int fd, const std::string& batch, bool compact,
                                const std::vector<std::string>& live) {
  // The snapshot already reflects this batch: it replaces the log.
  if (compact) return Compact(live);
  if (WriteAll(fd, batch) && ::fdatasync(fd) == 0) return true;
  // Cut a partial write back off, so the retry starts on a line boundary.
  int64_t good;
  {
    absl::MutexLock lock(&mu_);
    good = file_bytes_;
  }
  int cut = ::ftruncate(fd, good);
  (void)cut;  // If even that fails, the reader skips the one torn line.
  return false;
}

}  // namespace presence::journal
