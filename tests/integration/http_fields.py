#!/usr/bin/env python3
"""Header fields through the poolproxy CLI in http mode (issue 15 items 3 and 11), with raw
sockets on both sides so that every byte is seen: the field count cap (max_header_fields: 431
for a request, 502 for a response, the worst head of the issue refused too), Via only when
asked for, TE: trailers passed upstream (other codings not), the Trailer field passed back;
trailers over the cap: 502 while nothing was sent, else a cut, and the access log says which.
Every wait is bounded."""
import os
import re
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from http_proxy import FAILED, PASSED, Proxy, check, raw  # noqa: E402


class RawBackend:
    """Keep-alive HTTP/1.1 backend over raw sockets. Answers each request head (no bodies here)
    by its path: /fields/N sends N extra response fields; /trailer a chunked body with a Trailer
    field and its trailer; /trailers/N a chunked body with N trailer fields, all of it in one
    send; /late-trailers/N the same with the trailer sent only once `release` is set (after the
    client saw the body); anything else echoes the request head it received as the body."""

    def __init__(self):
        self.lst = socket.socket()
        self.lst.bind(("127.0.0.1", 0))
        self.lst.listen(64)
        self.port = self.lst.getsockname()[1]
        self.heads = []
        self.release = threading.Event()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.lst.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        conn.settimeout(30)
        buf = b""
        with conn:
            while True:
                try:
                    d = conn.recv(262144)
                except OSError:
                    return
                if not d:
                    return
                buf += d
                while b"\r\n\r\n" in buf:
                    head, _, buf = buf.partition(b"\r\n\r\n")
                    self.heads.append(head)
                    path = head.split(b" ", 2)[1]
                    if path.startswith(b"/late-trailers/"):
                        conn.sendall(b"HTTP/1.1 200 OK\r\nTrailer: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     b"5\r\nhello\r\n")
                        self.release.wait(30)
                        self.release.clear()
                        conn.sendall(b"0\r\n" + self.trailers(int(path.split(b"/")[2])) + b"\r\n")
                        continue
                    conn.sendall(self.answer(head))

    @staticmethod
    def trailers(n):
        return b"".join(b"X-T%d: v\r\n" % i for i in range(n))

    @staticmethod
    def answer(head):
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/trailers/"):  # 2 head fields + N trailer fields, one send
            return (b"HTTP/1.1 200 OK\r\nTrailer: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n" +
                    RawBackend.trailers(int(path.split(b"/")[2])) + b"\r\n")
        if path.startswith(b"/fields/"):
            n = int(path.split(b"/")[2])
            fields = b"".join(b"X-R%d: v\r\n" % i for i in range(n))
            return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\nok"
        if path == b"/trailer":
            return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
                    b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n")
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head)


def request(path, fields=b"", extra=0):
    more = b"".join(b"X-%d: v\r\n" % i for i in range(extra))
    return b"GET " + path + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + fields + more + b"\r\n"


def seen_by_backend(out):
    """The request head the echoing backend received, from the proxy's answer (lowercased, each
    line ending in CRLF)."""
    return out.partition(b"\r\n\r\n")[2].lower() + b"\r\n"


def numbered(seen):
    """How many of the test's own X-<n> fields a head holds."""
    return len(re.findall(rb"\r\nx-\d+: v(?=\r\n)", seen))


def field_cap(be):
    px = Proxy("--backend", "127.0.0.1:%d" % be.port, "--max-header-size", "1048576")
    try:
        # Host, Connection + 98 = 100 fields: the default cap, passed whole.
        out = raw(px.port, request(b"/at-cap", extra=98))
        check(out.startswith(b"HTTP/1.1 200 ") and numbered(seen_by_backend(out)) == 98,
              "100 request fields (the default max_header_fields) are proxied whole")
        n = len(be.heads)
        out = raw(px.port, request(b"/over-cap", extra=99))
        check(out.startswith(b"HTTP/1.1 431 "), "101 request fields -> 431 (%r)" % out[:40])
        worst = (b"GET /worst HTTP/1.1\r\nHost: a\r\nConnection: " + b"," * 20000 + b"\r\n" +
                 b"".join(b"x%d: 1\r\n" % i for i in range(7000)) + b"\r\n")
        out = raw(px.port, worst)
        check(out.startswith(b"HTTP/1.1 431 "),
              "7,000 fields + a 20,000-comma Connection (%d bytes, under max_header_size) -> 431" % len(worst))
        check(len(be.heads) == n, "neither refused head reached the backend")
        out = raw(px.port, request(b"/after"))
        check(out.startswith(b"HTTP/1.1 200 "), "the next client is served")
        out = raw(px.port, request(b"/fields/99"))  # Content-Length + 99
        check(out.startswith(b"HTTP/1.1 200 ") and out.count(b"\r\nX-R") == 99 and out.endswith(b"\r\n\r\nok"),
              "a response of 100 fields is forwarded whole")
        out = raw(px.port, request(b"/fields/100"))
        check(out.startswith(b"HTTP/1.1 502 ") and b"X-R" not in out,
              "a response of 101 fields -> 502, none of it forwarded (%r)" % out[:40])
    finally:
        px.stop()
    px = Proxy("--backend", "127.0.0.1:%d" % be.port, "--max-header-fields", "200")
    try:
        out = raw(px.port, request(b"/raised", extra=150))
        check(out.startswith(b"HTTP/1.1 200 ") and numbered(seen_by_backend(out)) == 150,
              "max_header_fields 200: 152 request fields are proxied whole")
        out = raw(px.port, request(b"/fields/150"))
        check(out.startswith(b"HTTP/1.1 200 ") and out.count(b"\r\nX-R") == 150,
              "max_header_fields 200: a response of 151 fields is forwarded")
    finally:
        px.stop()


def via(be):
    px = Proxy("--backend", "127.0.0.1:%d" % be.port)
    try:
        out = raw(px.port, request(b"/via"))
        check(out.startswith(b"HTTP/1.1 200 ") and b"\r\nvia:" not in seen_by_backend(out) and b"\r\nVia:" not in
              out.partition(b"\r\n\r\n")[0], "no Via by default, either way (it stops nginx compressing)")
    finally:
        px.stop()
    px = Proxy("--backend", "127.0.0.1:%d" % be.port, "--via", "on")
    try:
        out = raw(px.port, request(b"/via"))
        head = out.partition(b"\r\n\r\n")[0]
        check(b"\r\nvia: 1.1 poolproxy\r\n" in seen_by_backend(out) and b"\r\nVia: 1.1 poolproxy" in head,
              "--via on: Via: 1.1 poolproxy both ways")
    finally:
        px.stop()


def te_and_trailer(be):
    px = Proxy("--backend", "127.0.0.1:%d" % be.port)
    try:
        out = raw(px.port, request(b"/te", b"TE: deflate;q=0.5, trailers\r\n"))
        seen = seen_by_backend(out)
        check(b"\r\nte: trailers\r\n" in seen and b"deflate" not in seen and b"\r\nconnection: te\r\n" in seen,
              "TE: deflate, trailers -> the backend gets TE: trailers, listed in Connection (%r)" % seen[-80:])
        out = raw(px.port, request(b"/te", b"TE: gzip\r\n"))
        check(out.startswith(b"HTTP/1.1 200 ") and b"\r\nte:" not in seen_by_backend(out),
              "TE: gzip is not passed on")
        out = raw(px.port, b"GET /te HTTP/1.0\r\nHost: a\r\nTE: trailers\r\n\r\n")
        check(out.startswith(b"HTTP/1.0 200 ") and b"\r\nte:" not in seen_by_backend(out),
              "TE: trailers from an HTTP/1.0 client (it gets no trailers) is not passed on")
        out = raw(px.port, request(b"/trailer", b"TE: trailers\r\n"))
        head, _, body = out.partition(b"\r\n\r\n")
        check(b"\r\nTrailer: X-Checksum" in head and body == b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n",
              "the Trailer response field and its trailer reach the client (%r)" % out[-60:])
        out = raw(px.port, b"GET /trailer HTTP/1.0\r\nHost: a\r\n\r\n")
        head, _, body = out.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.0 200 ") and b"trailer" not in head.lower() and body == b"hello",
              "to an HTTP/1.0 client (body decoded, no trailers) no Trailer field")
    finally:
        px.stop()


def access_line(path, target, limit=15):
    """The access-log line of `target` (bounded wait: the entry may follow the answer)."""
    end = time.monotonic() + limit
    while True:
        lines = [l for l in open(path).read().splitlines() if ('"GET %s" ' % target) in l]
        if lines or time.monotonic() > end:
            return lines[0] if lines else ""
        time.sleep(0.05)


def trailer_cap(be):
    """max_header_fields counts head and trailer fields. Trailers over it that arrive with the
    head (one backend read, nothing sent to the client yet) get the documented 502, logged as
    502 with the request's and the answer's bytes; trailers over it that arrive after the head and body went out
    can only cut the response: logged with the status sent and the reason."""
    log = os.path.join(tempfile.mkdtemp(prefix="pp-fields-"), "access.log")
    px = Proxy("--backend", "127.0.0.1:%d" % be.port, "--access-log", log)
    try:
        out = raw(px.port, request(b"/trailers/98", b"TE: trailers\r\n"))  # Trailer, Transfer-Encoding + 98
        check(out.startswith(b"HTTP/1.1 200 ") and out.count(b"\r\nX-T") == 98 and out.endswith(b"\r\n\r\n"),
              "2 head fields + 98 trailer fields (the cap, 100) are forwarded whole")
        for n in (99, 150):
            target = b"/trailers/%d" % n
            req = request(target, b"TE: trailers\r\n")
            out = raw(px.port, req)
            check(out.startswith(b"HTTP/1.1 502 ") and b"hello" not in out,
                  "2 head + %d trailer fields in one backend read -> 502, none of it forwarded (%r)" % (n, out[:40]))
            line = access_line(log, target.decode())
            check(('"GET %s" 502 ' % target.decode()) in line and "max_header_fields" in line,
                  "logged as 502 with the reason (%s)" % line[-120:])
            m = re.search(r"bytes_in=(\d+) bytes_out=(\d+)", line)
            check(bool(m) and int(m.group(1)) == len(req) and int(m.group(2)) == len(out),
                  "with the request's bytes (%d) and the answer's (%d): %s" % (len(req), len(out), line[-60:]))
        s = socket.create_connection(("127.0.0.1", px.port), timeout=10)
        s.sendall(request(b"/late-trailers/150", b"TE: trailers\r\n"))
        got = b""
        end = time.monotonic() + 15
        while b"5\r\nhello\r\n" not in got and time.monotonic() < end:
            d = s.recv(65536)
            if not d:
                break
            got += d
        check(got.startswith(b"HTTP/1.1 200 ") and got.endswith(b"\r\n\r\n5\r\nhello\r\n"),
              "late trailers: the head and the body reach the client first (%r)" % got[-40:])
        be.release.set()
        s.settimeout(15)
        rest = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                rest += d
        except OSError:
            pass
        s.close()
        check(b"X-T" not in rest and not (got + rest).endswith(b"\r\n\r\n"),
              "then 150 trailer fields: the response is cut, not completed (%r)" % rest[-40:])
        line = access_line(log, "/late-trailers/150")
        check('"GET /late-trailers/150" 200 ' in line and "max_header_fields" in line,
              "logged with the status the client got (200) and the reason (%s)" % line[-120:])
    finally:
        px.stop()


def main():
    be = RawBackend()
    for case in (field_cap, via, te_and_trailer, trailer_cap):
        print("--", case.__name__, flush=True)
        case(be)
    print("%d passed, %d failed" % (len(PASSED), len(FAILED)))
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
