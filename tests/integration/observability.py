#!/usr/bin/env python3
"""Observability through the poolproxy CLI: the admin listener's /metrics checked by promtool
(Debian's prometheus package, unpacked by scripts/deps.sh --test), its counters against the
traffic this test sent, /stats and /healthz, and --access-log with one line per request.

Usage: observability.py POOLPROXY_CLI"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import Backend, FAILED, PASSED, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]
PROMTOOL_CACHE = "/var/cache/poolproxy-test/prometheus/usr/bin/promtool"
CLIENTS, REQUESTS = 20, 5  # keep-alive client connections x requests on each
LINE = re.compile(r'^\S+Z (127\.0\.0\.1:\d+) worker=\d+ "(GET|HEAD) (\S+)" (\d{3}) (127\.0\.0\.1:\d+) reused=([01]) '
                  r'queue_us=\d+ connect_us=\d+ first_byte_us=\d+ total_us=\d+ bytes_in=\d+ bytes_out=\d+$')


def promtool():
    for p in (os.environ.get("PROMTOOL", ""), shutil.which("promtool") or "", PROMTOOL_CACHE):
        if p and os.access(p, os.X_OK):
            return p
    return None


def admin_get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r.getheader("Content-Type"), body.decode()


def samples(text):
    """{'name{labels}': value} of the exposition text."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def total(series, name):
    return sum(v for k, v in series.items() if k == name or k.startswith(name + "{"))


def main():
    tool = promtool()
    check(tool is not None, "promtool found (PROMTOOL, PATH or %s; scripts/deps.sh --test unpacks it)" % PROMTOOL_CACHE)
    work = tempfile.mkdtemp(prefix="pp-obs-")
    access_log = os.path.join(work, "access.log")
    stderr_path = os.path.join(work, "stderr.log")
    be = Backend()
    with open(stderr_path, "w") as err:
        p = subprocess.Popen([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2", "--pool-max", "4",
                              "--backend", "127.0.0.1:%d" % be.port, "--admin-listen", "127.0.0.1:0",
                              "--access-log", access_log],
                             stdout=subprocess.PIPE, stderr=err, text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on "), line
    port = int(line.rsplit(":", 1)[1])
    admin = None
    for _ in range(100):  # the admin address is logged before "listening on"; bounded wait anyway
        m = re.search(r"admin listener on 127\.0\.0\.1:(\d+)", open(stderr_path).read())
        if m:
            admin = int(m.group(1))
            break
        time.sleep(0.05)
    check(admin is not None, "the CLI logs the admin listener's bound address")

    # The traffic: CLIENTS keep-alive connections x REQUESTS, one of each connection's a 404.
    statuses = {}
    for c in range(CLIENTS):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for r in range(REQUESTS):
            method = "HEAD" if r == 1 else "GET"
            conn.request(method, "/client%d/req%d" % (c, r) if r != REQUESTS - 1 else "/missing")
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
        conn.close()
    n = CLIENTS * REQUESTS
    check(statuses == {200: n - CLIENTS, 404: CLIENTS}, "every request answered, 404 for /missing (%s)" % statuses)

    # /metrics: valid for promtool, and its numbers are the traffic's. A worker counts a request
    # just after its response went out, so the last ones may take a moment to show.
    for _ in range(100):
        status, ctype, text = admin_get(admin, "/metrics")
        if total(samples(text), "poolproxy_requests_total") >= n:
            break
        time.sleep(0.05)
    check(status == 200 and ctype.startswith("text/plain; version=0.0.4"), "/metrics: 200, exposition format 0.0.4")
    if tool:
        lint = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
        check(lint.returncode == 0, "promtool check metrics accepts /metrics %s" % (lint.stdout + lint.stderr).strip())
    s = samples(text)
    ok2xx = s.get('poolproxy_responses_total{class="2xx"}', -1)
    check(total(s, "poolproxy_requests_total") == n, "requests_total summed over workers = %d sent" % n)
    check(ok2xx == n - CLIENTS and s.get('poolproxy_responses_total{class="4xx"}') == CLIENTS,
          "responses_total: %d 2xx and %d 4xx" % (n - CLIENTS, CLIENTS))
    check(s.get("poolproxy_request_duration_seconds_count") == n, "request_duration_seconds_count = %d" % n)
    check(s.get('poolproxy_request_duration_seconds_bucket{le="+Inf"}') == n, "the +Inf bucket holds every request")
    check(s.get("poolproxy_pool_hits_total", 0) + s.get("poolproxy_pool_misses_total", 0) == n,
          "pool hits + misses = %d requests" % n)
    opened = s.get('poolproxy_backend_connections_opened_total{backend="127.0.0.1:%d",id="0",group="default"}' % be.port, -1)
    check(0 < opened <= 4 and be.connections == opened,
          "backend connections: %d opened by the proxy, %d seen by the backend, pool_max 4" % (opened, be.connections))
    check(s.get("poolproxy_pool_hits_total", 0) >= n - 4, "at least %d requests reused a pooled connection" % (n - 4))
    check(total(s, "poolproxy_connections_accepted_total") == CLIENTS, "connections_accepted_total = %d" % CLIENTS)

    # /stats says the same in JSON; /healthz is up.
    status, ctype, body = admin_get(admin, "/stats")
    stats = json.loads(body) if status == 200 else {}
    check(ctype == "application/json" and stats.get("proxy", {}).get("requests") == n,
          "/stats is JSON with proxy.requests = %d" % n)
    check(stats.get("latency_us", {}).get("request", {}).get("count") == n, "/stats latency_us.request.count = %d" % n)
    check(len(stats.get("workers", [])) == 2 and len(stats.get("backends", [])) == 1, "/stats lists 2 workers, 1 backend")
    check(admin_get(admin, "/healthz")[:3:2] == (200, "ok\n"), "/healthz: 200 ok")
    check(admin_get(admin, "/other")[0] == 404, "an unknown admin path: 404")

    # The access log: one line per request, in the documented format.
    lines = []
    for _ in range(100):
        lines = open(access_log).read().splitlines()
        if len(lines) >= n:
            break
        time.sleep(0.05)
    check(len(lines) == n, "access log: %d lines for %d requests" % (len(lines), n))
    parsed = [LINE.match(x) for x in lines]
    check(all(parsed), "every access-log line matches the documented format%s" %
          ("" if all(parsed) else ": " + next(x for x, m in zip(lines, parsed) if not m)))
    if all(parsed):
        check(sum(1 for m in parsed if m.group(4) == "404") == CLIENTS, "404 lines = 404 answers")
        check(sum(1 for m in parsed if m.group(2) == "HEAD") == CLIENTS, "HEAD lines = HEAD requests")
        check(sum(1 for m in parsed if m.group(6) == "1") >= n - 4, "lines say reused=1 for pooled connections")

    stop_and_check(p)
    shutil.rmtree(work, ignore_errors=True)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
