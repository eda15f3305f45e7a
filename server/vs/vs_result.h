#ifndef PRESENCE_SERVER_VS_VS_RESULT_H_
#define PRESENCE_SERVER_VS_VS_RESULT_H_

// The outcome of one VS call, after any retries.
//
// Error model (what each outcome's status carries):
//
//   outcome          status code          meaning
//   kAccepted        OK                   HTTP 2xx, success:true
//   kRejected        FAILED_PRECONDITION  HTTP 2xx, success:false; VS's message
//   kNotConnected    UNAVAILABLE          no connection: refused, DNS failure;
//                                         the request never reached VS
//   kTransportError  UNAVAILABLE          connection reset or closed mid-call,
//                                         TLS failure; VS may have seen it
//   kTimeout         DEADLINE_EXCEEDED    no full answer within the timeout
//   kHttpError       UNAVAILABLE          a non-2xx HTTP status (http_status)
//   kProtocolError   INTERNAL             an answer we cannot read (excerpt)
//   kOverloaded      RESOURCE_EXHAUSTED   refused before sending: too many
//                                         requests in flight
//   kCancelled       CANCELLED            the client shut down first
//
// The gRPC edge maps FAILED_PRECONDITION and RESOURCE_EXHAUSTED through and
// everything else to UNAVAILABLE. No message ever contains the VS key.

#include <string>

#include "absl/status/status.h"

namespace presence::vs {

enum class VsFunction { kJoinRoom, kLeaveRoom, kPingRoom, kUpdateCredits };

// "joinRoom", "leaveRoom", "pingRoom", "updateCredits": the wire names.
const char* VsFunctionName(VsFunction function);

enum class VsOutcome {
  kAccepted,
  kRejected,
  kNotConnected,
  kTransportError,
  kTimeout,
  kHttpError,
  kProtocolError,
  kOverloaded,
  kCancelled,
};

const char* VsOutcomeName(VsOutcome outcome);

struct VsResult {
  VsOutcome outcome = VsOutcome::kCancelled;
  // OK iff outcome is kAccepted; otherwise a specific message (table above).
  absl::Status status;
  // The HTTP status of the last attempt; 0 when there was no HTTP answer.
  int http_status = 0;
  // VS's `message` (kAccepted, kRejected).
  std::string vs_message;
  // VS's display nickname (joinRoom, kAccepted).
  std::string nickname;
  // How many times the request was sent.
  int attempts = 0;

  bool accepted() const { return outcome == VsOutcome::kAccepted; }
};

// The result of a request VsClient would not take (overloaded, shutting
// down): `refusal` is what the submitting call returned.
VsResult NotTaken(absl::Status refusal);

// Whether VS may have acted on a request whose answer we did not get or
// could not read (a timeout, a connection reset mid-answer, a shutdown, a
// proxy's 502 or 504, a 2xx that does not parse): a join with this outcome is
// taken back with a best-effort leave.
bool OutcomeUnknown(const VsResult& result);

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_VS_RESULT_H_
