#!/usr/bin/env python3
"""The seed's headline, measured (issue 16, point 4): the time from a client's connect to the
first response byte, with a pooled backend connection against none, in http and tcp mode; and
the share of requests (http) or sessions (tcp) served without a backend connect on the client's
path. Not a test: numbers for docs/BENCHMARKS.md.

One client, one connection at a time (a latency, not a throughput): connect, send one request,
wait for the first response byte, close. The backend is nginx (a 120-byte response), the client
and the proxy (one worker) all run on CPU 1 by default: on this 2-CPU VM a wake-up on the other
CPU costs ~25 µs, four of them per exchange, which would hide the proxy's own work (--proxy-cpu 0
shows that layout). "direct" is the same client against the backend itself: the floor every
proxy adds to.

  http, pooled      pool_max 64: an idle keep-alive connection is reused
  http, no reuse    max_requests_per_conn 1: every request opens a backend connection
  tcp, pre-warmed   pool_min_idle 4: a connection opened ahead of the client is taken
  tcp, no pre-warm  pool_min_idle 0: the backend connect is on the client's path
  with --tls: the same http cases with a TLS backend (backend_tls, unverified: nginx's own
  certificate), where a backend connection costs a TLS handshake too (issue 18)

The proxy's setup time is its time to first byte minus direct's.

  setup_time.py CLI [--connections 3000] [--rounds 3] [--proxy-cpu 1] [--tls]
"""
import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

from benchlib import free_port, nginx_backend, wait_port

REQ = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def stats(admin):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())["proxy"]
    c.close()
    return s


def ttfb(port, n):
    """Microseconds from connect() to the first response byte, for n connections in turn."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(REQ)
        if not s.recv(1):
            raise SystemExit("setup_time: the connection closed before a response byte")
        out.append((time.perf_counter_ns() - t0) / 1000.0)
        while s.recv(65536):  # the rest, up to the proxy's close
            pass
        s.close()
    return out


def run(cli, be, mode, flags, n, cpu):
    port, admin = free_port(), free_port()
    if isinstance(be, tuple):  # (port, extra flags): the TLS backend
        be, more = be
        flags = flags + more
    cmd = ["taskset", "-c", cpu, cli, "--mode", mode, "--listen", "127.0.0.1:%d" % port, "--admin-listen",
           "127.0.0.1:%d" % admin, "--backend", "127.0.0.1:%d" % be, "--workers", "1", "--pool-max", "64"]
    if mode == "http":
        cmd += ["--add-forwarded", "off", "--via", "off"]
    p = subprocess.Popen(cmd + flags, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        wait_port(admin)
        time.sleep(0.3)  # pre-warming, where asked for, is in the background
        ttfb(port, 200)  # warm-up
        s0 = stats(admin)
        t = ttfb(port, n)
        s1 = stats(admin)
    finally:
        p.terminate()
        p.wait(15)
    hits = s1["pool_hits"] - s0["pool_hits"]
    misses = s1["pool_misses"] - s0["pool_misses"]
    return t, hits / max(hits + misses, 1), s1["backend_connects"] - s0["backend_connects"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("--connections", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--proxy-cpu", type=int, default=1)
    ap.add_argument("--tls", action="store_true")
    a = ap.parse_args()
    os.sched_setaffinity(0, {1})
    w = tempfile.mkdtemp(prefix="pp-setup-")
    tls_port = free_port()
    bp, be = nginx_backend(w, "x" * 120, tls_port=tls_port if a.tls else None)
    cases = [("http, pooled", "http", []), ("http, no reuse", "http", ["--max-requests-per-conn", "1"]),
             ("tcp, pre-warmed", "tcp", ["--pool-min-idle", "4"]), ("tcp, no pre-warm", "tcp", ["--pool-min-idle", "0"])]
    if a.tls:
        tb = (tls_port, ["--backend-tls", "on", "--backend-tls-verify", "off"])
        cases = [("http, TLS backend, pooled", "http", [], tb),
                 ("http, TLS backend, no reuse", "http", ["--max-requests-per-conn", "1"], tb)]
    cases = [c if len(c) == 4 else c + (be,) for c in cases]
    res = {"direct": []}
    for label, _, _, _ in cases:
        res[label] = []
    try:
        ttfb(be, 200)
        for _ in range(a.rounds):  # interleaved rounds; medians over them
            res["direct"].append((statistics.median(x := ttfb(be, a.connections)), sorted(x)[len(x) * 99 // 100],
                                  None, None))
            for label, mode, flags, target in cases:
                t, share, opened = run(a.cli, target, mode, flags, a.connections, str(a.proxy_cpu))
                res[label].append((statistics.median(t), sorted(t)[len(t) * 99 // 100], share, opened))
    finally:
        bp.terminate()
        bp.wait(15)
    print("# %s; %d connections x %d rounds, one at a time; medians over rounds"
          % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), a.connections, a.rounds))
    print("| path | connect to first byte, p50 µs | p99 µs | setup (p50 over direct) µs | served without a connect | backend connects |")
    print("|---|---|---|---|---|---|")
    floor = statistics.median(r[0] for r in res["direct"])
    for label in res:
        rows = res[label]
        p50 = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        if label == "direct":
            print("| direct to the backend | %.0f | %.0f | - | - | - |" % (p50, p99))
            continue
        share = statistics.median(r[2] for r in rows)
        opened = statistics.median(r[3] for r in rows)
        print("| %s | %.0f | %.0f | %.0f | %.1f%% | %d |" % (label, p50, p99, p50 - floor, 100 * share, opened))


if __name__ == "__main__":
    main()
