#!/usr/bin/env bash
# Arguments come in pairs FRESH COMMITTED: a stub generated now and its
# committed copy in the module; they must be identical. To refresh, run
# `go generate ./...` in clients/go.
set -euo pipefail
status=0
while (($# >= 2)); do
  fresh="$1" committed="$2"
  shift 2
  if ! diff -u "$committed" "$fresh"; then
    echo "FAIL: $committed is stale; run 'go generate ./...' in clients/go" >&2
    status=1
  else
    echo "PASS: $committed matches a fresh generation"
  fi
done
exit $status
