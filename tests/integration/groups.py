#!/usr/bin/env python3
"""Backend groups and routes (http mode) through the poolproxy CLI, with real sockets: which
backend a request reaches (each backend answers its name, the target and the Host it got),
per-group pool limits and health checks, per-backend Host, configuration errors, and a SIGHUP
that changes a group's backends. Every wait is bounded."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import CLI, FAILED, PASSED, RawServer, check, stop_and_check  # noqa: E402


class Echo(RawServer):
    """HTTP/1.1 keep-alive backend answering "NAME TARGET HOST"; /slow takes `delay` seconds;
    /health answers `health`. Counts connections, paths seen and requests in flight."""

    def __init__(self, name, delay=0.5, health=200):
        super().__init__()
        self.name, self.delay, self.health = name, delay, health
        self.conns = self.active = self.max_active = 0
        self.paths = []
        self.start()

    def serve(self, c):
        with self.lock:
            self.conns += 1
        buf = b""
        while True:
            r = self.read_head(c, buf)
            if r is None:
                return
            head, buf, path = r
            host = ""
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"host":
                    host = v.strip().decode()
            with self.lock:
                self.paths.append(path)
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            if path.startswith("/slow"):
                time.sleep(self.delay)
            with self.lock:
                self.active -= 1
            status = self.health if path == "/health" else 200
            body = ("%s %s %s" % (self.name, path, host)).encode()
            try:
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (status, len(body), body))
            except OSError:
                return


class Cli:
    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line + self.p.stderr.read()
        self.port = int(line.rsplit(":", 1)[1])
        self.err = []
        threading.Thread(target=self.drain_stderr, daemon=True).start()

    def drain_stderr(self):
        for line in self.p.stderr:
            self.err.append(line)

    def stop(self):
        stop_and_check(self.p)


def get(port, path="/", host=None, fields=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = dict(fields or {})
    if host:
        h["Host"] = host
    c.request("GET", path, headers=h)
    r = c.getresponse()
    body = r.read().decode(errors="replace")
    c.close()
    return r.status, body


def routes():
    a, b, c = Echo("A"), Echo("B"), Echo("C")
    px = Cli("--backend", "127.0.0.1:%d" % b.port,
             "--backend", "127.0.0.1:%d,group=api" % a.port,
             "--backend", "127.0.0.1:%d,group=static" % c.port,
             "--route", "host=api.example.com -> api",
             "--route", "path=/static/ strip_prefix -> static",
             "--route", "header=X-Canary:1 -> api",
             "--route", "host=*.img.example.com host_rewrite=images.internal -> static",
             "--route", "method=DELETE -> default")
    try:
        check(get(px.port, "/x", "api.example.com")[1].startswith("A /x api.example.com"), "routes: Host picks the api group")
        check(get(px.port, "/x", "API.Example.COM:8080")[1].startswith("A "), "routes: Host matched without case and port")
        check(get(px.port, "/static/app.css", "www.example.com")[1] == "C /app.css www.example.com",
              "routes: a path prefix picks the static group and is stripped")
        check(get(px.port, "/staticx", "www.example.com")[1].startswith("B "), "routes: a prefix is a prefix of the path, not of any text")
        check(get(px.port, "/y", "www.example.com", {"X-Canary": "1"})[1].startswith("A "), "routes: a header's value picks a group")
        check(get(px.port, "/y", "www.example.com", {"X-Canary": "2"})[1].startswith("B "), "routes: another value does not")
        check(get(px.port, "/p.png", "cdn.img.example.com")[1] == "C /p.png images.internal",
              "routes: *.suffix matches a name below it, and the Host sent is rewritten")
        check(get(px.port, "/p.png", "img.example.com")[1].startswith("B "), "routes: *.suffix does not match the suffix itself")
        check(get(px.port, "/z", "www.example.com")[1] == "B /z www.example.com", "routes: no match goes to the default group")
        check(a.conns >= 1 and b.conns >= 1 and c.conns >= 1, "routes: each group's backend was connected to")
    finally:
        px.stop()


def backend_host_and_pool():
    """host= per backend; pool_max per group, and a full group holding back nobody else's."""
    b, d, s = Echo("B"), Echo("D"), Echo("S", delay=0.5)
    px = Cli("--queue-timeout", "20s",
             "--backend", "127.0.0.1:%d" % b.port,
             "--backend", "127.0.0.1:%d,group=named,host=d.internal" % d.port,
             "--group", "slow pool_max=1",
             "--backend", "127.0.0.1:%d,group=slow" % s.port,
             "--route", "host=named.example.com -> named",
             "--route", "host=slow.example.com -> slow")
    try:
        check(get(px.port, "/h", "named.example.com")[1] == "D /h d.internal", "backend host=: the backend gets its own Host")
        done = []
        lock = threading.Lock()

        def one(name, host, path):
            st, body = get(px.port, path, host, timeout=30)
            with lock:
                done.append((name, st, body))

        slow = [threading.Thread(target=one, args=("slow", "slow.example.com", "/slow")) for _ in range(3)]
        for t in slow:
            t.start()
        deadline = time.time() + 10
        while s.active == 0 and time.time() < deadline:
            time.sleep(0.01)
        other = threading.Thread(target=one, args=("default", "www.example.com", "/quick"))
        other.start()
        other.join(20)
        for t in slow:
            t.join(30)
        names = [n for n, _, _ in done]
        check(len(done) == 4 and all(st == 200 for _, st, _ in done), "pool_max per group: every request answered 200")
        check(s.max_active == 1 and s.conns == 1, "pool_max per group: the slow group's backend saw one connection, "
              "one request at a time (max %d, conns %d)" % (s.max_active, s.conns))
        check("default" in names and names.index("default") < 3,
              "queues per group: a request to another group is not queued behind the full group (%s)" % names)
    finally:
        px.stop()


def health_per_group():
    b, h = Echo("B"), Echo("H", health=503)
    px = Cli("--backend", "127.0.0.1:%d" % b.port,
             "--group", "checked health_check=http health_path=/health health_interval=200ms health_timeout=100ms "
             "health_fall=1",
             "--backend", "127.0.0.1:%d,group=checked" % h.port,
             "--route", "path=/checked -> checked")
    try:
        deadline = time.time() + 10
        while "/health" not in h.paths and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # several checks, each failing: health_fall=1 marks it unhealthy
        st, _ = get(px.port, "/checked", "www.example.com")
        check(st == 503, "health per group: the checked group's only backend fails its check: 503 (got %d)" % st)
        st, body = get(px.port, "/other", "www.example.com")
        check(st == 200 and body.startswith("B "), "health per group: the default group still answers")
        check("/health" not in b.paths, "health per group: the default group (no health_check) is never checked")
    finally:
        px.stop()


def timeout_per_group():
    """response_timeout per group: one kind of deadline with two lengths on the same workers."""
    b, q = Echo("B", delay=1.0), Echo("Q", delay=1.0)
    px = Cli("--response-timeout", "20s", "--backend", "127.0.0.1:%d" % b.port,
             "--group", "quick response_timeout=200ms retries=0",
             "--backend", "127.0.0.1:%d,group=quick" % q.port,
             "--route", "header=X-Quick -> quick")
    try:
        out = {}

        def one(name, fields):
            out[name] = get(px.port, "/slow", "www.example.com", fields, timeout=30)

        ts = [threading.Thread(target=one, args=("default", {})),
              threading.Thread(target=one, args=("quick", {"X-Quick": "1"}))]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        check(out.get("quick", (0,))[0] == 504, "response_timeout per group: the quick group's slow answer is a 504 (%s)" %
              (out.get("quick"),))
        check(out.get("default", (0, ""))[0] == 200 and out["default"][1].startswith("B "),
              "response_timeout per group: the default group waits for it (%s)" % (out.get("default"),))
    finally:
        px.stop()


class OneShot(RawServer):
    """Answers the first request of each connection (keep-alive), then closes the connection
    when the next request arrives, unanswered: the keep-alive race a pooled connection meets."""

    def __init__(self):
        super().__init__()
        self.conns = 0
        self.start()

    def serve(self, c):
        with self.lock:
            self.conns += 1
        r = self.read_head(c, b"")
        if r is None:
            return
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        self.read_head(c, r[1])
        c.close()


def retry_in_group():
    """A reused connection that died is retried on the group's own backend, with the group's retries."""
    o, b = OneShot(), Echo("B")
    px = Cli("--workers", "1", "--retries", "0", "--backend", "127.0.0.1:%d" % b.port,
             "--group", "api retries=2", "--backend", "127.0.0.1:%d,group=api" % o.port,
             "--route", "host=api.example.com -> api")
    try:
        got = [get(px.port, "/", "api.example.com")[0] for _ in range(4)]
        check(got == [200] * 4 and o.conns >= 2,
              "retry in a group: a dead pooled connection is retried on the group's one backend (%s)" % got)
    finally:
        px.stop()


def host_forms():
    """Two Host fields are refused; an absolute-form target routes (and goes upstream) by its authority."""
    b, a, c = Echo("B"), Echo("A"), Echo("C")
    px = Cli("--backend", "127.0.0.1:%d" % b.port,
             "--backend", "127.0.0.1:%d,group=api" % a.port,
             "--backend", "127.0.0.1:%d,group=static" % c.port,
             "--route", "host=api.example.com -> api",
             "--route", "path=/static/ strip_prefix -> static")
    try:
        out = raw_request(px.port, b"GET / HTTP/1.1\r\nHost: www.example.com\r\nHost: api.example.com\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 400"), "two Host fields: 400 (%r)" % out[:40])
        out = raw_request(px.port, b"GET http://api.example.com/x HTTP/1.1\r\nHost: public.example.com\r\n"
                          b"Connection: close\r\n\r\n")
        check(out.endswith(b"A /x api.example.com"), "absolute form: routed by its authority, sent origin-form (%r)" % out[-40:])
        out = raw_request(px.port, b"GET http://www.example.com/static/a.css HTTP/1.1\r\nHost: www.example.com\r\n"
                          b"Connection: close\r\n\r\n")
        check(out.endswith(b"C /a.css www.example.com"), "absolute form: strip_prefix applies (%r)" % out[-40:])
    finally:
        px.stop()


def raw_request(port, data):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    out = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            out += d
    except OSError:
        pass
    sock.close()
    return out


def lending_per_group():
    """3 workers: a group's one connection, idle on one worker, is lent to the worker whose
    client needs it (not asked of a worker with idle connections of another group only)."""
    d, b = Echo("D"), Echo("B")
    px = Cli("--workers", "3", "--exact-balance", "on", "--queue-timeout", "3s", "--pool-min-idle", "3",
             "--backend", "127.0.0.1:%d" % d.port, "--group", "b pool_max=1 pool_min_idle=0",
             "--backend", "127.0.0.1:%d,group=b" % b.port, "--route", "host=b.example.com -> b")
    try:
        got = [get(px.port, "/", "b.example.com")[0] for _ in range(9)]
        check(got == [200] * 9, "lending per group: every request to the pool_max=1 group answered (%s)" % got)
    finally:
        px.stop()


def queue_per_group():
    """queue_max is each group's: a full group's waiters do not take the default group's places."""
    d, s = Echo("D", delay=0.3), Echo("S", delay=1.0)
    px = Cli("--queue-max", "3", "--queue-timeout", "20s", "--pool-max", "1", "--backend", "127.0.0.1:%d" % d.port,
             "--backend", "127.0.0.1:%d,group=slow" % s.port, "--route", "host=slow.example.com -> slow")
    out, lock = [], threading.Lock()

    def one(tag, host):
        st = get(px.port, "/slow", host, timeout=30)[0]
        with lock:
            out.append((tag, st))

    try:
        ts = [threading.Thread(target=one, args=("slow", "slow.example.com")) for _ in range(4)]
        for t in ts:
            t.start()
        deadline = time.time() + 10
        while s.active == 0 and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # the other three queued behind it
        fs = [threading.Thread(target=one, args=("default", "www.example.com")) for _ in range(2)]
        for t in fs:
            t.start()
        for t in fs + ts:
            t.join(30)
        mine = [st for tag, st in out if tag == "default"]
        check(mine == [200, 200], "queue_max per group: the default group queues though the slow group's queue is full (%s)" % out)
    finally:
        px.stop()


def refused(args, needle, what):
    p = subprocess.run([CLI, "--listen", "127.0.0.1:0"] + args, capture_output=True, text=True, timeout=20)
    check(p.returncode == 2 and needle in p.stderr, "bad configuration: %s (exit %d: %s)" % (what, p.returncode,
                                                                                                p.stderr.strip()[:200]))


def bad_configuration():
    be = "127.0.0.1:9"
    refused(["--mode", "http", "--backend", be, "--route", "host=x -> nope"], "no backend group named 'nope'",
            "a route to an unknown group")
    refused(["--mode", "http", "--backend", be, "--route", "host=x"], "option 'route'", "a route without '->'")
    refused(["--mode", "http", "--backend", be, "--route", "host=a/b -> default"], "option 'route'",
            "a route whose host is not a name")
    refused(["--mode", "tcp", "--backend", be, "--backend", be + ",group=g", "--route", "-> g"], "needs mode http",
            "a route in tcp mode")
    refused(["--mode", "http", "--backend", be, "--group", "api workers=2"], "option 'group'",
            "a group setting a proxy-wide option")
    refused(["--mode", "http", "--backend", be, "--group", "api pool_max=x"], "option 'pool_max'",
            "a group option with a bad value, named")
    refused(["--mode", "http", "--backend", be, "--group", "empty"], "group 'empty' has no backend", "a group without a backend")
    refused(["--mode", "http", "--backend", be + ",group=bad name"], "option 'backend'", "a bad group name")
    refused(["--mode", "http", "--backend", be + ",group=a"], "no route", "only named groups and no route")
    refused(["--mode", "http", "--backend", be, "--group", "g pool_max=2 pool_min_idle=3", "--backend", be + ",group=g"],
            "group 'g': option 'pool_min_idle'", "a group's options checked against each other")
    refused(["--mode", "tcp", "--backend", be, "--backend", be + ",group=g"], "only an sni_route or a connect hook",
            "a named group in tcp mode without an sni_route or a connect hook")
    refused(["--mode", "http", "--backend", be, "--route", "host_rewrite=a,b -> default"], "host_rewrite",
            "a host_rewrite that is not a host")
    refused(["--mode", "http", "--backend", be, "--route", "method=get -> default"], "case-sensitive",
            "a lower-case method (it could never match)")
    refused(["--mode", "http", "--backend", be, "--route", "header=X(y:1 -> default"], "not a field name",
            "a header that is not a field name")


def wait_err(px, before, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if any(text in line for line in px.err[before:]):
            return True
        time.sleep(0.05)
    return False


def reload_groups():
    """SIGHUP takes up groups, backends and routes: a backend replaced in a group, a group and a
    route added, a group whose options changed replaced (its waiting requests served by the
    new one), a group and its route removed, an option that needs a restart named, and a
    configuration that could not start refused whole."""
    a1, a2, b, n = Echo("A1"), Echo("A2", delay=1.5), Echo("B"), Echo("N")
    d = tempfile.mkdtemp()
    conf = os.path.join(d, "groups.conf")

    def write(*lines):
        with open(conf, "w") as f:
            f.write("mode = http\nbackend = 127.0.0.1:%d\n" % b.port)
            f.write("".join(line + "\n" for line in lines))

    def reload(expect):
        before = len(px.err)
        px.p.send_signal(signal.SIGHUP)
        return wait_err(px, before, expect), px.err[before:]

    write("group = api lb=least_conn pool_max=8", "backend = 127.0.0.1:%d,group=api" % a1.port,
          "route = host=api.example.com -> api")
    px = Cli("--config", conf)
    try:
        check(get(px.port, "/", "api.example.com")[1].startswith("A1 "), "config file: a group and a route")
        write("group = api lb=least_conn pool_max=8", "backend = 127.0.0.1:%d,group=api" % a2.port,
              "route = host=api.example.com -> api")
        ok, err = reload("0 replaced, 0 removed; 1 backend(s) added, 1 removed")
        check(ok, "SIGHUP: a backend replaced in a group, logged (%s)" % err[-2:])
        check(get(px.port, "/", "api.example.com")[1].startswith("A2 "), "SIGHUP: the api group's new backend takes its requests")
        check(get(px.port, "/", "www.example.com")[1].startswith("B "), "SIGHUP: the default group is unchanged")

        # A new group with its route, in front of the others.
        write("group = api lb=least_conn pool_max=8", "backend = 127.0.0.1:%d,group=api" % a2.port,
              "group = news", "backend = 127.0.0.1:%d,group=news" % n.port,
              "route = path=/news/ strip_prefix -> news", "route = host=api.example.com -> api")
        ok, err = reload("1 group(s) added, 0 replaced")
        check(ok and any("group 'news' added" in line for line in err), "SIGHUP: a new group is added (%s)" % err[-2:])
        check(get(px.port, "/news/today", "api.example.com")[1] == "N /today api.example.com",
              "SIGHUP: its new route is in force, ahead of the older ones")
        check(get(px.port, "/x", "api.example.com")[1].startswith("A2 "), "SIGHUP: the routes kept still match")

        # The api group's options change (pool_max 8 -> 1): it is replaced. A request holds its
        # only connection (A2 answers /slow after 1.5 s) and another waits for one; once
        # replaced, the waiting one is served by the new group's connection at once.
        results = {}

        def ask(key, path):
            t0 = time.time()
            results[key] = (get(px.port, path, "api.example.com")[1], time.time() - t0)

        write("group = api lb=least_conn pool_max=1", "backend = 127.0.0.1:%d,group=api" % a2.port,
              "group = news", "backend = 127.0.0.1:%d,group=news" % n.port,
              "route = path=/news/ strip_prefix -> news", "route = host=api.example.com -> api")
        ok, err = reload("0 group(s) added, 1 replaced")
        check(ok and any("group 'api' replaced" in line for line in err), "SIGHUP: a group whose options changed is replaced (%s)" % err[-2:])
        holder = threading.Thread(target=ask, args=("held", "/slow/1"))
        holder.start()
        deadline = time.time() + 5
        while a2.active < 1 and time.time() < deadline:
            time.sleep(0.01)
        waiter = threading.Thread(target=ask, args=("waited", "/w"))
        waiter.start()
        time.sleep(0.3)  # it waits (pool_max 1), as long as the slow request holds the connection
        still_waiting = "waited" not in results
        write("group = api lb=least_conn pool_max=1 response_timeout=20s", "backend = 127.0.0.1:%d,group=api" % a2.port,
              "group = news", "backend = 127.0.0.1:%d,group=news" % n.port,
              "route = path=/news/ strip_prefix -> news", "route = host=api.example.com -> api")
        ok, err = reload("1 replaced")
        waiter.join(10)
        holder.join(10)
        check(still_waiting and ok, "SIGHUP while a request waits for the group's only connection (%s)" % err[-2:])
        waited = results.get("waited", ("", 99))
        check(waited[0].startswith("A2 /w") and waited[1] < 1.4,
              "the waiting request went on with the new group and was served before the slow one ended (%r)" % (waited,))
        check(results.get("held", ("",))[0].startswith("A2 /slow/1"), "the request in flight on the old group finished")

        # The news group and its route go; a restart-only option is named; routes to news fall
        # through to the default group.
        write("group = api lb=least_conn pool_max=1 response_timeout=20s", "backend = 127.0.0.1:%d,group=api" % a2.port,
              "route = host=api.example.com -> api", "client_header_timeout = 7s")
        ok, err = reload("1 removed; 0 backend(s) added, 1 removed")
        check(ok and any("group 'news' removed" in line for line in err), "SIGHUP: a group no longer named is removed (%s)" % err[-3:])
        check(any("option client_header_timeout changed (10000ms -> 7000ms): restart" in line for line in err),
              "SIGHUP: an option that needs a restart is named (%s)" % err[-3:])
        check(get(px.port, "/news/today", "www.example.com")[1].startswith("B /news/today"),
              "SIGHUP: its route is gone with it")

        # A configuration that could not start (a route to a group nobody declared): nothing
        # of it is applied, not even its backend changes.
        write("route = host=api.example.com -> nowhere")
        ok, err = reload("nothing changed")
        check(ok and any("no backend group named 'nowhere'" in line for line in err),
              "SIGHUP: an invalid configuration is refused whole, with the reason (%s)" % err[-2:])
        check(get(px.port, "/", "api.example.com")[1].startswith("A2 "), "SIGHUP: and the api group still serves")
    finally:
        px.stop()


def main():
    for case in (routes, backend_host_and_pool, health_per_group, timeout_per_group, retry_in_group, host_forms,
                 lending_per_group, queue_per_group, bad_configuration, reload_groups):
        if len(sys.argv) > 2 and case.__name__ not in sys.argv[2:]:
            continue
        try:
            case()
        except Exception as e:  # a case that breaks is a failure, and the others still run
            check(False, "%s raised %r" % (case.__name__, e))
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
