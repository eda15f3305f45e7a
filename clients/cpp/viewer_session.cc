#include "clients/cpp/viewer_session.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace presence::client {
namespace {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

grpc::ChannelArguments KeepaliveArguments() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  return args;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const DialOptions& options) {
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError("a client certificate needs both cert_file and key_file");
  }
  grpc::SslCredentialsOptions ssl;
  std::pair<const std::string*, std::string*> files[] = {{&options.ca_file, &ssl.pem_root_certs},
                                                         {&options.cert_file, &ssl.pem_cert_chain},
                                                         {&options.key_file, &ssl.pem_private_key}};
  for (auto [path, pem] : files) {
    if (path->empty()) continue;
    absl::StatusOr<std::string> text = ReadFile(*path);
    if (!text.ok()) return text.status();
    *pem = *std::move(text);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!options.token.empty()) {
    credentials =
        grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(options.token));
  }
  return credentials;
}

}  // namespace

bool IsFinal(absl::StatusCode code) {
  return code == absl::StatusCode::kInvalidArgument ||
         code == absl::StatusCode::kFailedPrecondition ||
         code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kUnauthenticated || code == absl::StatusCode::kPermissionDenied;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialPresence(const std::string& target,
                                                            const DialOptions& options) {
  bool tls = options.tls || !options.ca_file.empty() || !options.cert_file.empty() ||
             !options.key_file.empty();
  if (!options.token.empty() && !tls) {
    return absl::InvalidArgumentError("a bearer token is only sent over TLS");
  }
  if (!tls) return DialPresence(target);
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = TlsCredentials(options);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateCustomChannel(target, *credentials, KeepaliveArguments());
}

std::shared_ptr<grpc::Channel> DialPresence(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   KeepaliveArguments());
}

ViewerSession::ViewerSession(std::shared_ptr<grpc::Channel> channel, JoinParams join,
                             ViewerOptions options)
    : stub_(presence::v1::Presence::NewStub(channel)), options_(std::move(options)), join_([&join] {
        SessionRequest req;
        presence::v1::Join* j = req.mutable_join();
        j->set_performer_id(join.performer_id);
        j->set_nickname(join.nickname);
        if (join.customer_id.has_value()) j->set_customer_id(*join.customer_id);
        j->set_ip_address(join.ip_address);
        j->set_registered(join.registered);
        j->set_credits(join.credits);
        return req;
      }()) {}

absl::StatusOr<std::unique_ptr<ViewerSession>> ViewerSession::Open(
    std::shared_ptr<grpc::Channel> channel, JoinParams join, ViewerOptions options) {
  std::unique_ptr<ViewerSession> session(
      new ViewerSession(std::move(channel), std::move(join), std::move(options)));
  session->thread_ = std::thread([s = session.get()] { s->Run(); });
  absl::Status failed;
  {
    absl::MutexLock lock(&session->mu_);
    auto settled = [s = session.get()]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) { return s->joined_ || s->done_; };
    if (!session->mu_.AwaitWithTimeout(absl::Condition(&settled), session->options_.join_timeout)) {
      failed = absl::DeadlineExceededError("no joined within the join timeout");
    } else if (!session->joined_) {
      failed = session->error_;
    }
  }
  if (!failed.ok()) {
    session->Close().IgnoreError();  // The join error is what matters.
    return failed;
  }
  return session;
}

ViewerSession::~ViewerSession() { Close().IgnoreError(); }

std::string ViewerSession::display_nickname() const {
  absl::MutexLock lock(&mu_);
  return nickname_;
}

std::string ViewerSession::session_id() const {
  absl::MutexLock lock(&mu_);
  return session_id_;
}

bool ViewerSession::resumed() const {
  absl::MutexLock lock(&mu_);
  return resumed_;
}

int ViewerSession::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

bool ViewerSession::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

absl::Status ViewerSession::Wait(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto over = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&over), timeout)) {
    return absl::DeadlineExceededError("the session is still running");
  }
  return error_;
}

absl::Status ViewerSession::Unusable() const {
  if (done_ && !error_.ok()) return error_;
  if (closing_ || done_) return absl::FailedPreconditionError("the session is closed");
  if (stream_ == nullptr || !joined_) return absl::UnavailableError("reconnecting");
  return absl::OkStatus();
}

absl::Status ViewerSession::Write(const SessionRequest& request,
                                  std::shared_ptr<CreditsWaiter> waiter) {
  absl::MutexLock write_lock(&write_mu_);
  Stream* stream = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Status unusable = Unusable(); !unusable.ok()) return unusable;
    stream = stream_;
    if (waiter != nullptr) credits_.push_back(waiter);
  }
  // The blocking write holds only write_mu_: the reader thread keeps reading,
  // and it does not finish the stream before this returns.
  if (!stream->Write(request)) {
    if (waiter != nullptr) {
      absl::MutexLock lock(&mu_);
      waiter->failed = true;
    }
    return absl::UnavailableError("the stream is broken");
  }
  return absl::OkStatus();
}

absl::Status ViewerSession::Activity(presence::v1::ActivityKind kind) {
  SessionRequest req;
  req.mutable_activity()->set_kind(kind);
  return Write(req);
}

absl::StatusOr<presence::v1::CreditsUpdated> ViewerSession::UpdateCredits(int64_t credits,
                                                                          absl::Duration timeout) {
  SessionRequest req;
  req.mutable_credits()->set_credits(credits);
  auto waiter = std::make_shared<CreditsWaiter>();
  if (absl::Status written = Write(req, waiter); !written.ok()) return written;
  absl::MutexLock lock(&mu_);
  auto answered = [&waiter]() { return waiter->answer.has_value() || waiter->failed; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&answered), timeout)) {
    // The waiter stays in line: its answer, when it comes, is not the next caller's.
    return absl::DeadlineExceededError("no credits_updated within the timeout");
  }
  if (!waiter->answer.has_value())
    return absl::UnavailableError("the stream ended before the answer");
  return *std::move(waiter->answer);
}

absl::Status ViewerSession::Close() {
  Stream* stream = nullptr;
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      closing_ = true;
      stream = stream_;
    }
  }
  if (stream != nullptr) {
    absl::MutexLock write_lock(&write_mu_);
    bool current = false;
    {
      absl::MutexLock lock(&mu_);
      current = stream_ == stream;
    }
    // Still the open stream: the reader clears stream_ and then waits for
    // write_mu_ before it finishes the stream, so it stays valid here.
    if (current) {
      SessionRequest leave;
      leave.mutable_leave();
      stream->Write(leave);
      stream->WritesDone();
    }
  }
  {
    absl::MutexLock lock(&mu_);
    auto over = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&over), absl::Seconds(10)) && context_ != nullptr) {
      context_->TryCancel();  // Cancelling makes the gateway leave too.
    }
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return error_;
}

void ViewerSession::Run() {
  absl::BitGen gen;
  absl::Duration backoff = options_.initial_backoff;
  while (true) {
    grpc::Status status = Attempt();
    absl::MutexLock lock(&mu_);
    if (joined_) backoff = options_.initial_backoff;
    joined_ = false;
    if (status.ok() || closing_) break;
    if (IsFinal(static_cast<absl::StatusCode>(status.error_code()))) {
      error_ = ToAbsl(status);
      break;
    }
    // A passing error: join again after a jittered pause, unless closed.
    absl::Duration delay = backoff * absl::Uniform(gen, 0.5, 1.0);
    backoff = std::min(backoff * 2, options_.max_backoff);
    auto closing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&closing), delay)) break;
    ++reconnects_;
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

grpc::Status ViewerSession::Attempt() {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Session(&context);
  {
    // The join is written under write_mu_ alone, as every write is: Close
    // cannot write its leave before it.
    absl::MutexLock write_lock(&write_mu_);
    SessionRequest join;
    {
      absl::MutexLock lock(&mu_);
      if (closing_) {
        context.TryCancel();
        stream->Finish().IgnoreError();
        return grpc::Status::OK;
      }
      context_ = &context;
      stream_ = stream.get();
      join = join_;
    }
    stream->Write(join);
  }
  SessionResponse response;
  while (stream->Read(&response)) {
    std::optional<presence::v1::Notice> notice;
    {
      absl::MutexLock lock(&mu_);
      notice = Handle(response);
    }
    // Outside the lock: the callback may call the session.
    if (notice.has_value() && options_.on_notice) options_.on_notice(*notice);
  }
  {
    absl::MutexLock lock(&mu_);
    stream_ = nullptr;
    for (const std::shared_ptr<CreditsWaiter>& waiter : credits_) waiter->failed = true;
    credits_.clear();
  }
  // A write in progress ends before the stream is finished and destroyed.
  { absl::MutexLock write_lock(&write_mu_); }
  grpc::Status status = stream->Finish();
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
  return status;
}

std::optional<presence::v1::Notice> ViewerSession::Handle(const SessionResponse& response) {
  switch (response.event_case()) {
    case SessionResponse::kJoined:
      nickname_ = response.joined().nickname();
      session_id_ = response.joined().session_id();
      resumed_ = response.joined().resumed();
      // Every reconnect carries it: a server holding the session takes it
      // back without a leave or a join at VS.
      join_.mutable_join()->set_resume_token(response.joined().resume_token());
      joined_ = true;
      return std::nullopt;
    case SessionResponse::kCreditsUpdated:
      if (!credits_.empty()) {
        credits_.front()->answer = response.credits_updated();
        credits_.pop_front();
      }
      return std::nullopt;
    case SessionResponse::kNotice:
      return response.notice();
    default:
      return std::nullopt;
  }
}

}  // namespace presence::client
