#!/usr/bin/env bash
# Arguments come in pairs FRESH COMMITTED: a stub generated now and its
# committed copy in a client package; they must be identical. To refresh:
# `go generate ./...` in clients/go; clients/python/generate_stubs.sh.
set -euo pipefail
status=0
while (($# >= 2)); do
  fresh="$1" committed="$2"
  shift 2
  if ! diff -u "$committed" "$fresh"; then
    echo "FAIL: $committed is stale: regenerate it (see this script's header)" >&2
    status=1
  else
    echo "PASS: $committed matches a fresh generation"
  fi
done
exit $status
