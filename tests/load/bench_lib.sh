# Shell helpers the benchmark scripts share (sourced, not run).

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for FILE REGEX SECONDS: until FILE has a line matching REGEX
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    ((SECONDS < deadline)) || { echo "timed out waiting for '$2' in $1" >&2; exit 1; }
    sleep 0.2
  done
}

metric() {  # metric PORT NAME_WITH_LABELS: one sample from a server's /metrics ("nan" if absent)
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, urllib.request
page = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
for line in page.splitlines():
    if line.startswith(sys.argv[2] + " "):
        print(line.split(" ")[1]); break
else:
    print("nan")
PY
}

buckets() {  # buckets PORT NAME: a histogram's cumulative "le count" lines from /metrics
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, urllib.request
page = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=10).read().decode()
prefix = sys.argv[2] + '_bucket{le="'
for line in page.splitlines():
    if line.startswith(prefix):
        le, count = line[len(prefix):].split('"} ')
        print(le, count)
PY
}

window_quantiles() {  # window_quantiles FILE1 FILE2: "p50 p99 p99.9 late5" of the observations between two buckets() dumps
  /usr/bin/python3 - "$1" "$2" <<'PY'
import sys
def read(path):
    return [(float(le), int(float(c))) for le, c in (l.split() for l in open(path))]
a, b = read(sys.argv[1]), read(sys.argv[2])
delta = [(le, cb - ca) for (le, ca), (_, cb) in zip(a, b)]
total = delta[-1][1]
def bound(q):  # the smallest bucket bound holding a share q of the window's observations
    for le, c in delta:
        if total and c >= q * total:
            return le
    return float("nan")
within5 = dict(delta).get(0.005, 0)
late5 = 100.0 * (total - within5) / total if total else float("nan")
print("%g %g %g %.3f" % (1000 * bound(0.5), 1000 * bound(0.99), 1000 * bound(0.999), late5))
PY
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }

bench_workspace() {  # bench_workspace NAME [SIGNAL]: a $work dir and a $pids list, both cleaned up on exit
  work="$(mktemp -d -t "$1.XXXXXX")"
  pids=()
  bench_signal="${2:-TERM}"
  trap 'for p in "${pids[@]}"; do kill -"$bench_signal" "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT
}

start_nginx_vs() {  # start_nginx_vs: nginx playing VS (tests/load/nginx_vs.sh), its URL in $VS_URL
  tests/load/nginx_vs.sh > "$work/nginx.out" 2>&1 &
  pids+=($!)
  wait_for "$work/nginx.out" VS_URL 30
  VS_URL="$(sed -n 's/^VS_URL=//p' "$work/nginx.out")"
}
