#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds everything, runs every
# test in every language, then the C++ suites again under AddressSanitizer and
# UndefinedBehaviorSanitizer. Ends with a line "N passed, M failed" counted
# from the test cases' own results; exits non-zero on any failure.
#
#   tests/run_all.sh [extra bazel flags]
set -uo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh || { echo "0 passed, 1 failed"; exit 1; }

work="$(mktemp -d -t presence-tests.XXXXXX)"
trap 'rm -rf "$work"' EXIT

bazel build //... "$@"
build_rc=$?
bazel test //... --build_event_json_file="$work/plain.json" "$@"
plain_rc=$?
plain_logs="$(bazel info bazel-testlogs "$@" 2>/dev/null)"

# The sanitizer pass covers the C++ server, the end-to-end suites and the
# fleet (three sanitized server processes).
bazel test --config=asan //server/... //tests/e2e/... //tests/fleet/... \
  --build_event_json_file="$work/asan.json" "$@"
asan_rc=$?
asan_logs="$(bazel info --config=asan bazel-testlogs "$@" 2>/dev/null)"

/usr/bin/python3 tests/count_results.py \
  "$work/plain.json" "$plain_logs" "" \
  "$work/asan.json" "$asan_logs" "asan "
count_rc=$?

if ((build_rc != 0 || plain_rc != 0 || asan_rc != 0 || count_rc != 0)); then
  exit 1
fi
