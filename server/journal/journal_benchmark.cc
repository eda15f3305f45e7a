// What the journal costs per join and per leave: records/s with group commit
// and fdatasync, from several threads as the server would.
//
//   bazel run //server/journal:journal_benchmark -- --dir=/var/tmp/jb --sessions=200000

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/journal/session_journal.h"

ABSL_FLAG(std::string, dir, "/tmp/presence-journal-benchmark", "State directory (emptied first).");
ABSL_FLAG(int, sessions, 200000, "Joins, each followed later by its leave.");
ABSL_FLAG(int, threads, 4, "Recording threads.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::string dir = absl::GetFlag(FLAGS_dir);
  int removed = std::system(("rm -rf " + dir).c_str());
  (void)removed;
  auto journal = presence::journal::SessionJournal::Open(dir);
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 1;
  }
  const int n = absl::GetFlag(FLAGS_sessions);
  const int threads = absl::GetFlag(FLAGS_threads);
  absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < n; i += threads) {
        (*journal)->RecordJoin(
            {absl::StrCat("s", i), 1 + i % 1000, i, absl::StrCat("viewer", i, "_1000")});
        if (i >= 1000) (*journal)->RecordLeft(absl::StrCat("s", i - 1000));
      }
    });
  }
  for (auto& w : workers) w.join();
  absl::Duration recorded = absl::Now() - start;
  (*journal)->Sync();
  absl::Duration durable = absl::Now() - start;
  presence::journal::JournalStats stats = (*journal)->stats();
  std::printf(
      "records=%ld (joins %d, leaves %d) threads=%d\n"
      "recording: %.2fs (%.2f us per record on the caller)\n"
      "durable: %.2fs (%.0f records/s), fdatasync batches=%ld (%.0f records per batch), "
      "compactions=%ld, write errors=%ld\n",
      static_cast<long>(stats.records), n, n - 1000, threads, absl::ToDoubleSeconds(recorded),
      absl::ToDoubleMicroseconds(recorded) / stats.records, absl::ToDoubleSeconds(durable),
      stats.records / absl::ToDoubleSeconds(durable), static_cast<long>(stats.batches),
      static_cast<double>(stats.records) / stats.batches, static_cast<long>(stats.compactions),
      static_cast<long>(stats.write_errors));
  return 0;
}
