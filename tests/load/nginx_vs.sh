#!/usr/bin/env bash
# Runs nginx (Debian's nginx-light) as a fast stand-in for VS on a loopback
# port, prints "VS_URL=http://127.0.0.1:PORT", and serves until killed.
#
#   tests/load/nginx_vs.sh [PORT]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
fi
port="${1:-$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
dir="$(mktemp -d -t nginx-vs.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
sed "s/__PORT__/$port/" "$here/nginx_vs.conf" > "$dir/nginx.conf"
echo "VS_URL=http://127.0.0.1:$port"
exec /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf"
