#include "server/vs/http_transport.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "server/base/clock.h"
#include "server/vs/classify.h"
#include "server/vs/curl_handles.h"
#include "server/vs/http_response_reader.h"

namespace presence::vs {
namespace {

// Where requests go, from an http:// URL.
struct Target {
  std::string host;  // Without brackets for IPv6.
  std::string port;
  std::string authority;  // For the Host header, as the URL has it.
  std::string path;       // With the query: it holds the key.
};

absl::StatusOr<Target> ParseHttpUrl(absl::string_view url) {
  if (!absl::ConsumePrefix(&url, "http://")) {
    return absl::InvalidArgumentError("the built-in HTTP client serves http:// URLs only");
  }
  const size_t slash = url.find('/');
  Target target;
  target.authority = std::string(url.substr(0, slash));
  target.path = slash == absl::string_view::npos ? "/" : std::string(url.substr(slash));
  absl::string_view authority = target.authority;
  if (absl::StrContains(authority, '@')) {
    return absl::InvalidArgumentError(
        "credentials in the VS URL are not supported by the built-in HTTP client "
        "(--vs_http_client=libcurl supports them)");
  }
  absl::string_view host = authority;
  absl::string_view port = "80";
  if (absl::ConsumePrefix(&host, "[")) {  // [::1]:8080
    const size_t close = host.find(']');
    if (close == absl::string_view::npos) return absl::InvalidArgumentError("a malformed VS host");
    absl::string_view rest = host.substr(close + 1);
    host = host.substr(0, close);
    if (absl::ConsumePrefix(&rest, ":"))
      port = rest;
    else if (!rest.empty())
      return absl::InvalidArgumentError("a malformed VS host");
  } else if (const size_t colon = host.rfind(':'); colon != absl::string_view::npos) {
    port = host.substr(colon + 1);
    host = host.substr(0, colon);
  }
  int port_number = 0;
  if (host.empty() || !absl::SimpleAtoi(port, &port_number) || port_number < 1 ||
      port_number > 65535) {
    return absl::InvalidArgumentError("a malformed VS host or port");
  }
  target.host = std::string(host);
  target.port = std::string(port);
  return target;
}

std::string Errno(int error) { return strerror(error); }

// One connection to VS, carrying one request at a time.
struct Connection {
  explicit Connection(FileDescriptor socket, uint32_t generation)
      : fd(std::move(socket)), generation(generation), reader(kMaxResponseBytes) {}

  FileDescriptor fd;
  const uint32_t generation;  // Tells a recycled descriptor's stale events apart.
  bool connecting = true;
  int answers = 0;              // Answers read on it before the current request.
  Attempt* attempt = nullptr;   // Null: idle.
  absl::Time connect_deadline;  // While connecting.
  absl::Time attempt_deadline;
  std::string out;  // The request's bytes.
  size_t sent = 0;
  uint32_t watching = 0;  // The epoll events registered.
  absl::Time idle_since;  // Of the clock; while idle.
  HttpResponseReader reader;

  absl::Time deadline() const {
    return connecting ? std::min(connect_deadline, attempt_deadline) : attempt_deadline;
  }
};

class HttpTransport final : public Transport {
 public:
  HttpTransport(TransportOptions options, Target target)
      : options_(std::move(options)),
        target_(std::move(target)),
        clock_(base::MonotonicClock::Get()),
        head_(absl::StrCat("POST ", target_.path, " HTTP/1.1\r\nHost: ", target_.authority,
                           "\r\nUser-Agent: presence-gateway/1\r\nAccept: */*\r\n"
                           "Content-Type: application/x-www-form-urlencoded\r\n"
                           "Content-Length: ")) {}

  absl::Status Start(Attempt* attempt) override {
    attempt->ClearOutcome();
    ++not_taken_;
    Connection* connection = TakeIdle();
    if (connection == nullptr) {
      connection = Open(attempt);
      if (connection == nullptr) return absl::OkStatus();  // Finished with the reason.
    }
    Assign(connection, attempt, clock_->Now() + attempt->timeout);
    return absl::OkStatus();
  }

  void OnReady(const epoll_event& event) override {
    auto it = connections_.find(event.data.fd);
    if (it == connections_.end() || it->second->generation != (event.data.u64 >> 32)) return;
    Connection* c = it->second.get();
    if (c->connecting) {
      if ((event.events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0) return;
      if (!Connected(c)) return;
    }
    if ((event.events & EPOLLOUT) && c->attempt != nullptr && c->sent < c->out.size()) {
      if (!Send(c)) return;
    }
    if (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) Receive(c);
  }

  std::optional<absl::Time> NextDeadline() const override {
    if (!finished_.empty()) return absl::InfinitePast();
    std::optional<absl::Time> next;
    for (const auto& [fd, c] : connections_) {
      if (c->attempt != nullptr && (!next || c->deadline() < *next)) next = c->deadline();
    }
    return next;
  }

  void OnTimer(absl::Time now) override {
    std::vector<Connection*> expired;
    for (const auto& [fd, c] : connections_) {
      if (c->attempt != nullptr && c->deadline() <= now) expired.push_back(c.get());
    }
    for (Connection* c : expired) {
      const bool connect = c->connecting && c->connect_deadline < c->attempt_deadline;
      const absl::Duration limit = connect ? options_.connect_timeout : c->attempt->timeout;
      Fail(c, CURLE_OPERATION_TIMEDOUT,
           absl::StrCat(
               connect ? "connection to VS timed out after " : "VS answered nothing within ",
               absl::FormatDuration(limit)));
    }
  }

  void TakeFinished(std::vector<Attempt*>* finished) override {
    not_taken_ -= finished_.size();
    finished->clear();
    finished->swap(finished_);
  }

  std::vector<Attempt*> Abandon() override {
    std::vector<Attempt*> abandoned = std::exchange(finished_, {});
    std::vector<Connection*> busy;
    for (const auto& [fd, c] : connections_) {
      if (c->attempt != nullptr) busy.push_back(c.get());
    }
    for (Connection* c : busy) {
      abandoned.push_back(std::exchange(c->attempt, nullptr));
      Close(c);
    }
    not_taken_ = 0;
    return abandoned;
  }

  size_t active() const override { return not_taken_ - finished_.size(); }

  bool ReadyToSend() const override {
    return !idle_.empty() &&
           clock_->Now() - idle_.back()->idle_since <= options_.connection_max_idle;
  }

 private:
  // The most recently used idle connection, once those idle past
  // connection_max_idle are closed (they are the oldest: at the front).
  Connection* TakeIdle() {
    const absl::Time now = clock_->Now();
    size_t stale = 0;
    while (stale < idle_.size() && now - idle_[stale]->idle_since > options_.connection_max_idle) {
      ++stale;
    }
    const std::vector<Connection*> closing(idle_.begin(), idle_.begin() + stale);
    for (Connection* c : closing) Close(c);
    if (idle_.empty()) return nullptr;
    Connection* c = idle_.back();
    idle_.pop_back();
    return c;
  }

  // A new connection for `attempt`, connecting; null when it could not even
  // begin (then the attempt is finished with the reason). Without `lookup`
  // the addresses at hand serve even past dns_cache_ttl: a resend must not
  // wait for a name lookup on whichever thread it runs (a caller's, when
  // the caller sent the request: vs_client.cc).
  Connection* Open(Attempt* attempt, bool lookup = true) {
    const bool addresses_will_do = !lookup && !addresses_.empty();
    if (!addresses_will_do && !Resolve()) {
      Finish(attempt, CURLE_COULDNT_RESOLVE_HOST,
             absl::StrCat("could not resolve the VS host ", target_.host, ": ", resolve_error_));
      return nullptr;
    }
    const Address& address = addresses_[next_address_ % addresses_.size()];
    FileDescriptor fd(socket(address.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      Finish(attempt, CURLE_COULDNT_CONNECT, absl::StrCat("socket: ", Errno(errno)));
      return nullptr;
    }
    const int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    const int rc =
        connect(fd.get(), reinterpret_cast<const sockaddr*>(&address.storage), address.length);
    if (rc != 0 && errno != EINPROGRESS) {
      ++next_address_;  // The next connection tries the host's next address.
      Finish(attempt, CURLE_COULDNT_CONNECT,
             absl::StrCat("connecting to ", target_.authority, ": ", Errno(errno)));
      return nullptr;
    }
    if (options_.connections_opened != nullptr) {
      options_.connections_opened->fetch_add(1, std::memory_order_relaxed);
    }
    const int raw = fd.get();
    auto owned = std::make_unique<Connection>(std::move(fd), ++generation_);
    Connection* c = owned.get();
    c->connecting = rc != 0;
    c->connect_deadline = clock_->Now() + options_.connect_timeout;
    connections_[raw] = std::move(owned);
    Watch(c, /*out=*/true);
    return c;
  }

  void Assign(Connection* c, Attempt* attempt, absl::Time deadline) {
    c->attempt = attempt;
    c->attempt_deadline = deadline;
    c->out.assign(head_);
    absl::StrAppend(&c->out, attempt->body.size(), "\r\n\r\n", attempt->body);
    c->sent = 0;
    c->reader.Reset();
    if (!c->connecting) Send(c);
  }

  // The connect finished, well or not; false if the connection is gone.
  bool Connected(Connection* c) {
    int error = 0;
    socklen_t length = sizeof(error);
    if (getsockopt(c->fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) {
      ++next_address_;
      Fail(c, CURLE_COULDNT_CONNECT,
           absl::StrCat("connecting to ", target_.authority, ": ", Errno(error)));
      return false;
    }
    c->connecting = false;
    return Send(c);  // A connecting connection always carries its attempt.
  }

  // Writes what the socket takes; false if the connection is gone.
  bool Send(Connection* c) {
    while (c->sent < c->out.size()) {
      const ssize_t n =
          send(c->fd.get(), c->out.data() + c->sent, c->out.size() - c->sent, MSG_NOSIGNAL);
      if (n > 0) {
        c->sent += static_cast<size_t>(n);
        c->attempt->request_bytes = static_cast<long>(c->sent);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        Watch(c, /*out=*/true);
        return true;
      }
      Lost(c, CURLE_SEND_ERROR, absl::StrCat("sending to VS failed: ", Errno(errno)));
      return false;
    }
    Watch(c, /*out=*/false);
    return true;
  }

  // Reads what has arrived; false if the connection is gone.
  bool Receive(Connection* c) {
    char buffer[16 * 1024];
    while (true) {
      const ssize_t n = recv(c->fd.get(), buffer, sizeof(buffer), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (c->attempt == nullptr) {  // An idle connection closed, or sent what nobody asked.
        Close(c);
        return false;
      }
      if (n < 0) {
        Lost(c, CURLE_RECV_ERROR, absl::StrCat("receiving from VS failed: ", Errno(errno)));
        return false;
      }
      HttpResponseReader& reader = c->reader;
      size_t used = 0;
      if (n == 0) {
        reader.OnEof();
      } else {
        used = reader.Feed(absl::string_view(buffer, static_cast<size_t>(n)));
      }
      switch (reader.state()) {
        case HttpResponseReader::State::kReading:  // Never after OnEof.
          continue;
        case HttpResponseReader::State::kDone:
          // Reusable only if nothing followed the answer and the request
          // went out whole (a server may answer early, then hang up).
          return Answered(
              c, /*reusable=*/n > 0 && used == static_cast<size_t>(n) && c->sent == c->out.size());
        case HttpResponseReader::State::kError:
          if (n == 0) {
            Lost(c, reader.started() ? CURLE_PARTIAL_FILE : CURLE_GOT_NOTHING,
                 absl::StrCat("VS closed the connection: ", reader.error()));
          } else if (reader.body_too_large()) {
            Attempt* attempt = c->attempt;
            attempt->response_too_large = true;
            Fail(c, CURLE_WRITE_ERROR, reader.error());
          } else {
            Fail(c, CURLE_WEIRD_SERVER_REPLY,
                 absl::StrCat("VS sent a malformed HTTP answer: ", reader.error()));
          }
          return false;
      }
    }
  }

  // A whole answer; false if the connection is closed after it.
  bool Answered(Connection* c, bool reusable) {
    Attempt* attempt = std::exchange(c->attempt, nullptr);
    attempt->http_status = c->reader.status();
    attempt->response.assign(c->reader.body());
    ++c->answers;
    finished_.push_back(attempt);
    if (!reusable || !c->reader.keep_alive()) {
      Close(c);
      return false;
    }
    c->idle_since = clock_->Now();
    idle_.push_back(c);
    return true;
  }

  // The connection broke under its attempt before a whole answer came. A
  // reused connection that yielded no byte of an answer was most likely
  // closed by VS while idle (the race every keep-alive client has): the
  // request goes once more on a new connection, as libcurl does.
  void Lost(Connection* c, CURLcode code, std::string why) {
    Attempt* attempt = c->attempt;
    if (c->answers > 0 && !c->reader.started() && c->attempt_deadline > clock_->Now()) {
      const absl::Time deadline = c->attempt_deadline;
      c->attempt = nullptr;
      Close(c);
      attempt->ClearOutcome();
      if (Connection* fresh = Open(attempt, /*lookup=*/false); fresh != nullptr) {
        Assign(fresh, attempt, deadline);
      }
      return;
    }
    Fail(c, code, std::move(why));
  }

  // Finishes the connection's attempt with `code` and closes it.
  void Fail(Connection* c, CURLcode code, std::string why) {
    Attempt* attempt = std::exchange(c->attempt, nullptr);
    Close(c);
    Finish(attempt, code, std::move(why));
  }

  void Finish(Attempt* attempt, CURLcode code, std::string why) {
    attempt->code = code;
    attempt->error_text = std::move(why);
    finished_.push_back(attempt);
  }

  void Watch(Connection* c, bool out) {
    const uint32_t events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
    if (events == c->watching) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = (uint64_t{c->generation} << 32) | static_cast<uint32_t>(c->fd.get());
    epoll_ctl(options_.epoll_fd, c->watching == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd.get(),
              &ev);
    c->watching = events;
  }

  void Close(Connection* c) {
    idle_.erase(std::remove(idle_.begin(), idle_.end(), c), idle_.end());
    epoll_ctl(options_.epoll_fd, EPOLL_CTL_DEL, c->fd.get(), nullptr);
    connections_.erase(c->fd.get());
  }

  struct Address {
    int family = AF_INET;
    sockaddr_storage storage{};
    socklen_t length = 0;
  };

  // Fresh addresses for the host (at most dns_cache_ttl old); false if there
  // are none. A failed lookup keeps the last good addresses.
  bool Resolve() {
    const absl::Time now = clock_->Now();
    if (!addresses_.empty() && now < resolved_until_) return true;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(target_.host.c_str(), target_.port.c_str(), &hints, &found);
    if (rc != 0) {
      resolve_error_ = gai_strerror(rc);
      return !addresses_.empty();
    }
    addresses_.clear();
    for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
      if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address address;
      address.family = a->ai_family;
      memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
      address.length = a->ai_addrlen;
      addresses_.push_back(address);
    }
    freeaddrinfo(found);
    resolved_until_ = now + options_.dns_cache_ttl;
    if (addresses_.empty()) resolve_error_ = "no address";
    return !addresses_.empty();
  }

  const TransportOptions options_;
  const Target target_;
  const base::Clock* const clock_;
  const std::string head_;  // The request up to Content-Length's value.
  std::vector<Address> addresses_;
  absl::Time resolved_until_;
  std::string resolve_error_;
  size_t next_address_ = 0;
  uint32_t generation_ = 0;
  absl::flat_hash_map<int, std::unique_ptr<Connection>> connections_;  // By descriptor.
  std::vector<Connection*> idle_;  // The most recently used last.
  std::vector<Attempt*> finished_;
  size_t not_taken_ = 0;  // Started, not yet taken back (finished or not).
};

}  // namespace

absl::StatusOr<std::unique_ptr<Transport>> MakeHttpTransport(TransportOptions options) {
  absl::StatusOr<Target> target = ParseHttpUrl(options.url);
  if (!target.ok()) return target.status();
  return std::make_unique<HttpTransport>(std::move(options), *std::move(target));
}

}  // namespace presence::vs
