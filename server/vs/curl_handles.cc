#include "server/vs/curl_handles.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace presence::vs {

void FileDescriptor::Reset() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

absl::StatusOr<CurlHeaders> MakeHeaders(std::initializer_list<const char*> lines) {
  CurlHeaders headers;
  for (const char* line : lines) {
    // Appends in place and returns the list's head (new only for the first
    // line); on failure the list is untouched.
    curl_slist* head = curl_slist_append(headers.get(), line);
    if (head == nullptr) return absl::ResourceExhaustedError("curl_slist_append failed");
    if (headers == nullptr) headers.reset(head);
  }
  return headers;
}

absl::StatusOr<EpollWithWake> MakeEpollWithWake() {
  EpollWithWake fds{FileDescriptor(epoll_create1(EPOLL_CLOEXEC)),
                    FileDescriptor(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC))};
  if (!fds.epoll.valid() || !fds.wake.valid()) {
    return absl::InternalError(absl::StrCat("epoll/eventfd: ", strerror(errno)));
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = fds.wake.get();
  if (epoll_ctl(fds.epoll.get(), EPOLL_CTL_ADD, fds.wake.get(), &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl: ", strerror(errno)));
  }
  return fds;
}

}  // namespace presence::vs
