#!/usr/bin/env python3
"""Backends given by host name, resolved at start and every dns_refresh (service discovery):
addresses that appear are added, those that vanish removed, a failed lookup keeps the last
answer, a name that never resolves is reported. The name is answered by a test resolver
(tests/support/fake_resolver.c, LD_PRELOADed) from a file this test rewrites; the backends
listen on 127.0.0.2-4, all loopback.

Usage: dns.py POOLPROXY_CLI FAKE_RESOLVER_SO"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, check, stop_and_check  # noqa: E402  (same directory)
from resilience import Faulty, get  # noqa: E402

CLI, SHIM = sys.argv[1], sys.argv[2]


def servers_on_one_port(ips):
    """A Faulty('ok') server on each ip, all on the same port (the port a name's answers share)."""
    for _ in range(50):
        s = socket.socket()
        s.bind((ips[0], 0))
        port = s.getsockname()[1]
        s.close()
        try:
            return port, [Faulty("ok", ip, port) for ip in ips]
        except OSError:
            continue
    raise RuntimeError("no common free port")


def main():
    work = tempfile.mkdtemp(prefix="pp-dns-")
    hosts = os.path.join(work, "hosts")
    err_path = os.path.join(work, "stderr.log")

    def answer(text):
        with open(hosts + ".tmp", "w") as f:
            f.write(text)
        os.rename(hosts + ".tmp", hosts)

    port, (s2, s3, s4) = servers_on_one_port(["127.0.0.2", "127.0.0.3", "127.0.0.4"])
    answer("svc.pp-test 127.0.0.2 127.0.0.3\n")
    env = dict(os.environ, LD_PRELOAD=SHIM, PP_FAKE_HOSTS=hosts,
               ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")
    with open(err_path, "w") as err:
        p = subprocess.Popen([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2",
                              "--backend", "svc.pp-test:%d" % port, "--backend", "never.pp-test:%d" % port,
                              "--dns-refresh", "200ms"], stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    proxy = int(p.stdout.readline().rsplit(":", 1)[1])

    def log():
        return open(err_path).read()

    def wait_for(pattern, count=1, limit=10):
        deadline = time.time() + limit
        while time.time() < deadline:
            if len(re.findall(pattern, log())) >= count:
                return True
            time.sleep(0.05)
        return False

    added = r"event backend-added backend=\d+ address=svc\.pp-test:%d/127\.0\.0\.%d:%d "
    removed = r"event backend-removed backend=\d+ address=svc\.pp-test:%d/127\.0\.0\.%d:%d "
    check(wait_for(added % (port, 2, port)) and wait_for(added % (port, 3, port)),
          "at start the name's two addresses became backends")
    check(wait_for(r"dns: cannot resolve never\.pp-test:%d: .*no backend from it yet" % port),
          "a name that does not resolve is reported clearly")
    statuses = [get(proxy, "/a%d" % i)[0] for i in range(20)]
    check(statuses == [200] * 20 and s2.requests > 0 and s3.requests > 0 and s4.requests == 0,
          "requests go to both answers (%d, %d, %d)" % (s2.requests, s3.requests, s4.requests))

    answer("svc.pp-test 127.0.0.3 127.0.0.4\n")  # .2 leaves the service, .4 joins it
    check(wait_for(added % (port, 4, port)) and wait_for(removed % (port, 2, port)),
          "a refresh added the new address and removed the vanished one")
    before2 = s2.requests
    statuses = [get(proxy, "/b%d" % i)[0] for i in range(20)]
    check(statuses == [200] * 20 and s2.requests == before2 and s4.requests > 0,
          "the removed address gets nothing, the added one takes requests (%d, %d)" % (s2.requests, s4.requests))

    answer("")  # the name stops resolving: the last answer stands
    check(wait_for(r"dns: cannot resolve svc\.pp-test:%d: .*keeping its last addresses" % port),
          "a failed lookup is reported once and keeps the last answer")
    time.sleep(0.5)
    check(len(re.findall(r"dns: cannot resolve svc", log())) == 1, "reported once, not on every refresh")
    check(len(re.findall(removed % (port, 3, port), log())) == 0, "and removes nothing")
    statuses = [get(proxy, "/c%d" % i)[0] for i in range(10)]
    check(statuses == [200] * 10, "requests are still served")
    answer("svc.pp-test 127.0.0.3 127.0.0.4\n")
    check(wait_for(r"dns: svc\.pp-test:%d resolves again" % port), "its recovery is reported")

    # Answers that rotate (round-robin DNS handing out a different subset each time) and answers
    # that churn (pods replaced, new addresses each time) must not use up the backend ids: a
    # removed backend does not count toward the 1024 limit, and an address that comes back gets
    # its old id. 200 addresses an answer; 127.0.0.3 (a real server) in every one.
    def subset(net):
        return ["127.0.%d.%d" % (net, i) for i in range(1, 200)] + ["127.0.0.3"]

    def answers_applied(addrs, before):
        """The log shows every address of this answer added, or re-added, after offset `before`."""
        deadline = time.time() + 20
        while time.time() < deadline:
            text = log()[before:]
            if all(("svc.pp-test:%d/%s:%d " % (port, a, port)) in text for a in addrs if a != "127.0.0.3"):
                return True
            time.sleep(0.05)
        return False

    rotating_ok = True
    for step in range(8):  # 8 x 199 additions: beyond 1024 if removed ids counted
        addrs = subset(10 + step % 2)
        before = len(log())
        answer("svc.pp-test " + " ".join(addrs) + "\n")
        rotating_ok = rotating_ok and answers_applied(addrs, before)
    check(rotating_ok and "cannot add" not in log(), "rotating answers keep being applied (%s)"
          % (re.findall(r"dns: .*cannot add.*", log())[:1] or "no error"))
    ids = {int(m) for m in re.findall(r"event backend-added backend=(\d+) address=svc", log())}
    check(max(ids) < 2 * 199 + 10, "an address that comes back gets its old id (highest id %d)" % max(ids))
    churn_ok = True
    for step in range(6):  # new addresses every time: 6 x 199 more ids, never 400 live at once
        addrs = subset(20 + step)
        before = len(log())
        answer("svc.pp-test " + " ".join(addrs) + "\n")
        churn_ok = churn_ok and answers_applied(addrs, before)
    check(churn_ok and "cannot add" not in log(), "churning answers keep being applied: removed ids do not count "
          "toward the limit (%s)" % (re.findall(r"dns: .*cannot add.*", log())[:1] or "no error"))
    statuses = [get(proxy, "/d%d" % i)[0] for i in range(5)]
    check(statuses == [200] * 5, "and requests are served (%s)" % statuses)

    stop_and_check(p)

    # Health checks of a name's backends send the name as configured as Host (never the display
    # name "name:port/ip:port", which strict virtual hosts refuse), or health_host when set.
    answer("svc.pp-test 127.0.0.2 127.0.0.3\n")
    for host_arg, expect in ((None, "svc.pp-test:%d" % port), ("health.example:81", "health.example:81")):
        for s in (s2, s3):
            s.strict_host = expect
            with s.lock:
                s.health_hosts = []
        with open(err_path, "w") as err:
            p = subprocess.Popen([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "1",
                                  "--backend", "svc.pp-test:%d" % port, "--dns-refresh", "200ms",
                                  "--health-check", "http", "--health-path", "/health",
                                  "--health-interval", "200ms", "--health-fall", "1"]
                                 + (["--health-host", host_arg] if host_arg else []),
                                 stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        p.stdout.readline()
        deadline = time.time() + 10
        while time.time() < deadline and min(len(s2.health_hosts), len(s3.health_hosts)) < 3:
            time.sleep(0.05)
        seen = set(s2.health_hosts + s3.health_hosts)
        check(len(s2.health_hosts) >= 3 and len(s3.health_hosts) >= 3 and seen == {expect},
              "health checks send Host %s (%s)" % (expect, sorted(seen, key=str)))
        check("backend-unhealthy" not in log(), "and the strict backends pass them")
        stop_and_check(p)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
