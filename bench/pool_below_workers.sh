#!/bin/sh
# pool_max below the worker count: 20 sequential requests on new connections through 2 workers
# sharing pool_max 1 (so every other request needs the connection idle on the other worker),
# with a short queue_timeout (QT, 10ms). Prints each status and each request's queue wait
# from the access log. Before the idle worker lent its connection at once, every other
# request waited the 20 ms shed timer (503 at QT 10ms).
#   sh bench/pool_below_workers.sh build/poolproxy
set -eu
B=${1:-build/poolproxy}
D=$(mktemp -d)
cat >"$D/nginx.conf" <<CONF
worker_processes 1; daemon off; pid $D/nginx.pid; error_log $D/error.log;
events { worker_connections 256; }
http { access_log off; server { listen 127.0.0.1:18180; location / { return 200 "hello\n"; } } }
CONF
nginx -c "$D/nginx.conf" -p "$D" & hp=$!
sleep 0.5
"$B" --mode http --listen 127.0.0.1:18181 --backend 127.0.0.1:18180 --workers 2 --pool-max 1 \
    --queue-timeout "${QT:-10ms}" --access-log "$D/access.log" >/dev/null 2>"$D/proxy.err" & pp=$!
sleep 0.5
for i in $(seq 1 20); do curl -s -o /dev/null -w "%{http_code} " http://127.0.0.1:18181/; done; echo
kill "$pp" "$hp"; wait "$pp" 2>/dev/null || true
grep -o "queue_us=[0-9]*" "$D/access.log" | tr '\n' ' '; echo
rm -rf "$D"
