#!/usr/bin/env python3
"""Fault injection on loopback through the poolproxy CLI (http mode): backends that refuse,
reset, hang, die mid-response and flap, next to a healthy one. Checks that no client waits past
the configured timeouts, that idempotent requests are not lost while a healthy backend remains,
that breakers open and recover, that active health checks take a sick backend out and put it
back, and that each transition is reported once (events against the /stats counters).

Usage: resilience.py POOLPROXY_CLI"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import Backend, FAILED, PASSED, RawServer, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]


class Faulty(RawServer):
    """A loopback backend whose behaviour the test switches: 'ok' (HTTP/1.1 keep-alive answers),
    'reset' (read the request, then RST), 'hang' (read it, never answer), 'truncate' (a head
    promising 1000 bytes, 10 of them, then close), 'sick' (ok, except /health answers 500),
    'slow' (ok after 2 s). With strict_host set, a request whose Host is not exactly it gets 400, as
    strict virtual-host servers answer; health_hosts lists the Host of each /health request."""

    def __init__(self, mode, host="127.0.0.1", port=0):
        super().__init__(host, port, reuse=True)
        self.mode = mode
        self.requests = 0
        self.held = []
        self.strict_host = None
        self.health_hosts = []
        self.start()

    def serve(self, c):
        buf = b""
        c.settimeout(30)
        try:
            while True:
                got = self.read_head(c, buf)
                if got is None:
                    return
                head, buf, path = got
                mode = self.mode
                if path != "/health":
                    with self.lock:
                        self.requests += 1
                if mode == "reset":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    c.close()
                    return
                if mode == "hang":
                    self.held.append(c)
                    return
                if mode == "slow":
                    time.sleep(2)
                if mode == "truncate":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
                    c.close()
                    return
                status = 500 if (mode == "sick" and path == "/health") else 200
                host = None
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"host":
                        host = value.strip().decode()
                if path == "/health":
                    with self.lock:
                        self.health_hosts.append(host)
                if path == "/health" and self.strict_host is not None and host != self.strict_host:
                    status = 400
                body = b"from %d" % self.port
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
        except OSError:
            c.close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port  # nothing listens there: connects are refused


class Proxy:
    def __init__(self, backends, *flags):
        self.work = tempfile.mkdtemp(prefix="pp-res-")
        self.err_path = os.path.join(self.work, "stderr.log")
        args = [CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2", "--admin-listen", "127.0.0.1:0"]
        for b in backends:
            args += ["--backend", "127.0.0.1:%d" % b]
        with open(self.err_path, "w") as err:
            self.p = subprocess.Popen(args + list(flags), stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])
        self.admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", self.log()).group(1))

    def log(self):
        return open(self.err_path).read()

    def events(self, kind, backend_port):
        return len(re.findall(r"event %s backend=\d+ address=127\.0\.0\.1:%d " % (kind, backend_port), self.log()))

    def wait_event(self, kind, backend_port, count=1, limit=10):
        deadline = time.time() + limit
        while time.time() < deadline:
            if self.events(kind, backend_port) >= count:
                return True
            time.sleep(0.05)
        return False

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)

    def backend(self, port):
        return next(b for b in self.stats()["backends"] if b["address"] == "127.0.0.1:%d" % port)

    def stop(self):
        stop_and_check(self.p)


def get(port, path="/", timeout=10):
    """One GET on a new connection: (status or None, seconds taken)."""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.time() - t0
    except (OSError, http.client.HTTPException):
        return None, time.time() - t0


def retries_and_breakers():
    """A healthy backend beside one that refuses and one that resets: every idempotent request
    is answered 200 (retried elsewhere); the resetting backend's breaker opens, half-opens after
    breaker_open_time, and its failed probe opens it again; each transition once."""
    good, resetter = Backend(), Faulty("reset")
    refused = free_port()
    px = Proxy([good.port, refused, resetter.port], "--retries", "2", "--breaker-failures", "3",
               "--breaker-open-time", "1500ms", "--connect-timeout", "500ms")
    results = [get(px.port, "/r%d" % i) for i in range(60)]
    check(all(s == 200 for s, _ in results), "60 GETs beside a refusing and a resetting backend: all 200 (%s)" %
          sorted(set(s for s, _ in results), key=str))
    check(max(t for _, t in results) < 3, "no request took longer than the connect timeout and retries allow")
    check(px.wait_event("breaker-open", resetter.port), "the resetting backend's breaker opened")
    opened_at, half_before = resetter.requests, px.events("breaker-half-open", resetter.port)
    for i in range(20):
        get(px.port, "/while-open")
    # Only half-open probes (one each, breaker_half_open_requests 1) may reach it now; on a slow
    # machine breaker_open_time can pass during these requests.
    probes = px.events("breaker-half-open", resetter.port) - half_before
    check(resetter.requests - opened_at <= probes, "an open breaker sends the backend nothing but probes "
          "(%d -> %d requests, %d probe(s))" % (opened_at, resetter.requests, probes))
    time.sleep(1.6)  # past breaker_open_time: the next request to it is a probe, which fails
    for i in range(10):
        get(px.port, "/probe")
    check(px.wait_event("breaker-half-open", resetter.port), "after breaker_open_time it went half-open")
    check(px.wait_event("breaker-open", resetter.port, count=2), "the failed probe opened it again")
    b = px.backend(resetter.port)
    events = sum(px.events(k, resetter.port) for k in ("breaker-open", "breaker-half-open", "breaker-closed"))
    check(b["breaker_transitions"] == events, "each breaker transition reported once (%d events, %d counted)" %
          (events, b["breaker_transitions"]))
    check(px.stats()["proxy"]["retries"] > 0, "retries were counted")
    px.stop()


def hang_then_recover():
    """A backend that accepts and never answers: each such request gets 504 at response_timeout
    (no client waits longer), its breaker opens, and once it answers again a probe closes it."""
    good, hanger = Backend(), Faulty("hang")
    px = Proxy([good.port, hanger.port], "--response-timeout", "400ms", "--breaker-failures", "2",
               "--breaker-open-time", "1500ms", "--breaker-max-open-time", "1500ms")
    results = [get(px.port, "/h%d" % i) for i in range(12)]
    statuses = [s for s, _ in results]
    probes = px.events("breaker-half-open", hanger.port)
    check(set(statuses) <= {200, 504} and statuses.count(504) <= 2 + probes,
          "a silent backend costs breaker_failures 504s, plus one per half-open probe (%d of 12, %d probe(s))" %
          (statuses.count(504), probes))
    check(max(t for _, t in results) < 2.5, "no client waited past response_timeout (max %.2fs)" %
          max(t for _, t in results))
    check(px.wait_event("breaker-open", hanger.port), "the silent backend's breaker opened")
    hanger.mode = "ok"
    deadline = time.time() + 10
    before = hanger.requests
    while time.time() < deadline and not px.events("breaker-closed", hanger.port):
        get(px.port, "/again")
        time.sleep(0.05)
    check(px.events("breaker-closed", hanger.port) == 1, "once it answers, a probe closes the breaker")
    for i in range(10):
        get(px.port, "/after")
    check(hanger.requests > before, "the recovered backend takes requests again")
    px.stop()


def truncated_response():
    """A backend that dies mid-response: the client sees its connection end, quickly, and is
    never left waiting."""
    dying = Faulty("truncate")
    px = Proxy([dying.port], "--response-timeout", "5s")
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    took = time.time() - t0
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"0123456789") and took < 3,
          "killed mid-response: the client gets what was sent, then the end (%.2fs)" % took)
    px.stop()


def health_checks_flap():
    """Active http health checks: a backend whose /health fails is taken out after health_fall
    checks (no request reaches it), put back after health_rise good ones; each change is one
    event; /healthz stays up while another backend is healthy."""
    good, flapper = Backend(), Faulty("ok")
    px = Proxy([good.port, flapper.port], "--health-check", "http", "--health-path", "/health",
               "--health-interval", "300ms", "--health-timeout", "250ms", "--health-rise", "2",
               "--health-fall", "2")
    for cycle in range(2):
        flapper.mode = "sick"
        check(px.wait_event("backend-unhealthy", flapper.port, count=cycle + 1),
              "cycle %d: failing checks mark it unhealthy" % cycle)
        before = flapper.requests
        results = [get(px.port, "/x")[0] for _ in range(20)]
        check(results == [200] * 20 and flapper.requests == before,
              "cycle %d: while unhealthy it gets no request, the other serves all 20" % cycle)
        flapper.mode = "ok"
        check(px.wait_event("backend-healthy", flapper.port, count=cycle + 1),
              "cycle %d: passing checks mark it healthy again" % cycle)
        before = flapper.requests
        for _ in range(20):
            get(px.port, "/y")
        check(flapper.requests > before, "cycle %d: healthy again, it takes requests" % cycle)
    b = px.backend(flapper.port)
    events = px.events("backend-unhealthy", flapper.port) + px.events("backend-healthy", flapper.port)
    check(events == 4 and b["transitions"] == 4, "four health transitions, each reported once (%d events, %d counted)"
          % (events, b["transitions"]))
    check(b["health_checks_failed"] >= 4, "failed checks counted (%d)" % b["health_checks_failed"])
    px.stop()


def all_unhealthy_fails_fast():
    """Every backend unhealthy: requests get 503 at once (not after a timeout), counted by reason."""
    sick = Faulty("sick")
    px = Proxy([sick.port], "--health-check", "http", "--health-path", "/health", "--health-interval", "150ms",
               "--health-timeout", "100ms", "--health-fall", "1")
    check(px.wait_event("backend-unhealthy", sick.port), "the only backend is marked unhealthy")
    results = [get(px.port, "/z") for _ in range(5)]
    check(all(s == 503 for s, _ in results) and max(t for _, t in results) < 1,
          "with no healthy backend, 503 at once (max %.2fs)" % max(t for _, t in results))
    check(px.stats()["proxy"]["no_backend_unhealthy"] == 5, "counted as no_backend_unhealthy")
    c = http.client.HTTPConnection("127.0.0.1", px.admin, timeout=10)
    c.request("GET", "/healthz")
    check(c.getresponse().status == 503, "/healthz says 503 with no healthy backend")
    c.close()
    px.stop()


def concurrent(port, n, gap=0.2):
    """n GETs started gap seconds apart, each on its own connection: [(status, seconds)]."""
    out = [None] * n
    threads = []
    for i in range(n):
        t = threading.Thread(target=lambda i=i: out.__setitem__(i, get(port, "/c%d" % i)))
        t.start()
        threads.append(t)
        time.sleep(gap)
    for t in threads:
        t.join(20)
    return out


def envoy_style_limits():
    """backend_max_requests: beyond it, 503 at once instead of queueing; backend_max_pending:
    beyond it, 503 at once instead of waiting for a connection. Counted as no_backend_limits."""
    slow = Faulty("slow")
    px = Proxy([slow.port], "--backend-max-requests", "2", "--pool-max", "10")
    r = concurrent(px.port, 5)
    served = [t for s, t in r if s == 200]
    refused = [t for s, t in r if s == 503]
    check(len(served) == 2 and len(refused) == 3, "backend_max_requests 2: 2 served, 3 refused (%s)" %
          [s for s, _ in r])
    check(max(refused) < 1.5, "the refused ones got 503 at once, not after the slow backend (max %.2fs)" %
          max(refused))
    check(px.stats()["proxy"]["no_backend_limits"] == 3, "counted as no_backend_limits")
    px.stop()
    px = Proxy([slow.port], "--backend-max-pending", "1", "--pool-max", "1", "--workers", "1")
    r = concurrent(px.port, 3)
    statuses = [s for s, _ in r]
    check(statuses == [200, 200, 503], "pool_max 1, backend_max_pending 1: one in flight, one waits, one "
          "refused (%s)" % statuses)
    check(r[2][1] < 1.5, "the refused one got 503 at once (%.2fs)" % r[2][1])
    check(px.stats()["proxy"]["no_backend_limits"] == 1, "counted as no_backend_limits")
    px.stop()


def main():
    retries_and_breakers()
    envoy_style_limits()
    hang_then_recover()
    truncated_response()
    health_checks_flap()
    all_unhealthy_fails_fast()
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
