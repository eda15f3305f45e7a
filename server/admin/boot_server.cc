#include "server/admin/boot_server.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

struct BootRequest {
  int64_t customer_id = 0;
  int64_t performer_id = 0;  // 0: every room.
};

// The customerBoot form; an error message for anything else.
absl::StatusOr<BootRequest> ParseBoot(const std::string& body) {
  absl::StatusOr<vs::FormFields> fields = vs::FormDecode(body);
  if (!fields.ok()) return absl::InvalidArgumentError("the body is not a form");
  std::string function, performer, customer;
  for (const auto& [name, value] : *fields) {
    if (name == "function") function = value;
    if (name == "performerId") performer = value;
    if (name == "customerId") customer = value;
  }
  BootRequest boot;
  if (function != "customerBoot") {
    return absl::InvalidArgumentError(absl::StrCat("unknown function '", function, "'"));
  }
  if (!absl::SimpleAtoi(customer, &boot.customer_id) || boot.customer_id <= 0) {
    return absl::InvalidArgumentError("customerId must be an integer > 0");
  }
  if (!performer.empty() &&
      (!absl::SimpleAtoi(performer, &boot.performer_id) || boot.performer_id <= 0)) {
    return absl::InvalidArgumentError("performerId must be an integer > 0 when given");
  }
  return boot;
}

}  // namespace

BootServer::BootServer(service::ServiceContext* context, std::string secret)
    : context_(context), secret_(std::move(secret)) {}

BootServer::~BootServer() { Stop(); }

int BootServer::Boot(service::ServiceContext* context, int64_t customer_id, int64_t performer_id) {
  int removed = 0;
  // Streams still joining too: VS removed the customer, and a join it
  // accepts meanwhile must not stay. Joining first: a stream that joins
  // between the two looks is then found among the joined, never missed.
  for (const auto& list : {context->registry->AllJoining(), context->registry->AllJoined()}) {
    for (const auto& session : list) {
      const session::SessionIdentity& who = session->identity();
      if (!who.customer_id.has_value() || *who.customer_id != customer_id) continue;
      if (performer_id != 0 && who.performer_id != performer_id) continue;
      if (session->WithStream([](session::SessionStream* s) { s->EndForBoot(); })) ++removed;
    }
  }
  // Sessions held for a resume: the boot ends the hold, so nobody resumes
  // what VS removed.
  return removed + context->presences->EndHolds(customer_id, performer_id);
}

absl::Status BootServer::Start(const std::string& listen) {
  if (secret_.empty()) return absl::InvalidArgumentError("the boot endpoint needs a secret");
  base::HttpListenerOptions options;
  options.flag = "--boot_listen";
  options.max_body_bytes = 4096;
  return listener_.Start(listen, options, [this](httplib::Server& server) {
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      auto [status, body] = HandleBoot(req.target, req.body, req.remote_addr);
      res.status = status;
      res.set_content(body, kContentType);
    };
    server.Post("/boot", handler);
    server.Post("/", handler);
  });
}

std::pair<int, std::string> BootServer::HandleBoot(const std::string& target,
                                                   const std::string& body,
                                                   const std::string& from) {
  if (!service::ConstantTimeEquals(vs::QueryValue(target, "key"), secret_)) {
    log::Warning("boot_refused", {{"reason", "invalid key"}, {"from", from}});
    return {403, Answer(false, "invalid key", 0)};
  }
  absl::StatusOr<BootRequest> boot = ParseBoot(body);
  if (!boot.ok()) return {400, Answer(false, std::string(boot.status().message()), 0)};
  int removed = Boot(context_, boot->customer_id, boot->performer_id);
  // The customer's streams on the other replicas end too (their count is
  // not known here: `removed` is this replica's).
  if (context_->fleet != nullptr)
    context_->fleet->PublishBoot(boot->customer_id, boot->performer_id);
  log::Info("customer_booted",
            {{"customer", absl::StrCat(boot->customer_id)},
             {"performer", boot->performer_id == 0 ? "any" : absl::StrCat(boot->performer_id)},
             {"sessions", absl::StrCat(removed)}});
  return {200, Answer(true, "", removed)};
}

void BootServer::Stop() { listener_.Stop(); }

}  // namespace presence::admin
