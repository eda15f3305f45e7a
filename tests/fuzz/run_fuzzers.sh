#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (AddressSanitizer + UBSan) and runs
# each for a bounded time from its checked-in seed corpus. Fails on any crash,
# sanitizer report or broken invariant.
#
#   run_fuzzers.sh [SECONDS_PER_TARGET]   (default: $FUZZ_SECONDS, else 20)
#
# Under Bazel the sources come from runfiles; run by hand from the repository
# root it needs `bazel build //protos:presence_cc` first for the generated code.
set -euo pipefail
seconds="${1:-${FUZZ_SECONDS:-20}}"
if [ -n "${RUNFILES_DIR:-}" ]; then
  root="$RUNFILES_DIR/presence_gateway"
  gen="$root/protos"
else
  root="$(cd "$(dirname "$0")/../.." && pwd)"
  gen="$(cd "$root" && bazel info bazel-bin)/protos"
fi
out="${TEST_TMPDIR:-$(mktemp -d)}/fuzz"
mkdir -p "$out"

CXX="${CXX_FUZZ:-clang++}"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$root" -I"$gen" -DNOMINMAX -w)
libs=($(pkg-config --libs absl_strings absl_str_format absl_status absl_statusor protobuf))

build() {  # build NAME SOURCES...
  local name="$1"
  shift
  echo "building $name"
  "$CXX" "${flags[@]}" "$@" -o "$out/$name" "${libs[@]}"
}
build response_parser_fuzzer "$root/tests/fuzz/response_parser_fuzzer.cc" \
  "$root/server/vs/response_parser.cc"
build form_fuzzer "$root/tests/fuzz/form_fuzzer.cc" "$root/server/vs/form.cc"
build http_response_reader_fuzzer "$root/tests/fuzz/http_response_reader_fuzzer.cc" \
  "$root/server/vs/http_response_reader.cc"
build join_validation_fuzzer "$root/tests/fuzz/join_validation_fuzzer.cc" \
  "$root/server/session/join_validation.cc" "$gen/presence/v1/presence.pb.cc"

status=0
for target in response_parser form http_response_reader join_validation; do
  corpus="$out/corpus_$target"
  mkdir -p "$corpus"
  echo "fuzzing $target for ${seconds}s"
  if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      "$out/${target}_fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 "$corpus" "$root/tests/fuzz/corpus/$target" > "$out/$target.log" 2>&1; then
    echo "FAIL: $target"
    tail -40 "$out/$target.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|Done [0-9]+ runs" "$out/$target.log" | tail -2
  fi
done
exit $status
