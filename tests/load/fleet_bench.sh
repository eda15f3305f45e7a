#!/usr/bin/env bash
# The fleet benchmark: what Redis costs and what a takeover takes, with nginx
# playing VS and a redis-server of its own (loopback, no persistence).
#
#   tests/load/fleet_bench.sh [SESSIONS_PER_REPLICA] [TAKEOVER_SESSIONS]
#
# Prints:
#   1. join latency (sequential, one at a time, registered customers) through
#      one replica without Redis, then with --redis_url: p50 / p99 and the
#      difference; Redis commands per join+leave pair and awaited round trips;
#   2. two replicas holding SESSIONS_PER_REPLICA each (default 50k) with 10 s
#      pings: ping rate, lateness p99 per replica, server CPU, RSS per session;
#   3. kill -9 of a replica holding TAKEOVER_SESSIONS (default 10k): time from
#      the kill to the survivor's last takeover leave answered by VS.
# Bounded: every wait has a deadline; everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
PER="${1:-50000}"
TAKE="${2:-10000}"
INTERVAL=10
TTL=10

bash bazel/install_deps.sh
bazel build //server:presence_server //tests/load:load_generator >&2
bin="$(bazel info bazel-bin)"
source "tests/load/bench_lib.sh"
bench_workspace fleet-bench KILL
calc() { /usr/bin/python3 -c "print($1)"; }

start_nginx_vs
REDIS_PORT="$(free_port)"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --loglevel warning > "$work/redis.log" 2>&1 &
pids+=($!)
sleep 0.5

# start_replica NAME [extra flags...]: sets PORT_<NAME>, MPORT_<NAME>, PID_<NAME>.
start_replica() {
  local name="$1"
  shift
  local port mport
  port="$(free_port)"
  mport="$(free_port)"
  VS_KEY=bench "$bin/server/presence_server" --listen="127.0.0.1:$port" --vs_url="$VS_URL" \
    --metrics_listen="127.0.0.1:$mport" --ping_interval=${INTERVAL}s --max_sessions=200000 \
    --drain_timeout=60s "$@" 2> "$work/$name.log" &
  pids+=($!)
  eval "PID_$name=$!; PORT_$name=$port; MPORT_$name=$mport"
  wait_for "$work/$name.log" "listening address=" 30
}

sequential() {  # sequential PORT OUT: 2000 join+leave pairs of registered customers, one at a time
  "$bin/tests/load/load_generator" --target="127.0.0.1:$1" --sessions=0 --sequential_joins=2000 \
    --sequential_registered --max_wait=120s > "$2"
  sed -n 's/^sequential joins: .*p50=\([0-9]*\)us p99=\([0-9]*\)us/\1 \2/p' "$2"
}

echo "== 1. join latency without and with Redis (2000 sequential join+leave pairs)"
start_replica solo
read -r s50 s99 <<< "$(sequential "$PORT_solo" "$work/seq_solo.out")"
kill -TERM "$PID_solo"; wait "$PID_solo" || true
start_replica fleet --redis_url="redis://127.0.0.1:$REDIS_PORT" --replica_ttl=${TTL}s
sleep 0.5
rt0=$(metric "$MPORT_fleet" presence_redis_round_trips_total)
read -r f50 f99 <<< "$(sequential "$PORT_fleet" "$work/seq_fleet.out")"
sleep 1
rt1=$(metric "$MPORT_fleet" presence_redis_round_trips_total)
lat=$(metric "$MPORT_fleet" presence_redis_latency_seconds_sum)
kill -TERM "$PID_fleet"; wait "$PID_fleet" || true
echo "without Redis: join p50=${s50}us p99=${s99}us"
echo "with Redis:    join p50=${f50}us p99=${f99}us (added p50 $((f50 - s50))us, p99 $((f99 - s99))us)"
echo "Redis commands per join+leave pair: $(calc "round(($rt1 - $rt0) / 2000, 2)") (renewals included); mean Redis answer $(calc "round(1e6 * $lat / max($rt1, 1))") us"
echo "awaited Redis round trips: 1 per join (the claim), 1 per leave (the release); the rest are queued"

echo "== 2. two replicas holding $PER sessions each (distinct customers), ${INTERVAL}s pings"
"$bin/tests/load/load_generator" --help >/dev/null 2>&1 || true
redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null 2>&1 || true
start_replica a --redis_url="redis://127.0.0.1:$REDIS_PORT" --replica_ttl=${TTL}s
start_replica b --redis_url="redis://127.0.0.1:$REDIS_PORT" --replica_ttl=${TTL}s
rssA0=$(rss_kib "$PID_a"); rssB0=$(rss_kib "$PID_b")
CH=$(( PER / 2000 < 8 ? 8 : (PER / 2000 > 100 ? 100 : PER / 2000) ))
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT_a" --sessions="$PER" --channels=$CH \
  --max_joining=2000 --hold=$((INTERVAL * 4 + 5))s --close_mix=1,1,1 --max_wait=600s > "$work/loadA.out" &
LA=$!; pids+=($LA)
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT_b" --sessions="$PER" --channels=$CH \
  --first_customer=1000001 \
  --max_joining=2000 --hold=$((INTERVAL * 4 + 5))s --close_mix=1,1,1 --max_wait=600s > "$work/loadB.out" &
LB=$!; pids+=($LB)
wait_for "$work/loadA.out" "^ESTABLISHED" 900
wait_for "$work/loadB.out" "^ESTABLISHED" 900
sleep $((INTERVAL + 2))
rssA=$(rss_kib "$PID_a"); rssB=$(rss_kib "$PID_b")
ca1=$(cpu_s "$PID_a"); cb1=$(cpu_s "$PID_b"); t1=$(date +%s.%N)
pa1=$(metric "$MPORT_a" 'presence_pings_total{outcome="accepted"}'); pb1=$(metric "$MPORT_b" 'presence_pings_total{outcome="accepted"}')
sleep $((INTERVAL * 2))
ca2=$(cpu_s "$PID_a"); cb2=$(cpu_s "$PID_b"); t2=$(date +%s.%N)
pa2=$(metric "$MPORT_a" 'presence_pings_total{outcome="accepted"}'); pb2=$(metric "$MPORT_b" 'presence_pings_total{outcome="accepted"}')
la99=$(metric "$MPORT_a" 'presence_ping_lateness_quantile_seconds{quantile="0.99"}')
lb99=$(metric "$MPORT_b" 'presence_ping_lateness_quantile_seconds{quantile="0.99"}')
heldA=$(metric "$MPORT_a" presence_sessions_joined); heldB=$(metric "$MPORT_b" presence_sessions_joined)
w=$(calc "$t2 - $t1")
echo "held: A $heldA, B $heldB (of $PER each)"
echo "pings/s: A $(calc "round(($pa2 - $pa1) / $w)"), B $(calc "round(($pb2 - $pb1) / $w)") (want $((PER / INTERVAL)) each)"
echo "ping lateness p99: A $(calc "round(1000 * $la99, 1)") ms, B $(calc "round(1000 * $lb99, 1)") ms"
echo "server CPU: A $(calc "round(100 * ($ca2 - $ca1) / $w)")%, B $(calc "round(100 * ($cb2 - $cb1) / $w)")% of a core"
echo "RSS per session: A $(calc "round(($rssA - $rssA0) * 1024 / $PER)") B, B $(calc "round(($rssB - $rssB0) * 1024 / $PER)") B"
echo "redis-server RSS: $(rss_kib "$(pgrep -f "redis-server.*:$REDIS_PORT" | head -1)") KiB"
wait "$LA" || true; wait "$LB" || true
tail -1 "$work/loadA.out"; tail -1 "$work/loadB.out"

echo "== 3. kill -9 of a replica holding $TAKE sessions (--replica_ttl=${TTL}s)"
"$bin/tests/load/load_generator" --target="127.0.0.1:$PORT_b" --sessions="$TAKE" --channels=8 \
  --first_customer=2000001 \
  --max_joining=2000 --hold=600s --close_mix=none --max_wait=600s > "$work/loadK.out" &
LK=$!; pids+=($LK)
wait_for "$work/loadK.out" "^ESTABLISHED" 600
sleep 1
before=$(metric "$MPORT_a" 'presence_leaves_total{outcome="accepted"}')
tk=$(date +%s.%N)
kill -9 "$PID_b"
deadline=$((SECONDS + 120))
while (( SECONDS < deadline )); do
  now=$(metric "$MPORT_a" 'presence_leaves_total{outcome="accepted"}')
  [ "$(calc "int($now - $before >= $TAKE)")" = 1 ] && break
  sleep 0.2
done
echo "kill -9 to the last takeover leave answered: $(calc "round($(date +%s.%N) - $tk, 1)") s for $(calc "int($now - $before)") leaves (takeover leaves: $(metric "$MPORT_a" presence_fleet_takeover_leaves_total))"
kill "$LK" 2>/dev/null || true
