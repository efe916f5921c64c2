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
from http_proxy import FAILED, PASSED, Backend, check, read_to_end, stop_and_check  # noqa: E402

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
        check(sent <= 16 * 1024 * 1024, "the proxy stopped reading it early (%d MiB sent)" % (sent >> 20))
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


def main():
    be = Backend()
    for case in (slowloris, endless_body, max_connections, emfile, bad_configuration):
        print("--", case.__name__, flush=True)
        case(be)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
