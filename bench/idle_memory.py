#!/usr/bin/env python3
"""Memory per idle keep-alive client connection: N clients each send one request over a
keep-alive connection and stay connected; the proxy's RSS growth over N is the figure. The same
for HAProxy and nginx when given (--peers), each proxying to one nginx-like backend in-process.
Not a test: a number for docs/BENCHMARKS.md.

  idle_memory.py CLI [--conns 8000] [--peers]
"""
import argparse
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, rss_kib, wait_port

BODY = b"x" * 120




def children(pid):
    try:
        return [int(p) for p in open("/proc/%d/task/%d/children" % (pid, pid)).read().split()]
    except OSError:
        return []






def hold(port, n):
    """Opens n keep-alive connections, one request each, answers read; returns the sockets."""
    socks = []
    req = b"GET / HTTP/1.1\r\nHost: m\r\n\r\n"
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(req)
        socks.append(s)
        if len(socks) % 500 == 0:
            drain(socks[-500:])
    if len(socks) % 500:
        drain(socks[-(len(socks) % 500):])
    return socks


def drain(socks):
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    left = set(socks)
    deadline = time.time() + 30
    while left and time.time() < deadline:
        for key, _ in sel.select(1):
            try:
                d = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            if b"\r\n\r\n" in d or not d:
                sel.unregister(key.fileobj)
                left.discard(key.fileobj)
    if left:
        sys.exit("idle_memory: %d responses missing" % len(left))


def measure(name, cmd, port, n, backend_port, workdir):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        pids = [p.pid] + children(p.pid)
        socks = hold(port, 20)  # warm: first allocations (buffers, pools) out of the way
        time.sleep(0.5)
        before = rss_kib(pids)
        socks += hold(port, n)
        time.sleep(1)
        after = rss_kib(pids)
        for s in socks:
            s.close()
    finally:  # also when a wait gives up: no proxy is left running
        p.terminate()
        p.wait(10)
    per = (after - before) * 1024 / n
    print("%-10s %6d idle keep-alive connections: RSS %d -> %d KiB, %.0f bytes per connection" %
          (name, n, before, after, per), flush=True)
    return per


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("--conns", type=int, default=8000)
    ap.add_argument("--peers", action="store_true", help="also HAProxy and nginx")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    w = tempfile.mkdtemp(prefix="pp-mem-")
    be = free_port()
    os.makedirs(w + "/tmp")
    common = ("worker_processes 1; daemon off; user root; error_log %s/err.log; worker_rlimit_nofile 100000;"
              " events { worker_connections 30000; } http { access_log off; keepalive_requests 1000000;"
              " keepalive_timeout 600s; client_body_temp_path %s/tmp; proxy_temp_path %s/tmp;"
              " fastcgi_temp_path %s/tmp; uwsgi_temp_path %s/tmp; scgi_temp_path %s/tmp; " % ((w,) * 6))
    open(w + "/be.conf", "w").write(common + "server { listen 127.0.0.1:%d; location / { return 200 '%s'; } } }"
                                    % (be, BODY.decode()))
    backend = subprocess.Popen(["nginx", "-c", w + "/be.conf", "-g", "pid %s/be.pid;" % w],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(be)
    try:
        pp = free_port()
        measure("poolproxy", [a.cli, "--mode", "http", "--listen", "127.0.0.1:%d" % pp, "--backend",
                              "127.0.0.1:%d" % be, "--workers", "1", "--max-connections", "100000",
                              "--client-idle-timeout", "10m", "--pool-max", "64"], pp, a.conns, be, w)
        if a.peers:
            ng = free_port()
            open(w + "/ng.conf", "w").write(common + "upstream be { server 127.0.0.1:%d; keepalive 64; } server {"
                                            " listen 127.0.0.1:%d; location / { proxy_pass http://be;"
                                            " proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }"
                                            % (be, ng))
            measure("nginx", ["nginx", "-c", w + "/ng.conf", "-g", "pid %s/ng.pid;" % w], ng, a.conns, be, w)
            ha = free_port()
            open(w + "/ha.cfg", "w").write(
                "global\n  nbthread 1\n  maxconn %d\ndefaults\n  mode http\n  timeout connect 5s\n"
                "  timeout client 10m\n  timeout server 10m\n  timeout http-keep-alive 10m\n  http-reuse always\n"
                "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
                "backend be\n  server s1 127.0.0.1:%d maxconn 64\n" % (a.conns + 500, ha, be))
            measure("haproxy", ["haproxy", "-f", w + "/ha.cfg", "-db"], ha, a.conns, be, w)
    finally:
        backend.terminate()
        backend.wait(10)


if __name__ == "__main__":
    main()
