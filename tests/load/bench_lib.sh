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

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
