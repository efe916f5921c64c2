#!/usr/bin/env python3
"""TLS clients that try to make the proxy work or hold memory for them (found by review of the
TLS termination, which wrote the hand-made TLS 1.2 client below):
 - renegotiation attempts sent without ever reading the answers: OpenSSL answers each with an
   alert, which the proxy used to queue without bound; now the first attempt closes the
   connection (as nginx), and what the SSL writes on its own pauses the socket's read past
   256 KiB;
 - application data in one-byte records: each used to be its own callback and its own write to
   the backend; now a buffer's worth of records is one.

Usage: tls_abuse.py POOLPROXY_CLI"""
import hashlib
import hmac
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, check, stop_and_check  # noqa: E402  (same directory)

CLI = sys.argv[1]
D = tempfile.mkdtemp(prefix="pp-tls-abuse-")
KEY, PEM = os.path.join(D, "a.key"), os.path.join(D, "a.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY, "-out", PEM, "-days", "2",
                "-subj", "/CN=a.test", "-addext", "subjectAltName=DNS:a.test"],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Sink:
    """A backend that reads and counts."""
    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.bytes = self.reads = 0
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        while True:
            try:
                d = c.recv(1 << 16)
            except OSError:
                return
            if not d:
                return
            self.bytes += len(d)
            self.reads += 1


class Proxy:
    def __init__(self, backend_port):
        self.p = subprocess.Popen([CLI, "--mode", "tcp", "--listen", "127.0.0.1:0", "--workers", "1",
                                   "--backend", "127.0.0.1:%d" % backend_port, "--tls-cert", "%s,key=%s" % (PEM, KEY)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])

    def rss_kib(self):
        for line in open("/proc/%d/status" % self.p.pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def writes(self):
        for line in open("/proc/%d/io" % self.p.pid):
            if line.startswith("syscw:"):
                return int(line.split()[1])
        return 0


def prf_sha256(secret, label, seed, n):
    out, a = b"", label + seed
    while len(out) < n:
        a = hmac.new(secret, a, hashlib.sha256).digest()
        out += hmac.new(secret, a + label + seed, hashlib.sha256).digest()
    return out[:n]


class Tls12Client:
    """TLS 1.2 (ECDHE-RSA-AES128-GCM-SHA256) over memory BIOs on a raw socket; after the
    handshake, record() makes records encrypted here, of any content type (from the keys in
    Python's key log)."""
    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256")
        ctx.options |= ssl.OP_NO_TICKET
        keylog = os.path.join(D, "keylog-%d" % id(self))
        ctx.keylog_filename = keylog
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, out, server_hostname="a.test")
        got = b""
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(out.read())
                d = self.sock.recv(65536)
                assert d, "closed during the handshake"
                got += d
                inc.write(d)
        self.sock.sendall(out.read())
        server_random = got[11:43]  # record header 5, handshake header 4, version 2
        line = [x for x in open(keylog) if x.startswith("CLIENT_RANDOM")][-1].split()
        client_random, master = bytes.fromhex(line[1]), bytes.fromhex(line[2])
        kb = prf_sha256(master, b"key expansion", server_random + client_random, 40)
        self.key, self.iv = kb[0:16], kb[32:36]
        self.seq = 1  # the client's Finished was record 0

    def record(self, ctype, plain):
        explicit = struct.pack(">Q", self.seq)
        aad = struct.pack(">QBHH", self.seq, ctype, 0x0303, len(plain))
        body = explicit + AESGCM(self.key).encrypt(self.iv + explicit, plain, aad)
        self.seq += 1
        return struct.pack(">BHH", ctype, 0x0303, len(body)) + body


def renegotiation_flood():
    be = Sink()
    px = Proxy(be.port)
    try:
        c = Tls12Client(px.port)
        c.sock.sendall(c.record(0x17, b"hello"))
        deadline = time.time() + 5
        while be.bytes < 5 and time.time() < deadline:
            time.sleep(0.02)
        check(be.bytes == 5, "the hand-made records are right (the backend got the 5 bytes)")
        rss0 = px.rss_kib()
        sent, closed = 0, False
        c.sock.settimeout(10)
        t0 = time.time()
        try:
            while sent < (16 << 20) and time.time() - t0 < 30:
                batch = b"".join(c.record(0x16, b"\x01\x00\x00\x00") for _ in range(2000))  # ClientHello headers
                c.sock.sendall(batch)
                sent += len(batch)
        except OSError:
            closed = True
        grew = (px.rss_kib() - rss0) / 1024
        # Under ASan the resident size says nothing (its quarantine keeps what is freed): there
        # the close after the first attempt is the check.
        asan = bool(os.environ.get("ASAN_OPTIONS"))
        check(closed and sent < (4 << 20) and (asan or grew < 8),
              "renegotiation attempts, never reading: closed after %.1f MiB sent, the proxy's memory +%.1f MiB%s" %
              (sent / 2**20, grew, " (not judged under ASan)" if asan else ""))
        check(px.p.poll() is None, "and the proxy serves on")
    finally:
        stop_and_check(px.p)


def tiny_records():
    be = Sink()
    px = Proxy(be.port)
    n = 20000
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        o = ctx.wrap_bio(inc, out, server_hostname="a.test")
        while True:
            try:
                o.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(out.read())
                inc.write(s.recv(65536))
        s.sendall(out.read())
        time.sleep(0.3)
        w0 = px.writes()
        for i in range(0, n, 5000):
            for _ in range(5000):
                o.write(b"x")  # one record each
            s.sendall(out.read())
        deadline = time.time() + 30
        while be.bytes < n and time.time() < deadline:
            time.sleep(0.05)
        writes = px.writes() - w0
        check(be.bytes == n and writes <= n // 20,
              "%d one-byte TLS records: the backend got %d bytes in %d proxy writes (one per record before)" %
              (n, be.bytes, writes))
        s.close()
    finally:
        stop_and_check(px.p)


def main():
    renegotiation_flood()
    tiny_records()
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
