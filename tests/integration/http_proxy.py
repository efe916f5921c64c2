#!/usr/bin/env python3
"""http mode through the poolproxy CLI with real clients (http.client, raw sockets) and a real
backend (http.server, HTTP/1.1 keep-alive, counting its connections). Every wait is bounded."""
import http.client
import http.server
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time

CLI = sys.argv[1]
FAILED = []
PASSED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    (PASSED if cond else FAILED).append(what)


class RawServer:
    """A loopback listener that serves each accepted connection on a thread of its own with
    serve(conn), which a subclass writes: for backends whose bytes a test must control exactly
    (faults, gates, streams), where http.server would answer for it."""

    def __init__(self, host="127.0.0.1", port=0, backlog=128, reuse=False):
        self.lock = threading.Lock()
        self.sock = socket.socket()
        if reuse:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]

    def start(self):
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        raise NotImplementedError

    @staticmethod
    def read_head(c, buf):
        """(head, rest, path) of the next request head on c, after what buf already holds;
        None (and c closed) when the peer closes first."""
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d:
                c.close()
                return None
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        return head, buf, head.split(b" ")[1].decode()


class Backend(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, idle_close=None):
        self.connections = 0
        self.idle_close = idle_close  # close a keep-alive connection idle this long (seconds)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        pass  # e.g. /slow writing after the proxy gave up on it (504): expected here


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1
        if self.server.idle_close:
            self.request.settimeout(self.server.idle_close)

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except socket.timeout:
            self.close_connection = True

    def log_message(self, *args):
        pass

    def send_body(self, body, chunked=False, status=200):
        self.send_response(status)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 65536):
                part = body[i:i + 65536]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "echo":  # a WebSocket-style switch
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
            self.wfile.flush()
            while True:
                d = self.connection.recv(65536)
                if not d:
                    break
                self.connection.sendall(d)
            self.close_connection = True
            return
        if self.path.startswith("/big"):
            self.send_body(bytes(range(256)) * 4096, chunked="chunked" in self.path)  # 1 MiB
        elif self.path == "/unsolicited-101":  # a switch nobody asked for
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n")
            self.close_connection = True
        elif self.path == "/missing":
            self.send_body(b"no such thing", status=404)
        elif self.path == "/slow":
            time.sleep(3)
            self.send_body(b"late")
        else:
            self.send_body(("path=%s xff=%s via=%s" % (self.path, self.headers.get("X-Forwarded-For"),
                                                    self.headers.get("Via"))).encode())

    do_HEAD = do_GET

    def do_POST(self):
        if self.headers.get("Transfer-Encoding") == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_body(data)


class Proxy:
    def __init__(self, *args):
        self.p = subprocess.Popen([CLI, "--mode", "http", "--listen", "127.0.0.1:0", "--workers", "2"] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("listening on "), line
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self):
        stop_and_check(self.p)


def stop_and_check(p):
    """SIGTERM (a drain), bounded; a sanitizer's report (leak, race) or a crash shows in the status."""
    p.terminate()
    try:
        p.wait(15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    check(p.returncode == 0, "proxy drained and exited cleanly (status %d)" % p.returncode)


def read_to_end(s, timeout=10):
    """Everything the peer sends until it closes (or resets), or until timeout passes."""
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except (socket.timeout, ConnectionResetError):
        pass
    return out


def raw(port, data, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = read_to_end(s, timeout)
    s.close()
    return out


def main():
    be = Backend()
    px = Proxy("--backend", "127.0.0.1:%d" % be.port, "--pool-max", "4", "--max-header-size", "8192",
               "--max-body-size", "4194304", "--response-timeout", "500ms", "--client-header-timeout", "500ms")
    try:
        # Reuse: 20 client connections x 5 requests over at most pool_max backend connections.
        ok = 0
        for i in range(20):
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
            for j in range(5):
                c.request("GET", "/r/%d/%d" % (i, j))
                r = c.getresponse()
                body = r.read()
                ok += r.status == 200 and body.startswith(b"path=/r/%d/%d xff=127.0.0.1 via=None" % (i, j))  # no Via by default
            c.close()
        check(ok == 100, "100 requests on 20 client connections answered correctly (%d)" % ok)
        check(1 <= be.connections <= 4, "backend saw %d connections for 100 requests (pool_max 4)" % be.connections)

        big = bytes(range(256)) * 4096
        c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
        for path in ("/big", "/big-chunked"):
            c.request("GET", path)
            r = c.getresponse()
            check(r.status == 200 and r.read() == big, "1 MiB download byte-exact (%s)" % path)
        up = os.urandom(2 * 1024 * 1024)
        c.request("POST", "/up", body=up)
        r = c.getresponse()
        check(r.status == 200 and r.read() == up, "2 MiB upload byte-exact (Content-Length)")
        c.request("POST", "/up", body=iter([up[i:i + 100000] for i in range(0, len(up), 100000)]),
                  encode_chunked=True)
        r = c.getresponse()
        check(r.status == 200 and r.read() == up, "2 MiB upload byte-exact (chunked)")
        c.request("HEAD", "/big")
        r = c.getresponse()
        check(r.status == 200 and r.read() == b"" and r.getheader("Content-Length") == str(len(big)),
              "HEAD: headers, no body")
        c.request("GET", "/after-head")
        r = c.getresponse()
        check(r.status == 200 and r.read().startswith(b"path=/after-head"), "connection usable after HEAD")
        c.close()

        out = raw(px.port, b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nGET /p2 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        check(out.count(b"HTTP/1.1 200 OK") == 2 and out.find(b"path=/p1") < out.find(b"path=/p2"),
              "pipelined requests answered in order")
        out = raw(px.port, b"GET /old HTTP/1.0\r\n\r\n")
        check(out.startswith(b"HTTP/1.0 200 OK") and b"path=/old" in out, "HTTP/1.0 client")
        out = raw(px.port, b"GET /big-chunked HTTP/1.0\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.0 200 OK") and b"transfer-encoding" not in head.lower() and body == big,
              "HTTP/1.0 client, chunked response: decoded 1 MiB byte-exact, ended by the close (%d bytes)" % len(body))

        vectors = {
            "CL+TE": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "double CL": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            "bad chunk": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n",
            "bare LF": b"GET / HTTP/1.1\nHost: a\n\n",
            "bad name": b"GET / HTTP/1.1\r\nHost: a\r\nX(y): 1\r\n\r\n",
        }
        for name, wire in vectors.items():
            out = raw(px.port, wire)
            check(out.startswith(b"HTTP/1.1 400 "), "smuggling vector %s -> 400 and close" % name)
        c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
        c.request("GET", "/still")
        check(c.getresponse().status == 200, "other clients still served after the 400s")
        c.close()

        # Expect: 100-continue: the interim 100 comes through, then the body goes up.
        t = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        t.sendall(b"POST /cont HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        first = t.recv(4096)
        t.sendall(b"hello")
        rest = b""
        while not rest.endswith(b"hello"):
            d = t.recv(4096)
            if not d:
                break
            rest += d
        t.close()
        check(first.startswith(b"HTTP/1.1 100 Continue\r\n") and rest.startswith(b"HTTP/1.1 200 OK") and
              rest.endswith(b"hello"), "Expect: 100-continue -> 100, then the body, then 200")

        # Upgrade: after 101 the connection is a tunnel in both directions.
        t = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        t.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            d = t.recv(1)
            if not d:
                break
            head += d
        echoes = 0
        for i in range(3):
            msg = b"frame-%d" % i
            t.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = t.recv(64)
                if not d:
                    break
                got += d
            echoes += got == msg
        t.close()
        check(head.startswith(b"HTTP/1.1 101 ") and b"Upgrade: echo" in head and echoes == 3,
              "Upgrade: 101 then a two-way tunnel (%d/3 echoes)" % echoes)

        # Found by fuzz_http_response: Connection may name a framing field; the proxy keeps it,
        # or the backend would take the body for a second request.
        out = raw(px.port, b"POST /up HTTP/1.1\r\nHost: a\r\nConnection: content-length, close\r\n"
                  b"Content-Length: 5\r\n\r\nhello", timeout=5)
        check(out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"\r\n\r\nhello") and out.count(b"HTTP/1.1") == 1,
              "Connection: content-length keeps the body framed (%r)" % out[-40:])
        # Found by fuzz_exchange_request: an Upgrade the backend declines (no 101) leaves the
        # connection in HTTP/1.1, and the next request on it is answered (the worker once
        # looped forever on it).
        out = raw(px.port, b"GET /declined HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: nope\r\n\r\n"
                  b"GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", timeout=5)
        check(out.count(b"HTTP/1.1 200 OK") == 2 and b"path=/declined" in out and b"path=/after" in out,
              "declined Upgrade: the request after it on the connection is answered too")
        out = raw(px.port, b"GET /unsolicited-101 HTTP/1.1\r\nHost: a\r\n\r\n", timeout=5)
        check(out.startswith(b"HTTP/1.1 502 "), "101 from the backend to a request without Upgrade -> 502")
        answered = 0
        for i in range(6):  # both workers still serve
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=5)
            c.request("GET", "/alive")
            answered += c.getresponse().status == 200
            c.close()
        check(answered == 6, "every worker still serves after those (%d/6)" % answered)

        check(raw(px.port, b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 9000 + b"\r\n\r\n").startswith(
            b"HTTP/1.1 431 "), "huge header -> 431")
        check(raw(px.port, b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 414 "),
              "long request line -> 414")
        check(raw(px.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000000\r\n\r\n").startswith(
            b"HTTP/1.1 413 "), "body over max_body_size -> 413")
        check(raw(px.port, b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n").startswith(b"HTTP/1.1 504 "),
              "no response within response_timeout -> 504")
        check(raw(px.port, b"GET / HTTP/1.1\r\nHost: a\r\n").startswith(b"HTTP/1.1 408 "),
              "head not finished within client_header_timeout -> 408")
    finally:
        px.stop()

    # No backend reachable: 503 with Retry-After, at once.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    px = Proxy("--backend", "127.0.0.1:%d" % dead_port)
    try:
        out = raw(px.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 503 ") and b"Retry-After:" in out, "no backend -> 503 with Retry-After")
    finally:
        px.stop()

    # Limits on connections: max_client_requests, max_requests_per_conn, client_idle_timeout.
    be3 = Backend()
    px = Proxy("--backend", "127.0.0.1:%d" % be3.port, "--workers", "1", "--pool-max", "1",
               "--max-client-requests", "3", "--max-requests-per-conn", "2", "--client-idle-timeout", "300ms")
    try:
        out = raw(px.port, b"".join(b"GET /m%d HTTP/1.1\r\nHost: a\r\n\r\n" % i for i in range(5)))
        check(out.count(b"HTTP/1.1 200 OK") == 3 and out.count(b"Connection: close") == 1 and b"path=/m3" not in out,
              "max_client_requests 3: three answers, the last with Connection: close, then the end")
        check(be3.connections == 2, "max_requests_per_conn 2: 3 requests took %d backend connections (want 2)"
              % be3.connections)
        t = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        t.sendall(b"GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")
        first = b""
        while b"path=/idle" not in first:  # the whole response, however it is split
            d = t.recv(4096)
            if not d:
                break
            first += d
        start = time.time()
        rest = t.recv(4096)  # blocks until the proxy closes the idle keep-alive connection
        waited = time.time() - start
        t.close()
        check(first.startswith(b"HTTP/1.1 200") and rest == b"" and 0.2 < waited < 5,
              "client_idle_timeout: an idle keep-alive client is closed (after %.1f s)" % waited)
    finally:
        px.stop()

    # A backend that accepts and closes without answering: 502, the client is not left hanging.
    rude = socket.socket()
    rude.bind(("127.0.0.1", 0))
    rude.listen(8)

    def hang_up_one(conn):
        conn.recv(65536)
        conn.close()

    def hang_up():
        # A thread per connection: the request may come on the start probe's idle connection
        # (then a retry on a new one) or on a new one, whichever worker took the client.
        for _ in range(8):
            conn, _ = rude.accept()
            threading.Thread(target=hang_up_one, args=(conn,), daemon=True).start()

    threading.Thread(target=hang_up, daemon=True).start()
    px = Proxy("--backend", "127.0.0.1:%d" % rude.getsockname()[1])
    try:
        out = raw(px.port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 502 "), "backend closing without a response -> 502")
    finally:
        px.stop()
        rude.close()

    # A backend that sends its response head in pieces: the proxy must rewrite the whole head
    # once, not pass the first pieces through raw.
    drib = socket.socket()
    drib.bind(("127.0.0.1", 0))
    drib.listen(4)

    def dribble_one(conn):
        if not conn.recv(65536):
            return  # the start probe's connection, closed unused
        for piece in (b"HTTP/1.1 200 OK\r\nConte", b"nt-Length: 2\r\nX-Split: ", b"yes\r\n\r", b"\nok"):
            conn.sendall(piece)
            time.sleep(0.1)
        time.sleep(0.5)
        conn.close()

    def dribble():
        # A thread per connection: the request comes on the start probe's connection or on a
        # new one, whichever worker took the client.
        for _ in range(4):
            conn, _ = drib.accept()
            threading.Thread(target=dribble_one, args=(conn,), daemon=True).start()

    threading.Thread(target=dribble, daemon=True).start()
    px = Proxy("--backend", "127.0.0.1:%d" % drib.getsockname()[1], "--via", "off")
    try:
        out = raw(px.port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        check(out == b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Split: yes\r\nConnection: close\r\n\r\nok",
              "response head split over four reads rewritten once: %r" % out[:80])
    finally:
        px.stop()
        drib.close()

    # The keep-alive race: the backend closes idle connections after 0.3 s; requests 0.5 s apart
    # find their pooled connection closed and must never fail.
    be2 = Backend(idle_close=0.3)
    px = Proxy("--backend", "127.0.0.1:%d" % be2.port, "--pool-max", "2", "--pool-idle-timeout", "1m")
    try:
        ok = 0
        for i in range(6):
            c = http.client.HTTPConnection("127.0.0.1", px.port, timeout=10)
            c.request("GET", "/race/%d" % i)
            r = c.getresponse()
            ok += r.status == 200 and r.read().startswith(b"path=/race/%d" % i)
            c.close()
            time.sleep(0.5)
        check(ok == 6, "backend closing idle connections: %d/6 requests succeeded" % ok)
    finally:
        px.stop()

    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
