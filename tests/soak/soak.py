#!/usr/bin/env python3
"""Soak and stress for the poolproxy CLI in http mode, bounded in time and count.

Thousands of concurrent client connections (RLIMIT_NOFILE raised as far as allowed), mixed:
idle keep-alive clients that send a request now and then, busy keep-alive clients, and churning
clients that connect, send one request with Connection: close and go. Three backends (asyncio,
in this process) are restarted at random, hard (every connection reset) or gracefully. At the
end, with every client gone, it asserts: the proxy never crashed; every request got a correct
response or a proper 5xx from the proxy (502/503/504), none was cut off; no fd leaked and RSS
came back near its start; and the counters add up: accepted = finished + rejected, requests
counted = responses the clients received, responses by class = requests.

  soak.py CLI [--seconds 120] [--idle 3000] [--busy 40] [--churn 20] [--restart-every 3]
"""
import argparse
import asyncio
import http.client
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time

ARGS = None
STATS = {"ok": 0, "proxy_5xx": 0, "bad": 0, "cut": 0, "connects": 0, "connect_failed": 0}
BAD = []


class BackendServer:
    """HTTP/1.1 keep-alive backend answering 'port=P path=...' with Content-Length."""

    def __init__(self, port=0):
        self.port = port
        self.server = None
        self.writers = set()
        self.restarts = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port, backlog=1024)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer):
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                body = b"port=%d path=%s" % (self.port, path)
                close = b"connection: close" in head.lower()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" %
                             (len(body), b"Connection: close\r\n" if close else b"", body))
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    async def restart(self, hard):
        self.server.close()
        for w in list(self.writers):
            if hard:
                w.transport.abort()  # every connection reset, requests in flight included
            else:
                w.close()
        await asyncio.sleep(random.uniform(0.05, 0.5))  # down for a moment
        await self.start()
        self.restarts += 1


def expected_ok(body, path):
    return re.fullmatch(rb"port=\d+ path=" + re.escape(path), body) is not None


async def request(reader, writer, path, close=False):
    """One request; returns 'ok', 'proxy_5xx', 'bad' or 'cut', and whether the connection goes on."""
    writer.write(b"GET %s HTTP/1.1\r\nHost: soak\r\n%s\r\n" % (path, b"Connection: close\r\n" if close else b""))
    try:
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
        n = re.search(rb"\r\ncontent-length: (\d+)\r\n", head.lower())
        if not m or not n:
            BAD.append(head[:200])
            return "bad", False
        body = await asyncio.wait_for(reader.readexactly(int(n.group(1))), 30)
        status = int(m.group(1))
        goes_on = b"connection: close" not in head.lower()
        if status == 200 and expected_ok(body, path):
            return "ok", goes_on
        if status in (502, 503, 504) and body.startswith(b"%d " % status):
            return "proxy_5xx", goes_on
        BAD.append(head[:200] + body[:100])
        return "bad", False
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, asyncio.LimitOverrunError):
        return "cut", False


async def connect(port):
    try:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        STATS["connects"] += 1
        return r, w
    except OSError:
        STATS["connect_failed"] += 1
        return None, None


async def client(port, deadline, kind, ident):
    n = 0
    conn = (None, None)
    while time.monotonic() < deadline:
        if conn[0] is None:
            conn = await connect(port)
            if conn[0] is None:
                await asyncio.sleep(0.2)
                continue
        path = b"/%s/%d/%d" % (kind.encode(), ident, n)
        n += 1
        outcome, goes_on = await request(conn[0], conn[1], path, close=(kind == "churn"))
        STATS[outcome] += 1
        if not goes_on:
            conn[1].close()
            conn = (None, None)
        if kind == "idle":
            await asyncio.sleep(random.uniform(1, 4))
        elif kind == "busy":
            await asyncio.sleep(0)
    if conn[1] is not None:
        conn[1].close()


async def restarter(backends, deadline):
    while time.monotonic() < deadline - 2:
        await asyncio.sleep(random.uniform(0.5, 2 * ARGS.restart_every))
        await random.choice(backends).restart(hard=random.random() < 0.5)


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kib(pid):
    return int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))


def admin_stats(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())
    c.close()
    return s["proxy"]


async def main_async():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    want = 2 * (ARGS.idle + ARGS.busy + ARGS.churn) + 200
    if hard < want:
        ARGS.idle = max(100, (hard - 200) // 2 - ARGS.busy - ARGS.churn)
        print("soak: RLIMIT_NOFILE is %d: %d idle clients" % (hard, ARGS.idle))
    backends = [BackendServer() for _ in range(3)]
    for b in backends:
        await b.start()
    work = tempfile.mkdtemp(prefix="pp-soak-")
    err_path = os.path.join(work, "stderr.log")
    args = [ARGS.cli, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2", "--admin-listen", "127.0.0.1:0",
            "--max-connections", str(ARGS.idle + ARGS.busy + ARGS.churn + 1000), "--pool-max", "32",
            "--pool-idle-timeout", "1s", "--client-idle-timeout", "60s", "--breaker-open-time", "200ms",
            "--queue-timeout", "5s", "--connect-timeout", "1s"]
    for b in backends:
        args += ["--backend", "127.0.0.1:%d" % b.port]
    err = open(err_path, "w")
    proxy = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    line = await asyncio.get_running_loop().run_in_executor(None, proxy.stdout.readline)
    assert line.startswith("listening on "), line
    port = int(line.rsplit(":", 1)[1])
    admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", open(err_path).read()).group(1))
    await asyncio.sleep(0.5)
    fds_before, rss_before = proc_fds(proxy.pid), proc_rss_kib(proxy.pid)

    t0 = time.monotonic()
    deadline = t0 + ARGS.seconds
    tasks = [asyncio.ensure_future(restarter(backends, deadline))]
    for kind, count in (("idle", ARGS.idle), ("busy", ARGS.busy), ("churn", ARGS.churn)):
        for i in range(count):
            tasks.append(asyncio.ensure_future(client(port, deadline, kind, i)))
    peak_fds = peak_rss = 0
    while time.monotonic() < deadline:
        await asyncio.sleep(1)
        peak_fds, peak_rss = max(peak_fds, proc_fds(proxy.pid)), max(peak_rss, proc_rss_kib(proxy.pid))
        done = STATS["ok"] + STATS["proxy_5xx"]
        print("  %3ds  %7d ok  %5d 5xx  %3d bad  %3d cut  proxy fds %5d  rss %6d KiB  restarts %d" %
              (time.monotonic() - t0, STATS["ok"], STATS["proxy_5xx"], STATS["bad"], STATS["cut"],
               proc_fds(proxy.pid), proc_rss_kib(proxy.pid), sum(b.restarts for b in backends)), flush=True)
        if proxy.poll() is not None:
            break
    await asyncio.wait_for(asyncio.gather(*tasks), ARGS.seconds + 60)
    elapsed = time.monotonic() - t0
    await asyncio.sleep(3)  # clients gone; idle pooled connections retire (pool_idle_timeout 1s)

    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    alive = proxy.poll() is None
    check(alive, "the proxy is still running after %.0f s" % elapsed)
    if alive:
        fds_after, rss_after = proc_fds(proxy.pid), proc_rss_kib(proxy.pid)
        st = admin_stats(admin)
        total = STATS["ok"] + STATS["proxy_5xx"]
        print("soak: %d requests (%.0f/s), %d connections, peak %d fds and %d KiB RSS; %d backend restarts" %
              (total, total / elapsed, STATS["connects"], peak_fds, peak_rss, sum(b.restarts for b in backends)))
        check(STATS["bad"] == 0 and STATS["cut"] == 0,
              "every request answered: %d correct, %d proxy 5xx, %d wrong, %d cut off %s" %
              (STATS["ok"], STATS["proxy_5xx"], STATS["bad"], STATS["cut"], BAD[:3]))
        check(STATS["ok"] > STATS["proxy_5xx"], "most answers came from a backend")
        check(fds_after <= fds_before + 2, "no fd leak: %d open before the load, %d after" % (fds_before, fds_after))
        check(rss_after <= rss_before + max(16384, (peak_rss - rss_before) // 2),
              "RSS ends within 16 MiB of its start: %d KiB before, %d at the peak, %d after" %
              (rss_before, peak_rss, rss_after))
        rejected = st["connections_rejected_max"] + st["connections_rejected_overflow"]
        check(st["connections_active"] == 0 and st["connections_accepted"] == st["sessions_finished"] + rejected,
              "accepted %d = finished %d + rejected %d, none active" %
              (st["connections_accepted"], st["sessions_finished"], rejected))
        check(st["connections_accepted"] == STATS["connects"],
              "the proxy accepted every connection the clients made (%d of %d)" %
              (st["connections_accepted"], STATS["connects"]))
        check(st["requests"] == total, "requests counted %d = responses received %d" % (st["requests"], total))
        by_class = sum(st["responses_%dxx" % c] for c in range(1, 6))
        check(by_class == st["requests"], "responses by class add up to requests (%d)" % by_class)
        proxy.terminate()
        proxy.wait(30)
        check(proxy.returncode == 0, "the proxy drained and exited cleanly (status %d)" % proxy.returncode)
    else:
        print(open(err_path).read()[-3000:])
    print("%d passed, %d failed" % (9 - len(failures) if alive else 0, len(failures)))
    return 1 if failures else 0


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("cli")
    p.add_argument("--seconds", type=int, default=120)
    p.add_argument("--idle", type=int, default=3000)
    p.add_argument("--busy", type=int, default=40)
    p.add_argument("--churn", type=int, default=20)
    p.add_argument("--restart-every", type=float, default=3)
    ARGS = p.parse_args()
    if ARGS.seconds > 900:
        sys.exit("soak: at most 900 s")
    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
