#include "server/vs/classify.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/vs/response_parser.h"

namespace presence::vs {
namespace {

VsResult Failure(VsOutcome outcome, absl::Status status, const Redactor& redactor) {
  VsResult result;
  result.outcome = outcome;
  result.status = absl::Status(status.code(), redactor.Redact(std::string(status.message())));
  return result;
}

// libcurl reported an error: nothing usable came back.
VsResult TransportFailure(const AttemptReport& r, const Redactor& redactor) {
  const char* fn = VsFunctionName(r.function);
  std::string detail = r.error_text.empty() ? curl_easy_strerror(r.code) : r.error_text;
  if (r.code == CURLE_WRITE_ERROR && r.body_too_large) {
    return Failure(
        VsOutcome::kProtocolError,
        absl::InternalError(absl::StrCat("VS protocol error: the answer to ", fn,
                                         " is larger than ", kMaxResponseBytes, " bytes")),
        redactor);
  }
  if (r.request_bytes == 0 || r.code == CURLE_COULDNT_CONNECT ||
      r.code == CURLE_COULDNT_RESOLVE_HOST) {
    return Failure(
        VsOutcome::kNotConnected,
        absl::UnavailableError(absl::StrCat("could not connect to VS for ", fn, ": ", detail)),
        redactor);
  }
  if (r.code == CURLE_OPERATION_TIMEDOUT) {
    return Failure(
        VsOutcome::kTimeout,
        absl::DeadlineExceededError(absl::StrCat("VS did not answer ", fn, " within ",
                                                 absl::FormatDuration(r.request_timeout))),
        redactor);
  }
  return Failure(
      VsOutcome::kTransportError,
      absl::UnavailableError(absl::StrCat("VS transport error during ", fn, ": ", detail)),
      redactor);
}

// An HTTP answer: its status, then what VS said.
VsResult AnswerResult(const AttemptReport& r, const Redactor& redactor) {
  const char* fn = VsFunctionName(r.function);
  // Where a message quotes the body, the body is redacted whole first,
  // before an excerpt cuts it short. An answer that parses is not copied.
  if (r.http_status < 200 || r.http_status >= 300) {
    VsResult result;
    result.outcome = VsOutcome::kHttpError;
    result.status = absl::UnavailableError(
        absl::StrCat("VS answered HTTP ", r.http_status, " to ", fn, " (body: \"",
                     SanitizedExcerpt(redactor.Redact(std::string(r.body))), "\")"));
    return result;
  }
  absl::StatusOr<VsReply> reply = ParseVsReply(r.body);
  if (!reply.ok()) {
    // The parser's message quotes the body: parse the redacted text for it.
    absl::Status unreadable = ParseVsReply(redactor.Redact(std::string(r.body))).status();
    if (unreadable.ok())
      unreadable = absl::InternalError("VS protocol error: an unreadable answer");
    return Failure(
        VsOutcome::kProtocolError,
        absl::InternalError(absl::StrCat(unreadable.message(), " in the answer to ", fn)),
        redactor);
  }
  VsResult result;
  result.vs_message = redactor.Redact(std::move(reply->message));
  result.nickname = std::move(reply->nickname);
  if (reply->success) {
    result.outcome = VsOutcome::kAccepted;
    return result;
  }
  result.outcome = VsOutcome::kRejected;
  result.status = absl::FailedPreconditionError(
      result.vs_message.empty() ? absl::StrCat("VS refused ", fn) : result.vs_message);
  return result;
}

}  // namespace

VsResult ClassifyAttempt(const AttemptReport& report, const Redactor& redactor) {
  VsResult result =
      report.code != CURLE_OK ? TransportFailure(report, redactor) : AnswerResult(report, redactor);
  result.attempts = report.attempts;
  result.http_status = static_cast<int>(report.http_status);
  return result;
}

}  // namespace presence::vs
