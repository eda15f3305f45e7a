#!/usr/bin/env bash
# Runs `go vet` and `go test` over a Go module in module mode, offline: the
# module's dependencies come from a file:// module proxy built from Debian's
# Go sources (bazel/debian_goproxy.py), which also serves the module itself
# so that a test can build a program outside the repository against it.
#
#   go_module_test.sh PROXY_TAR MODULE_DIR MODULE_PATH VERSION [@ENV_NAME=FILE ...] [-- GO_TEST_FLAGS...]
set -euo pipefail

proxy_tar="$1" module_dir="$2" module_path="$3" version="$4"
shift 4
root="${TEST_TMPDIR:-$(mktemp -d)}/gomodule"
rm -rf "$root"
mkdir -p "$root/proxy" "$root/src"
runfiles="${RUNFILES_DIR:-$PWD/..}"
resolve() {
  if [ -e "$1" ]; then echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"; else echo "$runfiles/$1"; fi
}
while (($#)) && [ "$1" != "--" ]; do
  spec="${1#@}"
  export "${spec%%=*}=$(resolve "${spec#*=}")"
  shift
done
[ "${1:-}" = "--" ] && shift

junit="$(resolve bazel/go_junit.py)"
tar -xf "$(resolve "$proxy_tar")" -C "$root/proxy"
# The module as a user checks it out: its files, without Bazel's.
cp -rL "$(resolve "$module_dir")/." "$root/src/"
rm -f "$root/src/BUILD"
find "$root/src" -type d -exec chmod u+w {} +

export GO111MODULE=on
export GOPROXY="file://$root/proxy"
export GOSUMDB=off GONOSUMDB="*" GOFLAGS=-mod=mod
export GOMODCACHE="$root/modcache"
export GOCACHE="${PRESENCE_GOCACHE:-/tmp/presence-gocache}"
mkdir -p "$GOCACHE" 2>/dev/null || export GOCACHE="$root/.cache"
export HOME="${HOME:-$root}"
export PRESENCE_MODULE_VERSION="$version"
cd "$root/src"
head -1 go.mod | grep -qx "module $module_path" || { echo "go.mod does not declare $module_path" >&2; exit 1; }
test -z "$(gofmt -l .)" || { echo "not gofmt-clean:" >&2; gofmt -l . >&2; exit 1; }
go vet ./...
go build ./...
# One JUnit case per Go test (bazel/go_junit.py), so the suite counts them.
go test -count=1 -json "$@" ./... | /usr/bin/python3 "$junit"
