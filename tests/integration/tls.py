#!/usr/bin/env python3
"""TLS on the listener through the poolproxy CLI with real clients (Python's ssl, curl,
openssl s_client): certificates made here by `openssl req`, chosen by SNI (exact, wildcard,
default); ALPN http/1.1; keep-alive, large bodies both ways; session resumption (TLS 1.2 and
1.3) and tickets off; tls_min_version; client certificates (required, optional); and the bad
inputs: plaintext on the TLS port, garbage, a stalled or abandoned handshake, bad files in the
configuration. tcp mode terminates TLS too. Counters from /stats, series from /metrics.

Usage: tls.py POOLPROXY_CLI [case...]"""
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, Backend, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]
D = tempfile.mkdtemp(prefix="pp-tls-")


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs():
    """a.test (RSA, also *.a.test), b.test (EC P-256), a CA and a client certificate it signed."""
    p = lambda n: os.path.join(D, n)  # noqa: E731
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("a.key"), "-out", p("a.pem"),
       "-days", "2", "-subj", "/CN=a.test", "-addext", "subjectAltName=DNS:a.test,DNS:*.a.test")
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
       "-keyout", p("b.key"), "-out", p("b.pem"), "-days", "2", "-subj", "/CN=b.test",
       "-addext", "subjectAltName=DNS:b.test")
    with open(p("ab.pem"), "w") as f:  # chain and key in one file
        f.write(open(p("b.pem")).read() + open(p("b.key")).read())
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", p("ca.key"), "-out", p("ca.pem"),
       "-days", "2", "-subj", "/CN=test CA")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("client.key"), "-out", p("client.csr"),
       "-subj", "/CN=client")
    sh("openssl", "x509", "-req", "-in", p("client.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
       "-CAcreateserial", "-out", p("client.pem"), "-days", "2")
    # A backend's certificate from the CA, for its address and a name.
    with open(p("be.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:backend.test\n")
    sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", p("be.key"), "-out", p("be.csr"), "-subj", "/CN=backend")
    sh("openssl", "x509", "-req", "-in", p("be.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"), "-CAcreateserial",
       "-out", p("be.pem"), "-days", "2", "-extfile", p("be.ext"))
    return p


P = make_certs()


class Cli:
    def __init__(self, *args, mode="http"):
        self.p = subprocess.Popen([CLI, "--mode", mode, "--listen", "127.0.0.1:0", "--workers", "2",
                                   "--admin-listen", "127.0.0.1:0"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        self.err = []
        threading.Thread(target=self.drain_stderr, daemon=True).start()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])
        self.admin = None
        for _ in range(200):
            m = re.search(r"admin listener on 127\.0\.0\.1:(\d+)", "".join(self.err))
            if m:
                self.admin = int(m.group(1))
                break
            time.sleep(0.01)

    def drain_stderr(self):
        for line in self.p.stderr:
            self.err.append(line)

    def stats(self, part="proxy"):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/stats")
        body = c.getresponse().read()
        c.close()
        return json.loads(body)[part]

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.admin, timeout=10)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
        c.close()
        return body

    def stop(self):
        stop_and_check(self.p)


def client_ctx(cafile=None, alpn=None, maxv=None, cert=None):
    ctx = ssl.create_default_context(cafile=cafile or P("a.pem"))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if maxv:
        ctx.maximum_version = maxv
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def tls_connect(port, name="a.test", ctx=None, timeout=10):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return (ctx or client_ctx()).wrap_socket(raw, server_hostname=name)


def https(port, path="/x", name="a.test", ctx=None, method="GET", body=None):
    """One request on its own TLS connection: (status, body bytes, the server's certificate CN)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=15, context=ctx or client_ctx())
    c._tunnel_host = None
    c.host = name  # the SNI and the name checked
    c.sock = tls_connect(port, name, ctx)
    c.request(method, path, body=body, headers={"Host": name})
    r = c.getresponse()
    data = r.read()
    cn = dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]
    c.close()
    return r.status, data, cn


def raw_exchange(port, data, timeout=5):
    """Sends bytes to the listener, reads until it closes: (what came back, closed within timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if data:
        s.sendall(data)
    out = b""
    t0 = time.time()
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        s.close()
        return out, False, time.time() - t0
    except ConnectionResetError:
        pass
    s.close()
    return out, True, time.time() - t0


def sni_alpn_and_bodies():
    be = Backend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             "--tls-cert", P("ab.pem"))
    try:
        st, body, cn = https(px.port, "/x", "a.test")
        check(st == 200 and body.startswith(b"path=/x xff=127.0.0.1") and cn == "a.test",
              "https through the proxy: 200 from the backend, a.test's certificate (%d %r %s)" % (st, body[:40], cn))
        check(https(px.port, "/", "b.test", client_ctx(P("b.pem")))[2] == "b.test", "SNI b.test: b's certificate (key in the chain's file)")
        check(https(px.port, "/", "x.a.test")[2] == "a.test", "SNI x.a.test: the wildcard *.a.test")
        s = client_ctx()
        s.check_hostname = False
        raw = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        t = s.wrap_socket(raw)  # no SNI
        check(dict(x[0] for x in t.getpeercert()["subject"])["commonName"] == "a.test", "no SNI: the default (first) certificate")
        t.close()
        t = tls_connect(px.port, "a.test", client_ctx(alpn=["h2", "http/1.1"]))
        check(t.selected_alpn_protocol() == "http/1.1", "ALPN: http/1.1 chosen from h2,http/1.1 (%s)" % t.selected_alpn_protocol())
        t.close()
        # keep-alive over one TLS connection
        c = http.client.HTTPSConnection("127.0.0.1", px.port, timeout=15, context=client_ctx())
        c.sock = tls_connect(px.port)
        ok = 0
        for i in range(300):
            c.request("GET", "/k%d" % i, headers={"Host": "a.test"})
            r = c.getresponse()
            ok += r.status == 200 and r.read().startswith(b"path=/k%d " % i)
        c.close()
        check(ok == 300, "300 keep-alive requests on one TLS connection, each its own answer (%d)" % ok)
        big = bytes(range(256)) * 4096
        check(https(px.port, "/big")[1] == big, "1 MiB response through TLS, byte for byte")
        check(https(px.port, "/big-chunked")[1] == big, "1 MiB chunked response through TLS")
        up = os.urandom(5 * 1024 * 1024)
        st, body, _ = https(px.port, "/echo", method="POST", body=up)
        check(st == 200 and body == up, "5 MiB request body through TLS, echoed byte for byte")
        # A client that reads slowly: the proxy holds back (backpressure), nothing is lost.
        t = tls_connect(px.port)
        t.sendall(b"GET /big HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        got = b""
        while True:
            time.sleep(0.002)
            d = t.recv(8192)
            if not d:
                break
            got += d
        t.close()
        check(got.endswith(big) and got.startswith(b"HTTP/1.1 200"), "a slow TLS reader gets the whole 1 MiB (%d bytes)" % len(got))
        # curl
        out = subprocess.run(["curl", "-sS", "-v", "--http1.1", "--cacert", P("a.pem"), "--resolve",
                              "a.test:%d:127.0.0.1" % px.port, "https://a.test:%d/curl" % px.port],
                             capture_output=True, text=True, timeout=30)
        check(out.returncode == 0 and out.stdout.startswith("path=/curl") and "ALPN: server accepted http/1.1" in out.stderr,
              "curl https: verified, ALPN http/1.1, the backend's answer")
        st = px.stats()
        check(st["tls_handshakes"] >= 10 and st["tls_failed_protocol"] == 0, "tls_handshakes counted (%d)" % st["tls_handshakes"])
        lat = px.stats("latency_us")["tls_handshake"]
        check(lat["count"] == st["tls_handshakes"] and 0 < lat["p50"] <= lat["p99"],
              "the handshake latency histogram: one per handshake (p50 %d us, p99 %d us)" % (lat["p50"], lat["p99"]))
        m = px.metrics()
        check(re.search(r'^poolproxy_tls_handshakes_total\{side="client"\} \d+', m, re.M) is not None and
              'poolproxy_tls_handshake_failures_total{side="client",reason="timeout"}' in m and
              "poolproxy_tls_handshake_seconds_bucket" in m,
              "/metrics: tls_handshakes_total and the failures by reason")
    finally:
        px.stop()


def s_client(port, *args, stdin=b""):
    return subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "a.test"] + list(args),
                          input=stdin, capture_output=True, timeout=30)


def resumption():
    be = Backend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")))
    try:
        for v in ("-tls1_2", "-tls1_3"):
            sess = os.path.join(D, "sess" + v)
            # the request makes s_client wait for the answer, and with it a TLS 1.3 ticket
            req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
            first = s_client(px.port, v, "-sess_out", sess, "-ign_eof", stdin=req)
            again = s_client(px.port, v, "-sess_in", sess, "-ign_eof", stdin=req)
            check(b"\nNew, " in first.stdout and b"\nReused, " in again.stdout,
                  "openssl s_client %s: a new session, then resumed" % v)
        st = px.stats()
        check(st["tls_resumed"] >= 2, "tls_resumed counted (%d)" % st["tls_resumed"])
    finally:
        px.stop()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             "--tls-session-tickets", "off", "--tls-min-version", "1.3")
    try:
        sess = os.path.join(D, "sess-off")
        req = b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"
        s_client(px.port, "-sess_out", sess, "-ign_eof", stdin=req)
        again = s_client(px.port, "-sess_in", sess, "-ign_eof", stdin=req)
        check(b"\nReused, " not in again.stdout, "tls_session_tickets off: no TLS 1.3 resumption")
        try:
            tls_connect(px.port, ctx=client_ctx(maxv=ssl.TLSVersion.TLSv1_2)).close()
            refused = False
        except (ssl.SSLError, OSError):
            refused = True
        check(refused, "tls_min_version 1.3: a TLS 1.2 client is refused")
        check(https(px.port)[0] == 200, "and a TLS 1.3 client served")
        check(px.stats()["tls_failed_protocol"] >= 1, "the refusal counted as a protocol failure")
    finally:
        px.stop()


def client_certificates():
    be = Backend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             "--tls-verify-client", "required", "--tls-client-ca", P("ca.pem"))
    try:
        check(https(px.port, ctx=client_ctx(cert=(P("client.pem"), P("client.key"))))[0] == 200,
              "mTLS required: a client certificate the CA signed is served")
        try:
            https(px.port)
            refused = False
        except (ssl.SSLError, OSError, http.client.HTTPException):
            refused = True
        check(refused, "mTLS required: a client without a certificate is refused")
        try:
            https(px.port, ctx=client_ctx(cert=(P("b.pem"), P("b.key"))))
            refused = False
        except (ssl.SSLError, OSError, http.client.HTTPException):
            refused = True
        check(refused, "mTLS required: a certificate the CA did not sign is refused")
    finally:
        px.stop()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             "--tls-verify-client", "optional", "--tls-client-ca", P("ca.pem"))
    try:
        check(https(px.port)[0] == 200, "mTLS optional: a client without a certificate is served")
    finally:
        px.stop()


def bad_input():
    be = Backend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             "--tls-handshake-timeout", "500ms")
    try:
        out, closed, _ = raw_exchange(px.port, b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        check(closed and out.startswith(b"HTTP/1.1 400") and b"speaks TLS" in out,
              "plaintext HTTP on the TLS port: a plain 400 saying so, then closed (%r)" % out[:30])
        out, closed, _ = raw_exchange(px.port, b"\x16\x03\x01\x00\x05garbage-after-a-record-header" * 3)
        check(closed and b"HTTP" not in out, "a garbage ClientHello: closed (with an alert at most)")
        out, closed, took = raw_exchange(px.port, b"", timeout=10)
        check(closed and 0.3 < took < 5, "a client that sends nothing: closed by tls_handshake_timeout (%.2fs)" % took)
        hello = bytearray(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello's start, then silence
        out, closed, took = raw_exchange(px.port, bytes(hello), timeout=10)
        check(closed and 0.3 < took < 5, "a ClientHello that stalls half-way: closed by the timeout (%.2fs)" % took)
        s = socket.create_connection(("127.0.0.1", px.port))
        s.sendall(bytes(hello))
        s.close()  # the client leaves mid-handshake
        deadline = time.time() + 5
        while time.time() < deadline and px.stats()["tls_failed_closed"] < 1:
            time.sleep(0.05)
        st = px.stats()
        check(st["tls_failed_plaintext"] == 1 and st["tls_failed_protocol"] >= 1 and st["tls_failed_timeout"] == 2 and
              st["tls_failed_closed"] >= 1,
              "failures counted by reason (plaintext %d, protocol %d, timeout %d, closed %d)" %
              (st["tls_failed_plaintext"], st["tls_failed_protocol"], st["tls_failed_timeout"], st["tls_failed_closed"]))
        check(https(px.port)[0] == 200, "and the listener serves on")
    finally:
        px.stop()
    # Bad files: the CLI refuses to start, naming the option and the reason.
    for args, want in ((["--tls-cert", os.path.join(D, "missing.pem")], "cannot read"),
                       (["--tls-cert", "%s,key=%s" % (P("a.pem"), P("b.key"))], "does not belong"),
                       (["--tls-cert", P("ca.key")], "certificate chain"),
                       (["--tls-cert", P("a.pem") + ",key=" + P("a.key"), "--tls-ciphers", "NOSUCHCIPHER"], "tls_ciphers"),
                       (["--tls-verify-client", "required", "--tls-cert", P("a.pem") + ",key=" + P("a.key")], "tls_client_ca"),
                       (["--backend-tls", "on", "--backend-tls-name", "api.internal:443"], "tls_name")):
        r = subprocess.run([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9"] + args,
                           capture_output=True, text=True, timeout=20)
        check(r.returncode != 0 and want in r.stderr and "tls_" in r.stderr,
              "refused at start: %s (%s)" % (want, r.stderr.strip().splitlines()[-1][:120] if r.stderr.strip() else ""))


def serve(handle, ctx=None):
    """A loopback server: each accepted connection (TLS with ctx: wrapped, its handshake done)
    handed to handle(conn) on a thread of its own. Returns the listening socket."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)

    def one(c):
        try:
            handle(ctx.wrap_socket(c, server_side=True) if ctx else c)
        except (OSError, ssl.SSLError):
            c.close()

    def loop():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return srv


def echo(c, half_close=False):
    """Sends back what comes, until the peer's end (then half-closes, or closes)."""
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    if half_close:
        c.shutdown(socket.SHUT_WR)
    else:
        c.close()


def tcp_mode():
    srv = serve(lambda c: echo(c, half_close=True))
    px = Cli("--backend", "127.0.0.1:%d" % srv.getsockname()[1], "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")),
             mode="tcp")
    try:
        t = tls_connect(px.port)
        data = os.urandom(1024 * 1024)
        threading.Thread(target=lambda: t.sendall(data), daemon=True).start()
        got = b""
        while len(got) < len(data):
            d = t.recv(65536)
            if not d:
                break
            got += d
        check(got == data, "tcp mode: 1 MiB echoed through TLS termination, byte for byte")
        t.close()
    finally:
        px.stop()
        srv.close()


def tls_server(cert, key, answer):
    """A TLS backend: after its handshake it answers `answer` and the first line it read."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    def answer_line(t):
        t.sendall(answer + b" " + t.recv(1024))
        t.close()
    return serve(answer_line, ctx)


def sni_passthrough():
    a = tls_server(P("a.pem"), P("a.key"), b"A")
    b = tls_server(P("b.pem"), P("b.key"), b"B")
    def tagged(tag):
        def answer_line(c):
            c.sendall(tag + b" " + c.recv(1024))
            c.close()
        return answer_line
    plain_d = serve(tagged(b"D"))
    px = Cli("--backend", "127.0.0.1:%d" % plain_d.getsockname()[1],
             "--backend", "127.0.0.1:%d,group=ga" % a.getsockname()[1],
             "--backend", "127.0.0.1:%d,group=gb" % b.getsockname()[1],
             "--sni-route", "a.test -> ga", "--sni-route", "*.b.test -> gb", "--sni-route", "b.test -> gb",
             "--tls-handshake-timeout", "500ms", mode="tcp")
    try:
        t = tls_connect(px.port, "a.test")
        t.sendall(b"hello\n")
        check(t.recv(100) == b"A hello\n" and dict(x[0] for x in t.getpeercert()["subject"])["commonName"] == "a.test",
              "sni_route a.test: relayed untouched to group ga's TLS backend (its own certificate, verified)")
        t.close()
        ctx = client_ctx(P("b.pem"))
        ctx.check_hostname = False
        t = tls_connect(px.port, "x.B.test", ctx)
        t.sendall(b"hi\n")
        check(t.recv(100) == b"B hi\n", "sni_route *.b.test: x.B.test (any case) reaches group gb")
        t.close()
        out = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % px.port, "-servername", "b.test",
                              "-CAfile", P("b.pem"), "-verify_return_error"], input=b"q\n", capture_output=True, timeout=30)
        check(b"Verify return code: 0 (ok)" in out.stdout, "openssl s_client through the passthrough: b.test verified end to end")
        out, closed, _ = raw_exchange(px.port, b"plain words\n")
        check(out == b"D plain words\n", "not TLS: the default group, bytes as sent (%r)" % out)
        hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
        out, closed, took = raw_exchange(px.port, hello, timeout=10)
        check(closed and out == b"" and 0.3 < took < 5, "a ClientHello that stalls: closed by tls_handshake_timeout (%.2fs)" % took)
    finally:
        px.stop()
        for x in (a, b, plain_d):
            x.close()
    # Terminated here (tls_cert): the handshake's name picks the group.
    plain = {tag: serve(tagged(tag)) for tag in (b"D", b"E")}
    px = Cli("--backend", "127.0.0.1:%d" % plain[b"D"].getsockname()[1],
             "--backend", "127.0.0.1:%d,group=ge" % plain[b"E"].getsockname()[1],
             "--tls-cert", "%s,key=%s" % (P("a.pem"), P("a.key")), "--tls-cert", P("ab.pem"),
             "--sni-route", "b.test -> ge", mode="tcp")
    try:
        t = tls_connect(px.port, "b.test", client_ctx(P("b.pem")))
        t.sendall(b"x\n")
        check(t.recv(100) == b"E x\n", "tcp mode with termination: SNI b.test picks group ge (sni_route)")
        t.close()
        t = tls_connect(px.port, "a.test")
        t.sendall(b"y\n")
        check(t.recv(100) == b"D y\n", "and a.test, matching no route, the default group")
        t.close()
    finally:
        px.stop()
        for x in plain.values():
            x.close()
    r = subprocess.run([CLI, "--mode", "tcp", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                        "--sni-route", "a.test -> nowhere"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "no backend group named 'nowhere'" in r.stderr, "an sni_route to no group: refused at start")
    r = subprocess.run([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:9",
                        "--sni-route", "a.test -> default"], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "tcp mode only" in r.stderr, "sni_route in http mode: refused, naming option 'route'")


class TlsBackend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """An HTTPS backend (Python's ssl) that records the SNI of each handshake and, with
    client_ca, requires a client certificate."""
    daemon_threads = True

    def __init__(self, client_ca=None):
        self.snis, self.handshakes = [], 0
        super().__init__(("127.0.0.1", 0), TlsHandler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(P("be.pem"), P("be.key"))
        if client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(client_ca)

        def on_sni(sock, name, c):
            self.snis.append(name)
            self.handshakes += 1
        ctx.sni_callback = on_sni
        self.socket = ctx.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(10)
        sock.do_handshake()
        return sock, addr

    def handle_error(self, request, client_address):
        pass

    @property
    def port(self):
        return self.server_address[1]


class TlsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = (b"tls " + self.path.encode()) if not self.path.startswith("/big") else bytes(range(256)) * 4096
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def plain_get(port, path="/", timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def backend_tls():
    be = TlsBackend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"))
    try:
        check(plain_get(px.port, "/x") == (200, b"tls /x"), "backend_tls: a request reaches the HTTPS backend, verified by address")
        check(plain_get(px.port, "/big")[1] == bytes(range(256)) * 4096, "backend_tls: a 1 MiB answer byte for byte")
        conns = [http.client.HTTPConnection("127.0.0.1", px.port, timeout=15) for _ in range(2)]
        ok = 0
        for i in range(500):
            c = conns[i % 2]
            c.request("GET", "/k%d" % i)
            r = c.getresponse()
            ok += r.status == 200 and r.read() == b"tls /k%d" % i
        for c in conns:
            c.close()
        st = px.stats()
        check(ok == 500 and st["tls_backend_handshakes"] <= 4,
              "500 requests over pooled TLS connections: %d backend handshakes (%d resumed)" %
              (st["tls_backend_handshakes"], st["tls_backend_resumed"]))
        check(be.handshakes == st["tls_backend_handshakes"] and be.snis and all(n is None for n in be.snis),
              "an address is checked against the certificate's IP entry and sent no SNI")
        lat = px.stats("latency_us")["tls_backend_handshake"]
        check(lat["count"] == st["tls_backend_handshakes"] and lat["p50"] > 0,
              "the backend handshake latency histogram: one per handshake (p50 %d us)" % lat["p50"])
    finally:
        px.stop()
    be.snis.clear()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"),
             "--backend-tls-name", "backend.test", "--workers", "1")
    try:
        check(plain_get(px.port, "/n")[0] == 200 and be.snis[-1:] == ["backend.test"],
              "backend_tls_name: sent as SNI and checked (%s)" % be.snis[-1:])
        # New connections resume the worker's last session.
        px.stop()
    except Exception:
        px.stop()
        raise
    for args, want, what in ((["--backend-tls-name", "wrong.test"], "hostname mismatch", "a name the certificate does not have"),
                             ([], "unable to get local issuer certificate", "a CA the system store does not know")):
        extra = ["--backend-tls-ca", P("ca.pem")] if args else []
        px = Cli("--backend", "127.0.0.1:%d" % be.port, "--backend-tls", "on", *(extra + args))
        try:
            st, _ = plain_get(px.port, "/v")
            time.sleep(0.2)
            log = "".join(px.err)
            check(st in (502, 503) and want in log and "backend-down" in log and px.stats()["tls_backend_failed_verify"] >= 1,
                  "backend certificate refused (%s): %d, the reason and a backend event in the log" % (what, st))
        finally:
            px.stop()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--backend-tls", "on", "--backend-tls-verify", "off")
    try:
        check(plain_get(px.port, "/o") == (200, b"tls /o"), "backend_tls_verify off: encrypted, not checked")
    finally:
        px.stop()
    # A backend that takes the TCP connect and never answers the ClientHello.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    px = Cli("--backend", "127.0.0.1:%d" % mute.getsockname()[1], "--backend-tls", "on", "--backend-tls-verify", "off",
             "--connect-timeout", "300ms")
    try:
        t0 = time.time()
        st, _ = plain_get(px.port, "/m")
        took = time.time() - t0
        deadline = time.time() + 5
        while time.time() < deadline and px.stats()["tls_backend_failed_timeout"] < 1:
            time.sleep(0.05)
        check(st in (502, 503) and took < 5 and px.stats()["tls_backend_failed_timeout"] >= 1 and
              "tls handshake timed out" in "".join(px.err),
              "a backend that never answers the handshake: %d after %.1fs, counted as a timeout, logged" % (st, took))
    finally:
        px.stop()
        mute.close()
    be.shutdown()
    # mTLS toward the backend, in a group of its own.
    mt = TlsBackend(client_ca=P("ca.pem"))
    px = Cli("--backend", "127.0.0.1:%d,group=m" % mt.port, "--backend", "127.0.0.1:%d" % mt.port,
             "--group", "m backend_tls=on backend_tls_ca=%s backend_tls_cert=%s,key=%s" % (P("ca.pem"), P("client.pem"), P("client.key")),
             "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"),
             "--route", "path=/m/ -> m")
    try:
        check(plain_get(px.port, "/m/x") == (200, b"tls /m/x"), "backend_tls_cert: a group presents its client certificate")
        check(plain_get(px.port, "/d")[0] in (502, 503), "and the default group, without one, is refused by the backend")
    finally:
        px.stop()
        mt.shutdown()
    # nginx as the TLS backend
    d = tempfile.mkdtemp(prefix="pp-nginx-")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    nport = s.getsockname()[1]
    s.close()
    with open(os.path.join(d, "nginx.conf"), "w") as f:
        f.write("daemon off; pid %s/nginx.pid; error_log %s/error.log; events {}\n"
                "http { access_log off; client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s; "
                "uwsgi_temp_path %s; scgi_temp_path %s;\n"
                " server { listen 127.0.0.1:%d ssl; ssl_certificate %s; ssl_certificate_key %s;\n"
                "  keepalive_requests 100000; location / { return 200 'nginx $ssl_protocol $ssl_session_reused'; } } }\n"
                % (d, d, d, d, d, d, d, nport, P("be.pem"), P("be.key")))
    ng = subprocess.Popen(["nginx", "-c", os.path.join(d, "nginx.conf"), "-p", d], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", nport), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        px = Cli("--backend", "127.0.0.1:%d" % nport, "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"))
        try:
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=15)
            ok = 0
            for i in range(1000):
                c.request("GET", "/")
                r = c.getresponse()
                body = r.read()
                ok += r.status == 200 and body.startswith(b"nginx TLSv1.")
            c.close()
            st = px.stats()
            check(ok == 1000 and st["tls_backend_handshakes"] <= 2,
                  "nginx as the TLS backend: 1000 keep-alive requests, %d backend handshake(s) (%d ok, last %r)" % (st["tls_backend_handshakes"], ok, body[:40]))
        finally:
            px.stop()
    finally:
        ng.terminate()
        ng.wait(10)
    # Health checks speak TLS to TLS backends, verified as requests are.
    hb = TlsBackend()
    for name, want in (("backend.test", 1), ("wrong.test", 0)):
        px = Cli("--backend", "127.0.0.1:%d" % hb.port, "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"),
                 "--backend-tls-name", name, "--health-check", "http", "--health-path", "/health",
                 "--health-interval", "200ms", "--health-rise", "1", "--health-fall", "1", "--pool-min-idle", "0")
        try:
            state = None
            deadline = time.time() + 10
            while time.time() < deadline:
                c = http.client.HTTPConnection("127.0.0.1", px.admin, timeout=10)
                c.request("GET", "/stats")
                b = json.loads(c.getresponse().read())["backends"][0]
                c.close()
                state = (b["healthy"], b["health_checks_failed"])
                if (want and b["health_checks_failed"] == 0 and hb.snis.count(name) >= 3) or (not want and b["healthy"] == 0):
                    break
                time.sleep(0.1)
            log = "".join(px.err)
            if want:
                check(state[0] == 1 and state[1] == 0 and hb.snis.count(name) >= 3,
                      "health_check http over TLS: checks pass, each a TLS handshake with SNI %s (%s)" % (name, state))
            else:
                check(state[0] == 0 and "tls: certificate verify failed: hostname mismatch" in log,
                      "health_check http over TLS: a certificate refused makes the backend unhealthy, saying why")
        finally:
            px.stop()
    hb.shutdown()


def tcp_backend_tls():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(P("be.pem"), P("be.key"))
    srv = serve(echo, ctx)
    px = Cli("--backend", "127.0.0.1:%d" % srv.getsockname()[1], "--backend-tls", "on", "--backend-tls-ca", P("ca.pem"),
             mode="tcp")
    try:
        c = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        data = os.urandom(1024 * 1024)
        threading.Thread(target=lambda: c.sendall(data), daemon=True).start()
        got = b""
        while len(got) < len(data):
            d = c.recv(65536)
            if not d:
                break
            got += d
        c.close()
        check(got == data, "tcp mode, backend_tls: 1 MiB echoed through TLS to the backend, byte for byte")
    finally:
        px.stop()
        srv.close()


def cert_reload():
    """SIGHUP takes up a renewed certificate (same file name, new key) for new connections; a
    connection under way goes on; an expired one is refused and the one in use stays."""
    be = Backend()
    conf = os.path.join(D, "reload.conf")
    cert, key = os.path.join(D, "live.pem"), os.path.join(D, "live.key")

    def issue(days):
        csr = os.path.join(D, "live.csr")
        sh("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key + ".new", "-out", csr,
           "-subj", "/CN=a.test", "-addext", "subjectAltName=DNS:a.test")
        with open(os.path.join(D, "live.ext"), "w") as f:
            f.write("subjectAltName=DNS:a.test\n")
        sh("openssl", "x509", "-req", "-in", csr, "-CA", P("ca.pem"), "-CAkey", P("ca.key"), "-CAcreateserial",
           "-out", cert + ".new", "-days", str(days), "-extfile", os.path.join(D, "live.ext"))
        os.rename(key + ".new", key)
        os.rename(cert + ".new", cert)

    def fingerprint():
        t = tls_connect(px.port, "a.test", client_ctx(P("ca.pem")))
        der = t.getpeercert(binary_form=True)
        t.close()
        return der

    issue(2)
    with open(conf, "w") as f:
        f.write("mode = http\nbackend = 127.0.0.1:%d\ntls_cert = %s,key=%s\n" % (be.port, cert, key))
    px = Cli("--config", conf)
    try:
        first = fingerprint()
        held = http.client.HTTPSConnection("127.0.0.1", px.port, timeout=15, context=client_ctx(P("ca.pem")))
        held.sock = tls_connect(px.port, "a.test", client_ctx(P("ca.pem")))
        held.request("GET", "/before", headers={"Host": "a.test"})
        r = held.getresponse()
        r.read()
        issue(2)  # renewed: the same file names, a new key
        before = len(px.err)
        px.p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and not any("TLS certificates and options taken up" in x for x in px.err[before:]):
            time.sleep(0.05)
        check(any("TLS certificates and options taken up" in x for x in px.err[before:]), "SIGHUP: the renewed certificate taken up (logged)")
        check(fingerprint() != first, "a new connection gets the renewed certificate")
        held.request("GET", "/after", headers={"Host": "a.test"})
        r = held.getresponse()
        check(r.status == 200 and r.read().startswith(b"path=/after"), "a connection made before the reload goes on serving")
        held.close()
        now = fingerprint()
        issue(-1)  # expired
        before = len(px.err)
        px.p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and not any("nothing changed" in x for x in px.err[before:]):
            time.sleep(0.05)
        log = "".join(px.err[before:])
        check("has expired" in log and "nothing changed" in log, "an expired certificate: the reload refused, the reason logged")
        check(fingerprint() == now, "and the certificate in use stays")
    finally:
        px.stop()


def testssl_scan():
    """Debian's testssl.sh against the listener: no finding rated HIGH or CRITICAL, but those
    about the test's own certificate (made here, a day's validity, no revocation URL)."""
    if os.environ.get("ASAN_OPTIONS") or os.environ.get("TSAN_OPTIONS"):
        # The scan looks at the listener's protocols and ciphers, the same in every build: once,
        # in the normal build, is enough (it takes minutes under a sanitizer).
        print("     testssl_scan: skipped in a sanitizer build (it runs in the normal build)")
        return
    if not shutil.which("testssl"):
        check(False, "testssl (Debian's testssl.sh) is installed (scripts/deps.sh --test)")
        return
    be = Backend()
    px = Cli("--backend", "127.0.0.1:%d" % be.port, "--tls-cert", "%s,key=%s" % (P("be.pem"), P("be.key")),
             "--workers", "1")
    out = os.path.join(D, "testssl.json")
    try:
        r = subprocess.run(["testssl", "--quiet", "--color", "0", "--warnings", "off", "--add-ca", P("ca.pem"),
                            "--jsonfile-pretty", out, "127.0.0.1:%d" % px.port],
                           capture_output=True, text=True, timeout=600)
        data = json.load(open(out))
        found = [f for section in data.get("scanResult", []) for v in section.values() if isinstance(v, list)
                 for f in v if isinstance(f, dict) and f.get("severity") in ("HIGH", "CRITICAL")]
        about_cert = [f for f in found if f["id"].startswith("cert_")]
        rest = [f for f in found if not f["id"].startswith("cert_")]
        check(data.get("scanResult") and not rest,
              "testssl.sh: no HIGH or CRITICAL finding on the listener's protocols, ciphers and vulnerabilities "
              "(%d about the test certificate; others: %s; exit %d)" %
              (len(about_cert), [(f["id"], f["finding"][:60]) for f in rest][:5], r.returncode))
    finally:
        px.stop()


def backend_cert_reload():
    """A group's client certificate renewed in place (same file names): SIGHUP replaces the group,
    and new connections to the backend present the new certificate (found by review)."""
    seen = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(P("be.pem"), P("be.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(P("ca.pem"))

    def answer(t):
        seen.append(dict(x[0] for x in t.getpeercert()["subject"])["commonName"])
        t.recv(65536)
        t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        t.close()
    srv = serve(answer, ctx)
    cert, key = os.path.join(D, "cl.pem"), os.path.join(D, "cl.key")

    def issue(cn):
        sh("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key + ".new", "-out", cert + ".csr", "-subj", "/CN=" + cn)
        sh("openssl", "x509", "-req", "-in", cert + ".csr", "-CA", P("ca.pem"), "-CAkey", P("ca.key"), "-CAcreateserial",
           "-out", cert + ".new", "-days", "2")
        os.rename(key + ".new", key)
        os.rename(cert + ".new", cert)
    issue("client1")
    conf = os.path.join(D, "bcr.conf")
    with open(conf, "w") as f:
        f.write("mode = http\nbackend = 127.0.0.1:%d\nbackend_tls = on\nbackend_tls_verify = off\n"
                "backend_tls_cert = %s,key=%s\n" % (srv.getsockname()[1], cert, key))
    px = Cli("--config", conf)
    try:
        check(plain_get(px.port, "/a")[0] == 200 and seen[-1:] == ["client1"], "the group presents client1 (%s)" % seen[-1:])
        issue("client2")
        before = len(px.err)
        px.p.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while time.time() < deadline and not any("reload: " in x and "group(s) added" in x for x in px.err[before:]):
            time.sleep(0.05)
        check(any("1 replaced" in x for x in px.err[before:]), "SIGHUP: the renewed client certificate replaces the group")
        check(plain_get(px.port, "/b")[0] == 200 and seen[-1:] == ["client2"],
              "new backend connections present the renewed certificate (%s)" % seen[-1:])
    finally:
        px.stop()
        srv.close()


CASES = {"sni_alpn_and_bodies": sni_alpn_and_bodies, "resumption": resumption,
         "client_certificates": client_certificates, "bad_input": bad_input, "tcp_mode": tcp_mode,
         "sni_passthrough": sni_passthrough, "backend_tls": backend_tls, "tcp_backend_tls": tcp_backend_tls,
         "cert_reload": cert_reload,
         "backend_cert_reload": backend_cert_reload, "testssl_scan": testssl_scan}


def main():
    for name in sys.argv[2:] or list(CASES):
        print("== %s" % name)
        CASES[name]()
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
