#!/bin/sh
# Every benchmark of docs/BENCHMARKS.md in one run, on loopback: http and tcp side by side with
# HAProxy and nginx (pinned, interleaved, medians, chart), memory per idle keep-alive client
# beside them, the churn / balance / overload scenarios, churn side by side (a new client
# connection per request) and the time to a first byte, pooled and not. Not a test: numbers.
#   sh bench/run_all.sh [BUILD_DIR] [SECONDS] [ROUNDS]        default: build 5 3
# Needs (Debian): haproxy nginx-light libnginx-mod-stream wrk gnuplot-nox, and a built poolproxy.
set -eu
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
SECS="${2:-5}"
ROUNDS="${3:-3}"
echo "## poolproxy $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(haproxy -v 2>/dev/null | head -1 | cut -d' ' -f1-3)," \
     "$(nginx -v 2>&1), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), kernel $(uname -r)"
CHART="${CHART:-docs/benchmarks.png}" sh bench/http_compare.sh "$BUILD" "$SECS" "$ROUNDS" 50
echo
python3 bench/idle_memory.py "$BUILD/poolproxy" --conns 8000 --peers
echo
python3 bench/scenarios.py "$BUILD/poolproxy" --seconds "$SECS"
echo
TARGETS="poolproxy-churn haproxy-churn nginx-churn poolproxy-tcp-churn haproxy-tcp-churn nginx-stream-churn" \
    sh bench/http_compare.sh "$BUILD" "$SECS" "$ROUNDS" 64
echo
python3 bench/setup_time.py "$BUILD/poolproxy" --rounds "$ROUNDS"
