#!/usr/bin/env bash
# The scale benchmark: N held sessions pinging every 10 s through the gateway
# to nginx playing VS (so the upstream is not the bottleneck).
#
#   tests/load/presence_bench.sh [N] [--write]
#
# PRESENCE_BENCH_SERVER_FLAGS adds flags to the server (e.g. --vs_event_loops=1).
# PRESENCE_BENCH_SERVER_ENV adds environment variables to the server (e.g. MALLOC_ARENA_MAX=2).
# PRESENCE_BENCH_GATEWAY runs another gateway binary in the server's place (the
# Go baseline: tests/load/go_gateway/build.sh OUT, then PRESENCE_BENCH_GATEWAY=OUT).
#
# Prints, and with --write appends to BENCHMARKS.md, a row with:
#   RSS per held session: (RSS at N - RSS at 0) / N
#   server CPU and pingRoom/s while N sessions ping (vs N / interval)
#   ping lateness p50 / p99 / p99.9 (sent minus scheduled), since start and in
#   the measuring window (from the histogram's buckets: bounds, and the share
#   of the window's pings later than 5 ms)
#   join latency through the gateway (idle, and with the N held) vs a direct
#   HTTP call, one at a time: through VsClient ("direct") and as a plain POST
#   from the calling thread ("plain POST", the issue's baseline)
#   RSS after every session closed, and joins = leaves (VS answers counted)
#   time to drain N sessions on SIGTERM, with every leave delivered
# Bounded: every wait has a deadline; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
N="${1:-100000}"
WRITE="${2:-}"
INTERVAL=10
CHANNELS=$(( N / 2000 < 8 ? 8 : (N / 2000 > 100 ? 100 : N / 2000) ))

bash bazel/install_deps.sh
bazel build //server:presence_server //tests/load:load_generator //server/vs:vs_client_benchmark >&2
bin="$(bazel info bazel-bin)"
source "tests/load/bench_lib.sh"
bench_workspace presence-bench
start_nginx_vs
sleep 0.5
direct="$("$bin/server/vs/vs_client_benchmark" --sequential=2000 --vs_url="$VS_URL" | tail -1)"
echo "$direct"
# The issue's "direct POST": from the calling thread, with no event loop.
plain="$("$bin/server/vs/vs_client_benchmark" --sequential=2000 --plain --vs_url="$VS_URL" | tail -1)"
echo "$plain"

start_server() {
  PORT="$(free_port)"
  MPORT="$(free_port)"
  env VS_KEY=bench ${PRESENCE_BENCH_SERVER_ENV:-} "${PRESENCE_BENCH_GATEWAY:-$bin/server/presence_server}" --listen="127.0.0.1:$PORT" --vs_url="$VS_URL" \
    --metrics_listen="127.0.0.1:$MPORT" --ping_interval=${INTERVAL}s --max_sessions=$((N * 2)) \
    --drain_timeout=60s ${PRESENCE_BENCH_SERVER_FLAGS:-} 2> "$work/server$1.log" &
  SERVER=$!
  pids+=("$SERVER")
  wait_for "$work/server$1.log" "listening address=" 30
}

# Phase A: open N, hold, measure, close by a mix, measure again.
start_server A
sleep 1
rss0=$(rss_kib "$SERVER")
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT" --sessions="$N" --channels=$CHANNELS \
  --max_joining=2000 --sequential_joins=2000 --held_sequential_joins=1000 \
  --held_sequential_after=$((INTERVAL * 3 + 7))s --hold=$((INTERVAL * 4 + 5))s --close_mix=1,1,1 \
  --max_wait=600s > "$work/loadA.out" &
LOAD=$!
pids+=("$LOAD")
wait_for "$work/loadA.out" "^ESTABLISHED" 900
cat "$work/loadA.out"
# Every session has pinged at least once before the window starts.
sleep $((INTERVAL + 2))
rssN=$(rss_kib "$SERVER")
c1=$(cpu_s "$SERVER"); p1=$(metric "$MPORT" 'presence_pings_total{outcome="accepted"}'); t1=$(date +%s.%N)
buckets "$MPORT" presence_ping_lateness_seconds > "$work/late1"
sleep $((INTERVAL * 2))
c2=$(cpu_s "$SERVER"); p2=$(metric "$MPORT" 'presence_pings_total{outcome="accepted"}'); t2=$(date +%s.%N)
buckets "$MPORT" presence_ping_lateness_seconds > "$work/late2"
read -r wl50 wl99 wl999 wlate5 <<< "$(window_quantiles "$work/late1" "$work/late2")"
held=$(metric "$MPORT" presence_sessions_joined)
late50=$(metric "$MPORT" 'presence_ping_lateness_quantile_seconds{quantile="0.5"}')
late99=$(metric "$MPORT" 'presence_ping_lateness_quantile_seconds{quantile="0.99"}')
late999=$(metric "$MPORT" 'presence_ping_lateness_quantile_seconds{quantile="0.999"}')
# Direct joins to VS while the N are held and pinging (before the load
# generator's own joins with the N held, --held_sequential_after).
direct_held="$("$bin/server/vs/vs_client_benchmark" --sequential=1000 --vs_url="$VS_URL" | tail -1)"
echo "while held: $direct_held"
plain_held="$("$bin/server/vs/vs_client_benchmark" --sequential=1000 --plain --vs_url="$VS_URL" | tail -1)"
echo "while held: $plain_held"
wait "$LOAD" || true
cat "$work/loadA.out" | tail -2
deadline=$((SECONDS + 120))
while (( SECONDS < deadline )); do
  j=$(metric "$MPORT" 'presence_joins_total{outcome="accepted"}'); l=$(metric "$MPORT" 'presence_leaves_total{outcome="accepted"}')
  [ "${j%.*}" = "${l%.*}" ] && break
  sleep 1
done
sleep 5
rss_after=$(rss_kib "$SERVER")
joinsA=$(metric "$MPORT" 'presence_joins_total{outcome="accepted"}')
leavesA=$(metric "$MPORT" 'presence_leaves_total{outcome="accepted"}')
kill -TERM "$SERVER"; wait "$SERVER" || true

# Phase B: open N, then SIGTERM: time until every leave is delivered and the
# process has exited.
start_server B
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT" --sessions="$N" --channels=$CHANNELS \
  --max_joining=2000 --hold=600s --close_mix=none --max_wait=600s > "$work/loadB.out" &
LOAD=$!
pids+=("$LOAD")
wait_for "$work/loadB.out" "^ESTABLISHED" 900
tB=$(date +%s.%N)
kill -TERM "$SERVER"
# The last leave answered (the server's counter reaching N), while it drains.
last_leave=nan
while kill -0 "$SERVER" 2>/dev/null; do
  accepted=$(metric "$MPORT" 'presence_leaves_total{outcome="accepted"}' 2>/dev/null || echo nan)
  if [ "$accepted" != nan ] && [ "${accepted%.*}" -ge "$N" ]; then
    last_leave=$(/usr/bin/python3 -c "print(round($(date +%s.%N) - $tB, 1))")
    break
  fi
  sleep 0.1
done
wait "$SERVER" || true
drain=$(/usr/bin/python3 -c "print($(date +%s.%N) - $tB)")
drained="$(grep ' drained ' "$work/serverB.log" | tail -1)"
wait "$LOAD" || true
tail -2 "$work/loadB.out"

join_gw="$(sed -n 's/^sequential joins: .*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p' "$work/loadA.out")"
join_held="$(sed -n 's/^sequential joins while held: .*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p' "$work/loadA.out")"
read -r h50 h99 <<< "$join_held"
read -r dh50 dh99 <<< "$(echo "$direct_held" | sed -n 's/.*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p')"
join_direct="$(echo "$direct" | sed -n 's/.*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p')"
read -r gw50 gw99 <<< "$join_gw"
read -r d50 d99 <<< "$join_direct"
read -r p50 p99 <<< "$(echo "$plain" | sed -n 's/.*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p')"
read -r ph50 ph99 <<< "$(echo "$plain_held" | sed -n 's/.*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p')"
window=$(/usr/bin/python3 -c "print($t2 - $t1)")
row=$(/usr/bin/python3 - <<EOF
n=$N; rss0=$rss0; rssN=$rssN; after=$rss_after; w=$window
cpu=($c2-$c1)/w; pings=($p2-$p1)/w
print("| %s | %d | %s | %d | %.2f KiB | %.0f%% of a core | %.0f/s (want %.0f/s) | %.1f / %.1f / %.1f ms | %s / %s / %s ms, %s%% over 5 ms | %s / %s us | %s / %s us | %s / %s us | %s / %s us | %d KiB (at 0: %d KiB) | %s / %s | %s s / %.1f s | %s | %s / %s us | %s / %s us |" % (
    "$(date +%F)", n, "$(nproc)", $held, (rssN - rss0) / n, 100 * cpu, pings, n / $INTERVAL,
    1000 * $late50, 1000 * $late99, 1000 * $late999, "$wl50", "$wl99", "$wl999", "$wlate5", "$gw50", "$gw99", "$h50", "$h99", "$d50", "$d99", "$dh50", "$dh99",
    after, rss0, "$joinsA", "$leavesA", "$last_leave", $drain, "$(echo "$drained" | grep -o 'leaves_sent=[0-9]* leaves_accepted=[0-9]*')", "$p50", "$p99", "$ph50", "$ph99"))
EOF
)
echo
echo "| date | N | nproc | held | RSS per session | server CPU while pinging | pingRoom delivered | ping lateness p50 / p99 / p99.9 (since start) | ping lateness in the window: p50 / p99 / p99.9 at most (bucket bounds), share over 5 ms | join via gateway p50 / p99 (idle) | join via gateway with N held p50 / p99 | join direct p50 / p99 (idle) | join direct with N held p50 / p99 | RSS after all closed | joins / leaves accepted (phase A) | drain on SIGTERM: last leave answered / process exited | drain leaves | plain POST p50 / p99 (idle) | plain POST with N held p50 / p99 |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
echo "$row"
if [ "$WRITE" = "--write" ]; then
  echo "$row" >> BENCHMARKS.md
fi
