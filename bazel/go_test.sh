#!/usr/bin/env bash
# Runs `go test` in GOPATH mode (Debian's Go has no module proxy here) over a
# GOPATH assembled from Bazel-built files.
#
#   go_test.sh PACKAGE [IMPORT_DIR=FILE ...] [@ENV_NAME=FILE ...] [-- GO_TEST_FLAGS...]
#
# Each IMPORT_DIR=FILE places FILE (a runfiles path) at $GOPATH/src/IMPORT_DIR.
# Debian's Go libraries (grpc-go, protobuf) come from /usr/share/gocode.
set -euo pipefail

pkg="$1"
shift
root="${TEST_TMPDIR:-$(mktemp -d)}/gopath"
mkdir -p "$root/src"
runfiles="${RUNFILES_DIR:-$PWD/..}"
resolve() {
  if [ -e "$1" ]; then echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; else echo "$runfiles/$1"; fi
}
while (($#)) && [ "$1" != "--" ]; do
  if [[ "$1" == @* ]]; then
    # @NAME=FILE exports NAME as FILE's absolute path (binaries the test runs).
    spec="${1#@}"
    export "${spec%%=*}=$(resolve "${spec#*=}")"
    shift
    continue
  fi
  dir="${1%%=*}"
  file="${1#*=}"
  mkdir -p "$root/src/$dir"
  if [ -e "$file" ]; then src="$file"; else src="$runfiles/$file"; fi
  cp "$src" "$root/src/$dir/"
  shift
done
[ "${1:-}" = "--" ] && shift

export GO111MODULE=off
export GOPATH="$root:/usr/share/gocode"
export GOFLAGS=-mod=mod
unset GOFLAGS
# A shared build cache keeps repeated runs quick; the tests do not depend on it.
export GOCACHE="${PRESENCE_GOCACHE:-/tmp/presence-gocache}"
mkdir -p "$GOCACHE" 2>/dev/null || export GOCACHE="$root/.cache"
export HOME="${HOME:-$root}"
cd "$root/src/$pkg"
exec go test -count=1 -v "$@" .
