// Fuzzes the HTTP response reader of the built-in VS client: any bytes a
// server might send must end in a whole answer, an error or a wait for more,
// never a crash; the body never passes its bound; and reading the bytes in
// two pieces (split where the first byte says) must give what reading them
// whole gives.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/vs/http_response_reader.h"

namespace {

using presence::vs::HttpResponseReader;

constexpr size_t kMaxBody = 256;

size_t FeedAll(HttpResponseReader& reader, absl::string_view bytes) {
  const size_t used = reader.Feed(bytes);
  if (used > bytes.size()) std::abort();
  if (used < bytes.size() && reader.state() == HttpResponseReader::State::kReading) std::abort();
  return used;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = data[0] % size;
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  HttpResponseReader whole(kMaxBody);
  const size_t used = FeedAll(whole, bytes);

  HttpResponseReader pieces(kMaxBody);
  const absl::string_view first = bytes.substr(0, split);
  size_t used_pieces = FeedAll(pieces, first);
  if (used_pieces == first.size() && pieces.state() == HttpResponseReader::State::kReading) {
    used_pieces += FeedAll(pieces, bytes.substr(first.size()));
  }
  if (pieces.state() != whole.state() || used_pieces != used) std::abort();
  if (whole.state() == HttpResponseReader::State::kDone &&
      (whole.body() != pieces.body() || whole.status() != pieces.status() ||
       whole.keep_alive() != pieces.keep_alive() || whole.status() < 200 || whole.status() > 999)) {
    std::abort();
  }
  if (whole.body().size() > kMaxBody) std::abort();
  whole.OnEof();
  if (whole.state() == HttpResponseReader::State::kReading) std::abort();
  if (whole.state() == HttpResponseReader::State::kError && whole.error().empty()) std::abort();
  whole.Reset();
  if (whole.started() || whole.state() != HttpResponseReader::State::kReading) std::abort();
  return 0;
}
