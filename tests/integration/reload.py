#!/usr/bin/env python3
"""SIGHUP reload through the poolproxy CLI: under keep-alive load, the config file changes (a
backend removed, one re-weighted, one added, an option changed, then the default group's
options) and the CLI re-reads it. No
request fails and no client connection drops; the removed backend gets nothing new, the added
one takes requests; an option that needs a restart is named; a file that does not parse changes
nothing.

Usage: reload.py POOLPROXY_CLI"""
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, check, stop_and_check  # noqa: E402  (same directory)
from resilience import Faulty  # noqa: E402

CLI = sys.argv[1]
CLIENTS = 4
RELOADS = 120


class Load:
    """CLIENTS keep-alive connections sending GETs until stopped (bounded in count and time)."""

    def __init__(self, port, clients=CLIENTS, pause=0.002):
        self.port, self.stop, self.ok, self.failed, self.reconnects = port, False, 0, [], 0
        self.pause = pause
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sock = None
        deadline = time.time() + 60
        for i in range(20000):
            if self.stop or time.time() > deadline:
                break
            try:
                c.request("GET", "/load%d" % i)
                r = c.getresponse()
                r.read()
                with self.lock:
                    if r.status == 200:
                        self.ok += 1
                    else:
                        self.failed.append(r.status)
                    if sock is not None and c.sock is not sock:
                        self.reconnects += 1  # the proxy closed our connection
                    sock = c.sock
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failed.append(repr(e))
                c.close()
            time.sleep(self.pause)
        c.close()

    def finish(self):
        self.stop = True
        for t in self.threads:
            t.join(15)


def main():
    a, b, c = Faulty("ok"), Faulty("ok"), Faulty("ok")
    work = tempfile.mkdtemp(prefix="pp-reload-")
    conf = os.path.join(work, "poolproxy.conf")
    err_path = os.path.join(work, "stderr.log")

    def write_conf(text):
        with open(conf + ".tmp", "w") as f:
            f.write(text)
        os.rename(conf + ".tmp", conf)

    write_conf("mode = http\nbackend = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\npool_max = 8\n" % (a.port, b.port))
    with open(err_path, "w") as err:
        p = subprocess.Popen([CLI, "--config", conf, "--listen", "127.0.0.1:0", "--workers", "2"],
                             stdout=subprocess.PIPE, stderr=err, text=True)
    port = int(p.stdout.readline().rsplit(":", 1)[1])

    def wait_log(pattern, limit=10):
        deadline = time.time() + limit
        while time.time() < deadline:
            m = re.search(pattern, open(err_path).read())
            if m:
                return m
            time.sleep(0.05)
        return None

    load = Load(port)
    time.sleep(0.5)
    check(a.requests > 0 and b.requests > 0 and c.requests == 0, "before: a and b serve, c is not configured")

    write_conf("mode = http\nbackend = 127.0.0.1:%d,weight=3\nbackend = 127.0.0.1:%d\npool_max = 8\n"
               "client_header_timeout = 9s\n" % (b.port, c.port))
    p.send_signal(signal.SIGHUP)
    check(wait_log(r"reload: 0 group\(s\) added, 0 replaced, 0 removed; 1 backend\(s\) added, 1 removed, 1 re-weighted") is not None,
          "SIGHUP: c added, a removed, b re-weighted")
    check(wait_log(r"reload: option client_header_timeout changed \(10000ms -> 9000ms\): restart to apply it") is not None,
          "an option that needs a restart is named")
    a_at_reload = a.requests
    c_at_reload = c.requests
    time.sleep(1.0)
    check(a.requests - a_at_reload <= CLIENTS, "the removed backend gets nothing new (%d -> %d; in flight at most %d)"
          % (a_at_reload, a.requests, CLIENTS))
    check(c.requests > c_at_reload, "the added backend takes requests (%d)" % c.requests)

    # The default group's options change (pool_max is one a group may set): the group is
    # replaced, its backends added anew under it and the old ones removed, under the load.
    write_conf("mode = http\nbackend = 127.0.0.1:%d,weight=3\nbackend = 127.0.0.1:%d\npool_max = 9\n"
               "client_header_timeout = 9s\n" % (b.port, c.port))
    p.send_signal(signal.SIGHUP)
    check(wait_log(r"reload: group 'default' replaced") is not None and
          wait_log(r"reload: 0 group\(s\) added, 1 replaced, 0 removed; 2 backend\(s\) added, 2 removed") is not None,
          "SIGHUP: pool_max changed, the default group is replaced with its two backends")
    b_at, c_at = b.requests, c.requests
    time.sleep(1.0)
    check(b.requests > b_at and c.requests > c_at, "both backends serve in the new group (%d, %d more)"
          % (b.requests - b_at, c.requests - c_at))

    write_conf("mode = http\nbackend = nowhere\n")
    p.send_signal(signal.SIGHUP)
    check(wait_log(r"reload: the configuration does not parse; nothing changed") is not None,
          "a file that does not parse changes nothing")
    c_before = c.requests
    time.sleep(0.5)
    check(c.requests > c_before, "and the proxy goes on serving")

    load.finish()
    check(load.ok > 100 and not load.failed, "%d requests across the reloads, none failed %s" %
          (load.ok, load.failed[:5]))
    check(load.reconnects == 0, "no client connection was dropped (%d reconnects)" % load.reconnects)

    # Reloads in a row under a load that queues (8 clients, one connection per backend): each
    # swaps a backend of the kept group or changes pool_max (the group replaced, its waiters
    # moved). A worker may serve a session before it has been told of a reload; none may be
    # refused for it ("no backend available": the old backend removed, or the old group's).
    confs = ["backend = 127.0.0.1:%d\nbackend = 127.0.0.1:%d\npool_max = %d\n" % (b.port, x.port, m)
             for x, m in ((c, 1), (a, 1), (a, 2), (c, 2))]
    load = Load(port, clients=8, pause=0)
    done = 0
    for i in range(RELOADS):
        before = len(re.findall(r"reload: \d+ group", open(err_path).read()))
        write_conf("mode = http\nclient_header_timeout = 9s\n" + confs[i % 4])
        p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and len(re.findall(r"reload: \d+ group", open(err_path).read())) == before:
            time.sleep(0.005)
        done += len(re.findall(r"reload: \d+ group", open(err_path).read())) > before
        time.sleep(0.02)
    load.finish()
    check(done == RELOADS, "%d of %d reloads under a queueing load applied" % (done, RELOADS))
    check(load.ok > 100 and not load.failed, "%d requests across them, none failed %s" % (load.ok, load.failed[:5]))
    stop_and_check(p)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
