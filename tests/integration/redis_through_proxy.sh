#!/bin/sh
# A real database client and server nobody here wrote, unchanged through tcp mode:
# redis-server behind poolproxy, driven by redis-benchmark and redis-cli.
# Checks pre-warmed connections before the first client, correct results, and that redis
# never sees more than pool_max connections from the proxy.
set -eu
. "$(dirname "$0")/lib.sh"
cli="$1"
command -v redis-server >/dev/null || fail "redis-server missing: run scripts/deps.sh --test"
POOL_MAX=4
MIN_IDLE=2

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    --dir "$WORK" >"$WORK/redis.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until redis-cli -p "$rport" ping >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -le 200 ] || fail "redis did not start"; sleep 0.05
done

start_proxy "$cli" --listen 127.0.0.1:0 --backend "127.0.0.1:$rport" --workers 2 \
    --pool-max "$POOL_MAX" --pool-min-idle "$MIN_IDLE" --queue-timeout 60s

# Connections redis has, minus the one asking. No count read (redis-cli failed) is a failure,
# not -1: the sampled maximum below would pass on samples that were never taken.
from_proxy() {
    c=$(redis-cli -p "$rport" info clients | sed -n 's/^connected_clients:\([0-9]*\).*/\1/p')
    [ -n "$c" ] || { echo "FAIL: no connected_clients from redis on port $rport" >&2; exit 1; }
    echo $((c - 1))
}

i=0
while [ "$(from_proxy)" -lt "$MIN_IDLE" ]; do
    i=$((i + 1)); [ $i -le 200 ] || fail "pool did not pre-warm"; sleep 0.05
done
[ "$(from_proxy)" -eq "$MIN_IDLE" ] || fail "expected $MIN_IDLE pre-warmed connections, redis sees $(from_proxy)"
echo "pre-warmed before the first client: $(from_proxy) connections at redis"

# redis-benchmark with pool_max clients, persistent connections; sample redis meanwhile.
redis-benchmark -p "$PROXY_PORT" -c "$POOL_MAX" -n 20000 -t set,get,incr,lpush,lrange_100 -q \
    >"$WORK/bench.out" 2>&1 &
bench=$!
PIDS="$PIDS $bench"
max=0
while kill -0 "$bench" 2>/dev/null; do
    n=$(from_proxy); [ "$n" -gt "$max" ] && max=$n
    sleep 0.1
done
wait "$bench" || { cat "$WORK/bench.out"; fail "redis-benchmark failed through the proxy"; }
grep -q "requests per second" "$WORK/bench.out" || fail "redis-benchmark printed no results"
sed 's/^/  /' "$WORK/bench.out" | tr '\r' '\n' | grep "requests per second" | head -5
[ "$max" -le "$POOL_MAX" ] || fail "redis saw $max connections from the proxy (pool_max $POOL_MAX)"
echo "redis saw at most $max connections from the proxy during the benchmark (pool_max $POOL_MAX)"

# Churn: 8 concurrent loops of fresh redis-cli connections, 25 INCRs each: exactly 200.
redis-cli -p "$PROXY_PORT" set counter 0 >/dev/null
for l in 1 2 3 4 5 6 7 8; do
    ( for k in $(seq 25); do redis-cli -p "$PROXY_PORT" incr counter >/dev/null || exit 1; done ) &
    PIDS="$PIDS $!"
    eval "loop$l=$!"
done
for l in 1 2 3 4 5 6 7 8; do eval "wait \$loop$l" || fail "a redis-cli loop failed"; done
got=$(redis-cli -p "$PROXY_PORT" get counter)
[ "$got" = "200" ] || fail "counter is '$got', expected 200"
rejected=$(redis-cli -p "$rport" info stats | sed -n 's/^rejected_connections:\([0-9]*\).*/\1/p')
[ "$rejected" = "0" ] || fail "redis rejected $rejected connections"
stop_proxy
echo "ok: redis through poolproxy tcp mode: benchmark ok, 200/200 INCRs, cap held"
