#include "server/vs/vs_result.h"

#include <utility>

namespace presence::vs {

const char* VsFunctionName(VsFunction function) {
  switch (function) {
    case VsFunction::kJoinRoom:
      return "joinRoom";
    case VsFunction::kLeaveRoom:
      return "leaveRoom";
    case VsFunction::kPingRoom:
      return "pingRoom";
    case VsFunction::kUpdateCredits:
      return "updateCredits";
  }
  return "unknown";
}

const char* VsOutcomeName(VsOutcome outcome) {
  switch (outcome) {
    case VsOutcome::kAccepted:
      return "accepted";
    case VsOutcome::kRejected:
      return "rejected";
    case VsOutcome::kNotConnected:
      return "not_connected";
    case VsOutcome::kTransportError:
      return "transport_error";
    case VsOutcome::kTimeout:
      return "timeout";
    case VsOutcome::kHttpError:
      return "http_error";
    case VsOutcome::kProtocolError:
      return "protocol_error";
    case VsOutcome::kOverloaded:
      return "overloaded";
    case VsOutcome::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

VsResult NotTaken(absl::Status refusal) {
  VsResult result;
  result.outcome = VsOutcome::kOverloaded;
  result.status = std::move(refusal);
  return result;
}

bool OutcomeUnknown(const VsResult& result) {
  switch (result.outcome) {
    case VsOutcome::kTimeout:
    case VsOutcome::kTransportError:
    case VsOutcome::kCancelled:
      return true;
    case VsOutcome::kHttpError:
      // A proxy's "bad gateway" or "gateway timeout": VS itself may have
      // taken the request.
      return result.http_status == 502 || result.http_status == 504;
    case VsOutcome::kProtocolError:
      // An answer we could not read: VS may have said yes.
      return result.http_status >= 200 && result.http_status < 300;
    default:
      return false;
  }
}

}  // namespace presence::vs
