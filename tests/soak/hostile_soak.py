#!/usr/bin/env python3
"""Hostile-traffic soak for the poolproxy CLI in http mode, bounded in time and count.

Well-behaved keep-alive clients share a small pool (pool_max 4 per backend, two backends) with
clients and backends that try to break it:
  - slow readers: ask for a 32 MiB response, read a little, then stop reading;
  - stalled bodies: the backend sends a head and part of the body, then nothing;
  - probe aborts: a request to a slow path, reset by its client before the backend answers
    (the breaker of the second backend is tripped again and again, so some of these are its
    half-open probes);
  - breaker trippers: requests whose backend connection is reset;
  - oversized heads: 7,000 header fields.
When the load stops it asserts: the proxy is alive; the slow readers and the stalled bodies
were cut by the body-phase timeouts (their connections ended before the whole body came); the
well-behaved clients got only correct answers or the proxy's own 5xx; no pool slot stays pinned
(every backend connection is idle and each backend serves a request again); no descriptor
leaked; the counters add up (accepted = finished + rejected, responses by class = requests).

  hostile_soak.py CLI [--seconds 20]
"""
import argparse
import asyncio
import http.client
import json
import os
import random
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

ARGS = None
BODY_TIMEOUT_S = 1.0   # both body-phase inactivity timeouts, in the proxy's flags below
BIG = 32 << 20         # the slow readers' response: more than every socket buffer on the way holds
STATS = {"ok": 0, "proxy_5xx": 0, "bad": 0, "cut": 0, "slow_cut": 0, "slow_whole": 0, "slow_other": 0,
         "stall_cut": 0, "stall_other": 0, "aborted": 0, "tripped": 0, "big_head_431": 0,
         "big_head_other": 0}
BAD = []


class Backend:
    """HTTP/1.1 keep-alive backend. /ok/... answers 'port=P path=...'; /big 32 MiB; /stall a
    head and 1,000 of 100,000 body bytes, then nothing; /slow answers after 300 ms; /reset
    resets the connection."""

    def __init__(self):
        self.port = 0
        self.server = None
        self.served = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=512)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                self.served += 1
                if path == b"/big":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
                    chunk = b"b" * 65536
                    for _ in range(BIG // len(chunk)):
                        writer.write(chunk)
                        await writer.drain()
                elif path == b"/stall":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"s" * 1000)
                    await writer.drain()
                    await reader.read()  # until the proxy gives up on it
                    break
                elif path == b"/reset":
                    writer.transport.abort()
                    return
                else:
                    if path == b"/slow":
                        await asyncio.sleep(0.3)
                    body = b"port=%d path=%s" % (self.port, path)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:  # the run is over: end quietly
            pass
        finally:
            writer.close()


async def read_response(reader, timeout=30):
    """(status, head, body) of one response with a Content-Length, or raises."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    m = re.match(rb"HTTP/1\.1 (\d{3}) ", head)
    n = re.search(rb"\r\ncontent-length: (\d+)\r\n", head.lower())
    if not m or not n:
        raise ValueError(head[:200])
    body = await asyncio.wait_for(reader.readexactly(int(n.group(1))), timeout)
    return int(m.group(1)), head, body


async def normal_client(port, deadline, ident):
    n = 0
    conn = None
    while time.monotonic() < deadline:
        if conn is None:
            try:
                conn = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.2)
                continue
        reader, writer = conn
        path = b"/ok/%d/%d" % (ident, n)
        n += 1
        writer.write(b"GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path)
        try:
            status, head, body = await read_response(reader)
            if status == 200 and re.fullmatch(rb"port=\d+ path=" + re.escape(path), body):
                STATS["ok"] += 1
            elif status in (502, 503, 504) and body.startswith(b"%d " % status):
                STATS["proxy_5xx"] += 1
            else:
                STATS["bad"] += 1
                BAD.append(head[:200] + body[:80])
            if b"connection: close" in head.lower():
                writer.close()
                conn = None
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, ValueError) as e:
            STATS["cut"] += 1
            BAD.append(repr(e)[:200])
            writer.close()
            conn = None
        await asyncio.sleep(random.uniform(0, 0.02))
    if conn is not None:
        conn[1].close()


async def read_until_end(reader, limit_s):
    """Bytes read until EOF or a reset; None if neither came within limit_s."""
    got = 0
    end = time.monotonic() + limit_s
    try:
        while time.monotonic() < end:
            data = await asyncio.wait_for(reader.read(1 << 20), max(0.01, end - time.monotonic()))
            if not data:
                return got
            got += len(data)
    except ConnectionError:
        return got
    except asyncio.TimeoutError:
        pass
    return None


async def slow_reader(port, deadline):
    """Asks for /big, reads 1 KiB, stops reading for 3 body timeouts, then reads what is left:
    the proxy must have ended the exchange (EOF before the whole body)."""
    while time.monotonic() < deadline:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 16)
        except OSError:
            sock.close()
            await asyncio.sleep(0.2)
            continue
        writer.write(b"GET /big HTTP/1.1\r\nHost: soak\r\n\r\n")
        try:
            first = await asyncio.wait_for(reader.read(1024), 10)
            if not first.startswith(b"HTTP/1.1 200"):
                STATS["slow_other"] += 1  # a 503 at queue_timeout: the pool was full
            else:
                writer.transport.pause_reading()
                await asyncio.sleep(3 * BODY_TIMEOUT_S)
                writer.transport.resume_reading()
                got = await read_until_end(reader, 20)
                STATS["slow_cut" if got is not None and got + len(first) < BIG else "slow_whole"] += 1
        except (asyncio.TimeoutError, ConnectionError):
            STATS["slow_cut"] += 1
        writer.close()


async def stalled_body(port, deadline):
    """/stall: the backend stops mid-body; the proxy must end the exchange."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.write(b"GET /stall HTTP/1.1\r\nHost: soak\r\n\r\n")
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                STATS["stall_other"] += 1
            else:
                got = await read_until_end(reader, 10 * BODY_TIMEOUT_S + 5)
                STATS["stall_cut" if got is not None and got < 100000 else "stall_other"] += 1
        except (asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            STATS["stall_other"] += 1
        writer.close()


def rst_close(writer):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def aborter(port, deadline):
    """A request to /slow, reset by the client before the backend answers."""
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.write(b"GET /slow HTTP/1.1\r\nHost: soak\r\n\r\n")
        await asyncio.sleep(random.uniform(0.01, 0.1))
        rst_close(writer)
        STATS["aborted"] += 1
        await asyncio.sleep(random.uniform(0, 0.05))


async def tripper(port, deadline):
    """/reset requests: 502s that keep tripping a backend's breaker."""
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.write(b"GET /reset HTTP/1.1\r\nHost: soak\r\n\r\n")
        try:
            await read_response(reader, 10)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, ValueError):
            pass
        STATS["tripped"] += 1
        writer.close()
        await asyncio.sleep(random.uniform(0.05, 0.2))


async def big_head(port, deadline):
    """7,000 header fields: 431, at a cost the other clients do not notice."""
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(7000))
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.write(b"GET /ok/big HTTP/1.1\r\nHost: soak\r\n" + fields + b"\r\n")
        try:
            status, _, _ = await read_response(reader, 10)
            STATS["big_head_431" if status == 431 else "big_head_other"] += 1
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.TimeoutError, ValueError):
            STATS["big_head_other"] += 1
        writer.close()
        await asyncio.sleep(random.uniform(0.1, 0.3))


def admin_json(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())
    c.close()
    return s


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


async def served_again(port, backends, limit_s):
    """Sends /ok requests until every backend has served one more, at most limit_s."""
    start = [b.served for b in backends]
    end = time.monotonic() + limit_s
    while time.monotonic() < end and any(b.served <= s for b, s in zip(backends, start)):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /ok/again HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            await read_response(reader, 10)
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            pass
        await asyncio.sleep(0.05)
    return all(b.served > s for b, s in zip(backends, start))


async def main_async():
    backends = [Backend(), Backend()]
    for b in backends:
        await b.start()
    work = tempfile.mkdtemp(prefix="pp-hostile-soak-")
    err_path = os.path.join(work, "stderr.log")
    t = "%dms" % int(BODY_TIMEOUT_S * 1000)
    args = [ARGS.cli, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2",
            "--admin-listen", "127.0.0.1:0", "--pool-max", "4", "--queue-timeout", "2s",
            "--queue-max", "1000", "--connect-timeout", "1s", "--client-header-timeout", "2s",
            "--backend-io-timeout", t, "--client-io-timeout", t,
            "--breaker-failures", "3", "--breaker-open-time", "200ms", "--breaker-max-open-time", "1s",
            "--retries", "0", "--pool-idle-timeout", "60s"]
    for b in backends:
        args += ["--backend", "127.0.0.1:%d" % b.port]
    err = open(err_path, "w")
    proxy = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    line = await asyncio.get_running_loop().run_in_executor(None, proxy.stdout.readline)
    if not line.startswith("listening on "):
        print(open(err_path).read()[-3000:])
        print("0 passed, 1 failed")
        return 1
    port = int(line.rsplit(":", 1)[1])
    admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", open(err_path).read()).group(1))
    await asyncio.sleep(0.3)
    fds_before = proc_fds(proxy.pid)

    t0 = time.monotonic()
    deadline = t0 + ARGS.seconds
    tasks = [asyncio.ensure_future(normal_client(port, deadline, i)) for i in range(16)]
    tasks += [asyncio.ensure_future(slow_reader(port, deadline)) for _ in range(3)]
    tasks += [asyncio.ensure_future(stalled_body(port, deadline)) for _ in range(2)]
    tasks += [asyncio.ensure_future(aborter(port, deadline)) for _ in range(4)]
    tasks += [asyncio.ensure_future(tripper(port, deadline)) for _ in range(2)]
    tasks += [asyncio.ensure_future(big_head(port, deadline)) for _ in range(1)]
    while time.monotonic() < deadline and proxy.poll() is None:
        await asyncio.sleep(1)
        print("  %3ds  %6d ok  %4d 5xx  %d bad  %d cut  slow cut %d  stalls cut %d  aborted %d  "
              "tripped %d  431 %d  fds %d" %
              (time.monotonic() - t0, STATS["ok"], STATS["proxy_5xx"], STATS["bad"], STATS["cut"],
               STATS["slow_cut"], STATS["stall_cut"], STATS["aborted"], STATS["tripped"],
               STATS["big_head_431"], proc_fds(proxy.pid)), flush=True)
    await asyncio.wait_for(asyncio.gather(*tasks), 120)
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what, flush=True)
        if not cond:
            failures.append(what)

    alive = proxy.poll() is None
    check(alive, "the proxy is still running")
    if alive:
        check(STATS["bad"] == 0 and STATS["cut"] == 0 and STATS["ok"] > 0,
              "well-behaved clients: %d correct, %d proxy 5xx, %d wrong, %d cut off %s" %
              (STATS["ok"], STATS["proxy_5xx"], STATS["bad"], STATS["cut"], BAD[:3]))
        check(STATS["slow_cut"] > 0 and STATS["slow_whole"] == 0,
              "slow readers cut by the client-side body timeout: %d cut, %d got the whole body" %
              (STATS["slow_cut"], STATS["slow_whole"]))
        check(STATS["stall_cut"] > 0, "stalled bodies cut by the backend-side body timeout: %d (%d other)" %
              (STATS["stall_cut"], STATS["stall_other"]))
        check(STATS["big_head_431"] > 0 and STATS["big_head_other"] == 0,
              "7,000-field heads: %d answered 431, %d otherwise" % (STATS["big_head_431"], STATS["big_head_other"]))
        # Nothing pins a slot now: every backend serves again (no breaker jammed by an aborted
        # probe), and once the last exchanges ended every open backend connection is idle.
        check(await served_again(port, backends, 30), "every backend serves requests again after the load")
        settle_end = time.monotonic() + 30
        while time.monotonic() < settle_end:
            st = admin_json(admin)
            p = st["proxy"]
            if p["connections_active"] == 0 and p["backend_conns_open"] == p["backend_conns_idle"]:
                break
            await asyncio.sleep(0.2)
        p = st["proxy"]
        check(p["connections_active"] == 0 and p["backend_conns_open"] == p["backend_conns_idle"],
              "no slot pinned: %d sessions active, %d backend connections open, %d idle" %
              (p["connections_active"], p["backend_conns_open"], p["backend_conns_idle"]))
        fds_after = proc_fds(proxy.pid)
        idle_now = p["backend_conns_idle"]
        check(fds_after <= fds_before + idle_now + 2,
              "no fd leak: %d before, %d after with %d idle backend connections" % (fds_before, fds_after, idle_now))
        rejected = p["connections_rejected_max"] + p["connections_rejected_overflow"]
        check(p["connections_accepted"] == p["sessions_finished"] + rejected,
              "accepted %d = finished %d + rejected %d" % (p["connections_accepted"], p["sessions_finished"], rejected))
        by_class = sum(p["responses_%dxx" % c] for c in range(1, 6))
        check(by_class == p["requests"], "responses by class %d = requests %d" % (by_class, p["requests"]))
        proxy.terminate()
        proxy.wait(30)
        check(proxy.returncode == 0, "the proxy drained and exited cleanly (status %d)" % proxy.returncode)
    else:
        print(open(err_path).read()[-3000:])
    total = 10 if alive else 1
    print("%d passed, %d failed" % (total - len(failures), len(failures)))
    return 1 if failures else 0


def main():
    global ARGS
    p = argparse.ArgumentParser()
    p.add_argument("cli")
    p.add_argument("--seconds", type=int, default=20)
    ARGS = p.parse_args()
    if ARGS.seconds > 600:
        sys.exit("hostile_soak: at most 600 s")
    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
