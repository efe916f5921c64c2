#!/bin/sh
# The CLI: --help lists every option with its default, bad flags and values fail with a message
# naming them, a config file works, it prints exactly one "listening on" line, relays traffic,
# and SIGTERM stops it cleanly.
set -eu
. "$(dirname "$0")/lib.sh"
cli="$1"

"$cli" --help >"$WORK/help"
for opt in mode listen backend workers max-connections lb pool-max pool-min-idle pool-idle-timeout \
           max-conn-lifetime queue-max queue-timeout connect-timeout idle-timeout; do
    grep -q -- "--$opt " "$WORK/help" || fail "--help does not list --$opt"
done
grep -q -- '--pool-max N .*\[default: 64\]' "$WORK/help" || fail "--help does not show pool_max's default"
version=$("$cli" --version) || fail "--version exited with status $?"
echo "$version" | grep -q '^poolproxy [0-9]' || fail "--version printed '$version'"
"$cli" --options-markdown >"$WORK/OPTIONS.md"
diff -u "$(dirname "$0")/../../docs/OPTIONS.md" "$WORK/OPTIONS.md" ||
    fail "docs/OPTIONS.md is stale: regenerate with poolproxy --options-markdown > docs/OPTIONS.md"

if "$cli" --workers abc --backend 127.0.0.1:1 2>"$WORK/err"; then fail "--workers abc accepted"; fi
grep -q "option 'workers': expected an integer" "$WORK/err" || fail "bad value message: $(cat "$WORK/err")"
if "$cli" --no-such-flag 1 2>"$WORK/err"; then fail "unknown flag accepted"; fi
grep -q "unknown flag '--no-such-flag'" "$WORK/err" || fail "unknown flag message"
if "$cli" --listen 127.0.0.1:0 2>"$WORK/err"; then fail "started without a backend"; fi
grep -q "no backend configured" "$WORK/err" || fail "no-backend message: $(cat "$WORK/err")"
# A start that fails part-way (too few descriptors for 8 workers' loops) exits 1 naming the
# cause, at any point it fails: never a crash.
for n in 8 12 16 20 24 28 32 36; do
    rc=0
    (ulimit -n $n && exec timeout 20 "$cli" --listen 127.0.0.1:0 --workers 8 --backend 127.0.0.1:1 \
        --health-check tcp --admin-listen 127.0.0.1:0) >/dev/null 2>"$WORK/err" || rc=$?
    [ "$rc" -eq 1 ] || fail "ulimit -n $n: exit status $rc, not 1: $(tail -n 3 "$WORK/err")"
    grep -q "poolproxy: .*: too many open files" "$WORK/err" || fail "ulimit -n $n: no cause given: $(cat "$WORK/err")"
    ! grep -q "runtime error" "$WORK/err" || fail "ulimit -n $n: $(grep -A3 'runtime error' "$WORK/err")"
done
if "$cli" --queue-timeout 5parsecs --backend 127.0.0.1:1 2>"$WORK/err"; then fail "bad duration accepted"; fi
grep -q "option 'queue_timeout'" "$WORK/err" || fail "bad duration message"

# A python echo backend; the proxy configured from a file plus a flag that overrides it.
bport=$(free_port)
python3 -c '
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' "$bport" &
PIDS="$PIDS $!"
wait_port 127.0.0.1 "$bport"
cat >"$WORK/pp.conf" <<CONF
# test config
listen = 127.0.0.1:0
workers = 1
backend = 127.0.0.1:$bport
pool_min_idle = 1
CONF
start_proxy "$cli" --config "$WORK/pp.conf" --workers 2 --pool-max 4 --log-level info
[ "$(grep -c '' "$WORK/proxy.out")" -eq 1 ] || fail "stdout is not exactly one line"
grep -q "with 2 worker(s)" "$WORK/proxy.err" || fail "--workers 2 did not override the file: $(cat "$WORK/proxy.err")"
reply=$(roundtrip 127.0.0.1 "$PROXY_PORT" "ping over the cli")
[ "$reply" = "ping over the cli" ] || fail "relay: got '$reply'"
stop_proxy
grep -q "SIGTERM received, draining" "$WORK/proxy.err" || fail "no drain message on SIGTERM"

# A short health_interval alone is enough: health_timeout follows it down (HAProxy's timeout
# check), and the checks run (the echo backend answers no HTTP, so it is marked unhealthy fast).
start_proxy "$cli" --listen 127.0.0.1:0 --backend "127.0.0.1:$bport" --workers 1 --mode http \
    --health-check http --health-interval 200ms --log-level info
i=0
until grep -q "backend 127.0.0.1:$bport is unhealthy" "$WORK/proxy.err"; do
    i=$((i + 1))
    [ $i -le 200 ] || fail "no health check verdict with --health-interval 200ms: $(cat "$WORK/proxy.err")"
    sleep 0.05
done
stop_proxy
# An explicit health_timeout longer than the interval is still refused, naming both.
if "$cli" --backend 127.0.0.1:1 --health-check tcp --health-interval 200ms --health-timeout 1s 2>"$WORK/err"; then
    fail "health_timeout 1s above health_interval 200ms accepted"
fi
grep -q "option 'health_timeout' (1000ms) must not exceed 'health_interval' (200ms)" "$WORK/err" ||
    fail "health_timeout message: $(cat "$WORK/err")"
# Either order of the flags, and a config file's order, give the same result.
if "$cli" --backend 127.0.0.1:1 --health-check tcp --health-timeout 1s --health-interval 200ms 2>"$WORK/err"; then
    fail "health_timeout 1s (given first) above health_interval 200ms accepted"
fi
grep -q "option 'health_timeout' (1000ms)" "$WORK/err" || fail "health_timeout message: $(cat "$WORK/err")"

# IPv6 end to end: listen on [::1], backend on [::1].
if python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0))' 2>/dev/null; then
    v6port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET6); s.bind(("::1",0)); print(s.getsockname()[1])')
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept()
    try:
        d = c.recv(100)
        if d: c.sendall(b"v6:" + d)
    except OSError:
        pass
    c.close()
' "$v6port" &
    PIDS="$PIDS $!"
    wait_port ::1 "$v6port"
    start_proxy "$cli" --listen '[::1]:0' --backend "[::1]:$v6port" --workers 1
    grep -q '^listening on \[::1\]:' "$WORK/proxy.out" || fail "v6 listen line: $(cat "$WORK/proxy.out")"
    reply=$(roundtrip ::1 "$PROXY_PORT" hello)
    [ "$reply" = "v6:hello" ] || fail "IPv6 relay: got '$reply'"
    stop_proxy
    echo "ok: IPv6 listen and backend"
else
    echo "note: no IPv6 loopback here; IPv6 relay not exercised"
fi
echo "ok: CLI help, validation, config file, one listening line, relay, SIGTERM"
