#!/usr/bin/env bash
# VsClient throughput against nginx answering as VS (so the upstream is not
# the bottleneck), then against the built-in simulator.
#
#   tests/load/vs_client_bench.sh [REQUESTS]
set -euo pipefail
cd "$(dirname "$0")/../.."
requests="${1:-200000}"
bash bazel/install_deps.sh
bazel build //server/vs:vs_client_benchmark
bench="$(bazel info bazel-bin)/server/vs/vs_client_benchmark"
out="$(mktemp)"
tests/load/nginx_vs.sh > "$out" &
nginx_pid=$!
trap 'kill $nginx_pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q VS_URL "$out" && break; sleep 0.1; done
url="$(sed -n 's/^VS_URL=//p' "$out")"
sleep 0.5
echo "== upstream: nginx ($url)"
"$bench" --requests="$requests" --connections=64 --vs_url="$url"
echo "== upstream: in-process VS simulator"
"$bench" --requests="$requests" --connections=64
