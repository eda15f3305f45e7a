#!/usr/bin/env bash
# Generates the package's stubs (presence_client/v1/presence_pb2*.py{,i}) from
# the contract. Run from the repository root after changing the proto:
#
#   clients/python/generate_stubs.sh [PROTO_ROOT] [OUT_DIR]
#
# (defaults: protos, clients/python/presence_client/v1). Needs protoc and
# grpc_python_plugin (Debian: protobuf-compiler, protobuf-compiler-grpc).
# The gRPC stub's absolute import of presence.v1 becomes the package's own.
set -euo pipefail
proto_root="${1:-protos}"
out="${2:-clients/python/presence_client/v1}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
protoc -I"$proto_root" -I/usr/include --python_out="$work" --pyi_out="$work" \
  --grpc_python_out="$work" --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
  presence/v1/presence.proto
mkdir -p "$out"
cp "$work"/presence/v1/presence_pb2.py "$work"/presence/v1/presence_pb2.pyi "$out/"
sed 's/^from presence\.v1 import presence_pb2 /from presence_client.v1 import presence_pb2 /' \
  "$work/presence/v1/presence_pb2_grpc.py" >"$out/presence_pb2_grpc.py"
