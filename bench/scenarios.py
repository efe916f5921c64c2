#!/usr/bin/env python3
"""Two scenarios of issue 9 beside bench/http_compare.sh, on loopback with wrk and an nginx
backend (a 120-byte response). Not a test: numbers for docs/BENCHMARKS.md.

churn    clients that send Connection: close on every request (a new client connection per
         request), pooled (pool_max 64) vs no reuse (max_requests_per_conn 1: here pool_max 0
         means no cap, not no pooling): req/s, p99 and backend
         connections opened per 1,000 requests. The proxy is pinned alone on CPU 0; wrk and the
         backend share CPU 1.
balance  2 workers under skewed traffic at once: 4 long-lived busy keep-alive clients and 64
         short ones (Connection: close). It reports each worker's share of sessions, requests and
         CPU (its thread's utime+stime), and the busiest/least busy ratios. Then overload:
         max_connections 32 against 200 concurrent clients, counting what is rejected.

  scenarios.py CLI [--seconds 5]
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import tempfile
import time

from benchlib import free_port, nginx_backend, wait_port

BODY = "x" * 120






def stats(admin):
    c = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())
    c.close()
    return s


def wrk(port, secs, conns, close=False, cpu="1"):
    cmd = ["taskset", "-c", cpu, "wrk", "-t1", "-c%d" % conns, "-d%ds" % secs, "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    return subprocess.Popen(cmd + ["http://127.0.0.1:%d/" % port], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def parse_wrk(out):
    def us(v):
        m = re.match(r"([\d.]+)(us|ms|s)$", v)
        return float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]
    reqs = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return reqs, rps, p99, errors


class Proxy:
    def __init__(self, cli, backend, *flags, cpu=None):
        self.port, self.admin = free_port(), free_port()
        cmd = ([] if cpu is None else ["taskset", "-c", cpu]) + [
            cli, "--mode", "http", "--listen", "127.0.0.1:%d" % self.port, "--admin-listen",
            "127.0.0.1:%d" % self.admin, "--backend", "127.0.0.1:%d" % backend, "--add-forwarded", "off",
            "--via", "off"] + list(flags)
        self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        wait_port(self.admin)

    def thread_cpu(self):
        """{thread name: utime+stime seconds}"""
        hz = os.sysconf("SC_CLK_TCK")
        out = {}
        for tid in os.listdir("/proc/%d/task" % self.p.pid):
            try:
                name = open("/proc/%d/task/%s/comm" % (self.p.pid, tid)).read().strip()
                f = open("/proc/%d/task/%s/stat" % (self.p.pid, tid)).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[name] = out.get(name, 0) + (int(f[11]) + int(f[12])) / hz
        return out

    def stop(self):
        self.p.terminate()
        self.p.wait(15)


def churn(cli, be, secs):
    print("## churn: Connection: close on every request, 50 clients, %d s" % secs)
    print("| proxy | req/s | p99 µs | backend conns opened | per 1,000 requests | per 1,000 client conns | wrk errors |")
    print("|---|---|---|---|---|---|---|")
    for label, flags in (("poolproxy, pooled (pool_max 64)", ["--pool-max", "64"]),
                         ("poolproxy, no reuse (max_requests_per_conn 1)", ["--pool-max", "64",
                                                                          "--max-requests-per-conn", "1"])):
        px = Proxy(cli, be, "--workers", "1", *flags, cpu="0")
        wrk(px.port, 1, 50, close=True).communicate()  # warm-up
        s0 = stats(px.admin)["proxy"]
        out = wrk(px.port, secs, 50, close=True).communicate()[0]
        s1 = stats(px.admin)["proxy"]
        px.stop()
        reqs, rps, p99, errors = parse_wrk(out)
        opened = s1["backend_connects"] - s0["backend_connects"]
        served = s1["requests"] - s0["requests"]
        accepted = s1["connections_accepted"] - s0["connections_accepted"]
        print("| %s | %d | %d | %d | %.2f | %.2f | %d |" % (label, rps, p99, opened, 1000.0 * opened / max(served, 1),
                                                          1000.0 * opened / max(accepted, 1), errors))
    print()


def balance(cli, be, secs):
    print("## balance: 2 workers, 4 busy keep-alive clients and 64 short ones at once, %d s" % secs)
    px = Proxy(cli, be, "--workers", "2", "--pool-max", "64", "--max-connections", "4096")
    workers0 = stats(px.admin)["workers"]
    cpu0 = px.thread_cpu()
    busy = wrk(px.port, secs, 4, cpu="0,1")
    short = wrk(px.port, secs, 64, close=True, cpu="0,1")
    busy_out, short_out = busy.communicate()[0], short.communicate()[0]
    cpu1 = px.thread_cpu()
    workers1 = stats(px.admin)["workers"]
    px.stop()
    print("| worker | sessions | requests | CPU s |")
    print("|---|---|---|---|")
    sess, reqs, cpus = [], [], []
    for i, (a, b) in enumerate(zip(workers0, workers1)):
        sess.append(b["sessions_started"] - a["sessions_started"])
        reqs.append(b["requests"] - a["requests"])
        name = "pp-worker-%d" % i
        cpus.append(cpu1.get(name, 0) - cpu0.get(name, 0))
        print("| %d | %d | %d | %.2f |" % (i, sess[-1], reqs[-1], cpus[-1]))
    print("\nbusiest / least busy: sessions %.2f, requests %.2f, CPU %.2f (1.00 is perfect balance)" %
          (max(sess) / max(min(sess), 1), max(reqs) / max(min(reqs), 1), max(cpus) / max(min(cpus), 0.01)))
    for label, out in (("busy keep-alive", busy_out), ("short", short_out)):
        r, rps, p99, errors = parse_wrk(out)
        print("%s clients: %d req/s, p99 %d µs, %d wrk errors" % (label, rps, p99, errors))

    print("\n## overload: max_connections 32 against 200 concurrent keep-alive clients, %d s" % secs)
    px = Proxy(cli, be, "--workers", "2", "--pool-max", "64", "--max-connections", "32")
    out = wrk(px.port, secs, 200, cpu="0,1").communicate()[0]
    s = stats(px.admin)["proxy"]
    px.stop()
    r, rps, p99, errors = parse_wrk(out)
    print("served %d req/s to the admitted clients (p99 %d µs); rejected at once: %d at max_connections, %d overflow "
          "full; wrk saw %d connect/read errors" % (rps, p99, s["connections_rejected_max"],
                                                    s["connections_rejected_overflow"], errors))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("--seconds", type=int, default=5)
    a = ap.parse_args()
    w = tempfile.mkdtemp(prefix="pp-scen-")
    backend, be = nginx_backend(w, BODY)
    try:
        print("# %s, %d CPUs, nginx backend with a 120-byte body\n" % (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                                                     os.cpu_count()))
        churn(a.cli, be, a.seconds)
        balance(a.cli, be, a.seconds)
    finally:
        backend.terminate()
        backend.wait(10)


if __name__ == "__main__":
    main()
