"""Helpers the bench scripts share: loopback ports, waiting for a listener, a process's RSS, the
nginx backend."""
import os
import re
import socket
import subprocess
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


def nginx_backend(workdir, body, cpu="1"):
    """An nginx backend (one worker, pinned to `cpu`) answering every request with 200 and
    `body`, keep-alive without limit. Returns (Popen, port); the caller terminates it."""
    port = free_port()
    os.makedirs(workdir + "/tmp", exist_ok=True)
    conf = workdir + "/be.conf"
    with open(conf, "w") as f:
        f.write("worker_processes 1; daemon off; user root; pid %(w)s/be.pid; error_log %(w)s/err.log;"
                " events { worker_connections 8192; } http { access_log off; keepalive_requests 1000000;"
                " keepalive_timeout 60s; client_body_temp_path %(w)s/tmp; proxy_temp_path %(w)s/tmp;"
                " fastcgi_temp_path %(w)s/tmp; uwsgi_temp_path %(w)s/tmp; scgi_temp_path %(w)s/tmp;"
                " server { listen 127.0.0.1:%(p)d; location / { default_type text/plain; return 200 '%(b)s'; } } }"
                % {"w": workdir, "p": port, "b": body})
    p = subprocess.Popen(["taskset", "-c", cpu, "nginx", "-c", conf, "-e", workdir + "/err.log"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port
