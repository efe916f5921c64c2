#!/usr/bin/env python3
"""Cost of the worst request head (issue 15 item 3): many short fields plus a Connection field
of nothing but commas, the shape that made the head rewrite quadratic. The proxy's own CPU
(utime+stime of its process, /proc) per request and per head byte, as the head grows: a linear
parser and rewrite keep the cost per byte flat. Then the issue's case, 7,000 fields plus a
20,000-comma Connection, once with limits raised so that it is proxied and once at the
defaults (max_header_fields 100: answered 431). Not a test: numbers for docs/RELIABILITY.md.

  head_cost.py CLI [--sizes 16,32,64,128,256] [--seconds 2]
"""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time

from benchlib import free_port, wait_port

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def backend(listener):
    """Answers every request head with a 2-byte 200, keep-alive."""
    def serve(conn):
        buf = b""
        with conn:
            while True:
                d = conn.recv(262144)
                if not d:
                    return
                buf += d
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    buf = buf[end + 4:]
                    conn.sendall(RESPONSE)
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def worst_head(fields, commas):
    lines = [b"GET / HTTP/1.1", b"Host: bench", b"Connection: " + b"," * commas]
    lines += [b"x%d: 1" % i for i in range(fields)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def head_of_size(size):
    """About `size` bytes, half of them in ~10-byte fields, half in Connection commas."""
    fields = max(1, size // 2 // 10)
    return worst_head(fields, size // 2), fields


def cpu_seconds(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def read_response(s):
    got = b""
    while b"\r\n\r\n" not in got:
        d = s.recv(65536)
        if not d:
            break
        got += d
    head, _, rest = got.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        d = s.recv(65536)
        if not d:
            break
        rest += d
    return status, b"connection: close" in head.lower()


def measure(port, pid, head, seconds, max_requests=100000):
    """Sends `head` again and again (reconnecting when the proxy closes) for about `seconds`
    (at least once, at most max_requests); returns (CPU s per request, requests, last status)."""
    s = None
    n = 0
    status = 0
    cpu0 = cpu_seconds(pid)
    t_end = time.time() + seconds
    while n < max_requests and (n == 0 or time.time() < t_end):
        if s is None:
            s = socket.create_connection(("127.0.0.1", port), timeout=120)
        s.sendall(head)
        status, closed = read_response(s)
        n += 1
        if closed or status != 200:
            s.close()
            s = None
    if s:
        s.close()
    time.sleep(0.05)  # let the proxy finish its side of the last close
    return (cpu_seconds(pid) - cpu0) / n, n, status


def start_proxy(cli, backend_port, flags):
    port = free_port()
    p = subprocess.Popen([cli, "--mode", "http", "--listen", "127.0.0.1:%d" % port, "--workers", "1",
                          "--backend", "127.0.0.1:%d" % backend_port, "--client-header-timeout", "60s"] + flags,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, "head_cost")
    return p, port


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cli")
    ap.add_argument("--sizes", default="16,32,64,128,256", help="head sizes in KiB")
    ap.add_argument("--seconds", type=float, default=2.0, help="time spent per size (at least one request)")
    a = ap.parse_args()
    has_field_cap = b"--max-header-fields" in subprocess.run([a.cli, "--help"], capture_output=True).stdout
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    threading.Thread(target=backend, args=(lst,), daemon=True).start()
    be_port = lst.getsockname()[1]

    raised = ["--max-header-size", "1048576"] + (["--max-header-fields", "32767"] if has_field_cap else [])
    p, port = start_proxy(a.cli, be_port, raised)
    try:
        print("worst head (fields + a Connection of commas), limits raised (%s):" % " ".join(raised))
        print("%8s %8s %8s %9s %12s %10s" % ("KiB", "fields", "status", "requests", "CPU ms/req", "CPU ns/B"))
        for kib in (int(x) for x in a.sizes.split(",")):
            head, fields = head_of_size(kib * 1024)
            per_req, n, status = measure(port, p.pid, head, a.seconds)
            print("%8d %8d %8d %9d %12.3f %10.1f" % (kib, fields, status, n, per_req * 1e3, per_req * 1e9 / len(head)),
                  flush=True)
        issue = worst_head(7000, 20000)
        per_req, n, status = measure(port, p.pid, issue, a.seconds)
        print("issue 15 head: 7,000 fields + 20,000 commas (%d bytes), limits raised: status %d, %.4f CPU s per request "
              "(%d requests)" % (len(issue), status, per_req, n))
    finally:
        p.terminate()
        p.wait(15)
    p, port = start_proxy(a.cli, be_port, ["--max-header-size", "1048576"])
    try:
        per_req, n, status = measure(port, p.pid, issue, a.seconds)
        print("issue 15 head, max_header_size 1 MiB, max_header_fields at its default: status %d, %.4f CPU s per "
              "request (%d requests)" % (status, per_req, n))
    finally:
        p.terminate()
        p.wait(15)
    lst.close()


if __name__ == "__main__":
    sys.exit(main())
