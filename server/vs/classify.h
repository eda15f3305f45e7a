#ifndef PRESENCE_SERVER_VS_CLASSIFY_H_
#define PRESENCE_SERVER_VS_CLASSIFY_H_

// ClassifyAttempt turns what libcurl reported for one attempt into a VsResult
// (the error model in vs_result.h). Pure: no I/O, no clock; tested like
// RetryPolicy. Transport errors are kept apart from HTTP statuses, and HTTP
// statuses apart from what VS said in the body.

#include <curl/curl.h>

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/vs/redactor.h"
#include "server/vs/vs_result.h"

namespace presence::vs {

// VS answers are a few dozen bytes; anything past this is not VS.
inline constexpr size_t kMaxResponseBytes = 64 * 1024;

// What libcurl reported for one attempt.
struct AttemptReport {
  VsFunction function = VsFunction::kJoinRoom;
  CURLcode code = CURLE_OK;
  long http_status = 0;         // CURLINFO_RESPONSE_CODE; 0: none.
  long request_bytes = 0;       // CURLINFO_REQUEST_SIZE: 0 means nothing was sent.
  std::string error_text;       // libcurl's error buffer; may be empty.
  absl::string_view body;       // What VS answered.
  bool body_too_large = false;  // We aborted the transfer past kMaxResponseBytes.
  int attempts = 0;
  absl::Duration request_timeout;  // For the timeout's message.
};

VsResult ClassifyAttempt(const AttemptReport& report, const Redactor& redactor);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_CLASSIFY_H_
