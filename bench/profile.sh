#!/bin/sh
# Where poolproxy's CPU goes under load: perf (cpu-clock samples by DSO and top symbols) and
# strace -c (system calls per request), with the setup of http_compare.sh: the proxy alone on
# CPU 0, wrk (50 keep-alive connections) and an nginx backend (120-byte body) on CPU 1.
#   sh bench/profile.sh [BUILD_DIR] [http|tcp]
# Needs (Debian): linux-perf, strace, nginx-light, wrk.
set -eu
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
MODE="${2:-http}"
for t in perf strace nginx wrk taskset; do command -v "$t" >/dev/null || { echo "profile: needs $t"; exit 1; }; done
W=$(mktemp -d /tmp/pp-prof-XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
BE=$(port); PP=$(port)
mkdir -p "$W/tmp"
cat >"$W/backend.conf" <<CONF
worker_processes 1; daemon off; user root; pid $W/backend.pid; error_log $W/backend-error.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen 127.0.0.1:$BE; location / { default_type text/plain; return 200 "$(python3 -c 'print("x"*120, end="")')"; } } }
CONF
taskset -c 1 nginx -c "$W/backend.conf" & PIDS="$PIDS $!"
taskset -c 0 "$BUILD/poolproxy" --mode "$MODE" --listen "127.0.0.1:$PP" --backend "127.0.0.1:$BE" --workers 1 \
    --pool-max 64 --add-forwarded off --via off >/dev/null 2>&1 & PX=$!; PIDS="$PIDS $PX"
sleep 0.5
taskset -c 1 wrk -t1 -c50 -d12s "http://127.0.0.1:$PP/" >"$W/wrk.out" 2>&1 & WRK=$!; PIDS="$PIDS $WRK"
sleep 2
perf record -q -e cpu-clock -g -p "$PX" -o "$W/perf.data" -- sleep 4 >/dev/null 2>&1
echo "== perf: share of the proxy's samples by DSO (mode $MODE)"
perf report -q -i "$W/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^$' | head -8
echo "== perf: top symbols"
perf report -q -i "$W/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^$' | head -25
echo "== strace -c over 2 s"
strace -c -f -p "$PX" -o "$W/strace.txt" >/dev/null 2>&1 & ST=$!
sleep 2
kill -INT "$ST" 2>/dev/null || true
wait "$ST" 2>/dev/null || true
head -20 "$W/strace.txt"
wait "$WRK" || true
echo "== wrk (12 s; the strace window is 2 s of it)"
grep -E "Requests/sec|requests in" "$W/wrk.out"
