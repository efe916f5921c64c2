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


def nginx_backend(workdir, body, cpu="1", tls_port=None):
    """An nginx backend (one worker, pinned to `cpu`) answering every request with 200 and
    `body`, keep-alive without limit; with tls_port, also over TLS there (a certificate made in
    workdir). Returns (Popen, port); the caller terminates it."""
    port = free_port()
    tls = ""
    if tls_port:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", workdir + "/be.key",
                        "-out", workdir + "/be.pem", "-days", "2", "-subj", "/CN=bench"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tls = (" server { listen 127.0.0.1:%d ssl; ssl_certificate %s/be.pem; ssl_certificate_key %s/be.key;"
               " location / { default_type text/plain; return 200 '%s'; } }" % (tls_port, workdir, workdir, body))
    os.makedirs(workdir + "/tmp", exist_ok=True)
    conf = workdir + "/be.conf"
    with open(conf, "w") as f:
        f.write("worker_processes 1; daemon off; user root; pid %(w)s/be.pid; error_log %(w)s/err.log;"
                " events { worker_connections 8192; } http { access_log off; keepalive_requests 1000000;"
                " keepalive_timeout 60s; client_body_temp_path %(w)s/tmp; proxy_temp_path %(w)s/tmp;"
                " fastcgi_temp_path %(w)s/tmp; uwsgi_temp_path %(w)s/tmp; scgi_temp_path %(w)s/tmp;"
                " server { listen 127.0.0.1:%(p)d; location / { default_type text/plain; return 200 '%(b)s'; } }%(t)s }"
                % {"w": workdir, "p": port, "b": body, "t": tls})
    p = subprocess.Popen(["taskset", "-c", cpu, "nginx", "-c", conf, "-e", workdir + "/err.log"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port
