#!/usr/bin/env python3
"""Fair waiting under saturation (issue 21): many more keep-alive clients than pooled backend
connections, so most requests wait in the queue. With first-come-first-served waiting every
request waits about as long as the others, and p99 stays close to the median; when late
arrivals can take a just-released connection, the unlucky ones wait much longer.

Setup (the issue's): loopback; one nginx backend (1 worker, a 120-byte answer); wrk with
CLIENTS keep-alive connections for SECONDS; poolproxy in http mode with pool_max 32,
queue_max 4000, queue_timeout 10s, 1 and 2 workers; HAProxy 2.6 (when installed) with
`server ... maxconn 32` and its queue (`timeout queue 10s`, `http-reuse always`), 1 thread.
wrk's own timeout is raised to 15 s so that a queued request is measured, not dropped.
Reports, per target: req/s, median and p99 latency, p99/median, and errors (wrk's socket
errors and non-2xx answers); on stderr, per run, the proxy's and the backend's CPU time per
request and their wake-ups (voluntary context switches) per request. Not a test: numbers for docs/BENCHMARKS.md, taken on a quiet
machine.

    python3 bench/fair_queue.py [--build build] [--seconds 8] [--clients 4000] [--rounds 1]
                                [--targets poolproxy-1w,poolproxy-2w,haproxy]
A target poolproxy-Nw@DIR runs the CLI of build tree DIR, so that rounds interleave two builds:
    --targets poolproxy-1w@/path/to/old/build,poolproxy-1w --rounds 5
Needs: wrk, nginx (nginx-light), haproxy for its row (Debian bookworm: haproxy 2.6).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

POOL_MAX = 32


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, limit=10):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def us(v):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", v)
    if not m:
        raise ValueError("cannot read a latency: %r" % v)
    return float(m.group(1)) * {"us": 1, "ms": 1000, "s": 1e6, "m": 6e7}[m.group(2)]


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(x) for x in m.groups())
        print("#   socket errors: %s" % m.group(0), file=sys.stderr)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
        print("#   %s" % m.group(0), file=sys.stderr)
    return rps, p50, p99, errors


def proc_cost(pid):
    """CPU time (s, all threads) and voluntary context switches (all threads) of a process."""
    try:
        f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        cpu = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        vcs = 0
        for t in os.listdir("/proc/%d/task" % pid):
            for line in open("/proc/%d/task/%s/status" % (pid, t)):
                if line.startswith("voluntary_ctxt_switches:"):
                    vcs += int(line.split()[1])
        return cpu, vcs
    except (OSError, IndexError, ValueError):
        return None


def children(pid):
    try:
        return [int(x) for x in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except (OSError, ValueError):
        return []


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="pp-fairq-bench-")
        self.procs = []
        self.backend = free_port()

    def spawn(self, argv, name):
        log = open(os.path.join(self.work, re.sub(r"[^\w.-]", "_", name) + ".log"), "w")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)

    def cleanup(self):
        for p in list(self.procs):
            self.stop(p)
        shutil.rmtree(self.work, ignore_errors=True)

    def start_backend(self):
        w, tmp = self.work, os.path.join(self.work, "tmp")
        os.makedirs(tmp, exist_ok=True)
        conf = os.path.join(w, "backend.conf")
        with open(conf, "w") as f:
            f.write("""worker_processes 1; daemon off; pid %(w)s/backend.pid; error_log %(w)s/backend-error.log;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 1000000; keepalive_timeout 60s;
  client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s; uwsgi_temp_path %(t)s; scgi_temp_path %(t)s;
  server { listen 127.0.0.1:%(p)d; location / { default_type text/plain; return 200 "%(b)s"; } }
}
""" % {"w": w, "t": tmp, "p": self.backend, "b": "x" * 120})
        argv = ["nginx", "-c", conf, "-p", w, "-e", os.path.join(w, "backend-error.log")]
        if os.geteuid() == 0:
            argv[1:1] = ["-g", "user root;"]
        self.backend_proc = self.spawn(argv, "backend")
        if not wait_port(self.backend):
            sys.exit("bench: the nginx backend did not start (see %s)" % os.path.join(w, "backend-error.log"))

    def start_target(self, name):
        port = free_port()
        self.admin = None
        if name.startswith("poolproxy-"):
            self.admin = free_port()
            # "poolproxy-1w@DIR": that build tree's CLI, to interleave two builds in one run
            base, _, build = name.partition("@")
            workers = base.split("-")[1].rstrip("w")
            cli = os.path.join(build or self.args.build, "poolproxy")
            p = self.spawn([cli, "--mode", "http", "--listen", "127.0.0.1:%d" % port, "--workers", workers,
                            "--backend", "127.0.0.1:%d" % self.backend, "--pool-max", str(POOL_MAX),
                            "--queue-max", "4000", "--queue-timeout", "10s", "--add-forwarded", "off",
                            "--via", "off", "--log-level", "warn",
                            "--admin-listen", "127.0.0.1:%d" % self.admin], name)
        elif name.startswith("haproxy"):
            threads = 2 if name.endswith("-2t") else 1
            cfg = os.path.join(self.work, name + ".cfg")
            # maxconn: HAProxy raises its fd limit to about twice this; 9000 fits a 20000 limit.
            with open(cfg, "w") as f:
                f.write("""global
  nbthread %d
  maxconn 9000
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout queue 10s
  http-reuse always
frontend fe
  bind 127.0.0.1:%d
  default_backend be
backend be
  server s1 127.0.0.1:%d maxconn %d
""" % (threads, port, self.backend, POOL_MAX))
            p = self.spawn(["haproxy", "-db", "-f", cfg], name)
        else:
            sys.exit("bench: unknown target %s" % name)
        if not wait_port(port):
            sys.exit("bench: %s did not start (see %s)" % (name, os.path.join(self.work, re.sub(r"[^\w.-]", "_", name) + ".log")))
        return p, port

    def wrk(self, port, seconds):
        argv = ["wrk", "-t2", "-c%d" % self.args.clients, "-d%ds" % seconds, "--timeout", "15s", "--latency",
                "http://127.0.0.1:%d/" % port]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
        return r.stdout + r.stderr

    def queue_wait(self):
        if not self.admin:
            return None
        try:
            import http.client
            import json
            c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
            c.request("GET", "/stats")
            st = json.loads(c.getresponse().read())
            c.close()
            q = st["latency_us"]["queue_wait"]
            return (q["count"], q["p50"], q["p99"], st["proxy"]["queue_timeouts"], st["proxy"]["queue_full"],
                    st["proxy"]["queue_waiting"])
        except (OSError, ValueError, KeyError):
            return None

    def run(self, name):
        p, port = self.start_target(name)
        try:
            self.wrk(port, 1)  # warm up: connections open, pools full
            # The warm-up's requests still queued (their clients gone) must not fill the queue
            # for the measured run: wait until they are served (bounded), or a second.
            deadline = time.time() + 15
            while time.time() < deadline:
                q = self.queue_wait()
                if not q or q[5] == 0:
                    break
                time.sleep(0.1)
            if not self.admin:
                time.sleep(1)
            before = self.queue_wait()
            # CPU per request of the proxy and of the backend, and the backend's wake-ups per
            # request (voluntary context switches): steadier than req/s on a shared machine.
            watched = [("proxy", p.pid)] + [("backend", c) for c in children(self.backend_proc.pid)]
            cost0 = [proc_cost(pid) for _, pid in watched]
            out = self.wrk(port, self.args.seconds)
            cost1 = [proc_cost(pid) for _, pid in watched]
            after = self.queue_wait()
            m = re.search(r"(\d+) requests in", out)
            if m and int(m.group(1)) > 0:
                n = int(m.group(1))
                parts = ["%s %.1f us cpu, %.3f wake-ups" % (what, (c1[0] - c0[0]) * 1e6 / n, (c1[1] - c0[1]) / n)
                         for (what, _), c0, c1 in zip(watched, cost0, cost1) if c0 and c1]
                print("#   %s per request: %s" % (name, "; ".join(parts)), file=sys.stderr)
            if before and after:  # the proxy's own view: its queue-wait histogram (cumulative)
                print("#   %s queue wait (since start): count %d p50 %.1f ms p99 %.1f ms; queue timeouts %d, "
                      "queue full %d" % (name, after[0], after[1] / 1000, after[2] / 1000, after[3], after[4]),
                      file=sys.stderr)
        finally:
            self.stop(p)
        try:
            return parse_wrk(out)
        except (AttributeError, ValueError):
            sys.exit("bench: cannot read wrk's output for %s:\n%s" % (name, out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--clients", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--targets", default="poolproxy-1w,poolproxy-2w,haproxy")
    args = ap.parse_args()
    args.seconds = max(1, min(args.seconds, 120))  # every load loop bounded
    args.rounds = max(1, min(args.rounds, 10))
    for tool in ("wrk", "nginx"):
        if not shutil.which(tool):
            sys.exit("bench: needs %s" % tool)
    targets = [t for t in args.targets.split(",") if t]
    if not shutil.which("haproxy"):
        skipped = [t for t in targets if t.startswith("haproxy")]
        if skipped:
            print("# haproxy not installed: skipping %s" % ", ".join(skipped), file=sys.stderr)
        targets = [t for t in targets if not t.startswith("haproxy")]
    for t in targets:
        build = t.partition("@")[2] or args.build
        if t.startswith("poolproxy") and not os.access(os.path.join(build, "poolproxy"), os.X_OK):
            sys.exit("bench: build first (%s/poolproxy missing)" % build)
    b = Bench(args)
    rows = {t: [] for t in targets}
    try:
        b.start_backend()
        print("# %s %d CPUs, load %s; %d clients, %d s x %d round(s), pool_max %d" %
              (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), os.cpu_count(),
               " ".join(open("/proc/loadavg").read().split()[:3]), args.clients, args.seconds, args.rounds,
               POOL_MAX), file=sys.stderr)
        for _ in range(args.rounds):  # rounds interleave the targets
            for t in targets:
                r = b.run(t)
                print("%s %.0f %.0f %.0f %d" % (t, r[0], r[1], r[2], r[3]), file=sys.stderr)
                rows[t].append(r)
    finally:
        b.cleanup()
    print("| target | req/s | median ms | p99 ms | p99 / median | errors |")
    print("|---|---|---|---|---|---|")
    for t in targets:
        med = [statistics.median(x[i] for x in rows[t]) for i in range(4)]
        print("| %s | %.0f | %.1f | %.1f | %.2f | %d |" % (t, med[0], med[1] / 1000, med[2] / 1000,
                                                           med[2] / med[1] if med[1] else 0, med[3]))


if __name__ == "__main__":
    main()
