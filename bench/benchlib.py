"""Helpers the bench scripts share: loopback ports, waiting for a listener, a process's RSS."""
import re
import socket
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, what="bench"):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("%s: nothing listens on %d" % (what, port))


def rss_kib(pids):
    total = 0
    for pid in pids:
        total += int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % pid).read()).group(1))
    return total
