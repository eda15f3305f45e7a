// viewer: holds one viewer's presence until Ctrl-C, which leaves cleanly.
//
//   viewer --server=127.0.0.1:50051 --performer=42 --nickname=bob
//          --ip=203.0.113.5 [--customer=7 --credits=100]
//          [--ca=ca.pem [--cert=client.pem --key=client.key] [--token_file=token]]

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/ascii.h"
#include "clients/cpp/viewer_session.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051", "Gateway address.");
ABSL_FLAG(int64_t, performer, 0, "Performer id.");
ABSL_FLAG(std::string, nickname, "", "Viewer nickname.");
ABSL_FLAG(int64_t, customer, 0, "Customer id (0: guest).");
ABSL_FLAG(std::string, ip, "", "Viewer IP address.");
ABSL_FLAG(int64_t, credits, 0, "Credits the customer can spend.");
ABSL_FLAG(std::string, ca, "", "CA certificate (PEM) that signed the gateway's: enables TLS.");
ABSL_FLAG(std::string, cert, "", "Client certificate (PEM), with --key, for mutual TLS.");
ABSL_FLAG(std::string, key, "", "Client private key (PEM).");
ABSL_FLAG(std::string, token_file, "", "File holding the bearer token (needs --ca).");

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
  presence::client::DialOptions dial;
  dial.ca_file = absl::GetFlag(FLAGS_ca);
  dial.cert_file = absl::GetFlag(FLAGS_cert);
  dial.key_file = absl::GetFlag(FLAGS_key);
  if (!absl::GetFlag(FLAGS_token_file).empty()) {
    std::ifstream in(absl::GetFlag(FLAGS_token_file));
    std::getline(in, dial.token);
    absl::StripAsciiWhitespace(&dial.token);
  }
  auto channel = presence::client::DialPresence(absl::GetFlag(FLAGS_server), dial);
  if (!channel.ok()) {
    std::fprintf(stderr, "dial: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  auto viewer = presence::client::ViewerSession::Open(*channel, join, options);
  if (!viewer.ok()) {
    std::fprintf(stderr, "join failed: %s\n", viewer.status().ToString().c_str());
    return 1;
  }
  std::printf("joined as %s (session %s, resumed: %s)\n", (*viewer)->display_nickname().c_str(),
              (*viewer)->session_id().c_str(), (*viewer)->resumed() ? "yes" : "no");
  std::fflush(stdout);
  // Until Ctrl-C, or the session ending by itself (a boot by VS, for one).
  const timespec tick{0, 500'000'000};
  while (sigtimedwait(&signals, nullptr, &tick) < 0) {
    if ((*viewer)->done()) {
      std::fprintf(stderr, "session ended: %s\n", (*viewer)->Wait().ToString().c_str());
      return 1;
    }
  }
  absl::Status closed = (*viewer)->Close();
  if (closed.ok()) {
    std::printf("left\n");
  } else {
    std::printf("left: %s\n", closed.ToString().c_str());
  }
  return 0;
}
