#include "server/vs_simulator/vs_simulator.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace presence::vs {
namespace {

constexpr char kContentType[] = "text/xml; charset=utf-8";

struct FieldSpec {
  const char* name;
  bool required;
  bool integer;
};

// What each function requires, as VS documents it.
const std::vector<FieldSpec>* SpecFor(const std::string& function) {
  static const auto* join = new std::vector<FieldSpec>{
      {"performerId", true, true}, {"nickname", true, false},  {"customerId", false, true},
      {"ipAddress", true, false},  {"registered", true, true}, {"credits", true, true}};
  static const auto* presence = new std::vector<FieldSpec>{
      {"performerId", true, true}, {"customerId", false, true}, {"nickname", true, false}};
  static const auto* credits =
      new std::vector<FieldSpec>{{"customerId", true, true}, {"credits", true, true}};
  if (function == "joinRoom") return join;
  if (function == "leaveRoom" || function == "pingRoom") return presence;
  if (function == "updateCredits") return credits;
  return nullptr;
}

std::string JsonString(const std::string& s) { return nlohmann::json(s).dump(); }

std::string RequestsAsJsonLines(const std::vector<RecordedRequest>& requests) {
  std::string out;
  for (const RecordedRequest& r : requests) {
    nlohmann::json fields = nlohmann::json::array();
    for (const auto& [n, v] : r.fields) fields.push_back({n, v});
    nlohmann::json line = {{"function", r.function},
                           {"fields", fields},
                           {"body", r.body},
                           {"connection", r.connection},
                           {"status", r.status},
                           {"success", r.success},
                           {"answered_nickname", r.answered_nickname},
                           {"at_unix_ms", absl::ToUnixMillis(r.at)}};
    out += line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += "\n";
  }
  return out;
}

// A FaultRule from the control API's JSON; nullopt when it is not an object.
std::optional<FaultRule> ParseFaultRule(const std::string& json) {
  nlohmann::json spec = nlohmann::json::parse(json, nullptr, false);
  if (spec.is_discarded() || !spec.is_object()) return std::nullopt;
  FaultRule rule;
  rule.function = spec.value("function", "");
  rule.performer_id = spec.value("performer_id", int64_t{0});
  rule.latency = absl::Milliseconds(spec.value("latency_ms", int64_t{0}));
  rule.http_status = spec.value("http_status", 0);
  rule.reject = spec.value("reject", false);
  rule.message = spec.value("message", rule.message);
  rule.drop_connection = spec.value("drop_connection", false);
  rule.garbage = spec.value("garbage", false);
  rule.times = spec.value("times", -1);
  return rule;
}

// Why a well-formed request is refused, as VS would say it; empty: valid.
std::string Refusal(const RecordedRequest& record, const std::string& expected_key) {
  if (record.key != expected_key) return "invalid key";
  const std::vector<FieldSpec>* spec = SpecFor(record.function);
  if (spec == nullptr) return absl::StrCat("unknown function '", record.function, "'");
  for (const FieldSpec& f : *spec) {
    std::optional<std::string> value = record.Field(f.name);
    int64_t n;
    if (!value.has_value()) {
      if (f.required) return absl::StrCat("missing field ", f.name);
    } else if (f.integer && !absl::SimpleAtoi(*value, &n)) {
      return absl::StrCat("field ", f.name, " is not an integer");
    } else if (!f.integer && value->empty()) {
      return absl::StrCat("field ", f.name, " is empty");
    }
  }
  return "";
}

std::string AnswerBody(bool relaxed, bool success, const std::string& message,
                       const std::string& nickname) {
  std::string nick = nickname.empty() ? "" : JsonString(nickname);
  if (relaxed) {
    return absl::StrCat("{ success: ", success ? "true" : "false",
                        ", message: ", JsonString(message),
                        nick.empty() ? "" : ", nickname: ", nick, " }");
  }
  return absl::StrCat("{\"success\":", success ? "true" : "false",
                      ",\"message\":", JsonString(message),
                      nick.empty() ? "" : ",\"nickname\":", nick, "}");
}

}  // namespace

std::optional<std::string> RecordedRequest::Field(const std::string& name) const {
  for (const auto& [n, v] : fields) {
    if (n == name) return v;
  }
  return std::nullopt;
}

struct VsSimulator::Answer {
  int status = 200;
  std::string body;
  bool success = false;
  bool drop_connection = false;
  absl::Duration latency;
};

VsSimulator::VsSimulator(VsSimulatorOptions options) : options_(std::move(options)) {}

VsSimulator::~VsSimulator() { Stop(); }

std::string VsSimulator::url() const {
  bool tls = !options_.tls_cert_file.empty();
  return absl::StrCat(tls ? "https://" : "http://", options_.host, ":", port_);
}

absl::Status VsSimulator::Start() {
  if (running_) return absl::FailedPreconditionError("the VS simulator is already running");
  base::HttpListenerOptions options;
  options.flag = "the VS simulator";
  options.threads = options_.threads;
  options.max_queued = 1 << 20;
  // The gateway opens up to 64 keep-alive connections at once: a short
  // backlog would drop SYNs and retry them a second later.
  options.backlog = 4096;
  options.read_timeout = absl::Seconds(30);
  // httplib's Stop waits for idle keep-alive connections to time out, so the
  // timeout bounds how long taking VS down takes.
  options.keep_alive_seconds = options_.keep_alive_timeout_seconds;
  options.keep_alive_max_requests = 1000000;
  options.tls_cert_file = options_.tls_cert_file;
  options.tls_key_file = options_.tls_key_file;
  // Start after Stop rebinds the port it had.
  int want = port_ != 0 ? port_ : options_.port;
  absl::Status started =
      listener_.Start(absl::StrCat(options_.host, ":", want), options, [this](httplib::Server& s) {
        AddCustomerRoute(s);
        AddControlRoutes(s);
      });
  if (!started.ok()) return started;
  port_ = listener_.port();
  running_ = true;
  return absl::OkStatus();
}

void VsSimulator::AddCustomerRoute(httplib::Server& server) {
  server.Post("/customer", [this](const httplib::Request& req, httplib::Response& res) {
    std::string connection = absl::StrCat(req.remote_addr, ":", req.remote_port);
    // The key is a query parameter of the URL, not httplib's merged params:
    // a body field named "key" cannot stand in for it.
    Answer answer = Handle(QueryValue(req.target, "key"), req.body,
                           req.get_header_value("Content-Type"), connection);
    if (answer.latency > absl::ZeroDuration()) absl::SleepFor(answer.latency);
    res.status = answer.status;
    if (answer.drop_connection) {
      res.set_content_provider(1000, kContentType,
                               [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    res.set_content(answer.body, kContentType);
  });
}

void VsSimulator::AddControlRoutes(httplib::Server& server) {
  server.Get("/_sim/requests", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RequestsAsJsonLines(Requests()), "application/x-ndjson");
  });
  server.Get("/_sim/counts", [this](const httplib::Request&, httplib::Response& res) {
    nlohmann::json counts = nlohmann::json::object();
    for (const char* fn : {"joinRoom", "leaveRoom", "pingRoom", "updateCredits"}) {
      counts[fn] = Count(fn);
    }
    counts["connections"] = Connections();
    res.set_content(counts.dump(), "application/json");
  });
  server.Post("/_sim/faults", [this](const httplib::Request& req, httplib::Response& res) {
    std::optional<FaultRule> rule = ParseFaultRule(req.body);
    if (!rule.has_value()) {
      res.status = 400;
      res.set_content("expected a JSON object", "text/plain");
      return;
    }
    AddFault(*std::move(rule));
    res.set_content("ok", "text/plain");
  });
  server.Post("/_sim/reset", [this](const httplib::Request&, httplib::Response& res) {
    Reset();
    res.set_content("ok", "text/plain");
  });
}

void VsSimulator::Stop() {
  listener_.Stop();
  running_ = false;
}

void VsSimulator::AddFault(FaultRule rule) {
  absl::MutexLock lock(&mu_);
  faults_.push_back(std::move(rule));
}

void VsSimulator::ClearFaults() {
  absl::MutexLock lock(&mu_);
  faults_.clear();
}

void VsSimulator::Reset() {
  absl::MutexLock lock(&mu_);
  requests_.clear();
  counts_.clear();
  connections_.clear();
  faults_.clear();
}

std::vector<RecordedRequest> VsSimulator::Requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

std::vector<RecordedRequest> VsSimulator::Requests(const std::string& function) const {
  absl::MutexLock lock(&mu_);
  std::vector<RecordedRequest> out;
  for (const RecordedRequest& r : requests_) {
    if (r.function == function) out.push_back(r);
  }
  return out;
}

int64_t VsSimulator::Count(const std::string& function) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(function);
  return it == counts_.end() ? 0 : it->second;
}

int64_t VsSimulator::Connections() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(connections_.size());
}

bool VsSimulator::WaitForCount(const std::string& function, int64_t n,
                               absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = counts_.find(function);
    return (it == counts_.end() ? 0 : it->second) >= n;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

std::optional<FaultRule> VsSimulator::TakeFault(const std::string& function, int64_t performer_id) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (!it->function.empty() && it->function != function) continue;
    if (it->performer_id != 0 && it->performer_id != performer_id) continue;
    FaultRule rule = *it;
    if (it->times > 0 && --it->times == 0) faults_.erase(it);
    return rule;
  }
  return std::nullopt;
}

VsSimulator::Answer VsSimulator::Handle(const std::string& key, const std::string& body,
                                        const std::string& content_type,
                                        const std::string& connection) {
  RecordedRequest record;
  record.body = body;
  record.key = key;
  record.content_type = content_type;
  record.connection = connection;
  record.at = absl::Now();
  absl::StatusOr<FormFields> fields = FormDecode(body);
  int64_t performer_id = 0;
  if (fields.ok()) {
    record.fields = *fields;
    record.function = record.Field("function").value_or("");
    if (auto p = record.Field("performerId")) (void)absl::SimpleAtoi(*p, &performer_id);
  }

  absl::MutexLock lock(&mu_);
  connections_[connection] = true;
  std::string message =
      fields.ok() ? Refusal(record, options_.key) : std::string(fields.status().message());
  Answer answer;
  answer.success = message.empty();
  std::string nickname;
  if (answer.success && record.function == "joinRoom") {
    nickname = absl::StrCat(*record.Field("nickname"), "_", 1000 + joins_++ % 9000);
  }
  if (std::optional<FaultRule> fault = TakeFault(record.function, performer_id)) {
    ApplyFault(*fault, &answer, &message, &nickname);
  }
  if (answer.body.empty() && !answer.drop_connection) {
    answer.body = AnswerBody(options_.relaxed_json, answer.success, message, nickname);
  }
  record.status = answer.status;
  record.success = answer.success;
  if (answer.success) record.answered_nickname = nickname;
  ++counts_[record.function];
  if (options_.record) requests_.push_back(std::move(record));
  return answer;
}

void VsSimulator::ApplyFault(const FaultRule& fault, Answer* answer, std::string* message,
                             std::string* nickname) {
  answer->latency = fault.latency;
  if (fault.http_status != 0) {
    answer->status = fault.http_status;
    answer->success = false;
    answer->body = "simulated HTTP error";
  } else if (fault.drop_connection) {
    answer->success = false;
    answer->drop_connection = true;
  } else if (fault.garbage) {
    answer->success = false;
    answer->body = "<html><body>502 Bad Gateway</body></html>";
  } else if (fault.reject) {
    answer->success = false;
    *message = fault.message;
    nickname->clear();
  }
}

}  // namespace presence::vs
