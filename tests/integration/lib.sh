# Shared helpers for the integration scripts (sourced). Every process started is recorded and
# killed by pid on exit; every wait is bounded.
PIDS=""
WORK=$(mktemp -d /tmp/pp-it-XXXXXX)
cleanup() {
    for p in $PIDS; do kill "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    [ -n "${PP_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*"; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_port HOST PORT: until something accepts connections there (bounded: 10 s).
wait_port() {
    python3 -c '
import socket, sys, time
end = time.time() + 10
while time.time() < end:
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
' "$1" "$2" || fail "nothing listens on $1:$2 after 10 s"
}

# roundtrip HOST PORT MESSAGE: connects, sends MESSAGE, half-closes, prints all it reads back.
roundtrip() {
    python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
c.sendall(sys.argv[3].encode()); c.shutdown(socket.SHUT_WR)
out = b""
while True:
    d = c.recv(1000)
    if not d: break
    out += d
print(out.decode())
' "$1" "$2" "$3"
}

# start_proxy CLI ARGS... : starts the CLI in the background, waits for "listening on", sets
# PROXY_PID and PROXY_PORT.
start_proxy() {
    cli="$1"; shift
    # Remove the last run's output first: the child's redirect truncates only once it runs, and
    # the wait below must not read a stale "listening on" line.
    rm -f "$WORK/proxy.out" "$WORK/proxy.err"
    "$cli" "$@" >"$WORK/proxy.out" 2>"$WORK/proxy.err" &
    PROXY_PID=$!
    PIDS="$PIDS $PROXY_PID"
    i=0
    while ! grep -q '^listening on ' "$WORK/proxy.out" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 200 ] || { cat "$WORK/proxy.err"; fail "proxy did not print 'listening on' within 10 s"; }
        kill -0 "$PROXY_PID" 2>/dev/null || { cat "$WORK/proxy.err"; fail "proxy exited early"; }
        sleep 0.05
    done
    PROXY_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$WORK/proxy.out")
}

# stop_proxy: SIGTERM, then wait (bounded) for a clean exit 0.
stop_proxy() {
    kill -TERM "$PROXY_PID"
    i=0
    while kill -0 "$PROXY_PID" 2>/dev/null; do
        i=$((i + 1))
        [ $i -le 300 ] || fail "proxy did not exit within 15 s of SIGTERM"
        sleep 0.05
    done
    wait "$PROXY_PID" || fail "proxy exited with status $?"
}
