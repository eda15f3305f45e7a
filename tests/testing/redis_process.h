#ifndef PRESENCE_TESTS_TESTING_REDIS_PROCESS_H_
#define PRESENCE_TESTS_TESTING_REDIS_PROCESS_H_

// A real redis-server for a test: loopback, a free port, a temporary
// directory, no persistence. Kill() and Start() again on the same port play
// "Redis crashed and came back empty". Never the system's service.

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace presence::testing {

class RedisProcess {
 public:
  RedisProcess() : port_(FreePort()) {}
  ~RedisProcess() { Kill(); }

  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  // Starts redis-server and waits until it answers PING. `password`: requirepass.
  bool Start(const std::string& password = "") {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/redis-", port_);
    std::string mkdir = absl::StrCat("mkdir -p ", dir);
    if (std::system(mkdir.c_str()) != 0) return false;
    std::string port = absl::StrCat(port_);
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<const char*> argv = {
          "redis-server", "--port", port.c_str(), "--bind",    "127.0.0.1", "--save", "",
          "--appendonly", "no",     "--dir",      dir.c_str(), "--logfile", "",       "--loglevel",
          "warning"};
      if (!password.empty()) {
        argv.push_back("--requirepass");
        argv.push_back(password.c_str());
      }
      argv.push_back(nullptr);
      execvp("redis-server", const_cast<char* const*>(argv.data()));
      _exit(127);
    }
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (Ping(password)) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // SIGKILL: Redis gone at once, nothing saved.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  std::string url() const { return absl::StrCat("redis://127.0.0.1:", port_); }

  // A synchronous command for the test's own checks; returns the integer or
  // string reply as text ("" for nil, "ERR ..." for an error).
  std::string Query(const std::vector<std::string>& argv, const std::string& password = "") {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return "ERR connect";
    }
    if (!password.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password.c_str()));
    std::vector<const char*> args;
    std::vector<size_t> lens;
    for (const std::string& a : argv) {
      args.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), args.data(), lens.data()));
    std::string out;
    if (reply == nullptr) {
      out = "ERR no reply";
    } else if (reply->type == REDIS_REPLY_INTEGER) {
      out = absl::StrCat(reply->integer);
    } else if (reply->type == REDIS_REPLY_ERROR) {
      out = absl::StrCat("ERR ", std::string(reply->str, reply->len));
    } else if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS) {
      out.assign(reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_ARRAY) {
      out = absl::StrCat(reply->elements);
    }
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

 private:
  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

  bool Ping(const std::string& password) { return Query({"PING"}, password) == "PONG"; }

  const int port_;
  pid_t pid_ = -1;
};

}  // namespace presence::testing

#endif  // PRESENCE_TESTS_TESTING_REDIS_PROCESS_H_
