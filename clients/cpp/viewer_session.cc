#include "clients/cpp/viewer_session.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"

namespace presence::client {
namespace {

using presence::v1::SessionRequest;
using presence::v1::SessionResponse;

bool IsFinal(grpc::StatusCode code) {
  return code == grpc::StatusCode::INVALID_ARGUMENT ||
         code == grpc::StatusCode::FAILED_PRECONDITION ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED;
}

absl::Status ToAbsl(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace

std::shared_ptr<grpc::Channel> DialPresence(const std::string& target) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 20000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
}

ViewerSession::ViewerSession(std::shared_ptr<grpc::Channel> channel, JoinParams join,
                             ViewerOptions options)
    : stub_(presence::v1::Presence::NewStub(channel)),
      join_([&join] {
        SessionRequest req;
        presence::v1::Join* j = req.mutable_join();
        j->set_performer_id(join.performer_id);
        j->set_nickname(join.nickname);
        if (join.customer_id.has_value()) j->set_customer_id(*join.customer_id);
        j->set_ip_address(join.ip_address);
        j->set_registered(join.registered);
        j->set_credits(join.credits);
        return req;
      }()),
      options_(std::move(options)) {}

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

absl::Status ViewerSession::Write(const SessionRequest& request) {
  absl::MutexLock lock(&mu_);
  if (stream_ == nullptr || closing_ || !joined_) {
    return absl::FailedPreconditionError("the session is not open");
  }
  if (!stream_->Write(request)) return absl::UnavailableError("the stream is broken");
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
  if (absl::Status written = Write(req); !written.ok()) return written;
  absl::MutexLock lock(&mu_);
  auto answered = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !credits_.empty() || done_; };
  if (!mu_.AwaitWithTimeout(absl::Condition(&answered), timeout)) {
    return absl::DeadlineExceededError("no credits_updated within the timeout");
  }
  if (credits_.empty()) return absl::UnavailableError("the session ended");
  presence::v1::CreditsUpdated reply = std::move(credits_.front());
  credits_.pop_front();
  return reply;
}

absl::Status ViewerSession::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      closing_ = true;
      if (stream_ != nullptr) {
        SessionRequest leave;
        leave.mutable_leave();
        stream_->Write(leave);
        stream_->WritesDone();
      }
    }
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done_; };
    if (!mu_.AwaitWithTimeout(absl::Condition(&done), absl::Seconds(10)) && context_ != nullptr) {
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
    grpc::ClientContext context;
    auto stream = stub_->Session(&context);
    {
      absl::MutexLock lock(&mu_);
      if (closing_) break;
      context_ = &context;
      stream_ = stream.get();
      stream_->Write(join_);
    }
    SessionResponse response;
    while (stream->Read(&response)) {
      absl::MutexLock lock(&mu_);
      switch (response.event_case()) {
        case SessionResponse::kJoined:
          nickname_ = response.joined().nickname();
          session_id_ = response.joined().session_id();
          resumed_ = response.joined().resumed();
          // Every reconnect carries it: a server holding the session takes
          // it back without a leave or a join at VS.
          join_.mutable_join()->set_resume_token(response.joined().resume_token());
          joined_ = true;
          backoff = options_.initial_backoff;
          break;
        case SessionResponse::kCreditsUpdated:
          credits_.push_back(response.credits_updated());
          break;
        case SessionResponse::kNotice:
          if (options_.on_notice) options_.on_notice(response.notice());
          break;
        default:
          break;
      }
    }
    grpc::Status status = stream->Finish();
    absl::MutexLock lock(&mu_);
    context_ = nullptr;
    stream_ = nullptr;
    joined_ = false;
    if (status.ok() || closing_) break;
    if (IsFinal(status.error_code())) {
      error_ = ToAbsl(status);
      break;
    }
    // UNAVAILABLE and the like: join again after a jittered pause.
    absl::Duration delay = backoff * absl::Uniform(gen, 0.5, 1.0);
    backoff = std::min(backoff * 2, options_.max_backoff);
    auto closing = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closing_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&closing), delay)) break;
    ++reconnects_;
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

}  // namespace presence::client
