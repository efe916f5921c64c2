#!/bin/sh
# Side-by-side proxy benchmark on loopback, in one run: direct backend; in http mode
# poolproxy, HAProxy (http-reuse always) and nginx (upstream keepalive); in tcp mode poolproxy,
# HAProxy (mode tcp) and nginx stream. Each proxy runs alone with one worker pinned to CPU 0;
# the client (wrk) and the nginx backend (a 120-byte response) share CPU 1. Rounds are
# interleaved and the medians reported: req/s, p50/p99 latency, proxy CPU microseconds per
# request (utime+stime of the proxy over the run / requests) and the backend connections the
# proxy used. Not a test: numbers, for docs/BENCHMARKS.md. CHART=FILE.png also draws CPU per
# request and p99 for every target (gnuplot).
#
#   sh bench/http_compare.sh [BUILD_DIR] [SECONDS] [ROUNDS] [CONNECTIONS]
#
# TARGETS picks and orders the targets (default: the seven below, keep-alive). A target named
# NAME-churn is NAME with wrk sending "Connection: close" on every request, so that every
# request is a new client connection. OLD_CLI=PATH adds old-poolproxy and old-poolproxy-tcp,
# the same runs with another build's CLI, for before/after figures in one interleaved run:
#   TARGETS="poolproxy-churn old-poolproxy-churn haproxy-churn nginx-churn" sh bench/http_compare.sh
# Programmable-proxy targets (issue 17): pp-embed and pp-hook-c (bench/hook_proxy.c: the
# library embedded by a C program, without and with a request hook that reads two fields and
# sets one), pp-hook-go and pp-hook-rust (the same hook in Go and Rust, built from the
# bindings), poolproxy-route and haproxy-route (routing by Host over two groups, declaratively:
# poolproxy's route option, HAProxy's use_backend on hdr(host); wrk sends the second group's
# Host). Each is built on first use.
# PROBE=1 measures no speed: per request of each target it counts the proxy's system calls, by
# name (strace -c -f, attached for one wrk run), and its context switches (perf stat, over
# another run without strace), and prints them side by side.
# TLS targets (issue 18): poolproxy-tls, haproxy-tls, nginx-tls: TLS from wrk to the proxy and from the
# proxy to an nginx TLS backend, pooled (append -churn: a new TLS connection per request; -new or
# -reuse: openssl s_time, one connection at a time, with a full or a resumed handshake each).
# Needs: haproxy nginx-light libnginx-mod-stream wrk (Debian; gnuplot-nox for CHART), a built
# poolproxy CLI.
set -eu
cd "$(dirname "$0")/.."
BUILD="${1:-build}"
SECS="${2:-5}"
ROUNDS="${3:-3}"
CONNS="${4:-50}"
CLI="$BUILD/poolproxy"
for t in haproxy nginx wrk taskset; do command -v "$t" >/dev/null || { echo "bench: needs $t"; exit 1; }; done
[ -x "$CLI" ] || { echo "bench: build first ($CLI missing)"; exit 1; }

W=$(mktemp -d /tmp/pp-bench-XXXXXX)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    python3 -c 'import socket,sys,time
for _ in range(200):
    try: socket.create_connection(("127.0.0.1",int(sys.argv[1])),1).close(); sys.exit(0)
    except OSError: time.sleep(0.05)
sys.exit(1)' "$1"
}
BODY=$(python3 -c 'print("x" * 120, end="")')
BE=$(port); BE2=$(port); PP=$(port); HA=$(port); NG=$(port); PT=$(port); HT=$(port); NS=$(port); BT=$(port)
STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$STREAM_MODULE" ] || { echo "bench: needs libnginx-mod-stream ($STREAM_MODULE)"; exit 1; }
mkdir -p "$W/tmp"

cat >"$W/backend.conf" <<CONF
worker_processes 1; daemon off; user root; pid $W/backend.pid; error_log $W/backend-error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  server { listen 127.0.0.1:$BE; listen 127.0.0.1:$BE2; location / { default_type text/plain; return 200 "$BODY"; } }
  server { listen 127.0.0.1:$BT ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem;
           ssl_protocols TLSv1.2 TLSv1.3; location / { default_type text/plain; return 200 "$BODY"; } }
}
CONF
# TLS targets (issue 18): one certificate (RSA 2048) for every listener and the TLS backend;
# backends unverified on every proxy alike (HAProxy's verify none, nginx's default).
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/key.pem" -out "$W/cert.pem" -days 2 -subj /CN=bench \
    -addext subjectAltName=IP:127.0.0.1 2>/dev/null
cat "$W/cert.pem" "$W/key.pem" >"$W/combined.pem"
cat >"$W/nginx-tls.conf" <<CONF
worker_processes 1; daemon off; user root; pid $W/nginx-tls.pid; error_log $W/nginx-tls-error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  ssl_session_cache shared:pp:10m;
  upstream be { server 127.0.0.1:$BT; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$NG ssl; ssl_certificate $W/cert.pem; ssl_certificate_key $W/key.pem; ssl_protocols TLSv1.2 TLSv1.3;
           location / { proxy_pass https://be; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_ssl_session_reuse on; } }
}
CONF
cat >"$W/haproxy-tls.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA ssl crt $W/combined.pem
  default_backend be
backend be
  server s1 127.0.0.1:$BT ssl verify none maxconn 64
CONF
cat >"$W/nginx-proxy.conf" <<CONF
worker_processes 1; daemon off; user root; pid $W/nginx-proxy.pid; error_log $W/nginx-proxy-error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path $W/tmp; proxy_temp_path $W/tmp; fastcgi_temp_path $W/tmp; uwsgi_temp_path $W/tmp; scgi_temp_path $W/tmp;
  upstream be { server 127.0.0.1:$BE; keepalive 64; keepalive_requests 1000000; }
  server { listen 127.0.0.1:$NG; location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
cat >"$W/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA
  default_backend be
backend be
  server s1 127.0.0.1:$BE maxconn 64
CONF

cat >"$W/haproxy-route.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend fe
  bind 127.0.0.1:$HA
  use_backend a if { hdr(host) -i a.example }
  use_backend b if { hdr(host) -i b.example }
  default_backend a
backend a
  server s1 127.0.0.1:$BE maxconn 64
backend b
  server s1 127.0.0.1:$BE2 maxconn 64
CONF

# Embedders with hooks, built once per run (only when a target needs them).
build_embedder() {
    case "$1" in
    c) [ -x "$W/hook_proxy" ] || cc -O2 -o "$W/hook_proxy" bench/hook_proxy.c -Iinclude -L"$BUILD" -lpoolproxy \
           -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lpthread ;;
    go) [ -x "$W/hookbench-go" ] || (cd bindings/go && PKG_CONFIG_PATH="$(cd "../../$BUILD" && pwd)/pkgconfig" \
           go build -o "$W/hookbench-go" ./cmd/hookbench) ;;
    rust) [ -x "$W/hookbench-rust" ] || { (cd bindings/rust && PKG_CONFIG_PATH="$(cd "../../$BUILD" && pwd)/pkgconfig" \
           CARGO_TARGET_DIR="$W/cargo" cargo build -q --release --example hookbench) && cp "$W/cargo/release/examples/hookbench" "$W/hookbench-rust"; } ;;
    esac
}
LIBDIR="$(cd "$BUILD" && pwd)"

cat >"$W/nginx-stream.conf" <<CONF
load_module $STREAM_MODULE;
worker_processes 1; daemon off; user root; pid $W/nginx-stream.pid; error_log $W/nginx-stream-error.log;
events { worker_connections 4096; }
stream { upstream be { server 127.0.0.1:$BE; } server { listen 127.0.0.1:$NS; proxy_pass be; } }
CONF
cat >"$W/haproxy-tcp.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend fe
  bind 127.0.0.1:$HT
  default_backend be
backend be
  server s1 127.0.0.1:$BE
CONF

taskset -c 1 nginx -c "$W/backend.conf" -e "$W/backend-error.log" & PIDS="$PIDS $!"
wait_port "$BE"

# start NAME: the proxy alone on CPU 0; echoes its pid.
start() {
    cli="$CLI"
    case "$1" in old-*) cli="${OLD_CLI:?OLD_CLI names the old build's CLI}" ;; esac
    case "${1#old-}" in
    poolproxy) taskset -c 0 "$cli" --mode http --listen "127.0.0.1:$PP" --backend "127.0.0.1:$BE" --workers 1 \
                   --pool-max 64 --add-forwarded off --via off >/dev/null 2>&1 & p=$!; pt=$PP ;;
    haproxy) taskset -c 0 haproxy -f "$W/haproxy.cfg" -db >/dev/null 2>&1 & p=$!; pt=$HA ;;
    poolproxy-tls) taskset -c 0 "$cli" --mode http --listen "127.0.0.1:$PP" --backend "127.0.0.1:$BT" --workers 1 \
                   --pool-max 64 --add-forwarded off --via off --tls-cert "$W/cert.pem,key=$W/key.pem" \
                   --backend-tls on --backend-tls-verify off >/dev/null 2>&1 & p=$!; pt=$PP ;;
    haproxy-tls) taskset -c 0 haproxy -f "$W/haproxy-tls.cfg" -db >/dev/null 2>&1 & p=$!; pt=$HA ;;
    nginx-tls) taskset -c 0 nginx -c "$W/nginx-tls.conf" -e "$W/nginx-tls-error.log" >/dev/null 2>&1 & p=$!; pt=$NG ;;
    nginx) taskset -c 0 nginx -c "$W/nginx-proxy.conf" -e "$W/nginx-proxy-error.log" >/dev/null 2>&1 & p=$!; pt=$NG ;;
    poolproxy-tcp) taskset -c 0 "$cli" --mode tcp --listen "127.0.0.1:$PT" --backend "127.0.0.1:$BE" --workers 1 \
                   --pool-max 64 >/dev/null 2>&1 & p=$!; pt=$PT ;;
    haproxy-tcp) taskset -c 0 haproxy -f "$W/haproxy-tcp.cfg" -db >/dev/null 2>&1 & p=$!; pt=$HT ;;
    nginx-stream) taskset -c 0 nginx -c "$W/nginx-stream.conf" -e "$W/nginx-stream-error.log" >/dev/null 2>&1 & p=$!; pt=$NS ;;
    poolproxy-route) taskset -c 0 "$cli" --mode http --listen "127.0.0.1:$PP" --workers 1 --pool-max 64 \
                   --add-forwarded off --via off --backend "127.0.0.1:$BE,group=a" --backend "127.0.0.1:$BE2,group=b" \
                   --route "host=a.example -> a" --route "host=b.example -> b" --route "-> a" >/dev/null 2>&1 & p=$!; pt=$PP ;;
    haproxy-route) taskset -c 0 haproxy -f "$W/haproxy-route.cfg" -db >/dev/null 2>&1 & p=$!; pt=$HA ;;
    pp-embed) build_embedder c >&2; taskset -c 0 "$W/hook_proxy" "$PP" "127.0.0.1:$BE" none >/dev/null 2>&1 & p=$!; pt=$PP ;;
    pp-hook-c) build_embedder c >&2; taskset -c 0 "$W/hook_proxy" "$PP" "127.0.0.1:$BE" c >/dev/null 2>&1 & p=$!; pt=$PP ;;
    pp-hook-go) build_embedder go >&2; LD_LIBRARY_PATH="$LIBDIR" taskset -c 0 "$W/hookbench-go" "$PP" "127.0.0.1:$BE" \
                   >/dev/null 2>&1 & p=$!; pt=$PP ;;
    pp-hook-rust) build_embedder rust >&2; LD_LIBRARY_PATH="$LIBDIR" taskset -c 0 "$W/hookbench-rust" "$PP" \
                   "127.0.0.1:$BE" >/dev/null 2>&1 & p=$!; pt=$PP ;;
    esac
    wait_port "$pt"
    echo "$p $pt"
}
# cpu_ticks PID...: "utime stime" of the processes (nginx: master and its worker), in ticks.
cpu_ticks() {
    u=0; k=0
    for p in "$@"; do
        for q in $p $(pgrep -P "$p" || true); do
            set -- $(awk '{print $14, $15}' "/proc/$q/stat")
            u=$((u + $1)); k=$((k + $2))
        done
    done
    echo "$u $k"
}
backend_conns() { ss -Htn state established "( dport = :$BE or dport = :$BE2 or dport = :$BT )" | wc -l; }
HZ=$(getconf CLK_TCK)

# A TLS target with -new or -reuse: openssl s_time instead of wrk, one connection at a time, each
# a handshake (full with -new, resumed with -reuse) and one GET; "rps" is connections per second.
run_stime() {  # run_stime NAME BASE FLAG
    set -- "$1" "$2" "$3" $(start "$2"); name=$1; flag=$3; pid=$4; pt=$5
    taskset -c 1 openssl s_time -connect "127.0.0.1:$pt" -www / "$flag" -time 1 >/dev/null 2>&1 || true  # warm up
    before=$(cpu_ticks "$pid")
    taskset -c 1 openssl s_time -connect "127.0.0.1:$pt" -www / "$flag" -time "$SECS" >"$W/stime.out" 2>&1 || true
    after=$(cpu_ticks "$pid")
    bconns=$(backend_conns)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$name" "$W/stime.out" "$before" "$after" "$HZ" "$bconns" <<'PY'
import re, sys
name, path, hz, bconns = sys.argv[1], sys.argv[2], int(sys.argv[5]), sys.argv[6]
before, after = [int(x) for x in sys.argv[3].split()], [int(x) for x in sys.argv[4].split()]
out = open(path).read()
m = re.findall(r"(\d+) connections in (\d+) real seconds", out)
if not m:
    sys.exit("bench: cannot read openssl s_time's output for %s:\n%s" % (name, out))
conns, secs = int(m[-1][0]), int(m[-1][1])
user = (after[0] - before[0]) * 1e6 / hz / conns
syst = (after[1] - before[1]) * 1e6 / hz / conns
print(name, round(conns / max(secs, 1)), 0, 0, round(user + syst, 2), bconns, 0, round(user, 2), round(syst, 2))
PY
}

run() {  # run NAME -> one line: name rps p50_us p99_us cpu_us_per_req backend_conns non2xx user_us sys_us
    name="$1"
    case "$name" in
    *-tls-new) run_stime "$name" "${name%-new}" -new; return ;;
    *-tls-reuse) run_stime "$name" "${name%-reuse}" -reuse; return ;;
    esac
    base="${name%-churn}"
    close=""; [ "$base" != "$name" ] && close="Connection: close"
    host=""; case "$base" in *-route) host="Host: b.example" ;; esac
    scheme=http; case "$base" in *-tls) scheme=https ;; esac
    if [ "$base" = direct ]; then pid=""; pt=$BE; else set -- $(start "$base"); pid=$1; pt=$2; fi
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s ${close:+-H "$close"} ${host:+-H "$host"} "$scheme://127.0.0.1:$pt/" >/dev/null 2>&1  # warm up
    before="0 0"; [ -n "$pid" ] && before=$(cpu_ticks "$pid")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency ${close:+-H "$close"} ${host:+-H "$host"} "$scheme://127.0.0.1:$pt/" >"$W/wrk.out" 2>&1
    after="0 0"; [ -n "$pid" ] && after=$(cpu_ticks "$pid")
    bconns=$(backend_conns)
    [ -n "$pid" ] && { kill "$pid"; wait "$pid" 2>/dev/null || true; }
    python3 - "$name" "$W/wrk.out" "$before" "$after" "$HZ" "$bconns" <<'PY'
import re, sys
name, path, hz, bconns = sys.argv[1], sys.argv[2], int(sys.argv[5]), sys.argv[6]
before, after = [int(x) for x in sys.argv[3].split()], [int(x) for x in sys.argv[4].split()]
out = open(path).read()
def us(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        sys.exit("bench: cannot read a latency from wrk's output for %s:\n%s" % (name, out))
    return float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6, "m": 6e7}[m.group(2)]
reqs = int(re.search(r"(\d+) requests in", out).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
user = (after[0] - before[0]) * 1e6 / hz / reqs
syst = (after[1] - before[1]) * 1e6 / hz / reqs
print(name, round(rps), round(p50), round(p99), round(user + syst, 2), bconns, errs.group(1) if errs else 0,
      round(user, 2), round(syst, 2))
PY
}

# probe NAME -> "NAME requests ctxsw" and the strace -c table in $W/strace-NAME.txt
probe() {
    name="$1"; base="${name%-churn}"
    close=""; [ "$base" != "$name" ] && close="Connection: close"
    set -- $(start "$base"); pid=$1; pt=$2
    pids=$(echo "$pid" $(pgrep -P "$pid" || true) | tr ' ' ',')
    taskset -c 1 wrk -t1 -c"$CONNS" -d1s ${close:+-H "$close"} "http://127.0.0.1:$pt/" >/dev/null 2>&1  # warm up
    perf stat -x, -e context-switches -p "$pids" -o "$W/perf.out" &
    perf_pid=$!
    sleep 0.3
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" ${close:+-H "$close"} "http://127.0.0.1:$pt/" >"$W/wrk.out" 2>&1
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    reqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$W/wrk.out")
    ctx=$(grep context-switches "$W/perf.out" | cut -d, -f1)
    strace_args=""
    for p in $(echo "$pids" | tr ',' ' '); do strace_args="$strace_args -p $p"; done
    strace -c -f -o "$W/strace-$name.txt" $strace_args &
    strace_pid=$!
    sleep 0.5
    taskset -c 1 wrk -t1 -c"$CONNS" -d"${SECS}s" ${close:+-H "$close"} "http://127.0.0.1:$pt/" >"$W/wrk-strace.out" 2>&1
    kill -INT "$strace_pid"; wait "$strace_pid" 2>/dev/null || true
    sreqs=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$W/wrk-strace.out")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$name $reqs $ctx $sreqs"
}

TARGETS="${TARGETS:-direct poolproxy haproxy nginx poolproxy-tcp haproxy-tcp nginx-stream}"
if [ -n "${PROBE:-}" ]; then
    for t in strace perf; do command -v "$t" >/dev/null || { echo "bench: PROBE needs $t"; exit 1; }; done
    echo "# $(date -u +%FT%TZ) $(nproc) CPUs; $SECS s per run, $CONNS connections; system calls and context switches per request" >&2
    for name in $TARGETS; do probe "$name"; done >"$W/probe.txt"
    python3 - "$W" <<'PY'
import os, sys
w = sys.argv[1]
cols, calls = [], {}
for line in open(os.path.join(w, "probe.txt")):
    name, reqs, ctx, sreqs = line.split()
    table = {}
    for row in open(os.path.join(w, "strace-%s.txt" % name)):
        f = row.split()
        # "% time seconds usecs/call calls [errors] syscall"; the total row has no name
        if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
            table[f[-1]] = int(f[3])
    cols.append((name, int(reqs), int(ctx) if ctx.isdigit() else -1, int(sreqs), table))
    for k, v in table.items():
        calls[k] = calls.get(k, 0) + v / max(1, int(sreqs))
names = [c[0] for c in cols]
print("| per request | " + " | ".join(names) + " |")
print("|---" * (len(names) + 1) + "|")
print("| context switches | " + " | ".join("%.2f" % (c[2] / c[1]) if c[1] else "-" for c in cols) + " |")
print("| system calls | " + " | ".join("%.2f" % (sum(c[4].values()) / c[3]) if c[3] else "-" for c in cols) + " |")
for k in sorted(calls, key=lambda k: -calls[k]):
    if calls[k] < 0.05:
        continue
    print("| %s | " % k + " | ".join("%.2f" % (c[4].get(k, 0) / c[3]) if c[3] else "-" for c in cols) + " |")
PY
    exit 0
fi
echo "# $(date -u +%FT%TZ) $(nproc) CPUs; $SECS s x $ROUNDS rounds, $CONNS connections, 120-byte responses" >&2
for r in $(seq "$ROUNDS"); do
    for name in $TARGETS; do run "$name"; done
done >"$W/raw.txt"
cat "$W/raw.txt" >&2
python3 - "$W/raw.txt" "$TARGETS" "${CHART:-}" <<'PY'
import os, statistics, subprocess, sys, tempfile
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], []).append([float(x) for x in f[1:]])
names, chart = sys.argv[2].split(), sys.argv[3]
print("| target | req/s | p50 µs | p99 µs | proxy CPU µs/req | (user + kernel) | backend conns | non-2xx |")
print("|---|---|---|---|---|---|---|---|")
meds = {}
for name in names:
    cols = list(zip(*rows[name]))
    med = meds[name] = [statistics.median(c) for c in cols]
    cpu = "-" if name.startswith("direct") else "%.2f" % med[3]
    split = "-" if name.startswith("direct") else "%.2f + %.2f" % (med[6], med[7])
    print("| %s | %d | %d | %d | %s | %s | %d | %d |" % (name, med[0], med[1], med[2], cpu, split, med[4], med[5]))
if chart:
    proxies = [n for n in names if not n.startswith("direct")]
    dat = tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False)
    for i, n in enumerate(proxies):
        dat.write("%d %s %.2f %.0f\n" % (i, n, meds[n][3], meds[n][2]))
    dat.close()
    gp = ('set terminal pngcairo size 1000,420 font ",10"; set output "%s"; set multiplot layout 1,2;'
          'set style fill solid 0.8; set boxwidth 0.6; set yrange [0:*]; set offsets 0,0,graph 0.12,0; set xtics rotate by -30;'
          'set title "proxy CPU per request (us), lower is better"; unset key;'
          'plot "%s" using 1:3:xtic(2) with boxes lc rgb "#3a7bd5", "" using 1:3:(sprintf("%%.1f",$3)) with labels offset 0,0.7;'
          'set title "p99 latency (us), lower is better";'
          'plot "%s" using 1:4:xtic(2) with boxes lc rgb "#d5803a", "" using 1:4:(sprintf("%%.0f",$4)) with labels offset 0,0.7;'
          'unset multiplot' % (chart, dat.name, dat.name))
    subprocess.run(["gnuplot", "-e", gp], check=True)
    os.unlink(dat.name)
    print("chart: %s" % chart, file=sys.stderr)
PY
