#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds everything, runs every
# test in every language, and ends with a line "N passed, M failed" counted
# from the test cases' own results. Exits non-zero on any failure.
#
#   tests/run_all.sh [extra bazel flags, e.g. --config=asan]
set -uo pipefail
cd "$(dirname "$0")/.."

bash bazel/install_deps.sh || { echo "0 passed, 1 failed"; exit 1; }

bep="$(mktemp -t presence-bep.XXXXXX.json)"
trap 'rm -f "$bep"' EXIT

bazel build //... "$@"
build_rc=$?
bazel test //... --build_event_json_file="$bep" "$@"
test_rc=$?

/usr/bin/python3 tests/count_results.py "$bep" "$(bazel info bazel-testlogs "$@" 2>/dev/null)"
count_rc=$?

if ((build_rc != 0 || test_rc != 0 || count_rc != 0)); then
  exit 1
fi
