#!/usr/bin/env bash
# Installs every Debian package the build, the server and the tests need.
# Idempotent and quick when everything is present: it only calls apt-get when a
# package is missing. Used by the README's commands and by .ci/run.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap
  build-essential
  pkg-config
  libgrpc++-dev
  libprotobuf-dev
  protobuf-compiler
  protobuf-compiler-grpc
  libabsl-dev
  libcurl4-openssl-dev
  libhiredis-dev
  redis-server
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libcpp-httplib-dev
  nlohmann-json3-dev
  libssl-dev
  python3-grpcio
  python3-yaml
  python3-protobuf
  python3-pip
  python3-setuptools
  python3-venv
  python3-wheel
  golang-go
  golang-google-grpc-dev
  golang-google-protobuf-dev
  golang-github-golang-protobuf-1-5-dev
  protoc-gen-go
  protoc-gen-go-grpc
  clang
  libclang-rt-14-dev
  openssl
  procps
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install_deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
