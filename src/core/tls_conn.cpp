#include "core/tls_conn.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "core/tls_server.h"
#include "core/worker.h"

namespace pp {

namespace {
constexpr size_t kReadSize = 64 * 1024;  // one socket read of ciphertext (a TLS record is at most ~16 KiB)
constexpr unsigned char kHandshakeRecord = 0x16;
// What the SSL may have queued on the stream on its own (alerts, tickets, key updates) before
// the socket's read pauses: a client that makes it answer without reading the answers holds
// this much of the proxy's memory at most.
constexpr size_t kMaxQueuedOut = 256 * 1024;

// TLS 1.2 renegotiation is refused (SSL_OP_NO_RENEGOTIATION), and OpenSSL answers each attempt
// with an alert: a client repeating it is closed instead, as nginx does. (In TLS 1.3 a key
// update starts a "handshake" too: not counted.)
void on_info(const SSL *ssl, int where, int) {
    if (!(where & SSL_CB_HANDSHAKE_START) || SSL_version(ssl) >= TLS1_3_VERSION || !SSL_is_server(const_cast<SSL *>(ssl))) return;
    if (auto *t = static_cast<TlsConn *>(SSL_get_app_data(ssl))) t->note_handshake_start();
}
}  // namespace

// A write of ciphertext left over for the stream's queue, with the owner's request to
// complete (or none: the SSL's own records, a try_write's rest).
struct TlsConn::Write {
    uv_write_t req;
    TlsConn *conn;  // alive in this callback, cancelled ones included (see tls_conn.h)
    uv_stream_t *stream;
    uv_write_t *user;
    uv_write_cb cb;
    std::string data;
};

TlsConn::TlsConn(SSL *ssl, uv_stream_t *stream, uv_alloc_cb raw_alloc, uv_read_cb raw_read,
                 void (*handshaken)(uv_stream_t *, int))
    : ssl_(ssl), stream_(stream), raw_alloc_(raw_alloc), raw_read_(raw_read), handshaken_(handshaken) {
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (rbio_ && wbio_) {
        // An empty read BIO says "retry", not "end": more ciphertext comes from the socket.
        BIO_set_mem_eof_return(rbio_, -1);
        BIO_set_mem_eof_return(wbio_, -1);
        SSL_set_bio(ssl_, rbio_, wbio_);  // the SSL owns them from here
        SSL_set_app_data(ssl_, this);
        SSL_set_info_callback(ssl_, on_info);
    } else {
        BIO_free(rbio_);
        BIO_free(wbio_);
        rbio_ = wbio_ = nullptr;
    }
}

TlsConn::~TlsConn() {
    if (pending_link.linked()) static_cast<Worker *>(stream_->loop->data)->forget_tls(this);
    SSL_free(ssl_);
}

bool TlsConn::resumed() const { return SSL_session_reused(ssl_) == 1; }
const char *TlsConn::version() const { return SSL_get_version(ssl_); }
const char *TlsConn::server_name() const { return SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name); }

int TlsConn::start_handshake() {
    if (!rbio_) return UV_ENOMEM;
    const int rc = uv_read_start(stream_, raw_alloc_, raw_read_);
    raw_reading_ = rc == 0;
    if (rc == 0 && !SSL_is_server(ssl_)) {
        first_ = false;  // (the plaintext check is a server's)
        pump();  // a client speaks first: its ClientHello
    }
    return rc;
}

SSL *TlsConn::ssl() const { return ssl_; }

void TlsConn::on_raw_alloc(uv_buf_t *buf) {
    // One scratch buffer per thread: its bytes are copied into the read BIO before the next read.
    static thread_local char scratch[kReadSize];
    *buf = uv_buf_init(scratch, sizeof scratch);
}

void TlsConn::on_raw_read(ssize_t nread, const uv_buf_t *buf) {
    if (nread == 0) return;
    if (nread > 0) {
        if (first_) {
            first_ = false;
            if (static_cast<unsigned char>(buf->base[0]) != kHandshakeRecord) {
                fail(Failure::plaintext, "not a TLS handshake (plaintext sent to a TLS port?)");
                return;
            }
        }
        if (BIO_write(rbio_, buf->base, static_cast<int>(nread)) != nread) {
            fail(Failure::protocol, "out of memory");
            return;
        }
    } else {
        raw_eof_ = true;
        raw_error_ = nread == UV_EOF ? 0 : static_cast<int>(nread);
    }
    pump();
}

void TlsConn::fail(Failure f, const std::string &text) {
    if (failure_ != Failure::none) return;
    failure_ = f;
    failure_text_ = text;
    flush();  // an alert, if the SSL made one
    if (raw_reading_) {
        uv_read_stop(stream_);
        raw_reading_ = false;
    }
    raw_eof_ = true;
    if (!done_) {
        handshaken_(stream_, UV_EPROTO);
    } else if (reading_ && !eof_given_) {
        eof_given_ = true;
        uv_buf_t none = uv_buf_init(nullptr, 0);
        read_(stream_, UV_EPROTO, &none);
    }
}

void TlsConn::pump() {
    if (closing()) return;
    if (failure_ != Failure::none) {  // after the handshake: the owner learns it when it reads
        if (done_ && reading_ && !eof_given_) {
            eof_given_ = true;
            uv_buf_t none = uv_buf_init(nullptr, 0);
            read_(stream_, UV_EPROTO, &none);
        }
        return;
    }
    if (!done_) {
        ERR_clear_error();
        const int r = SSL_do_handshake(ssl_);
        if (const int rc = flush(); rc < 0) {
            fail(Failure::closed, uv_strerror(rc));
            return;
        }
        if (r != 1) {
            const int e = SSL_get_error(ssl_, r);
            if (e == SSL_ERROR_WANT_READ) {
                if (raw_eof_) {
                    fail(Failure::closed, raw_error_                ? uv_strerror(raw_error_)
                                          : SSL_is_server(ssl_) ? "the client closed during the handshake"
                                                                : "the backend closed during the handshake");
                }
                return;
            }
            std::string why = e == SSL_ERROR_SSL ? openssl_errors() : "handshake failed";
            const long v = SSL_get_verify_result(ssl_);
            if (v != X509_V_OK) {
                fail(Failure::verify, std::string("certificate verify failed: ") + X509_verify_cert_error_string(v));
                return;
            }
            fail(Failure::protocol, why);
            return;
        }
        done_ = true;
        handshaken_(stream_, 0);  // the owner starts reading (or closes)
        if (closing()) return;
    }
    int idle_turns = 0;
    while (reading_ && !eof_given_ && !closing()) {
        if (SSL_pending(ssl_) == 0 && BIO_ctrl_pending(rbio_) == 0) {
            if (raw_eof_) {
                eof_given_ = true;
                uv_buf_t none = uv_buf_init(nullptr, 0);
                read_(stream_, raw_error_ ? raw_error_ : UV_EOF, &none);
            }
            break;
        }
        uv_buf_t b = uv_buf_init(nullptr, 0);
        alloc_(reinterpret_cast<uv_handle_t *>(stream_), kReadSize, &b);
        if (!b.base || b.len == 0) {
            read_(stream_, UV_ENOBUFS, &b);
            break;
        }
        // As many records as fit go into one buffer: a client sending tiny records costs one
        // callback (and one write onward) per buffer, not one per record.
        size_t filled = 0;
        int n = 0;
        do {
            ERR_clear_error();
            n = SSL_read(ssl_, b.base + filled, static_cast<int>(b.len - filled));
            if (n > 0) filled += static_cast<size_t>(n);
        } while (n > 0 && filled < b.len && !renegotiating_ && (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0));
        if (renegotiating_) {
            read_(stream_, 0, &b);
            fail(Failure::protocol, "renegotiation refused");
            return;
        }
        const int e = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_, n);
        if (e == SSL_ERROR_ZERO_RETURN) {  // the client's close_notify: the end of its stream
            raw_eof_ = true;
            raw_error_ = 0;
            (void)BIO_reset(rbio_);  // nothing after it counts
        }
        if (filled > 0) {
            read_(stream_, static_cast<ssize_t>(filled), &b);
            idle_turns = 0;
            if (n > 0 || e == SSL_ERROR_ZERO_RETURN) continue;  // (the end is given at the loop's top)
            if (closing() || !reading_) break;
            b = uv_buf_init(nullptr, 0);
        }
        if (b.base) read_(stream_, 0, &b);  // the buffer goes back
        if (const int rc = flush(); rc < 0) {
            fail(Failure::closed, uv_strerror(rc));
            return;
        }
        if (stream_->write_queue_size > kMaxQueuedOut) break;  // (the read pauses below)
        if (e == SSL_ERROR_WANT_READ) {
            // Records with no application data (a key update) or the start of one: what was
            // read is consumed, so the next turn sees nothing pending, or more came.
            if (++idle_turns > 2) break;
            continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN) continue;  // the end, given at the loop's top
        fail(Failure::protocol, openssl_errors());
        return;
    }
    if (closing()) return;
    if (const int rc = flush(); rc < 0) {  // whatever the SSL still wrote on its own
        fail(Failure::closed, uv_strerror(rc));
        return;
    }
    // The socket's read follows the owner's (backpressure), except while the handshake runs,
    // and pauses while what the SSL wrote on its own is not taken (on_written resumes it).
    const bool want = !raw_eof_ && (!done_ || reading_) && stream_->write_queue_size <= kMaxQueuedOut;
    if (want && !raw_reading_) {
        if (uv_read_start(stream_, raw_alloc_, raw_read_) == 0) raw_reading_ = true;
    } else if (!want && raw_reading_) {
        uv_read_stop(stream_);
        raw_reading_ = false;
    }
}

int TlsConn::read_start(uv_alloc_cb alloc, uv_read_cb read) {
    alloc_ = alloc;
    read_ = read;
    reading_ = true;
    if (!done_ || closing()) return 0;
    if (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0 || (raw_eof_ && !eof_given_)) defer();
    if (!raw_reading_ && !raw_eof_) {
        const int rc = uv_read_start(stream_, raw_alloc_, raw_read_);
        if (rc != 0) return rc;
        raw_reading_ = true;
    }
    return 0;
}

int TlsConn::read_stop() {
    reading_ = false;
    if (done_ && raw_reading_) {
        uv_read_stop(stream_);
        raw_reading_ = false;
    }
    return 0;
}

void TlsConn::defer() {
    if (!pending_link.linked()) static_cast<Worker *>(stream_->loop->data)->defer_tls(this);
}

int TlsConn::encrypt(const uv_buf_t *bufs, unsigned n, size_t *total) {
    *total = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0;
        while (off < bufs[i].len) {
            size_t wrote = 0;
            ERR_clear_error();
            if (SSL_write_ex(ssl_, bufs[i].base + off, bufs[i].len - off, &wrote) != 1) {
                fail(Failure::protocol, openssl_errors());
                return UV_EPROTO;
            }
            off += wrote;
        }
        *total += bufs[i].len;
    }
    return 0;
}

int TlsConn::try_write(const uv_buf_t *bufs, unsigned n) {
    if (!done_ || failure_ != Failure::none) return UV_EPIPE;
    if (stream_->write_queue_size > 0 || !stash_.empty()) return UV_EAGAIN;
    size_t total = 0;
    if (const int rc = encrypt(bufs, n, &total)) return rc;
    char *data = nullptr;
    const long len = BIO_get_mem_data(wbio_, &data);
    uv_buf_t out = uv_buf_init(data, static_cast<unsigned>(len));
    const int rc = len > 0 ? uv_try_write(stream_, &out, 1) : 0;
    if (rc == len) {
        (void)BIO_reset(wbio_);
        return static_cast<int>(total);
    }
    if (rc < 0 && rc != UV_EAGAIN) {
        (void)BIO_reset(wbio_);
        return rc;
    }
    const size_t off = rc > 0 ? static_cast<size_t>(rc) : 0;
    stash_.assign(data + off, static_cast<size_t>(len) - off);
    stash_plain_ = total;
    (void)BIO_reset(wbio_);
    return UV_EAGAIN;
}

int TlsConn::write(uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
    if (!done_ || failure_ != Failure::none) return UV_EPIPE;
    if (!stash_.empty()) {  // what the try_write of these very buffers left
        size_t total = 0;
        for (unsigned i = 0; i < n; i++) total += bufs[i].len;
        if (total != stash_plain_) return UV_EINVAL;  // a caller that broke the contract (tls_conn.h)
        std::string out;
        out.swap(stash_);
        return send_out(out.data(), out.size(), req, cb);
    }
    size_t total = 0;
    if (const int rc = encrypt(bufs, n, &total)) return rc;
    char *data = nullptr;
    const long len = BIO_get_mem_data(wbio_, &data);
    const int rc = send_out(data, len > 0 ? static_cast<size_t>(len) : 0, req, cb);
    (void)BIO_reset(wbio_);
    return rc;
}

// Ciphertext onto the stream, behind what is queued. The SSL's own records are tried on the
// socket at once; an owner's write always goes through uv_write, whose callback it waits for.
int TlsConn::send_out(const char *data, size_t len, uv_write_t *user, uv_write_cb cb) {
    size_t off = 0;
    if (!user && stream_->write_queue_size == 0 && len > 0) {
        uv_buf_t b = uv_buf_init(const_cast<char *>(data), static_cast<unsigned>(len));
        const int rc = uv_try_write(stream_, &b, 1);
        if (rc < 0 && rc != UV_EAGAIN) return rc;
        off = rc > 0 ? static_cast<size_t>(rc) : 0;
    }
    if (!user && off == len) return 0;
    auto *w = new Write;
    w->req.data = w;
    w->conn = this;
    w->stream = stream_;
    w->user = user;
    w->cb = cb;
    w->data.assign(data + off, len - off);
    uv_buf_t b = uv_buf_init(&w->data[0], static_cast<unsigned>(w->data.size()));
    const int rc = uv_write(&w->req, stream_, &b, 1, on_written);
    if (rc != 0) delete w;
    return rc;
}

void TlsConn::on_written(uv_write_t *req, int status) {
    auto *w = static_cast<Write *>(req->data);
    TlsConn *t = w->conn;
    if (w->user) {
        w->user->handle = w->stream;
        w->cb(w->user, status);
    }
    delete w;
    // A read paused for the SSL's own queued bytes goes on once they drained.
    if (status == 0 && !t->raw_reading_ && !t->raw_eof_ && !t->closing() && t->stream_->write_queue_size <= kMaxQueuedOut &&
        (!t->done_ || t->reading_)) {
        t->pump();
    }
}

int TlsConn::flush() {
    char *data = nullptr;
    const long len = BIO_get_mem_data(wbio_, &data);
    if (len <= 0) return 0;
    const int rc = send_out(data, static_cast<size_t>(len), nullptr, nullptr);
    (void)BIO_reset(wbio_);
    return rc;
}

int TlsConn::shutdown(uv_shutdown_t *req, uv_shutdown_cb cb) {
    // (Once only: a second SSL_shutdown would read, and could drop what the client sent.)
    if (done_ && failure_ == Failure::none && !closing() && !(SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(ssl_);
        flush();
    }
    return uv_shutdown(req, stream_, cb);
}

bool TlsConn::notify_close() {
    if (!done_ || failure_ != Failure::none || closing()) return true;
    if (SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN) return stream_->write_queue_size == 0;
    ERR_clear_error();
    SSL_shutdown(ssl_);
    flush();
    return stream_->write_queue_size == 0;
}

}  // namespace pp
