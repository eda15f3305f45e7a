#include "server/admin/boot_server.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "server/log/log.h"
#include "server/service/auth.h"
#include "server/vs/form.h"

namespace presence::admin {
namespace {

constexpr char kContentType[] = "text/xml; charset=utf-8";

std::string Answer(bool success, const std::string& message, int removed) {
  return absl::StrCat("{ success: ", success ? "true" : "false", ", message: \"", message,
                      "\", removed: ", removed, " }");
}

// The `key` query parameter, decoded; empty when absent or malformed.
std::string QueryKey(const std::string& target) {
  size_t q = target.find('?');
  if (q == std::string::npos) return "";
  absl::StatusOr<vs::FormFields> query = vs::FormDecode(absl::string_view(target).substr(q + 1));
  if (!query.ok()) return "";
  for (const auto& [name, value] : *query) {
    if (name == "key") return value;
  }
  return "";
}

}  // namespace

BootServer::BootServer(service::ServiceContext* context, std::string secret)
    : context_(context), secret_(std::move(secret)) {}

BootServer::~BootServer() { Stop(); }

int BootServer::Boot(service::ServiceContext* context, int64_t customer_id, int64_t performer_id) {
  int removed = 0;
  for (const auto& session : context->registry->AllJoined()) {
    const session::SessionIdentity& who = session->identity();
    if (!who.customer_id.has_value() || *who.customer_id != customer_id) continue;
    if (performer_id != 0 && who.performer_id != performer_id) continue;
    if (session->WithStream([](session::SessionStream* s) { s->EndForBoot(); })) ++removed;
  }
  return removed;
}

absl::Status BootServer::Start(const std::string& listen) {
  if (secret_.empty()) return absl::InvalidArgumentError("the boot endpoint needs a secret");
  size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--boot_listen must be host:port, got '", listen, "'"));
  }
  auto server = std::make_unique<httplib::Server>();
  server->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server->set_keep_alive_timeout(1);
  server->set_payload_max_length(4096);
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    if (!service::ConstantTimeEquals(QueryKey(req.target), secret_)) {
      res.status = 403;
      res.set_content(Answer(false, "invalid key", 0), kContentType);
      log::Warning("boot_refused", {{"reason", "invalid key"}, {"from", req.remote_addr}});
      return;
    }
    absl::StatusOr<vs::FormFields> fields = vs::FormDecode(req.body);
    std::string function, performer, customer;
    if (fields.ok()) {
      for (const auto& [name, value] : *fields) {
        if (name == "function") function = value;
        if (name == "performerId") performer = value;
        if (name == "customerId") customer = value;
      }
    }
    int64_t customer_id = 0, performer_id = 0;
    std::string error;
    if (!fields.ok()) {
      error = "the body is not a form";
    } else if (function != "customerBoot") {
      error = absl::StrCat("unknown function '", function, "'");
    } else if (!absl::SimpleAtoi(customer, &customer_id) || customer_id <= 0) {
      error = "customerId must be an integer > 0";
    } else if (!performer.empty() &&
               (!absl::SimpleAtoi(performer, &performer_id) || performer_id <= 0)) {
      error = "performerId must be an integer > 0 when given";
    }
    if (!error.empty()) {
      res.status = 400;
      res.set_content(Answer(false, error, 0), kContentType);
      return;
    }
    int removed = Boot(context_, customer_id, performer_id);
    log::Info("customer_booted", {{"customer", absl::StrCat(customer_id)},
                                  {"performer", performer.empty() ? "any" : performer},
                                  {"sessions", absl::StrCat(removed)}});
    res.set_content(Answer(true, "", removed), kContentType);
  };
  server->Post("/boot", handler);
  server->Post("/", handler);
  if (port == 0) {
    port_ = server->bind_to_any_port(listen.substr(0, colon));
  } else if (server->bind_to_port(listen.substr(0, colon), port)) {
    port_ = port;
  } else {
    port_ = -1;
  }
  if (port_ <= 0) return absl::UnavailableError(absl::StrCat("cannot listen on ", listen));
  httplib::Server* raw = server.get();
  server_ = std::move(server);
  thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // httplib's stop() is lost if it comes before the accept loop runs, and
  // the thread would never end: Start returns only once it runs.
  while (!raw->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

void BootServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace presence::admin
