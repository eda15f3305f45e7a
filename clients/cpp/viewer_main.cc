// viewer: holds one viewer's presence until Ctrl-C, which leaves cleanly.
//
//   viewer --server=127.0.0.1:50051 --performer=42 --nickname=bob
//          --ip=203.0.113.5 [--customer=7 --credits=100]

#include <signal.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "clients/cpp/viewer_session.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "Gateway address.");
ABSL_FLAG(int64_t, performer, 0, "Performer id.");
ABSL_FLAG(std::string, nickname, "", "Viewer nickname.");
ABSL_FLAG(int64_t, customer, 0, "Customer id (0: guest).");
ABSL_FLAG(std::string, ip, "", "Viewer IP address.");
ABSL_FLAG(int64_t, credits, 0, "Credits the customer can spend.");

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  presence::client::JoinParams join;
  join.performer_id = absl::GetFlag(FLAGS_performer);
  join.nickname = absl::GetFlag(FLAGS_nickname);
  join.ip_address = absl::GetFlag(FLAGS_ip);
  join.credits = absl::GetFlag(FLAGS_credits);
  if (absl::GetFlag(FLAGS_customer) > 0) {
    join.customer_id = absl::GetFlag(FLAGS_customer);
    join.registered = true;
  }
  presence::client::ViewerOptions options;
  options.on_notice = [](const presence::v1::Notice& notice) {
    std::printf("notice: %s %s\n", presence::v1::NoticeKind_Name(notice.kind()).c_str(),
                notice.message().c_str());
    std::fflush(stdout);
  };
  auto viewer = presence::client::ViewerSession::Open(
      presence::client::DialPresence(absl::GetFlag(FLAGS_server)), join, options);
  if (!viewer.ok()) {
    std::fprintf(stderr, "join failed: %s\n", viewer.status().ToString().c_str());
    return 1;
  }
  std::printf("joined as %s (session %s, resumed: %s)\n", (*viewer)->display_nickname().c_str(),
              (*viewer)->session_id().c_str(), (*viewer)->resumed() ? "yes" : "no");
  std::fflush(stdout);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  absl::Status closed = (*viewer)->Close();
  if (closed.ok()) {
    std::printf("left\n");
  } else {
    std::printf("left: %s\n", closed.ToString().c_str());
  }
  return 0;
}
