#!/usr/bin/env bash
# Idle join latency, and what a join costs the server: J join-and-leave cycles
# one at a time (each a new stream: join, Joined, leave, end) through the
# gateway to nginx playing VS, beside a plain POST of the same joinRoom.
#
#   tests/load/join_latency_bench.sh [J]
#
# Prints the load generator's exact p50 / p99, the plain POST's, the server's
# CPU per cycle (/proc) and, if perf is installed, its context switches per
# cycle (perf stat). JOIN_BENCH_SERVER runs another gateway binary in the
# server's place (the Go baseline); JOIN_BENCH_SERVER_FLAGS adds flags.
# Bounded: every wait has a deadline; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
J="${1:-5000}"

bash bazel/install_deps.sh
bazel build //server:presence_server //tests/load:load_generator //server/vs:vs_client_benchmark >&2
bin="$(bazel info bazel-bin)"
source "tests/load/bench_lib.sh"
bench_workspace join-bench
start_nginx_vs
"$bin/server/vs/vs_client_benchmark" --sequential=2000 --plain --vs_url="$VS_URL" | tail -1

PORT="$(free_port)"
MPORT="$(free_port)"
env VS_KEY=bench "${JOIN_BENCH_SERVER:-$bin/server/presence_server}" --listen="127.0.0.1:$PORT" \
  --vs_url="$VS_URL" --metrics_listen="127.0.0.1:$MPORT" ${JOIN_BENCH_SERVER_FLAGS:-} \
  2> "$work/server.log" &
SERVER=$!
pids+=("$SERVER")
wait_for "$work/server.log" "listening address=" 30

perf_pid=""
if command -v perf > /dev/null 2>&1; then
  perf stat -e context-switches -p "$SERVER" -o "$work/perf.txt" 2> /dev/null &
  perf_pid=$!
  sleep 1  # perf attaches before the first join.
fi
c1=$(cpu_s "$SERVER")
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT" --sessions=1 --channels=1 \
  --sequential_joins="$J" --hold=0s --max_wait=300s > "$work/load.out" 2>&1
c2=$(cpu_s "$SERVER")
grep "^sequential joins" "$work/load.out"
echo "server CPU per cycle: $(/usr/bin/python3 -c "print(round(($c2 - $c1) * 1e6 / $J))") us"
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
  switches=$(awk '/context-switches/ { gsub(",", "", $1); print $1 }' "$work/perf.txt")
  echo "server context switches per cycle: $(/usr/bin/python3 -c "print(round(${switches:-0} / $J, 1))")"
fi
