#ifndef PRESENCE_SERVER_VS_CURL_HANDLES_H_
#define PRESENCE_SERVER_VS_CURL_HANDLES_H_

// libcurl's C handles and the event loop's file descriptors, each in a RAII
// owner the moment it exists, and every option setter turned into an
// absl::Status (after google-cloud-cpp's curl_handle.h / curl_wrappers.h).
//
// Not thread-safe: each handle belongs to one thread (VsClient's event loop).

#include <curl/curl.h>

#include <initializer_list>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace presence::vs {

struct CurlEasyDeleter {
  void operator()(CURL* easy) const { curl_easy_cleanup(easy); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* multi) const { curl_multi_cleanup(multi); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlHeaders = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// A file descriptor, closed on destruction.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { Reset(); }
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

 private:
  void Reset();
  int fd_ = -1;
};

// curl_easy_setopt, as a Status naming the option that was refused.
template <typename T>
absl::Status SetOption(CURL* easy, CURLoption option, T value) {
  CURLcode code = curl_easy_setopt(easy, option, value);
  if (code == CURLE_OK) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "libcurl refused option ", static_cast<int>(option), ": ", curl_easy_strerror(code)));
}

template <typename T>
absl::Status SetMultiOption(CURLM* multi, CURLMoption option, T value) {
  CURLMcode code = curl_multi_setopt(multi, option, value);
  if (code == CURLM_OK) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("libcurl refused multi option ", static_cast<int>(option),
                                          ": ", curl_multi_strerror(code)));
}

// A header list with these lines.
absl::StatusOr<CurlHeaders> MakeHeaders(std::initializer_list<const char*> lines);

// An epoll set and an eventfd to wake it (both close-on-exec), registered.
struct EpollWithWake {
  FileDescriptor epoll;
  FileDescriptor wake;
};
absl::StatusOr<EpollWithWake> MakeEpollWithWake();

}  // namespace presence::vs

#endif  // PRESENCE_SERVER_VS_CURL_HANDLES_H_
