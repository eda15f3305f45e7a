#include "server/fleet/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/log/log.h"

namespace presence::fleet {

struct RedisClient::Connection {
  RedisClient* client = nullptr;
  bool subscriber = false;
  redisAsyncContext* context = nullptr;
  int fd = -1;
  uint32_t events = 0;
  bool watched = false;
  bool ready = false;
  absl::Time next_attempt = absl::InfinitePast();
  absl::Duration backoff = absl::Milliseconds(50);
};

struct RedisClient::Pending {
  RedisClient* client = nullptr;
  RedisCallback done;
  absl::Time sent;
  bool answered = false;  // The callback ran (a timeout answers early).
};

namespace {

RedisReply Convert(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(reply.elements);
      for (size_t i = 0; i < reply.elements; ++i)
        out.elements.push_back(Convert(*reply.element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

}  // namespace

absl::StatusOr<RedisOptions> ParseRedisUrl(const std::string& url) {
  constexpr absl::string_view kScheme = "redis://";
  if (!absl::StartsWith(url, kScheme)) {
    return absl::InvalidArgumentError("--redis_url must look like redis://host:port[/db]");
  }
  std::string rest = url.substr(kScheme.size());
  if (rest.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(
        "--redis_url must not carry credentials: put the password in --redis_password_file");
  }
  RedisOptions options;
  std::vector<std::string> path = absl::StrSplit(rest, absl::MaxSplits('/', 1));
  if (path.size() == 2 && !path[1].empty() &&
      (!absl::SimpleAtoi(path[1], &options.db) || options.db < 0)) {
    return absl::InvalidArgumentError("--redis_url: the database must be a number >= 0");
  }
  size_t colon = path[0].rfind(':');
  if (colon == std::string::npos) {
    options.host = path[0];
  } else {
    options.host = path[0].substr(0, colon);
    if (!absl::SimpleAtoi(path[0].substr(colon + 1), &options.port) || options.port <= 0 ||
        options.port > 65535) {
      return absl::InvalidArgumentError("--redis_url: the port must be 1-65535");
    }
  }
  if (options.host.empty()) return absl::InvalidArgumentError("--redis_url: no host");
  return options;
}

RedisClient::RedisClient(RedisOptions options) : options_(std::move(options)) {
  commands_ = std::make_unique<Connection>();
  commands_->client = this;
  subscriber_ = std::make_unique<Connection>();
  subscriber_->client = this;
  subscriber_->subscriber = true;
}

RedisClient::~RedisClient() { Stop(); }

absl::Status RedisClient::Start() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) return absl::InternalError("epoll/eventfd failed");
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = nullptr;  // The wake-up descriptor.
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void RedisClient::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
  close(epoll_fd_);
  close(wake_fd_);
}

void RedisClient::Subscribe(std::string channel,
                            std::function<void(const std::string&)> on_message) {
  channels_.emplace_back(std::move(channel), std::move(on_message));
}

void RedisClient::OnReady(std::function<void()> hook) { ready_hooks_.push_back(std::move(hook)); }

RedisStats RedisClient::stats() const {
  absl::MutexLock lock(&mu_);
  RedisStats stats = stats_;
  stats.connected = connected();
  return stats;
}

void RedisClient::Command(std::vector<std::string> argv, RedisCallback done) {
  if (stopping_.load() || !thread_.joinable()) {
    Fail(std::move(done), absl::UnavailableError("the Redis client is stopped"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    queue_.emplace_back(std::move(argv), std::move(done));
  }
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void RedisClient::Fail(RedisCallback done, absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    ++stats_.failures;
  }
  std::move(done)(std::move(status));
}

void RedisClient::Loop() {
  epoll_event events[16];
  while (!stopping_.load()) {
    ConnectIfDue(*commands_);
    ConnectIfDue(*subscriber_);
    absl::Duration wait = std::max(absl::ZeroDuration(), NextWake() - absl::Now());
    int timeout_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(wait) + 1, 1000));
    int n = epoll_wait(epoll_fd_, events, 16, timeout_ms);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.ptr == nullptr) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
        continue;
      }
      Handle(*static_cast<Connection*>(events[i].data.ptr), events[i].events);
    }
    DrainQueue();
    CheckTimeouts();
  }
  // Freeing a context answers its pending commands (OnReply with no reply).
  for (Connection* c : {commands_.get(), subscriber_.get()}) {
    if (c->context != nullptr) redisAsyncFree(c->context);
  }
  DrainQueue();  // Fails what is left: not connected any more.
}

absl::Time RedisClient::NextWake() const {
  absl::Time next = absl::Now() + absl::Seconds(1);
  for (const Connection* c : {commands_.get(), subscriber_.get()}) {
    if (c->context == nullptr) next = std::min(next, c->next_attempt);
  }
  if (!in_flight_.empty())
    next = std::min(next, in_flight_.front()->sent + options_.command_timeout);
  return next;
}

void RedisClient::ConnectIfDue(Connection& connection) {
  if (connection.context != nullptr || absl::Now() < connection.next_attempt) return;
  Connect(connection);
}

void RedisClient::Connect(Connection& connection) {
  redisAsyncContext* context = redisAsyncConnect(options_.host.c_str(), options_.port);
  connection.next_attempt = absl::Now() + connection.backoff;
  connection.backoff = std::min(connection.backoff * 2, options_.max_reconnect_backoff);
  if (context == nullptr) return;
  if (context->err != 0) {
    redisAsyncFree(context);
    return;
  }
  connection.context = context;
  connection.fd = context->c.fd;
  connection.events = 0;
  connection.watched = false;
  context->data = &connection;
  context->ev.data = &connection;
  context->ev.addRead = &RedisClient::AddRead;
  context->ev.delRead = &RedisClient::DelRead;
  context->ev.addWrite = &RedisClient::AddWrite;
  context->ev.delWrite = &RedisClient::DelWrite;
  context->ev.cleanup = &RedisClient::Cleanup;
  // Arms the first write event, which tells that the connection is made.
  redisAsyncSetConnectCallback(context, &RedisClient::OnConnect);
}

void RedisClient::Watch(Connection& connection) {
  if (connection.fd < 0) return;
  epoll_event event{};
  event.events = connection.events;
  event.data.ptr = &connection;
  epoll_ctl(epoll_fd_, connection.watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, connection.fd, &event);
  connection.watched = true;
}

void RedisClient::AddRead(void* data) {
  auto* c = static_cast<Connection*>(data);
  c->events |= EPOLLIN;
  c->client->Watch(*c);
}

void RedisClient::DelRead(void* data) {
  auto* c = static_cast<Connection*>(data);
  c->events &= ~static_cast<uint32_t>(EPOLLIN);
  c->client->Watch(*c);
}

void RedisClient::AddWrite(void* data) {
  auto* c = static_cast<Connection*>(data);
  c->events |= EPOLLOUT;
  c->client->Watch(*c);
}

void RedisClient::DelWrite(void* data) {
  auto* c = static_cast<Connection*>(data);
  c->events &= ~static_cast<uint32_t>(EPOLLOUT);
  c->client->Watch(*c);
}

void RedisClient::Cleanup(void* data) {
  // hiredis is freeing the context: forget its descriptor.
  auto* c = static_cast<Connection*>(data);
  if (c->watched) epoll_ctl(c->client->epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
  c->client->Lost(*c);
}

void RedisClient::Lost(Connection& connection) {
  bool was_ready = connection.ready;
  connection.context = nullptr;
  connection.fd = -1;
  connection.watched = false;
  connection.events = 0;
  connection.ready = false;
  if (!connection.subscriber) connected_.store(false, std::memory_order_release);
  if (was_ready && !stopping_.load()) {
    log::Warning("redis_disconnected",
                 {{"connection", connection.subscriber ? "subscriber" : "commands"},
                  {"redis", absl::StrCat(options_.host, ":", options_.port)}});
  }
}

void RedisClient::Handle(Connection& connection, uint32_t events) {
  if (connection.context == nullptr) return;
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) redisAsyncHandleRead(connection.context);
  if (connection.context != nullptr && (events & EPOLLOUT)) {
    redisAsyncHandleWrite(connection.context);
  }
}

void RedisClient::OnConnect(const redisAsyncContext* context, int status) {
  auto* c = static_cast<Connection*>(context->data);
  if (status != REDIS_OK) return;  // hiredis frees the context; Cleanup follows.
  c->client->Ready(*c);
}

void RedisClient::Ready(Connection& connection) {
  connection.backoff = absl::Milliseconds(50);
  redisAsyncContext* context = connection.context;
  if (!options_.password.empty()) {
    const char* argv[] = {"AUTH", options_.password.c_str()};
    size_t lens[] = {4, options_.password.size()};
    redisAsyncCommandArgv(context, &RedisClient::OnReply, nullptr, 2, argv, lens);
  }
  if (options_.db != 0 && !connection.subscriber) {
    std::string db = absl::StrCat(options_.db);
    const char* argv[] = {"SELECT", db.c_str()};
    size_t lens[] = {6, db.size()};
    redisAsyncCommandArgv(context, &RedisClient::OnReply, nullptr, 2, argv, lens);
  }
  connection.ready = true;
  log::Info("redis_connected", {{"connection", connection.subscriber ? "subscriber" : "commands"},
                                {"redis", absl::StrCat(options_.host, ":", options_.port)}});
  if (connection.subscriber) {
    for (auto& [channel, handler] : channels_) {
      const char* argv[] = {"SUBSCRIBE", channel.c_str()};
      size_t lens[] = {9, channel.size()};
      redisAsyncCommandArgv(context, &RedisClient::OnMessage, &handler, 2, argv, lens);
    }
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    ++stats_.connects;
  }
  connected_.store(true, std::memory_order_release);
  for (auto& hook : ready_hooks_) hook();
}

void RedisClient::DrainQueue() {
  std::vector<std::pair<std::vector<std::string>, RedisCallback>> queued;
  {
    absl::MutexLock lock(&mu_);
    queued.swap(queue_);
  }
  for (auto& [argv, done] : queued) Send(std::move(argv), std::move(done));
}

void RedisClient::Send(std::vector<std::string> argv, RedisCallback done) {
  if (stopping_.load() || commands_->context == nullptr || !commands_->ready) {
    Fail(std::move(done), absl::UnavailableError("Redis is unreachable"));
    return;
  }
  std::vector<const char*> args;
  std::vector<size_t> lens;
  for (const std::string& a : argv) {
    args.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* pending = new Pending{this, std::move(done), absl::Now(), false};
  if (redisAsyncCommandArgv(commands_->context, &RedisClient::OnReply, pending,
                            static_cast<int>(args.size()), args.data(), lens.data()) != REDIS_OK) {
    Fail(std::move(pending->done), absl::UnavailableError("Redis refused the command"));
    delete pending;
    return;
  }
  in_flight_.push_back(pending);
}

void RedisClient::OnReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  auto* pending = static_cast<Pending*>(privdata);
  auto* r = static_cast<redisReply*>(reply);
  if (pending == nullptr) {
    // AUTH or SELECT: an error here makes every command fail; say why.
    if (r != nullptr && r->type == REDIS_REPLY_ERROR) {
      log::Error("redis_setup_refused", {{"error", std::string(r->str, r->len)}});
    }
    return;
  }
  RedisClient* client = pending->client;
  auto it = std::find(client->in_flight_.begin(), client->in_flight_.end(), pending);
  if (it != client->in_flight_.end()) client->in_flight_.erase(it);
  if (!pending->answered) {
    absl::StatusOr<RedisReply> result;
    if (r == nullptr) {
      result = absl::UnavailableError("the connection to Redis was lost");
    } else if (r->type == REDIS_REPLY_ERROR) {
      result = absl::InternalError(absl::StrCat("Redis: ", std::string(r->str, r->len)));
    } else {
      result = Convert(*r);
    }
    {
      absl::MutexLock lock(&client->mu_);
      if (result.ok()) {
        ++client->stats_.round_trips;
        client->stats_.latency_micros_sum += absl::ToInt64Microseconds(absl::Now() - pending->sent);
      } else {
        ++client->stats_.failures;
      }
    }
    std::move(pending->done)(std::move(result));
  }
  delete pending;
}

void RedisClient::OnMessage(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  auto* r = static_cast<redisReply*>(reply);
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return;
  if (std::string(r->element[0]->str, r->element[0]->len) != "message") return;
  auto* handler = static_cast<std::function<void(const std::string&)>*>(privdata);
  (*handler)(std::string(r->element[2]->str, r->element[2]->len));
}

void RedisClient::CheckTimeouts() {
  if (in_flight_.empty()) return;
  absl::Time now = absl::Now();
  bool recycle = false;
  for (Pending* pending : in_flight_) {
    if (pending->answered || now - pending->sent < options_.command_timeout) continue;
    pending->answered = true;
    recycle = true;
    Fail(std::move(pending->done), absl::DeadlineExceededError("Redis did not answer in time"));
  }
  // A Redis that does not answer is treated as gone: reconnect. The late
  // answers, if any, are dropped with the connection.
  if (recycle && commands_->context != nullptr) {
    log::Warning("redis_slow", {{"timeout", absl::FormatDuration(options_.command_timeout)}});
    redisAsyncFree(commands_->context);
  }
}

}  // namespace presence::fleet
