#!/usr/bin/env bash
# Builds the Go gateway baseline (main.go) to OUT, offline, in module mode:
# its dependencies (clients/go's presencev1 stubs, grpc-go, protobuf) come from
# the module proxy that //clients/go:goproxy assembles from Debian's Go sources.
#
#   tests/load/go_gateway/build.sh OUT
set -euo pipefail
out="$(realpath -m "$1")"
cd "$(dirname "$0")/../../.."
bazel build //clients/go:goproxy >&2
root="$(mktemp -d -t go-gateway.XXXXXX)"
trap 'chmod -R u+w "$root"; rm -rf "$root"' EXIT
mkdir -p "$root/proxy" "$root/src"
tar -xf "$(bazel info bazel-bin 2>/dev/null)/clients/go/goproxy.tar" -C "$root/proxy"
cp tests/load/go_gateway/go.mod tests/load/go_gateway/main.go "$root/src/"
export GO111MODULE=on GOPROXY="file://$root/proxy" GOSUMDB=off GONOSUMDB="*" GOFLAGS=-mod=mod
export GOMODCACHE="$root/modcache" GOCACHE="${PRESENCE_GOCACHE:-/tmp/presence-gocache}"
cd "$root/src"
go vet .
go build -o "$out" .
