#!/usr/bin/env python3
"""Hostile clients against the poolproxy CLI in http mode, each beside well-behaved clients that
must keep being served: slowloris heads (408 at client_header_timeout), an endless chunked body
(413 at max_body_size), more connections than max_connections (the excess closed at once,
counted), and accept() failing with EMFILE under a low RLIMIT_NOFILE (the acceptor backs off
instead of spinning, then serves again). Then bad configuration: every mistake named, nothing
started; an unreachable backend reported at start. Every wait is bounded."""
import http.client
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, Backend, RawServer, check, read_to_end, stop_and_check  # noqa: E402

CLI = sys.argv[1]


class Proxy:
    def __init__(self, backend_port, *flags, nofile=None):
        self.work = tempfile.mkdtemp(prefix="pp-hostile-")
        self.err_path = os.path.join(self.work, "stderr.log")
        limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))) if nofile else None
        args = [CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2", "--admin-listen", "127.0.0.1:0",
                "--backend", "127.0.0.1:%d" % backend_port] + list(flags)
        with open(self.err_path, "w") as err:
            self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True, preexec_fn=limit)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line + self.log()
        self.port = int(line.rsplit(":", 1)[1])
        self.admin = int(re.search(r"admin listener on 127\.0\.0\.1:(\d+)", self.log()).group(1))

    def log(self):
        return open(self.err_path).read()

    def stats(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)["proxy"]

    def cpu_seconds(self):
        f = open("/proc/%d/stat" % self.p.pid).read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.p.pid))

    def stop(self):
        stop_and_check(self.p)


def get_ok(port, path="/ok", timeout=5):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        ok = r.status == 200 and r.read().startswith(b"path=" + path.encode())
        c.close()
        return ok
    except OSError:
        return False



def slowloris(be):
    px = Proxy(be.port, "--client-header-timeout", "1s")
    try:
        answers = []
        head = b"GET /slow HTTP/1.1\r\nHost: a\r\nX-Pad: " + b"p" * 200 + b"\r\n\r\n"

        def drip():
            s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
            s.settimeout(0.1)
            got = b""
            for b in head:  # one byte every 100 ms: 20 s for the whole head, far past the timeout
                try:
                    s.sendall(bytes([b]))
                    got += s.recv(4096)
                    break  # the proxy answered
                except socket.timeout:
                    continue
                except OSError:
                    break
            got += read_to_end(s, 3)
            s.close()
            answers.append(got)

        threads = [threading.Thread(target=drip) for _ in range(20)]
        for t in threads:
            t.start()
        served = sum(get_ok(px.port, "/meanwhile/%d" % i) for i in range(50))
        for t in threads:
            t.join(30)
        check(served == 50, "50 requests served while 20 slowloris clients dripped their heads (%d)" % served)
        n408 = sum(a.startswith(b"HTTP/1.1 408 ") for a in answers)
        check(n408 == 20, "every slowloris client got 408 at client_header_timeout (%d/20)" % n408)
    finally:
        px.stop()


def endless_body(be):
    px = Proxy(be.port, "--max-body-size", "1048576")
    try:
        s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
        s.sendall(b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"z" * 65536)
        sent = 0
        s.settimeout(5)
        try:
            while sent < 64 * 1024 * 1024:  # bounded: the proxy must stop it long before this
                s.sendall(chunk)
                sent += 65536
        except OSError:
            pass  # refused: the proxy answered and closed
        out = read_to_end(s, 5)
        s.close()
        check(out.startswith(b"HTTP/1.1 413 "), "endless chunked body -> 413 (%r)" % out[:40])
        # 1 MiB of body, then at most lingering_max_bytes (4 MiB) drained after the 413, plus
        # what the socket buffers on the way hold.
        check(sent <= 24 * 1024 * 1024, "the proxy stopped reading it early (%d MiB sent)" % (sent >> 20))
        check(get_ok(px.port), "other clients are served after it")
    finally:
        px.stop()


def max_connections(be):
    px = Proxy(be.port, "--max-connections", "20")
    try:
        held = [socket.create_connection(("127.0.0.1", px.port), timeout=5) for _ in range(40)]
        time.sleep(1.5)  # the excess is closed at accept; the admitted ones wait for a head (10 s)
        readable, _, _ = select.select(held, [], [], 0)
        closed = 0
        for s in readable:
            try:
                closed += s.recv(1) == b""
            except ConnectionResetError:
                closed += 1
        st = px.stats()
        check(closed == 20, "40 idle connections against max_connections 20: 20 closed at once (%d)" % closed)
        check(st["connections_rejected_max"] == closed and st["connections_active"] <= 20,
              "counted as connections_rejected_max (%d), at most 20 active (%d)" %
              (st["connections_rejected_max"], st["connections_active"]))
        for s in held:
            s.close()
        time.sleep(0.3)
        check(get_ok(px.port), "served again once they went away")
    finally:
        px.stop()


def emfile(be):
    px = Proxy(be.port, "--workers", "1", nofile=64)
    try:
        base = px.fds()
        held = []
        for _ in range(120):  # more than the proxy may open
            try:
                held.append(socket.create_connection(("127.0.0.1", px.port), timeout=2))
            except OSError:
                break
        cpu0 = px.cpu_seconds()
        time.sleep(2)
        cpu = px.cpu_seconds() - cpu0
        check(cpu < 1.0, "accept failing with EMFILE for 2 s: the proxy used %.2f s of CPU (it backs off, "
              "no spinning)" % cpu)
        for s in held:
            s.close()
        served = False
        for _ in range(30):
            served = get_ok(px.port, timeout=2)
            if served:
                break
            time.sleep(0.2)
        check(served, "served again once fds were free")
        st = px.stats()
        check(st["accept_errors"] >= 1 and st["accept_errors"] <= 200,
              "accept errors counted and bounded by the backoff (%d in about 2 s)" % st["accept_errors"])
        check("accept failed: Too many open files; pausing accepts" in px.log(), "the backoff is logged")
        time.sleep(0.5)
        check(px.fds() <= base + 4, "no fd leaked (%d open at start, %d now)" % (base, px.fds()))
    finally:
        px.stop()


def wait_accepted(px, before):
    """Waits until the proxy holds one descriptor more than `before` (the client just accepted).
    Counted from /proc rather than asked over the admin listener: the admin connection would need
    a descriptor itself, which is what this test takes away (a stats request then met a reset)."""
    end = time.time() + 5
    while px.fds() <= before and time.time() < end:
        time.sleep(0.01)


def emfile_backend_connect(be):
    """Out of descriptors at the backend connect: the request gets a 503 at once, but the
    backend is not to blame: once descriptors are free again the next request is served, with
    no breaker opened and no backend marked down."""
    nofile = 96
    px = Proxy(be.port, "--workers", "1", "--max-requests-per-conn", "1", "--breaker-failures", "2", nofile=nofile)
    held = []
    try:
        check(get_ok(px.port), "served before (the start probe's connection is used up)")
        time.sleep(0.3)
        # Fill the descriptor table but one: the next client is accepted, its backend connect is not.
        for _ in range(nofile):
            if px.fds() >= nofile - 1:
                break
            before = px.fds()
            held.append(socket.create_connection(("127.0.0.1", px.port), timeout=2))
            wait_accepted(px, before)
        def ask():
            s = socket.create_connection(("127.0.0.1", px.port), timeout=5)
            s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            got = read_to_end(s, 10)[:12]
            s.close()
            time.sleep(0.05)
            return got
        # The count can be off by a descriptor closing meanwhile (an admin connection): top up
        # until a request finds none left for its backend connect.
        for _ in range(10):
            if ask() == b"HTTP/1.1 503":
                break
            before = px.fds()
            held.append(socket.create_connection(("127.0.0.1", px.port), timeout=2))
            wait_accepted(px, before)
        answers = [ask() for _ in range(4)]  # more than breaker_failures
        check(all(a == b"HTTP/1.1 503" for a in answers), "no descriptor for the backend connect: 503 at once (%r)"
              % answers)
        for c in held:
            c.close()
        held = []
        time.sleep(0.3)
        st = px.stats()
        check(get_ok(px.port), "served as soon as descriptors are free (no breaker, no backend marked down)")
        check(st["backend_transitions"] == 0 and "breaker open" not in px.log(),
              "the backend was never marked down nor its breaker opened (transitions %d)" % st["backend_transitions"])
        check("this process's limit, not the backend's fault" in px.log(), "the cause is logged")
    finally:
        for c in held:
            c.close()
        px.stop()


def refill_backs_off(_be):
    """A backend that closes every connection it accepts (at its maxclients, say): pre-warming
    (pool_min_idle) pauses between attempts instead of reconnecting as fast as it can, and says
    why. Before, some 40,000 connects a second."""
    class Closer(RawServer):
        def serve(self, c):
            c.close()
    closer = Closer()
    closer.start()
    px = Proxy(closer.port, "--workers", "1", "--pool-min-idle", "4")
    try:
        time.sleep(0.5)
        c0 = px.stats()["backend_connects"]
        time.sleep(2)
        opened = px.stats()["backend_connects"] - c0
        check(opened <= 40, "a backend that closes what it accepts: %d connects in 2 s (refills pause)" % opened)
        check("right after it opened; pausing pre-warming" in px.log(), "the cause is logged")
    finally:
        px.stop()
        closer.sock.close()


def bad_configuration(be):
    """Bad configuration never starts a half-working proxy: each mistake names its option (or
    file and line) and the reason, and the CLI exits 2 without listening."""
    work = tempfile.mkdtemp(prefix="pp-badcfg-")
    conf = os.path.join(work, "bad.conf")
    open(conf, "w").write("workers = 2\nbogus line\n")
    ok_backend = ["--backend", "127.0.0.1:%d" % be.port]
    cases = [
        (["--workers", "abc"] + ok_backend, r"option 'workers': expected an integer in 0\.\.256, got 'abc'"),
        (["--backend", "127.0.0.1:99999"], r"option 'backend': port must be a number in 1\.\.65535, got '99999'"),
        (["--pool-max", "2", "--pool-min-idle", "9"] + ok_backend,
         r"option 'pool_min_idle' \(9\) must not exceed 'pool_max' \(2\)"),
        (["--response-timeout", "soon"] + ok_backend, r"option 'response_timeout'"),
        (["--mode", "udp"] + ok_backend, r"option 'mode'.*udp"),
        (["--config", conf], re.escape(conf) + r":2: expected 'name = value', got 'bogus line'"),
        (["--listen", "127.0.0.1:0"], r"no backend configured"),
    ]
    for args, pattern in cases:
        p = subprocess.run([CLI] + args, capture_output=True, text=True, timeout=10)
        check(p.returncode == 2 and "listening on" not in p.stdout and re.search(pattern, p.stderr),
              "%s: exit 2, %r" % (" ".join(args[:2]), p.stderr.strip()[:100]))
    # An unreachable backend at start is reported at once, before any request, and the proxy
    # that starts anyway answers for it instead of hanging.
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    port = refused.getsockname()[1]
    refused.close()  # nothing listens there
    px = Proxy(port)
    try:
        reported = False
        for _ in range(50):
            reported = re.search(r"event backend-down backend=0 address=127\.0\.0\.1:%d reason=\"connection refused\""
                                 % port, px.log()) and re.search(r"warn backend 127\.0\.0\.1:%d: connection refused"
                                                                 % port, px.log())
            if reported:
                break
            time.sleep(0.1)
        check(bool(reported), "an unreachable backend is reported at start, before any request")
        c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
        c.request("GET", "/")
        status = c.getresponse().status
        c.close()
        check(status in (502, 503), "a request for it gets %d at once" % status)
    finally:
        px.stop()


# ---- lingering close: the proxy's own answers reach a client that is still sending ----------

BIG_HEAD = b"GET /big-head HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(7000)) + b"\r\n"


def counters_add_up(px, what):
    """Once the clients are gone: no session left, no backend connection in use, and
    accepted = finished + rejected, responses by class = requests."""
    end = time.monotonic() + 30
    while True:
        st = px.stats()
        if (st["connections_active"] == 0 and st["backend_conns_open"] == st["backend_conns_idle"]) or \
                time.monotonic() > end:
            break
        time.sleep(0.1)
    rejected = st["connections_rejected_max"] + st["connections_rejected_overflow"]
    by_class = sum(st["responses_%dxx" % c] for c in range(1, 6))
    check(st["connections_active"] == 0 and st["backend_conns_open"] == st["backend_conns_idle"] and
          st["connections_accepted"] == st["sessions_finished"] + rejected and by_class == st["requests"],
          "%s: counters add up (active %d, backend open %d idle %d, accepted %d = finished %d + rejected %d, "
          "by class %d = requests %d)" % (what, st["connections_active"], st["backend_conns_open"],
                                          st["backend_conns_idle"], st["connections_accepted"],
                                          st["sessions_finished"], rejected, by_class, st["requests"]))
    return st


class Pump:
    """Sends `data` again and again on a socket from a thread (as fast as it goes, or one piece
    every `every` seconds) until told to stop, the connection ends, `limit` bytes or 120 s."""

    def __init__(self, s, data, every=0.0, limit=1 << 30):
        self.s, self.data, self.every, self.limit = s, data, every, limit
        self.sent = 0
        self.ended = None  # the error that ended the connection
        self.done = threading.Event()
        self.stop = threading.Event()
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        end = time.monotonic() + 120
        try:
            while not self.stop.is_set() and self.sent < self.limit and time.monotonic() < end:
                self.s.sendall(self.data)
                self.sent += len(self.data)
                if self.every:
                    time.sleep(self.every)
        except OSError as e:
            self.ended = e
        self.done.set()


def still_sending(port, sndbuf=4096):
    """A client socket whose bytes are still on their way while the proxy answers: a small send
    buffer (set before connect), as on a real network, so sendall is still sending then."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    return s


def send_then_read(port, data, sndbuf=4096):
    """sendall, then everything until the proxy closes; an error ending the sendall instead
    (the proxy reset the connection under it) is what the client got."""
    s = still_sending(port, sndbuf)
    try:
        s.sendall(data)
        out = read_to_end(s, 20)
    except OSError as e:
        out = repr(e).encode()
    s.close()
    return out


def big_head_answered(be):
    """A 7,000-field head (70 KB: over max_header_fields and max_header_size) in one sendall,
    then a read: the 431 arrives every time, though the proxy answers with most of the head
    unread (closing then would reset the connection under the answer)."""
    px = Proxy(be.port)
    try:
        answers = [send_then_read(px.port, BIG_HEAD) for _ in range(20)]
        n431 = sum(a.startswith(b"HTTP/1.1 431 ") for a in answers)
        check(n431 == 20, "a 7,000-field head in one sendall gets its 431, 20 times of 20 (%d; %r)" %
              (n431, [a[:40] for a in answers if not a.startswith(b"HTTP/1.1 431 ")][:3]))
        check(get_ok(px.port), "other clients are served after them")
        counters_add_up(px, "7,000-field heads")
    finally:
        px.stop()


def body_413_while_sending(be):
    """A body too large, sent whole before the client reads (announced by Content-Length,
    refused at the head; chunked, refused mid-body with the backend connection in use): the
    client's sendall goes through and it reads its 413, 5 times each."""
    px = Proxy(be.port, "--max-body-size", "1048576", "--pool-max", "1")
    try:
        body = b"z" * (3 << 20)  # within what the proxy drains after its answer (lingering_max_bytes)
        heads = {"announced": b"POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
                 "chunked": b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
                 b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)}
        for kind, data in heads.items():
            got = [send_then_read(px.port, data) for _ in range(5)]
            n413 = sum(a.startswith(b"HTTP/1.1 413 ") for a in got)
            check(n413 == 5, "%s body over max_body_size, client still sending: 413, 5 times of 5 (%d; %r)" %
                  (kind, n413, [a[:40] for a in got if not a.startswith(b"HTTP/1.1 413 ")][:3]))
        heads = {"chunked": b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"}
        # A refused client that goes on sending holds no backend connection: with pool_max 1
        # another client is served meanwhile.
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(heads["chunked"])
        pump = Pump(s, b"%x\r\n%s\r\n" % (65536, b"z" * 65536), every=0.01)
        s.settimeout(20)
        first = b""
        try:
            first = s.recv(65536)
        except OSError:
            pass
        served = get_ok(px.port)
        pump.stop.set()
        pump.done.wait(30)
        s.close()
        check(first.startswith(b"HTTP/1.1 413 ") and served,
              "pool_max 1: while a refused client still sends its body, another is served (413: %s, served: %s)"
              % (first.startswith(b"HTTP/1.1 413 "), served))
        counters_add_up(px, "bodies refused mid-stream")
    finally:
        px.stop()


def backend_stops_reading(be):
    """A backend that never reads a request body: the proxy's writes toward it back up, and at
    backend_io_timeout the client, still sending, gets 504 (the writes on the connection the
    proxy then closes are cancelled: that must not end the client's connection under it)."""
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    held = []

    def accept():
        while True:
            try:
                held.append(lst.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept, daemon=True).start()
    px = Proxy(lst.getsockname()[1], "--backend-io-timeout", "1s", "--lingering-max-bytes", "268435456",
               "--lingering-time", "60s")
    try:
        body = b"z" * (16 << 20)  # more than every socket buffer on the way holds
        data = b"POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (
            len(body), body)
        got = [send_then_read(px.port, data, 65536) for _ in range(3)]
        n504 = sum(a.startswith(b"HTTP/1.1 504 ") for a in got)
        check(n504 == 3, "a backend that stops reading the body: the client still sending gets 504, 3 of 3 (%d; %r)"
              % (n504, [a[:40] for a in got if not a.startswith(b"HTTP/1.1 504 ")][:3]))
    finally:
        px.stop()
        lst.close()
        for c in held:
            c.close()


def linger_bounded(be):
    """A refused client that never stops sending is closed after the lingering bounds: by time
    (a slow sender), by bytes (a fast one); either way it got its answer first. And a lingering
    client does not hold up a stop."""
    px = Proxy(be.port, "--lingering-time", "1s", "--lingering-timeout", "500ms",
               "--lingering-max-bytes", "1048576")
    try:
        for what, every in (("slow", 0.02), ("fast", 0.0)):
            s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
            s.sendall(b"NOT-HTTP\r\n\r\n")
            pump = Pump(s, b"x" * 1024 if every else b"x" * 65536, every=every)
            out = read_to_end(s, 20)
            ended = pump.done.wait(60)  # generous: the bound is 1 s, or 1 MiB
            s.close()
            check(out.startswith(b"HTTP/1.1 400 ") and ended and pump.ended is not None,
                  "%s endless sender after its 400: answered (%r), then the connection ends (%s, %d KiB sent)"
                  % (what, out[:20], pump.ended, pump.sent >> 10))
        counters_add_up(px, "endless senders")
    finally:
        px.stop()
    # Lingering is bounded by far more than the stop may take here: the stop closes it at once.
    px = Proxy(be.port, "--lingering-time", "10m", "--lingering-timeout", "10m", "--drain-timeout", "10m")
    s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
    s.sendall(b"NOT-HTTP\r\n\r\n")
    pump = Pump(s, b"x" * 1024, every=0.05)
    out = read_to_end(s, 20)  # the answer, then the half-close: it lingers now
    check(out.startswith(b"HTTP/1.1 400 ") and not pump.done.is_set(),
          "a client that keeps sending after its 400 is lingering (%r)" % out[:20])
    px.stop()  # must exit within stop_and_check's 15 s, though lingering_time is 10 min
    check(pump.done.wait(30), "the stop ended the lingering connection")
    s.close()


def active_after(px, want, secs=10):
    """connections_active once it is `want`, or its last value after secs (bounded polling)."""
    end = time.time() + secs
    while True:
        got = px.stats()["connections_active"]
        if got == want or time.time() > end:
            return got
        time.sleep(0.05)


def close_without_linger(be):
    """A client that asked for the close and sent nothing past its request has nothing more to
    send: the proxy closes at once instead of lingering for its FIN. A client with bytes left
    past a Connection: close request still gets the lingering close."""
    px = Proxy(be.port, "--lingering-time", "10m", "--lingering-timeout", "10m")
    try:
        for what, req in (("Connection: close", b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
                          ("HTTP/1.0", b"GET /a HTTP/1.0\r\nHost: a\r\n\r\n")):
            s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
            s.sendall(req)
            out = read_to_end(s, 20)  # the answer, then the proxy's FIN; this side stays open
            check(out.startswith(b"HTTP/1.") and b" 200 " in out[:16] and b"path=/a " in out,
                  "%s: answered (%r)" % (what, out[:20]))
            left = active_after(px, 0)
            check(left == 0, "%s, nothing more sent: the proxy closed without waiting for the client (%d active)"
                  % (what, left))
            s.close()
        # A request pipelined behind a Connection: close one is never served, but it was sent:
        # closing with it unread would reset the connection, so the proxy lingers.
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n")
        out = read_to_end(s, 20)
        check(out.startswith(b"HTTP/1.1 200 ") and out.count(b"HTTP/1.1") == 1 and b"path=/a " in out,
              "bytes past a Connection: close request: one answer (%r)" % out[:20])
        left = px.stats()["connections_active"]
        check(left == 1, "bytes past a Connection: close request: the proxy lingers (%d active)" % left)
        s.close()
        check(active_after(px, 0) == 0, "the lingering connection ends when the client closes")
    finally:
        px.stop()


class EarlyBackend:
    """A backend that answers each request as soon as its head arrived (keep-alive), as nginx
    does for 405/413/401, then reads and discards the body by its Content-Length and serves the
    next request on the connection. It records every request line it parsed."""

    def __init__(self):
        self.lst = socket.socket()
        self.lst.bind(("127.0.0.1", 0))
        self.lst.listen(16)
        self.port = self.lst.getsockname()[1]
        self.lines = []
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c = self.lst.accept()[0]
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.lines.append(head.split(b"\r\n")[0])
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                n = int(m.group(1)) if m else 0
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                while len(buf) < n:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                buf = buf[n:]
        except OSError:
            return

    def close(self):
        self.lst.close()
        for c in self.conns:
            c.close()


def early_answer_desync(be):
    """A backend answers a POST before its body arrived; the client sends the body afterwards.
    The rest of that body must never be parsed as a request of its own (a CL.0-style desync:
    a body holding a request would be forwarded as one): the answer says Connection: close and
    the proxy drains the body (lingering close), so nothing after the answer reaches a backend."""
    eb = EarlyBackend()
    px = Proxy(eb.port, "--workers", "1")
    try:
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
        junk = b"\x00not a request at all\r\n\r\n"
        for body in (smuggled, junk):
            s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
            s.sendall(b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body))
            first = b""
            while not first.endswith(b"\r\n\r\nok"):
                d = s.recv(65536)
                if not d:
                    break
                first += d
            s.sendall(body)  # the POST's body, by its Content-Length
            rest = read_to_end(s, 10)
            s.close()
            check(first.startswith(b"HTTP/1.1 200 ") and re.search(rb"(?i)\r\nconnection: close\r\n", first),
                  "an answer before the whole request body says Connection: close (%r)" % first[:120])
            check(rest == b"", "the rest of the body sent after an early answer gets no answer of its own (%r)"
                  % rest[:80])
        check(eb.lines == [b"POST /form HTTP/1.1"] * 2,
              "the backends saw only the two POSTs, nothing parsed from their bodies (%r)" % eb.lines)
        check(get_ok_via(px.port), "the proxy serves the next client")
    finally:
        px.stop()
        eb.close()


def get_ok_via(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    got = read_to_end(s, 10)
    s.close()
    return got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"ok")


def main():
    be = Backend()
    cases = (slowloris, endless_body, big_head_answered, body_413_while_sending, backend_stops_reading,
             early_answer_desync, linger_bounded, close_without_linger, max_connections, emfile,
             emfile_backend_connect, refill_backs_off, bad_configuration)
    only = sys.argv[2:]  # optional: the names of the cases to run
    for case in cases:
        if only and case.__name__ not in only:
            continue
        print("--", case.__name__, flush=True)
        case(be)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
