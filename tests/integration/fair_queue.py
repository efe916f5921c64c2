#!/usr/bin/env python3
"""Fair waiting (issue 21) through the poolproxy CLI in http mode: requests that queued for a
connection are answered before later ones, for 1 and 2 workers.

The backend answers only when the test tells it to (one response per release) and echoes the
request's path, and pool_max is 1, so the order in which the proxy hands its one connection to
requests is the order in which the backend sees them. A, B, C are queued in that order; D is
pipelined behind A on A's client connection, so it reaches the proxy in the very loop turn in
which A's connection comes back to the pool: the moment a late request used to take it first.
With 2 workers (and exact_balance) the acceptor's round robin puts A and C on one worker and B
on the other, so the connection has to follow the oldest waiter across workers.

Also: a request that times out in the queue shows its wait in the access log and the
queue-wait histogram. Every wait is bounded; nothing passes or fails on a measured duration.

Usage: fair_queue.py POOLPROXY_CLI"""
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
from http_proxy import FAILED, PASSED, RawServer, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]
# The docs' cross-worker slack is a few milliseconds; waiting this long between two requests
# guarantees (the clock only moves forward) that they are further apart than that.
BEYOND_SLACK = 0.05


def wait_for(cond, limit=20):
    deadline = time.time() + limit
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class GatedBackend(RawServer):
    """HTTP/1.1 keep-alive backend that records each request's path as it arrives and answers
    it (body: the path without '/') only when release() is called, one response per call."""

    def __init__(self):
        super().__init__(backlog=64, reuse=True)
        self.received = []
        self.gate = threading.Semaphore(0)
        self.start()

    def serve(self, c):
        buf = b""
        try:
            while True:
                got = self.read_head(c, buf)
                if got is None:
                    return
                head, buf, path = got
                with self.lock:
                    self.received.append(path)
                if not self.gate.acquire(timeout=60):
                    c.close()
                    return
                body = path.lstrip("/").encode()
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except OSError:
            c.close()

    def release(self):
        self.gate.release()

    def seen(self):
        with self.lock:
            return list(self.received)


class Client:
    """One keep-alive client connection; a thread collects the bodies of its responses into
    the shared `answers` list, in arrival order."""

    def __init__(self, port, answers, lock):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.answers, self.lock = answers, lock
        threading.Thread(target=self.read_loop, daemon=True).start()

    def send(self, *paths):
        self.s.sendall(b"".join(b"GET %s HTTP/1.1\r\nHost: fair\r\n\r\n" % p.encode() for p in paths))

    def read_loop(self):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = self.s.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                n = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                while len(buf) < n:
                    d = self.s.recv(65536)
                    if not d:
                        return
                    buf += d
                body, buf = buf[:n], buf[n:]
                status = int(head.split(b" ")[1])
                with self.lock:
                    self.answers.append(body.decode() if status == 200 else "status %d" % status)
        except OSError:
            return

    def close(self):
        self.s.close()


class Proxy:
    def __init__(self, backend_port, workers, *flags):
        self.work = tempfile.mkdtemp(prefix="pp-fair-")
        self.err_path = os.path.join(self.work, "stderr.log")
        self.access_path = os.path.join(self.work, "access.log")
        args = [CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", str(workers),
                "--admin-listen", "127.0.0.1:0", "--backend", "127.0.0.1:%d" % backend_port,
                "--access-log", self.access_path] + list(flags)
        with open(self.err_path, "w") as err:
            self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])
        self.admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", open(self.err_path).read()).group(1))

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)

    def waiting(self):
        return self.stats()["proxy"]["queue_waiting"]

    def access(self):
        """{path: (worker, status, queue_us)} from the access log."""
        out = {}
        for line in open(self.access_path):
            m = re.search(r'worker=(\d+) "GET (\S+)" (\d+) .* queue_us=(\d+)', line)
            if m:
                out[m.group(2)] = (int(m.group(1)), int(m.group(3)), int(m.group(4)))
        return out

    def stop(self):
        stop_and_check(self.p)


def arrival_order(workers):
    """A, B, C queued in that order (D pipelined behind A): answered A, B, C, D."""
    tag = "%d worker%s" % (workers, "" if workers == 1 else "s")
    be = GatedBackend()
    # exact_balance: the acceptor's round robin places the clients, so that the order has to hold
    # across workers (with workers accepting for themselves, the kernel picks who wins).
    px = Proxy(be.port, workers, "--pool-max", "1", "--queue-max", "100", "--queue-timeout", "60s",
               "--exact-balance", "on")
    answers, lock = [], threading.Lock()
    a = Client(px.port, answers, lock)
    a.send("/A", "/D")  # D waits in A's input until A's response is complete
    check(wait_for(lambda: be.seen() == ["/A"]), "%s: A holds the one connection" % tag)
    b = Client(px.port, answers, lock)
    b.send("/B")
    check(wait_for(lambda: px.waiting() == 1), "%s: B waits" % tag)
    time.sleep(BEYOND_SLACK)
    c = Client(px.port, answers, lock)
    c.send("/C")
    check(wait_for(lambda: px.waiting() == 2), "%s: C waits behind B" % tag)
    for i in range(4):  # one response at a time; each answer lands before the next release
        be.release()
        if not wait_for(lambda: len(answers) > i):
            break
    with lock:
        got = list(answers)
    check(got == ["A", "B", "C", "D"], "%s: answered in arrival order A, B, C, D (got %s)" % (tag, got))
    check(be.seen() == ["/A", "/B", "/C", "/D"], "%s: the backend saw A, B, C, D (saw %s)" % (tag, be.seen()))
    for cl in (a, b, c):
        cl.close()
    check(wait_for(lambda: all(p in px.access() for p in ("/A", "/B", "/C", "/D"))), "%s: four access-log lines" % tag)
    log = px.access()
    check(log.get("/A", (0, 0, -1))[2] == 0 and all(log.get(p, (0, 0, 0))[2] > 0 for p in ("/B", "/C", "/D")),
          "%s: the access log shows who waited (queue_us %s)" % (tag, {p: v[2] for p, v in log.items()}))
    if workers == 2:
        spread = {p: v[0] for p, v in log.items()}
        check(len(set(spread.values())) == 2, "%s: the requests were on both workers (%s)" % (tag, spread))
    st = px.stats()
    check(st["latency_us"]["queue_wait"]["count"] == 3, "%s: three waits in the queue-wait histogram (%d)" %
          (tag, st["latency_us"]["queue_wait"]["count"]))
    px.stop()
    be.sock.close()


def timeout_shows_wait():
    """A request that waits until queue_timeout gets 503, and its wait is in the access log
    (at least queue_timeout, which the proxy waits out before it answers) and the histogram."""
    be = GatedBackend()
    px = Proxy(be.port, 1, "--pool-max", "1", "--queue-timeout", "300ms")
    answers, lock = [], threading.Lock()
    a = Client(px.port, answers, lock)
    a.send("/A")
    check(wait_for(lambda: be.seen() == ["/A"]), "timeout: A holds the one connection")
    b = Client(px.port, answers, lock)
    b.send("/B")
    check(wait_for(lambda: answers == ["status 503"]), "timeout: B gets 503 after queue_timeout (%s)" % answers)
    check(wait_for(lambda: "/B" in px.access()), "timeout: B has its access-log line")
    entry = px.access().get("/B", (0, 0, 0))
    check(entry[1] == 503 and entry[2] >= 300000,
          "timeout: its line shows the wait, at least queue_timeout (status %d, queue_us %d)" % (entry[1], entry[2]))
    st = px.stats()
    qw = st["latency_us"]["queue_wait"]
    check(qw["count"] == 1 and qw["sum"] >= 300000, "timeout: the wait is in the queue-wait histogram (%s)" % qw)
    be.release()
    check(wait_for(lambda: len(answers) == 2), "timeout: A still answered")
    a.close()
    b.close()
    px.stop()
    be.sock.close()


def main():
    arrival_order(1)
    arrival_order(2)
    timeout_shows_wait()
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
