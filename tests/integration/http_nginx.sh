#!/bin/sh
# http mode between real programs nobody here wrote: curl as the client, nginx (Debian's
# nginx-light) as the backend, started here on loopback.
#   - 1 MiB download byte-exact, with Content-Length and chunked (sub_filter drops the length)
#   - 2 MiB upload byte-exact (PUT, read back), with Content-Length and chunked; curl sends
#     Expect: 100-continue for these sizes
#   - HEAD
#   - nginx keepalive_timeout 1s, requests 1.2 s apart: no failed request (the keep-alive race)
#   - reuse: 100 client connections x 5 requests over at most pool_max backend connections,
#     read from nginx's $connection in its access log
set -eu
[ -n "${PP_DEBUG:-}" ] && set -x
. "$(dirname "$0")/lib.sh"
cli="$1"
command -v nginx >/dev/null || fail "nginx missing: run scripts/deps.sh --test"
command -v curl >/dev/null || fail "curl missing: run scripts/deps.sh --test"
POOL_MAX=8

nport=$(free_port)   # keepalive_timeout 1s: the race
rport=$(free_port)   # keepalive_timeout 60s: reuse is counted here, with no idle close in the way
mkdir -p "$WORK/www/up" "$WORK/tmp"
head -c 1048576 /dev/urandom >"$WORK/www/big.bin"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
user root;  # workers keep the test's user (ignored when not run as root)
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
    log_format conn '\$connection \$request_method \$request_uri \$status';
    access_log $WORK/access.log conn;
    client_body_temp_path $WORK/tmp;
    proxy_temp_path $WORK/tmp; fastcgi_temp_path $WORK/tmp; uwsgi_temp_path $WORK/tmp; scgi_temp_path $WORK/tmp;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$rport;
        keepalive_timeout 60s;
        root $WORK/www;
    }
    server {
        listen 127.0.0.1:$nport;
        keepalive_timeout 1s;
        root $WORK/www;
        location /up/ { dav_methods PUT; client_max_body_size 16m; create_full_put_path on; }
        location /chunked/ { alias $WORK/www/; sub_filter_types *; sub_filter 'no-such-text' 'x'; }
    }
}
CONF
nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" &
PIDS="$PIDS $!"
wait_port 127.0.0.1 "$nport"
wait_port 127.0.0.1 "$rport"

start_proxy "$cli" --mode http --listen 127.0.0.1:0 --backend "127.0.0.1:$nport" --workers 2 \
    --pool-max "$POOL_MAX" --pool-idle-timeout 30s
url="http://127.0.0.1:$PROXY_PORT"

curl -sf -o "$WORK/dl.bin" "$url/big.bin" || fail "download failed"
cmp -s "$WORK/dl.bin" "$WORK/www/big.bin" || fail "1 MiB download differs"
curl -sf -D "$WORK/h" -o "$WORK/dl2.bin" "$url/chunked/big.bin" || fail "chunked download failed"
grep -qi '^transfer-encoding: chunked' "$WORK/h" || fail "the chunked path was not chunked: $(cat "$WORK/h")"
cmp -s "$WORK/dl2.bin" "$WORK/www/big.bin" || fail "1 MiB chunked download differs"
echo "ok: 1 MiB download byte-exact, Content-Length and chunked"

head -c 2097152 /dev/urandom >"$WORK/up.bin"
curl -sf -T "$WORK/up.bin" "$url/up/a.bin" -o /dev/null -w '%{http_code}' >"$WORK/code" || fail "upload failed"
cmp -s "$WORK/up.bin" "$WORK/www/up/a.bin" || fail "2 MiB upload differs at the backend"
curl -sf -T "$WORK/up.bin" -H 'Transfer-Encoding: chunked' "$url/up/b.bin" -o /dev/null || fail "chunked upload failed"
cmp -s "$WORK/up.bin" "$WORK/www/up/b.bin" || fail "2 MiB chunked upload differs at the backend"
curl -sf -o "$WORK/back.bin" "$url/up/b.bin" && cmp -s "$WORK/back.bin" "$WORK/up.bin" || fail "read-back differs"
echo "ok: 2 MiB upload byte-exact, Content-Length and chunked (with Expect: 100-continue)"

code=$(curl -s -I -o "$WORK/headers" -w '%{http_code}' "$url/big.bin")
[ "$code" = 200 ] && grep -qi '^content-length: 1048576' "$WORK/headers" || fail "HEAD: $code $(cat "$WORK/headers")"
echo "ok: HEAD"

# The keep-alive race: nginx closes idle connections after 1 s; ask 1.2 s apart.
for i in 1 2 3 4; do
    sleep 1.2
    code=$(curl -s -o /dev/null -w '%{http_code}' "$url/big.bin?race=$i")
    [ "$code" = 200 ] || fail "request $i after nginx's keepalive_timeout got $code"
done
echo "ok: nginx keepalive_timeout 1s, requests 1.2 s apart: 4/4 succeeded"

stop_proxy

# Reuse: 100 client connections x 5 requests (curl reuses its connection for the URLs it is
# given), 10 clients at a time, through a proxy in front of the 60 s keep-alive server.
cp "$WORK/up.bin" "$WORK/www/up/a.bin"
start_proxy "$cli" --mode http --listen 127.0.0.1:0 --backend "127.0.0.1:$rport" --workers 2 \
    --pool-max "$POOL_MAX" --pool-idle-timeout 30s
url="http://127.0.0.1:$PROXY_PORT"
before=$(wc -l <"$WORK/access.log")
n=0
while [ $n -lt 100 ]; do
    for k in 0 1 2 3 4 5 6 7 8 9; do
        c=$((n + k))
        curl -sf -o /dev/null -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
            "$url/up/a.bin?c=$c&r=1" "$url/up/a.bin?c=$c&r=2" "$url/up/a.bin?c=$c&r=3" \
            "$url/up/a.bin?c=$c&r=4" "$url/up/a.bin?c=$c&r=5" &
        eval "p$k=$!"
    done
    for k in 0 1 2 3 4 5 6 7 8 9; do eval "wait \$p$k" || fail "a reuse client failed"; done
    n=$((n + 10))
done
tail -n +"$((before + 1))" "$WORK/access.log" | grep ' GET /up/a.bin?c=' >"$WORK/reuse.log" ||
    fail "nginx logged none of the reuse requests"
# grep -c prints 0 when nothing matches (and exits 1): the count is read, and checked, either way.
reqs=$(grep -c ' 200$' "$WORK/reuse.log" || true)
conns=$(awk '{print $1}' "$WORK/reuse.log" | sort -u | wc -l)
[ "$reqs" -eq 500 ] || fail "nginx logged $reqs of 500 requests with 200"
[ "$conns" -le "$POOL_MAX" ] || fail "500 requests used $conns backend connections (pool_max $POOL_MAX)"
echo "ok: 100 client connections x 5 requests = 500 requests over $conns nginx connections (pool_max $POOL_MAX)"
stop_proxy
echo "ok: http mode with curl and nginx"
