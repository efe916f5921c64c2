#!/usr/bin/env python3
"""Every exchange's outcome, on every path, through the poolproxy CLI (issue 15 items 1, 2, 7,
11): a half-open breaker's probe whose client leaves (http: reset while the backend holds the
request; tcp: reset while the backend connect is still opening) frees its slot, so later
requests reach the backend again; body-phase inactivity timeouts in both directions free a
pool_max 1 slot pinned by a client that stopped reading, end a backend that stalls mid-body,
and never cut a stream that keeps flowing; upgraded tunnels are counted, logged, and timed by
tunnel_timeout (not idle_timeout); tcp clients closed at queue_timeout get a warning naming
pool_max, and so do http requests timed out in the queue behind tunnels holding pool_max
slots; the proxy's own answers (400, 408, 413, 431, 503) are logged with the request's and
the answer's bytes and counted once. Every wait is bounded; nothing passes by sleeping.

Usage: session_outcomes.py POOLPROXY_CLI"""
import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, RawServer, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]
LINGER_RST = struct.pack("ii", 1, 0)  # close() sends a reset


class Ctl(RawServer):
    """An HTTP/1.1 backend whose behaviour the test switches (mode 'ok', 'reset', 'hold') and
    whose paths do the rest: /huge (64 MiB), /stall (a head promising 1000 bytes, 10 of them,
    then silence), /sse (an event every 0.2 s, 30 of them), /ws (101, then echo)."""

    def __init__(self):
        super().__init__()
        self.mode = "ok"
        self.requests = 0
        self.start()

    def serve(self, c):
        buf = b""
        c.settimeout(60)
        try:
            while True:
                got = self.read_head(c, buf)
                if got is None:
                    return
                head, buf, path = got
                with self.lock:
                    self.requests += 1
                mode = self.mode
                if mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                    c.close()
                    return
                if mode == "hold":  # until the proxy closes its end
                    while c.recv(65536):
                        pass
                    c.close()
                    return
                if path == "/huge":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 << 20))
                    block = b"h" * 65536
                    for _ in range(1024):
                        c.sendall(block)
                    continue
                if path == "/stall":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                    while c.recv(65536):
                        pass
                    c.close()
                    return
                if path == "/sse":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n")
                    for i in range(30):
                        ev = b"data: %d\n\n" % i
                        c.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                        time.sleep(0.2)
                    c.sendall(b"0\r\n\r\n")
                    continue
                if path == "/ws":
                    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
                    if buf:
                        c.sendall(buf)
                    while True:
                        d = c.recv(65536)
                        if not d:
                            break
                        c.sendall(d)
                    c.close()
                    return
                body = b"ok %s" % path.encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            c.close()


class Proxy:
    def __init__(self, mode, backends, *flags):
        self.work = tempfile.mkdtemp(prefix="pp-outcome-")
        self.err_path = os.path.join(self.work, "stderr.log")
        self.access_path = os.path.join(self.work, "access.log")
        args = [CLI, "--mode", mode, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                "--access-log", self.access_path]
        for b in backends:
            args += ["--backend", "127.0.0.1:%d" % b]
        with open(self.err_path, "w") as err:
            self.p = subprocess.Popen(args + list(flags), stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line + self.log()
        self.port = int(line.rsplit(":", 1)[1])
        self.admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", self.log()).group(1))

    def log(self):
        return open(self.err_path).read()

    def access(self):
        return open(self.access_path).read().splitlines()

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)["proxy"]

    def wait(self, cond, limit=15):
        deadline = time.time() + limit
        while time.time() < deadline:
            if cond():
                return True
            time.sleep(0.05)
        return cond()

    def stop(self):
        stop_and_check(self.p)


def get(port, path="/", timeout=10):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException):
        return None, b""


def read_until_eof(s, limit):
    s.settimeout(limit)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return got, True
            got += d
    except socket.timeout:
        return got, False
    except OSError:
        return got, True


def http_probe_abort():
    """The half-open probe's client resets while the backend still holds the request: the
    probe's slot is released (not counted as a failure), and the next request probes again."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "2", "--breaker-failures", "1", "--breaker-open-time", "300ms",
               "--breaker-max-open-time", "300ms", "--retries", "0")
    be.mode = "reset"
    status, _ = get(px.port, "/fail")
    check(status == 502, "a reset answers 502 (%s)" % status)
    check(px.wait(lambda: "event breaker-open" in px.log()), "the breaker opened")
    be.mode = "hold"
    before = be.requests
    # Past breaker_open_time the next request is the probe; it reaches the held backend.
    probe = None
    deadline = time.time() + 15
    while time.time() < deadline and be.requests == before:
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
        if px.wait(lambda: be.requests > before, 0.5):
            probe = s
            break
        s.close()  # refused with 503 while still open
    check(probe is not None, "the probe request reached the backend")
    if probe is None:
        px.stop()
        return
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    probe.close()  # the client resets before the backend answers
    be.mode = "ok"
    served = px.wait(lambda: get(px.port, "/after")[0] == 200, 15)
    check(served, "after the probe's client left, requests reach the backend again")
    check(px.wait(lambda: "event breaker-closed" in px.log(), 5), "and the next probe closed the breaker")
    check(px.wait(lambda: any('"GET /probe" 0 ' in l and 'reason=' in l for l in px.access()), 5),
          "the abandoned probe has its access-log entry with a reason")
    px.stop()


def tcp_probe_abort():
    """tcp mode: the probe's client resets while the backend connect is still opening: the proxy
    notices at once, the probe's slot is released, and once the backend accepts again a new
    client is relayed."""
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # refused: the first client opens the breaker
    px = Proxy("tcp", [port], "--workers", "1", "--breaker-failures", "1", "--breaker-open-time", "300ms",
               "--breaker-max-open-time", "300ms", "--retries", "0", "--connect-timeout", "30s",
               "--pool-max", "4")
    c = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    _, eof = read_until_eof(c, 10)
    c.close()
    check(eof and px.wait(lambda: "event breaker-open" in px.log()), "a refused connect opened the breaker")
    # A listener whose accept queue is full: a connect to it stays open (SYNs unanswered).
    lis = socket.socket()
    lis.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lis.bind(("127.0.0.1", port))
    lis.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    time.sleep(0.4)  # past breaker_open_time (the wait for half-open: the probe goes next)
    finished = px.stats()["sessions_finished"]
    probe = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    time.sleep(0.3)  # the proxy took it and started connecting
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    probe.close()
    check(px.wait(lambda: px.stats()["sessions_finished"] > finished, 10),
          "the proxy noticed the client leave while the backend connect was still opening")
    # The backend works again: accept and echo everything.
    def echo_loop():
        while True:
            try:
                a, _ = lis.accept()
            except OSError:
                return
            threading.Thread(target=lambda a=a: [a.sendall(d) for d in iter(lambda: a.recv(65536), b"")],
                             daemon=True).start()
    threading.Thread(target=echo_loop, daemon=True).start()
    for f in fillers:
        f.close()

    def echoed():
        try:
            s = socket.create_connection(("127.0.0.1", px.port), timeout=3)
            s.sendall(b"ping")
            s.settimeout(3)
            ok = s.recv(4) == b"ping"
            s.close()
            return ok
        except OSError:
            return False
    check(px.wait(echoed, 20), "later clients are relayed to the backend again")
    lis.close()
    px.stop()


def slow_reader_frees_pool():
    """pool_max 1: a client that stops reading a 64 MiB response holds the only backend
    connection until client_io_timeout; then a second client is served."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--pool-max", "1", "--client-io-timeout", "1s",
               "--queue-timeout", "8s")
    s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /huge HTTP/1.1\r\nHost: x\r\n\r\n")
    first = s.recv(4096)
    check(first.startswith(b"HTTP/1.1 200"), "the huge response began")
    # ... and the client reads nothing more.
    status, body = get(px.port, "/second", timeout=20)
    check(status == 200 and body == b"ok /second",
          "a second client is served once client_io_timeout freed the slot (%s)" % status)
    st = px.stats()
    check(st.get("client_io_timeouts") == 1, "counted as client_io_timeouts (%s)" % st.get("client_io_timeouts"))
    check(px.wait(lambda: any('"GET /huge" 200 ' in l and 'reason="client_io_timeout"' in l for l in px.access()), 5),
          "logged with its reason")
    s.close()
    px.stop()


def backend_stall_ends_exchange():
    """A backend that stalls mid-body: the exchange ends at backend_io_timeout, the client sees
    its connection end after what was sent."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--backend-io-timeout", "1s")
    s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    s.sendall(b"GET /stall HTTP/1.1\r\nHost: x\r\n\r\n")
    got, eof = read_until_eof(s, 15)
    s.close()
    check(eof and got.startswith(b"HTTP/1.1 200") and got.endswith(b"0123456789"),
          "a stalled body ends at backend_io_timeout: the client gets what came, then the end")
    st = px.stats()
    check(st.get("backend_io_timeouts") == 1, "counted as backend_io_timeouts (%s)" % st.get("backend_io_timeouts"))
    check(px.wait(lambda: any('"GET /stall" 200 ' in l and 'reason="backend_io_timeout"' in l for l in px.access()), 5),
          "logged with its reason")
    check(get(px.port, "/next")[0] == 200, "the next request is served")
    px.stop()


def stream_that_flows_is_not_cut():
    """Server-sent events every 0.2 s for 6 s, with every timeout at 1.5 s: never cut."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--backend-io-timeout", "1500ms",
               "--client-io-timeout", "1500ms", "--response-timeout", "1500ms")
    s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    s.settimeout(20)
    while not got.endswith(b"0\r\n\r\n"):
        try:
            d = s.recv(65536)
        except OSError:
            break
        if not d:
            break
        got += d
    s.close()
    events = got.count(b"data: ")
    check(events == 30 and got.endswith(b"0\r\n\r\n"), "an event stream flowing for 4 timeout lengths is not cut "
          "(%d/30 events)" % events)
    st = px.stats()
    check(st.get("backend_io_timeouts", 0) == 0 and st.get("client_io_timeouts", 0) == 0, "no timeout counted")
    px.stop()


def upgrade_counted_and_logged():
    """A 101 tunnel counts in requests and responses_1xx, and is logged when it ends, with
    bytes both ways; tunnel_timeout, not idle_timeout, times it."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--idle-timeout", "500ms", "--tunnel-timeout", "1h")
    t = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    t.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = t.recv(4096)
        if not d:
            break
        head += d
    check(head.startswith(b"HTTP/1.1 101 "), "the upgrade is switched")
    t.sendall(b"hello")
    t.settimeout(5)
    echo = b""
    while len(echo) < 5:
        d = t.recv(64)
        if not d:
            break
        echo += d
    check(echo == b"hello", "the tunnel echoes")
    time.sleep(1.5)  # three idle_timeout lengths with nothing moving: tunnel_timeout (1h) applies
    t.sendall(b"again")
    echo = b""
    try:
        while len(echo) < 5:
            d = t.recv(64)
            if not d:
                break
            echo += d
    except OSError:
        pass
    check(echo == b"again", "an idle tunnel outlives idle_timeout (tunnel_timeout applies)")
    t.close()
    check(px.wait(lambda: any('"GET /ws" 101 ' in l for l in px.access()), 10), "the tunnel's end is logged")
    line = next((l for l in px.access() if '"GET /ws" 101 ' in l), "")
    m = re.search(r"total_us=(\d+) bytes_in=(\d+) bytes_out=(\d+)", line)
    check(bool(m) and int(m.group(1)) >= 1000000 and int(m.group(2)) > 10 and int(m.group(3)) > 10,
          "with its duration and bytes both ways (%s)" % line[-80:])
    st = px.stats()
    check(st["requests"] == 1 and st["responses_1xx"] == 1, "counted in requests (%d) and responses_1xx (%d)" %
          (st["requests"], st["responses_1xx"]))
    px.stop()
    px = Proxy("http", [be.port], "--workers", "1", "--tunnel-timeout", "500ms")
    t = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    t.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    got, eof = read_until_eof(t, 15)
    t.close()
    check(got.startswith(b"HTTP/1.1 101 ") and eof, "a tunnel idle for tunnel_timeout is closed")
    check(px.wait(lambda: any('"GET /ws" 101 ' in l and 'reason="tunnel_timeout"' in l for l in px.access()), 5),
          "and logged with reason tunnel_timeout")
    px.stop()


def tcp_pool_max_warning():
    """tcp mode, pool_max 1: clients beyond it are closed at queue_timeout, with one warning for
    the burst naming pool_max and queue_timeout."""
    lis = socket.socket()
    lis.bind(("127.0.0.1", 0))
    lis.listen(16)
    held = []
    threading.Thread(target=lambda: [held.append(lis.accept()) for _ in range(16)], daemon=True).start()
    px = Proxy("tcp", [lis.getsockname()[1]], "--workers", "1", "--pool-max", "1", "--queue-timeout", "300ms")
    a = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    a.sendall(b"x")
    others = [socket.create_connection(("127.0.0.1", px.port), timeout=10) for _ in range(3)]
    closed = sum(read_until_eof(o, 10)[1] for o in others)
    check(closed == 3, "the clients beyond pool_max are closed at queue_timeout (%d/3)" % closed)
    warns = re.findall(r"warn .*pool_max.*queue_timeout.*", px.log())
    check(len(warns) == 1, "one warning for the burst, naming pool_max and queue_timeout (%r)" % warns[:2])
    for o in others:
        o.close()
    a.close()
    px.stop()
    lis.close()


def open_tunnel(port):
    """A client connection upgraded to a tunnel (the Ctl backend's /ws echo), once switched."""
    t = socket.create_connection(("127.0.0.1", port), timeout=10)
    t.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = t.recv(4096)
        if not d:
            break
        head += d
    check(head.startswith(b"HTTP/1.1 101 "), "the upgrade is switched")
    return t


def answered(port, data):
    """What the proxy sends back to `data` on a fresh connection, up to its end."""
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    c.sendall(data)
    got, _ = read_until_eof(c, 15)
    c.close()
    return got


def logged_bytes(px, target, status):
    """(bytes_in, bytes_out) of the access-log entry of `target` with `status`, once written (a
    head refused before it was whole is logged as "-")."""
    keys = ('"GET %s" %d ' % (target, status), '"-" %d ' % status)
    px.wait(lambda: any(k in l for l in px.access() for k in keys), 10)
    line = next((l for l in px.access() if any(k in l for k in keys)), "")
    m = re.search(r"bytes_in=(\d+) bytes_out=(\d+)", line)
    return (int(m.group(1)), int(m.group(2))) if m else None


def counters_add_up(px, what):
    """With every client gone: accepted = finished + rejected, responses by class = requests."""
    px.wait(lambda: px.stats()["connections_active"] == 0, 15)
    st = px.stats()
    rejected = st["connections_rejected_max"] + st["connections_rejected_overflow"]
    by_class = sum(st["responses_%dxx" % c] for c in range(1, 6))
    check(st["connections_accepted"] == st["sessions_finished"] + rejected and by_class == st["requests"],
          "%s: accepted %d = finished %d + rejected %d, by class %d = requests %d" %
          (what, st["connections_accepted"], st["sessions_finished"], rejected, by_class, st["requests"]))
    return st


def generated_answers_logged():
    """The proxy's own answers are logged like proxied ones: bytes_in the request bytes it read,
    bytes_out the answer's head and body as the client got them; each exchange counted once."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--pool-max", "1", "--queue-timeout", "300ms",
               "--client-header-timeout", "500ms", "--max-body-size", "100", "--lingering-timeout", "100ms")
    cases = [
        ("/fields431", 431, b"GET /fields431 HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n"),
        ("/len400", 400, b"GET /len400 HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        ("/big413", 413, b"GET /big413 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"),
        ("/slow408", 408, b"GET /slow408 HTTP/1.1\r\nHost: x\r\n"),
    ]
    for target, status, req in cases:
        got = answered(px.port, req)
        check(got.startswith(b"HTTP/1.1 %d " % status), "%s: %d (%r)" % (target, status, got[:30]))
        check(logged_bytes(px, target, status) == (len(req), len(got)),
              "%s logged with bytes_in=%d bytes_out=%d (%s)" % (target, len(req), len(got),
                                                              logged_bytes(px, target, status)))
    t = open_tunnel(px.port)  # holds the only connection (pool_max 1)
    req = b"GET /queued HTTP/1.1\r\nHost: x\r\n\r\n"
    got = answered(px.port, req)
    check(got.startswith(b"HTTP/1.1 503 "), "behind the tunnel: 503 at queue_timeout (%r)" % got[:30])
    check(logged_bytes(px, "/queued", 503) == (len(req), len(got)),
          "logged with bytes_in=%d bytes_out=%d (%s)" % (len(req), len(got), logged_bytes(px, "/queued", 503)))
    t.close()
    st = counters_add_up(px, "own answers")
    check(st["requests"] == 6 and st["responses_4xx"] == 4 and st["responses_5xx"] == 1,
          "each exchange counted once: requests %d, 4xx %d, 5xx %d" %
          (st["requests"], st["responses_4xx"], st["responses_5xx"]))
    px.stop()
    # Waiting queue full (queue_max 0), and a backend that refuses connections.
    px = Proxy("http", [be.port], "--workers", "1", "--pool-max", "1", "--queue-max", "0")
    t = open_tunnel(px.port)
    req = b"GET /full HTTP/1.1\r\nHost: x\r\n\r\n"
    got = answered(px.port, req)
    check(got.startswith(b"HTTP/1.1 503 "), "queue_max 0 behind the tunnel: 503 (%r)" % got[:30])
    check(logged_bytes(px, "/full", 503) == (len(req), len(got)),
          "logged with bytes_in=%d bytes_out=%d (%s)" % (len(req), len(got), logged_bytes(px, "/full", 503)))
    t.close()
    counters_add_up(px, "queue full")
    px.stop()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
    px = Proxy("http", [dead.getsockname()[1]], "--workers", "1", "--retries", "0")
    req = b"GET /refused HTTP/1.1\r\nHost: x\r\n\r\n"
    got = answered(px.port, req)
    check(got.startswith(b"HTTP/1.1 503 "), "a refused connect: 503 (%r)" % got[:30])
    check(logged_bytes(px, "/refused", 503) == (len(req), len(got)),
          "logged with bytes_in=%d bytes_out=%d (%s)" % (len(req), len(got), logged_bytes(px, "/refused", 503)))
    counters_add_up(px, "connect refused")
    px.stop()
    dead.close()


def tunnel_pool_max_warning():
    """http, pool_max 1: an open tunnel holds the only connection for its whole life, so the
    requests behind it get 503 at queue_timeout; one warning for the burst says why, naming
    pool_max, tunnel_timeout and the number of tunnels."""
    be = Ctl()
    px = Proxy("http", [be.port], "--workers", "1", "--pool-max", "1", "--queue-timeout", "300ms")
    t = open_tunnel(px.port)
    statuses = [get(px.port, "/behind/%d" % i)[0] for i in range(3)]
    check(statuses == [503, 503, 503], "requests behind the tunnel: 503 at queue_timeout (%s)" % statuses)
    px.wait(lambda: re.search(r"warn .*tunnel", px.log()), 5)
    warns = re.findall(r"warn .*tunnel.*", px.log())
    check(len(warns) == 1 and "pool_max (1)" in warns[0] and "tunnel_timeout" in warns[0] and
          "1 upgraded tunnel" in warns[0],
          "one warning for the burst, naming pool_max, tunnel_timeout and the tunnels (%r)" % warns[:2])
    t.close()
    check(px.wait(lambda: get(px.port, "/after")[0] == 200, 15), "once the tunnel closed, requests are served")
    check(len(re.findall(r"warn .*tunnel.*", px.log())) == 1, "and no further warning")
    px.stop()


def main():
    for case in (http_probe_abort, tcp_probe_abort, slow_reader_frees_pool, backend_stall_ends_exchange,
                 stream_that_flows_is_not_cut, upgrade_counted_and_logged, tcp_pool_max_warning,
                 generated_answers_logged, tunnel_pool_max_warning):
        print("--", case.__name__, flush=True)
        try:
            case()
        except Exception as e:  # a case that crashes fails, the others still run
            check(False, "%s raised %r" % (case.__name__, e))
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
