#!/bin/sh
# User-space instructions per request on the queueing path (issue 21's throughput goal), counted
# by callgrind, which is repeatable on a loaded machine where wall-clock req/s is not. The
# fair_queue.py setup (http, 1 worker, pool_max 32, queue_max 4000, queue_timeout 10s, an nginx
# backend with a 120-byte answer), the proxy under callgrind, wrk with CLIENTS keep-alive
# connections for SECONDS; collection starts after a warm-up, so startup is not counted.
#   sh bench/queue_cost.sh [BUILD_DIR] [CLIENTS] [SECONDS]
# Prints: requests, instructions, instructions per request, and the top functions (inclusive
# and self) to compare builds. Needs (Debian): valgrind, nginx-light, wrk.
set -eu
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
CLIENTS="${2:-256}"
SECONDS_="${3:-10}"
for t in valgrind callgrind_control callgrind_annotate nginx wrk; do
    command -v "$t" >/dev/null || { echo "queue_cost: needs $t"; exit 1; }
done
W=$(mktemp -d /tmp/pp-qcost-XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { i=0; while ! python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1).close()" 2>/dev/null; do
    i=$((i+1)); [ $i -lt 300 ] || { echo "queue_cost: port $1 did not open"; exit 1; }; sleep 0.1; done; }
BE=$(port); PP=$(port)
mkdir -p "$W/tmp"
USER_LINE=""; [ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat >"$W/backend.conf" <<CONF
worker_processes 1; daemon off; $USER_LINE pid $W/backend.pid; error_log $W/backend-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen 127.0.0.1:$BE; location / { default_type text/plain; return 200 "$(python3 -c 'print("x"*120, end="")')"; } } }
CONF
nginx -c "$W/backend.conf" -p "$W" -e "$W/backend-error.log" & PIDS="$PIDS $!"
wait_port "$BE"
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$W/cg.out" \
    "$BUILD/poolproxy" --mode http --listen "127.0.0.1:$PP" --backend "127.0.0.1:$BE" --workers 1 \
    --pool-max 32 --queue-max 4000 --queue-timeout 10s --add-forwarded off --via off --log-level warn \
    >"$W/proxy.log" 2>&1 & PX=$!; PIDS="$PIDS $PX"
wait_port "$PP"
wrk -t1 -c"$CLIENTS" -d3s --timeout 15s "http://127.0.0.1:$PP/" >/dev/null 2>&1 || true  # warm-up
sleep 2  # the warm-up's queued requests drain
callgrind_control -i on "$PX" >/dev/null
wrk -t2 -c"$CLIENTS" -d"${SECONDS_}s" --timeout 15s "http://127.0.0.1:$PP/" >"$W/wrk.out" 2>&1 || true
callgrind_control -i off "$PX" >/dev/null
REQS=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$W/wrk.out")
kill -TERM "$PX"; wait "$PX" 2>/dev/null || true
IR=$(callgrind_annotate "$W/cg.out" 2>/dev/null | sed -n 's/^\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
grep -E "Socket errors|Non-2xx" "$W/wrk.out" || true
echo "clients $CLIENTS requests $REQS instructions $IR per_request $((IR / REQS))"
echo "== inclusive (per request)"
callgrind_annotate --inclusive=yes "$W/cg.out" 2>/dev/null | sed -n '/^-* *$/!p' | grep -E '^ *[0-9,]+ ' | head -45 |
    awk -v r="$REQS" '{ n=$1; gsub(",", "", n); $1=""; printf "%8.0f %s\n", n / r, $0 }'
echo "== self (per request)"
callgrind_annotate "$W/cg.out" 2>/dev/null | grep -E '^ *[0-9,]+ ' | head -40 |
    awk -v r="$REQS" '{ n=$1; gsub(",", "", n); $1=""; printf "%8.0f %s\n", n / r, $0 }'
[ -n "${KEEP_CG:-}" ] && cp "$W/cg.out" "$KEEP_CG"
exit 0
