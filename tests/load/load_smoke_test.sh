#!/usr/bin/env bash
# Smoke run of the load generator: 2,000 sessions over 8 channels against the
# real gateway and VS simulator, held 3 s with activity, closed by a mix of
# leave, half-close and cancel. Asserts every session joined and ended, and
# that VS saw exactly as many leaves as joins.
set -euo pipefail
load="$1" server="$2" sim="$3"
n=2000
tmp="${TEST_TMPDIR:-$(mktemp -d)}"

"$sim" --port=0 --key=smoke-key > "$tmp/sim.out" &
sim_pid=$!
trap 'kill $sim_pid $server_pid 2>/dev/null || true' EXIT
server_pid=""
for _ in $(seq 100); do grep -q "listening on" "$tmp/sim.out" && break; sleep 0.05; done
sim_url="$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$tmp/sim.out")"

VS_KEY=smoke-key "$server" --listen=127.0.0.1:0 --vs_url="$sim_url" --ping_interval=1s \
  --metrics_listen=127.0.0.1:0 --vs_timeout=15s 2> "$tmp/server.log" &
server_pid=$!
for _ in $(seq 200); do grep -q "listening address=" "$tmp/server.log" && break; sleep 0.05; done
address="$(sed -n 's/.*listening address=\([^ ]*\).*/\1/p' "$tmp/server.log")"
[ -n "$address" ] || { echo "server did not start"; cat "$tmp/server.log"; exit 1; }

"$load" --target="$address" --sessions=$n --channels=8 --max_joining=200 --hold=3s \
  --activity_per_second=500 \
  --close_mix=1,1,1 --max_wait=60s | tee "$tmp/load.out"

grep -q "^ESTABLISHED $n$" "$tmp/load.out" || {
  echo "FAIL: not all joined"
  grep -E "join_failed|error" "$tmp/server.log" | head -5
  exit 1
}
grep -q "^CLOSED $n$" "$tmp/load.out" || { echo "FAIL: not all ended"; exit 1; }

counts() { /usr/bin/python3 -c "import json,urllib.request;c=json.load(urllib.request.urlopen('$sim_url/_sim/counts'));print(c['joinRoom'],c['leaveRoom'],c['pingRoom'])"; }
for _ in $(seq 100); do
  read -r joins leaves pings < <(counts)
  [ "$leaves" -ge "$n" ] && break
  sleep 0.1
done
sleep 0.3
read -r joins leaves pings < <(counts)
echo "VS saw joins=$joins leaves=$leaves pings=$pings"
[ "$joins" -eq "$n" ] || { echo "FAIL: joins=$joins, want $n"; exit 1; }
[ "$leaves" -eq "$n" ] || { echo "FAIL: leaves=$leaves, want $n"; exit 1; }
[ "$pings" -gt 0 ] || { echo "FAIL: no pings"; exit 1; }
echo "PASS"
