// TLS over one libuv stream, through OpenSSL memory BIOs, so that nothing blocks the loop: the
// ciphertext the socket gives is written into the SSL's read BIO and the plaintext handed to
// the owner's read callback, in the owner's buffers; plaintext the owner writes is encrypted
// into the write BIO and sent on the same stream. The owner (a client session) sees the calls
// libuv's streams have (stream_io.h), with their meaning: a read callback with nread 0 gives a
// buffer back, UV_EOF ends the stream, write callbacks run once the bytes are on the socket.
//
// Only the loop's thread uses a TlsConn. Freed by its owner after the stream's close callback:
// libuv runs the cancelled writes' callbacks before that, and they reach the TlsConn.
#pragma once
#include <uv.h>

#include <cstdint>
#include <string>

#include "core/intrusive_list.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace pp {

class TlsConn {
public:
    // Why a handshake did not complete.
    enum class Failure : uint8_t { none, protocol, plaintext, closed, timeout, verify };
    // `raw_alloc`/`raw_read`: the owner's trampolines for the stream's own reads, which find
    // this TlsConn (the stream's data is the owner's) and call on_raw_alloc/on_raw_read.
    // `handshaken`: called once, when the handshake completed (status 0) or failed (< 0).
    TlsConn(SSL *ssl, uv_stream_t *stream, uv_alloc_cb raw_alloc, uv_read_cb raw_read,
            void (*handshaken)(uv_stream_t *stream, int status));
    ~TlsConn();
    TlsConn(const TlsConn &) = delete;
    TlsConn &operator=(const TlsConn &) = delete;

    // Starts the handshake: a server's reads the client's hello; a client's sends its own.
    int start_handshake();
    bool handshake_done() const { return done_; }
    bool resumed() const;
    Failure failure() const { return failure_; }
    const std::string &failure_text() const { return failure_text_; }
    const char *version() const;       // "TLSv1.3"
    const char *server_name() const;   // SNI, or nullptr
    SSL *ssl() const;

    // The stream calls, in plaintext (stream_io.h).
    int read_start(uv_alloc_cb alloc, uv_read_cb read);
    int read_stop();
    // Like uv_try_write, with one difference: UV_EAGAIN after the bytes were taken but not all
    // sent means "call write() with the same buffers next", which sends what is left of them
    // (every caller does exactly that), so that a partial send costs no second encryption.
    int try_write(const uv_buf_t *bufs, unsigned n);
    int write(uv_write_t *req, const uv_buf_t *bufs, unsigned n, uv_write_cb cb);
    // A close_notify, then the stream's shutdown after it.
    int shutdown(uv_shutdown_t *req, uv_shutdown_cb cb);
    // The close_notify sent at once if the socket takes it (for a close that follows): true
    // when nothing of it is left to write.
    bool notify_close();

    // The trampolines' targets.
    void on_raw_alloc(uv_buf_t *buf);
    void on_raw_read(ssize_t nread, const uv_buf_t *buf);
    // A deferred pass (the worker's): plaintext left over when the owner stopped reading.
    void pump();
    // OpenSSL's info callback: a TLS 1.2 client tries to renegotiate (refused; it is closed).
    void note_handshake_start() {
        if (done_) renegotiating_ = true;
    }

    ListHook pending_link;  // in the worker's list of TlsConns with plaintext to hand over

private:
    struct Write;
    static void on_written(uv_write_t *req, int status);
    int encrypt(const uv_buf_t *bufs, unsigned n, size_t *total);
    int flush();  // what the SSL wrote (handshake, alerts, tickets) onto the stream
    int send_out(const char *data, size_t len, uv_write_t *user, uv_write_cb cb);
    void fail(Failure f, const std::string &text);
    void defer();
    bool closing() const { return uv_is_closing(reinterpret_cast<const uv_handle_t *>(stream_)) != 0; }

    SSL *ssl_;
    BIO *rbio_;  // ciphertext in (owned by ssl_)
    BIO *wbio_;  // ciphertext out (owned by ssl_)
    uv_stream_t *stream_;
    uv_alloc_cb raw_alloc_;
    uv_read_cb raw_read_;
    void (*handshaken_)(uv_stream_t *, int);
    uv_alloc_cb alloc_ = nullptr;  // the owner's, while it reads
    uv_read_cb read_ = nullptr;
    std::string stash_;         // ciphertext a try_write left (write() sends it)
    size_t stash_plain_ = 0;    // the plaintext bytes it carries
    Failure failure_ = Failure::none;
    std::string failure_text_;
    bool done_ = false;         // handshake completed
    bool reading_ = false;      // the owner reads
    bool raw_reading_ = false;  // the stream's read is armed
    bool raw_eof_ = false;      // the socket ended (or failed: raw_error_)
    bool eof_given_ = false;    // the owner was told
    bool first_ = true;         // no byte seen yet (plaintext on a TLS port shows in the first)
    bool renegotiating_ = false;  // a TLS 1.2 client asked to renegotiate
    int raw_error_ = 0;
};

}  // namespace pp
