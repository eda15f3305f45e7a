#include "server/admin/metrics_server.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "httplib.h"

namespace presence::admin {
namespace {

// From 100 µs: a VS call on a near network, or a ping's lateness, fits in
// the first buckets.
constexpr double kBucketsSeconds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};

void Header(std::string* out, const char* name, const char* type, const char* help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Sample(std::string* out, const char* name, const std::string& labels, double value) {
  absl::StrAppend(out, name, labels.empty() ? "" : "{", labels, labels.empty() ? "" : "}", " ",
                  absl::StrFormat("%.9g", value), "\n");
}

// Bucket counts come from a log-linear histogram whose bucket edges do not
// match these bounds exactly: a sample counts in `le` when its histogram
// bucket's upper edge is <= le, so counts may lag by one bucket (< 12.5%).
void Histogram(std::string* out, const char* name, const std::string& labels,
               const metrics::LatencyHistogram& h) {
  std::string prefix = labels.empty() ? "" : labels + ",";
  for (double bound : kBucketsSeconds) {
    absl::StrAppend(out, name, "_bucket{", prefix, "le=\"", absl::StrFormat("%g", bound), "\"} ",
                    h.CountAtMost(absl::Seconds(bound)), "\n");
  }
  absl::StrAppend(out, name, "_bucket{", prefix, "le=\"+Inf\"} ", h.count(), "\n");
  Sample(out, (std::string(name) + "_sum").c_str(), labels, absl::ToDoubleSeconds(h.sum()));
  Sample(out, (std::string(name) + "_count").c_str(), labels, static_cast<double>(h.count()));
}

int64_t Load(const std::atomic<int64_t>& v) { return v.load(std::memory_order_relaxed); }

}  // namespace

namespace {

void RenderSessions(const MetricsSources& s, std::string& out) {
  const metrics::GatewayCounters& c = s.service->counters;

  Header(&out, "presence_sessions_open", "gauge", "Session streams open (joined or not).");
  Sample(&out, "presence_sessions_open", "", static_cast<double>(s.registry->open()));
  Header(&out, "presence_sessions_joined", "gauge", "Sessions present in a room.");
  Sample(&out, "presence_sessions_joined", "", static_cast<double>(s.registry->joined()));
  Header(&out, "presence_sessions_started_total", "counter", "Session streams started.");
  Sample(&out, "presence_sessions_started_total", "", Load(c.sessions_started));
  Header(&out, "presence_sessions_refused_total", "counter", "Session streams refused.");
  Sample(&out, "presence_sessions_refused_total", "reason=\"full\"", Load(c.sessions_refused_full));
  Header(&out, "presence_joins_shared_total", "counter",
         "Streams that joined a presence their customer already held in the room.");
  Sample(&out, "presence_joins_shared_total", "", Load(c.joins_shared));
  Header(&out, "presence_unauthenticated_total", "counter",
         "RPCs refused for a missing or bad token.");
  Sample(&out, "presence_unauthenticated_total", "", Load(c.unauthenticated));
  Header(&out, "presence_rate_limited_total", "counter",
         "Session streams ended for sending too many messages.");
  Sample(&out, "presence_rate_limited_total", "", Load(c.rate_limited));
  Header(&out, "presence_notices_suppressed_total", "counter",
         "Ping-failure notices not written: the stream had the same kind within a minute.");
  Sample(&out, "presence_notices_suppressed_total", "", Load(c.notices_suppressed));
  Header(&out, "presence_resumes_total", "counter",
         "Streams that took over a session held for a resume (no leave, no join at VS).");
  Sample(&out, "presence_resumes_total", "", Load(c.resumes));
  Header(&out, "presence_holds_total", "counter",
         "Sessions held for a resume: started; expired; moved (resumed on another replica); "
         "adopted (from a stopped or dead replica).");
  Sample(&out, "presence_holds_total", "event=\"started\"", Load(c.holds_started));
  Sample(&out, "presence_holds_total", "event=\"expired\"", Load(c.holds_expired));
  Sample(&out, "presence_holds_total", "event=\"moved\"", Load(c.holds_moved));
  Sample(&out, "presence_holds_total", "event=\"adopted\"", Load(c.holds_adopted));
  Header(&out, "presence_leaves_after_grace_total", "counter",
         "leaveRoom sent because a held session's grace ran out.");
  Sample(&out, "presence_leaves_after_grace_total", "", Load(c.leaves_after_grace));
  Header(&out, "presence_sessions_held", "gauge", "Sessions held for a resume now.");
  Sample(&out, "presence_sessions_held", "",
         static_cast<double>(s.service->presences->held_sessions()));
  Header(&out, "presence_invalid_requests_total", "counter", "Client messages refused as invalid.");
  Sample(&out, "presence_invalid_requests_total", "", Load(c.invalid_requests));
}

void RenderOutcomes(const metrics::GatewayCounters& c, std::string& out) {
  struct Outcomes {
    const char* name;
    const char* help;
    const std::atomic<int64_t>* accepted;
    const std::atomic<int64_t>* rejected;
    const std::atomic<int64_t>* failed;
  };
  for (const Outcomes& o : {
           Outcomes{"presence_joins_total", "joinRoom results by outcome.", &c.joins_accepted,
                    &c.joins_rejected, &c.joins_failed},
           Outcomes{"presence_pings_total", "pingRoom results by outcome.", &c.pings_accepted,
                    &c.pings_rejected, &c.pings_failed},
           Outcomes{"presence_credit_updates_total", "updateCredits results by outcome.",
                    &c.credits_accepted, &c.credits_rejected, &c.credits_failed},
       }) {
    Header(&out, o.name, "counter", o.help);
    Sample(&out, o.name, "outcome=\"accepted\"", Load(*o.accepted));
    Sample(&out, o.name, "outcome=\"rejected\"", Load(*o.rejected));
    Sample(&out, o.name, "outcome=\"failed\"", Load(*o.failed));
  }
  Header(&out, "presence_leaves_total", "counter",
         "leaveRoom: sent, and final results (accepted or failed after retries).");
  Sample(&out, "presence_leaves_total", "outcome=\"sent\"", Load(c.leaves_sent));
  Sample(&out, "presence_leaves_total", "outcome=\"accepted\"", Load(c.leaves_accepted));
  Sample(&out, "presence_leaves_total", "outcome=\"failed\"", Load(c.leaves_failed));
}

void RenderScheduler(const session::PingScheduler& scheduler, std::string& out) {
  session::PingSchedulerStats ps = scheduler.stats();
  Header(&out, "presence_pings_skipped_total", "counter", "Pings not sent, by reason.");
  Sample(&out, "presence_pings_skipped_total", "reason=\"activity\"", ps.skipped_for_activity);
  Sample(&out, "presence_pings_skipped_total", "reason=\"in_flight\"", ps.skipped_in_flight);
  Header(&out, "presence_ping_lateness_seconds", "histogram",
         "Ping sent time minus scheduled time.");
  Histogram(&out, "presence_ping_lateness_seconds", "", scheduler.lateness());
  Header(&out, "presence_ping_lateness_quantile_seconds", "gauge",
         "Ping lateness quantiles since start (bucket upper bounds, within 12.5%).");
  for (double q : {0.5, 0.99, 0.999}) {
    Sample(&out, "presence_ping_lateness_quantile_seconds", absl::StrFormat("quantile=\"%g\"", q),
           absl::ToDoubleSeconds(scheduler.lateness().Percentile(q)));
  }
}

void RenderVsClient(const vs::VsClient& client, std::string& out) {
  vs::VsClientStats vs = client.stats();
  Header(&out, "presence_vs_requests_total", "counter",
         "HTTP requests sent to VS, retries included.");
  Sample(&out, "presence_vs_requests_total", "", vs.requests_sent);
  Header(&out, "presence_vs_requests_sent_by_caller_total", "counter",
         "Of presence_vs_requests_total, those the submitting thread sent itself on a free "
         "kept-alive connection, with no hand-off to a VS event loop.");
  Sample(&out, "presence_vs_requests_sent_by_caller_total", "", vs.sent_by_caller);
  Header(&out, "presence_vs_retries_total", "counter", "VS requests sent again after a failure.");
  Sample(&out, "presence_vs_retries_total", "", vs.retries);
  Header(&out, "presence_vs_requests_in_flight", "gauge", "VS requests taken and not finished.");
  Sample(&out, "presence_vs_requests_in_flight", "", vs.in_flight);
  Header(&out, "presence_vs_overloaded_total", "counter",
         "VS requests refused: too many in flight.");
  Sample(&out, "presence_vs_overloaded_total", "", vs.overloaded);
  Header(&out, "presence_vs_connections_opened_total", "counter", "TCP connections opened to VS.");
  Sample(&out, "presence_vs_connections_opened_total", "", vs.connections_opened);
  Header(&out, "presence_vs_request_duration_seconds", "histogram",
         "VS request time from first attempt to final result, by function.");
  for (vs::VsFunction f : {vs::VsFunction::kJoinRoom, vs::VsFunction::kLeaveRoom,
                           vs::VsFunction::kPingRoom, vs::VsFunction::kUpdateCredits}) {
    Histogram(&out, "presence_vs_request_duration_seconds",
              absl::StrCat("function=\"", vs::VsFunctionName(f), "\""), client.latency(f));
  }
}

}  // namespace

// Only with --redis_url.
void RenderFleet(const fleet::Fleet& fleet, std::string& out) {
  fleet::FleetStats f = fleet.stats();
  Header(&out, "presence_fleet_degraded", "gauge",
         "1 while Redis is unreachable: this replica works alone (local state only).");
  Sample(&out, "presence_fleet_degraded", "", f.degraded ? 1 : 0);
  Header(&out, "presence_fleet_live_replicas", "gauge", "Replicas alive at the last renewal.");
  Sample(&out, "presence_fleet_live_replicas", "", static_cast<double>(f.live_replicas));
  Header(&out, "presence_redis_round_trips_total", "counter", "Redis commands answered.");
  Sample(&out, "presence_redis_round_trips_total", "", static_cast<double>(f.redis.round_trips));
  Header(&out, "presence_redis_failures_total", "counter",
         "Redis commands that failed (unreachable, timed out, error reply).");
  Sample(&out, "presence_redis_failures_total", "", static_cast<double>(f.redis.failures));
  Header(&out, "presence_redis_latency_seconds_sum", "counter",
         "Time Redis took to answer, summed over answered commands.");
  Sample(&out, "presence_redis_latency_seconds_sum", "",
         static_cast<double>(f.redis.latency_micros_sum) / 1e6);
  Header(&out, "presence_redis_connects_total", "counter",
         "Connections to Redis made (each re-registers what this replica holds).");
  Sample(&out, "presence_redis_connects_total", "", static_cast<double>(f.redis.connects));
  Header(&out, "presence_fleet_takeovers_total", "counter",
         "Dead replicas whose presences this replica claimed.");
  Sample(&out, "presence_fleet_takeovers_total", "", static_cast<double>(f.takeovers));
  Header(&out, "presence_fleet_takeover_leaves_total", "counter",
         "leaveRoom sent for presences of dead replicas.");
  Sample(&out, "presence_fleet_takeover_leaves_total", "", static_cast<double>(f.takeover_leaves));
  Header(&out, "presence_fleet_takeover_adopted_total", "counter",
         "Presences of stopped or dead replicas held for a resume, adopted here.");
  Sample(&out, "presence_fleet_takeover_adopted_total", "",
         static_cast<double>(f.takeover_adopted));
}

std::string RenderMetrics(const MetricsSources& s) {
  std::string out;
  RenderSessions(s, out);
  RenderOutcomes(s.service->counters, out);
  RenderScheduler(*s.scheduler, out);
  RenderVsClient(*s.vs, out);
  if (s.service->fleet != nullptr) RenderFleet(*s.service->fleet, out);
  return out;
}

MetricsServer::MetricsServer(MetricsSources sources) : sources_(sources) {}

MetricsServer::~MetricsServer() { Stop(); }

absl::Status MetricsServer::Start(const std::string& listen) {
  base::HttpListenerOptions options;
  options.flag = "--metrics_listen";
  options.max_body_bytes = 1024;
  return listener_.Start(listen, options, [this](httplib::Server& server) {
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(RenderMetrics(sources_), "text/plain; version=0.0.4; charset=utf-8");
    });
  });
}

void MetricsServer::Stop() { listener_.Stop(); }

}  // namespace presence::admin
