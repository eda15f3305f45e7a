// load_generator: opens many Session streams against a presence gateway,
// holds them, optionally reports activity, then closes them by a mix of
// leave, half-close and cancel. Built on gRPC's callback client API, so a
// held stream costs memory, not a thread. Streams are spread over many
// channels with distinct arguments, so they do not share one connection.
//
//   load_generator --target=127.0.0.1:50051 --sessions=100000 --channels=64
//                  --hold=30s --close_mix=1,1,1
//
// Prints what it saw: sessions established, errors by code, join latency
// percentiles, and lines "ESTABLISHED n" / "CLOSED n" that scripts wait for.
// Bounded: it stops by itself after --hold (and --max_wait for joins/ends).

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "presence/v1/presence.grpc.pb.h"
#include "server/metrics/histogram.h"
#include "server/metrics/latency_samples.h"
#include "server/service/status_conversion.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Gateway address.");
ABSL_FLAG(int, sessions, 1000, "Sessions to open.");
ABSL_FLAG(int, channels, 16, "Channels (HTTP/2 connections) to spread them over.");
ABSL_FLAG(int, max_joining, 1000, "Joins outstanding at once while opening.");
ABSL_FLAG(int, performers, 1000, "Distinct performers (rooms).");
ABSL_FLAG(int, sequential_joins, 0,
          "Before the bulk: this many join+leave pairs one at a time, for unloaded join latency.");
ABSL_FLAG(int64_t, first_customer, 1,
          "Customer id of the first session (the others follow): two generators with disjoint "
          "ranges hold distinct customers; overlapping ranges share presences in a fleet.");
ABSL_FLAG(bool, sequential_registered, false,
          "The sequential joins are registered customers (each its own): with a fleet, each "
          "claims the customer's presence in Redis first.");
ABSL_FLAG(absl::Duration, hold, absl::Seconds(10), "How long to hold the sessions open.");
ABSL_FLAG(int, held_sequential_joins, 0,
          "Sequential joins (join, then leave, one at a time) made while the sessions are held, "
          "--held_sequential_after into the hold: the join latency under that load.");
ABSL_FLAG(absl::Duration, held_sequential_after, absl::Seconds(1),
          "When into the hold the --held_sequential_joins start.");
ABSL_FLAG(double, activity_per_second, 0, "Activity messages per second across all sessions.");
ABSL_FLAG(std::string, close_mix, "1,1,1",
          "Weights of leave, half-close and cancel when closing; 'none' waits for the server "
          "to end the streams (for drain tests).");
ABSL_FLAG(absl::Duration, max_wait, absl::Seconds(300), "Bound on waiting for joins and ends.");

namespace {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

enum class CloseBy { kLeave, kHalfClose, kCancel };

struct Totals {
  absl::Mutex mu;
  int64_t joined ABSL_GUARDED_BY(mu) = 0;
  int64_t ended ABSL_GUARDED_BY(mu) = 0;
  int64_t joining ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, int64_t> codes ABSL_GUARDED_BY(mu);
  presence::metrics::LatencyHistogram join_latency;
  std::atomic<int64_t> notices{0};
  std::atomic<int64_t> activities{0};
};

// One viewer's stream. Deleted by the main thread after OnDone.
class Session : public grpc::ClientBidiReactor<SessionRequest, SessionResponse> {
 public:
  Session(presence::v1::Presence::Stub* stub, Totals* totals, int64_t id, int64_t performer)
      : totals_(totals) {
    join_.mutable_join()->set_performer_id(performer);
    join_.mutable_join()->set_nickname(absl::StrCat("load", id));
    join_.mutable_join()->set_customer_id(absl::GetFlag(FLAGS_first_customer) + id);
    join_.mutable_join()->set_registered(true);
    join_.mutable_join()->set_ip_address("198.51.100.7");
    started_ = absl::Now();
    stub->async()->Session(&context_, this);
    StartWrite(&join_);
    StartRead(&response_);
    StartCall();
  }

  void Close(CloseBy how) {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    switch (how) {
      case CloseBy::kLeave:
        if (writing_) {
          leave_after_ = true;
        } else {
          out_.mutable_leave();
          Send();
          half_close_after_ = true;
        }
        break;
      case CloseBy::kHalfClose:
        if (writing_) {
          half_close_after_ = true;
        } else {
          StartWritesDone();
        }
        break;
      case CloseBy::kCancel:
        context_.TryCancel();
        break;
    }
  }

  void Activity() {
    absl::MutexLock lock(&mu_);
    if (done_ || writing_ || !joined_ || half_close_after_ || leave_after_) return;
    out_.mutable_activity()->set_kind(presence::v1::ACTIVITY_KIND_CHAT);
    Send();
    totals_->activities.fetch_add(1, std::memory_order_relaxed);
  }

  bool done() {
    absl::MutexLock lock(&mu_);
    return done_;
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return;
    if (leave_after_) {
      leave_after_ = false;
      out_.mutable_leave();
      Send();
      half_close_after_ = true;
    } else if (half_close_after_) {
      StartWritesDone();
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.has_joined()) {
      totals_->join_latency.Record(absl::Now() - started_);
      {
        absl::MutexLock lock(&mu_);
        joined_ = true;
      }
      absl::MutexLock lock(&totals_->mu);
      ++totals_->joined;
      --totals_->joining;
    } else if (response_.has_notice()) {
      totals_->notices.fetch_add(1, std::memory_order_relaxed);
    }
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    bool was_joined;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      was_joined = joined_;
    }
    absl::MutexLock lock(&totals_->mu);
    if (!was_joined) --totals_->joining;
    ++totals_->ended;
    ++totals_->codes[presence::service::StatusCodeName(status.error_code())];
  }

 private:
  void Send() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    writing_ = true;
    StartWrite(&out_);
  }

  Totals* const totals_;
  grpc::ClientContext context_;
  SessionRequest join_;
  SessionRequest out_;
  SessionResponse response_;
  absl::Time started_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = true;  // The join write.
  bool joined_ ABSL_GUARDED_BY(mu_) = false;
  bool leave_after_ ABSL_GUARDED_BY(mu_) = false;
  bool half_close_after_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// Join+leave one at a time: the gateway's join latency without load, or with
// the sessions held (`label`).
void SequentialJoins(presence::v1::Presence::Stub* stub, int count, bool registered,
                     const char* label = "sequential joins") {
  presence::metrics::LatencySamples latency;  // Exact: joins differ by a few µs.
  int failed = 0;
  for (int i = 0; i < count; ++i) {
    grpc::ClientContext context;
    auto stream = stub->Session(&context);
    SessionRequest join;
    join.mutable_join()->set_performer_id(1);
    join.mutable_join()->set_nickname(absl::StrCat("seq", i));
    join.mutable_join()->set_ip_address("198.51.100.8");
    if (registered) {
      join.mutable_join()->set_customer_id(1000000 + i);
      join.mutable_join()->set_registered(true);
    }
    SessionResponse response;
    absl::Time start = absl::Now();
    if (!stream->Write(join) || !stream->Read(&response) || !response.has_joined()) {
      ++failed;
    } else {
      latency.Record(absl::Now() - start);
    }
    SessionRequest leave;
    leave.mutable_leave();
    stream->Write(leave);
    stream->WritesDone();
    while (stream->Read(&response)) {
    }
    stream->Finish();
  }
  std::printf("%s: %d ok, %d failed; join latency p50=%.0fus p99=%.0fus\n", label, count - failed,
              failed, absl::ToDoubleMicroseconds(latency.Percentile(0.5)),
              absl::ToDoubleMicroseconds(latency.Percentile(0.99)));
}

// Holds the sessions for --hold, with activity if asked, and the
// --held_sequential_joins on the way. Returns early if every session ended
// and none is to be closed.
void Hold(const std::vector<std::unique_ptr<Session>>& all, Totals& totals,
          presence::v1::Presence::Stub* stub, bool close) {
  const absl::Time hold_end = absl::Now() + absl::GetFlag(FLAGS_hold);
  const double rate = absl::GetFlag(FLAGS_activity_per_second);
  absl::BitGen gen;
  const absl::Time held_joins_at = absl::Now() + absl::GetFlag(FLAGS_held_sequential_after);
  bool held_joins_done = absl::GetFlag(FLAGS_held_sequential_joins) <= 0;
  while (absl::Now() < hold_end) {
    if (!held_joins_done && absl::Now() >= held_joins_at) {
      held_joins_done = true;
      SequentialJoins(stub, absl::GetFlag(FLAGS_held_sequential_joins),
                      absl::GetFlag(FLAGS_sequential_registered), "sequential joins while held");
      std::fflush(stdout);
    }
    if (rate > 0 && !all.empty()) {
      absl::Time tick = absl::Now();
      int n = static_cast<int>(rate / 10);
      for (int k = 0; k < n; ++k) all[absl::Uniform<size_t>(gen, 0, all.size())]->Activity();
      absl::SleepFor(absl::Milliseconds(100) - (absl::Now() - tick));
    } else {
      absl::SleepFor(std::min(absl::Milliseconds(100), hold_end - absl::Now()));
    }
    absl::MutexLock lock(&totals.mu);
    if (!close && totals.ended == static_cast<int64_t>(all.size())) break;
  }
}

// Opens `sessions` streams over the stubs, --max_joining joins outstanding at
// once, and waits (until `give_up`) for every join to be answered.
void Open(const std::vector<std::unique_ptr<presence::v1::Presence::Stub>>& stubs, int sessions,
          absl::Time give_up, Totals& totals, std::vector<std::unique_ptr<Session>>& all) {
  all.reserve(sessions);
  const int performers = std::max(1, absl::GetFlag(FLAGS_performers));
  const int max_joining = std::max(1, absl::GetFlag(FLAGS_max_joining));
  const int channels = static_cast<int>(stubs.size());
  for (int i = 0; i < sessions; ++i) {
    {
      absl::MutexLock lock(&totals.mu);
      auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(totals.mu) {
        return totals.joining < max_joining;
      };
      if (!totals.mu.AwaitWithDeadline(absl::Condition(&room), give_up)) break;
      ++totals.joining;
    }
    all.push_back(
        std::make_unique<Session>(stubs[i % channels].get(), &totals, i, 1 + i % performers));
  }
  absl::MutexLock lock(&totals.mu);
  auto settled = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(totals.mu) { return totals.joining == 0; };
  totals.mu.AwaitWithDeadline(absl::Condition(&settled), give_up);
}

void ReportClosed(Totals& totals, absl::Duration took) ABSL_EXCLUSIVE_LOCKS_REQUIRED(totals.mu) {
  std::printf("CLOSED %ld\n", static_cast<long>(totals.ended));
  std::printf("closed in %.2fs; activity sent %ld; notices %ld; final status by code:",
              absl::ToDoubleSeconds(took), static_cast<long>(totals.activities.load()),
              static_cast<long>(totals.notices.load()));
  for (const auto& [code, n] : totals.codes)
    std::printf(" %s=%ld", code.c_str(), static_cast<long>(n));
  std::printf("\n");
  std::fflush(stdout);
}

// --close_mix: three weights, not all zero.
bool ParseCloseMix(absl::string_view mix, std::vector<int>* weights) {
  for (absl::string_view w : absl::StrSplit(mix, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(w, &n) || n < 0) return false;
    weights->push_back(n);
  }
  return weights->size() == 3 && (*weights)[0] + (*weights)[1] + (*weights)[2] > 0;
}

// Ends every session, by leave, half-close or cancel in --close_mix's weights.
void CloseAll(const std::vector<std::unique_ptr<Session>>& all, const std::vector<int>& weights) {
  int total_weight = weights[0] + weights[1] + weights[2];
  for (size_t i = 0; i < all.size(); ++i) {
    int pick = static_cast<int>(i % total_weight);
    CloseBy how = pick < weights[0]                ? CloseBy::kLeave
                  : pick < weights[0] + weights[1] ? CloseBy::kHalfClose
                                                   : CloseBy::kCancel;
    all[i]->Close(how);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const int sessions = absl::GetFlag(FLAGS_sessions);
  const int channels = std::max(1, absl::GetFlag(FLAGS_channels));
  const absl::Duration max_wait = absl::GetFlag(FLAGS_max_wait);

  const bool close = absl::GetFlag(FLAGS_close_mix) != "none";
  std::vector<int> weights;
  if (close && !ParseCloseMix(absl::GetFlag(FLAGS_close_mix), &weights)) {
    std::fprintf(stderr, "--close_mix takes three weights, e.g. 1,1,1\n");
    return 2;
  }

  std::vector<std::unique_ptr<presence::v1::Presence::Stub>> stubs;
  for (int c = 0; c < channels; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("presence.load_channel", c);  // Distinct args: a connection of its own.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
    stubs.push_back(presence::v1::Presence::NewStub(grpc::CreateCustomChannel(
        absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials(), args)));
  }
  if (absl::GetFlag(FLAGS_sequential_joins) > 0) {
    SequentialJoins(stubs[0].get(), absl::GetFlag(FLAGS_sequential_joins),
                    absl::GetFlag(FLAGS_sequential_registered));
  }

  Totals totals;
  std::vector<std::unique_ptr<Session>> all;
  absl::Time open_start = absl::Now();
  Open(stubs, sessions, open_start + max_wait, totals, all);
  absl::Duration open_time = absl::Now() - open_start;
  int64_t joined;
  {
    absl::MutexLock lock(&totals.mu);
    joined = totals.joined;
  }
  std::printf("ESTABLISHED %ld\n", static_cast<long>(joined));
  std::printf(
      "opened %d streams, %ld joined in %.2fs; join latency p50=%.1fms p99=%.1fms max=%.1fms\n",
      static_cast<int>(all.size()), static_cast<long>(joined), absl::ToDoubleSeconds(open_time),
      absl::ToDoubleMilliseconds(totals.join_latency.Percentile(0.5)),
      absl::ToDoubleMilliseconds(totals.join_latency.Percentile(0.99)),
      absl::ToDoubleMilliseconds(totals.join_latency.Percentile(1.0)));
  std::fflush(stdout);

  Hold(all, totals, stubs[0].get(), close);
  absl::Time close_start = absl::Now();
  if (close) CloseAll(all, weights);
  {
    absl::MutexLock lock(&totals.mu);
    auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(totals.mu) {
      return totals.ended == static_cast<int64_t>(all.size());
    };
    totals.mu.AwaitWithDeadline(absl::Condition(&ended), absl::Now() + max_wait);
  }
  absl::MutexLock lock(&totals.mu);
  ReportClosed(totals, absl::Now() - close_start);
  bool complete = totals.ended == static_cast<int64_t>(all.size());
  // Streams not ended by now would be torn down under their reactors: leave
  // them to process exit.
  if (!complete) {
    std::fflush(stdout);
    _exit(1);
  }
  return joined == sessions ? 0 : 1;
}
