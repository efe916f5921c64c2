// A connection's stream calls, plain or through TLS: what a session calls instead of libuv's
// uv_read_start/uv_try_write/uv_write/uv_shutdown on its client stream. Without TLS each is
// the libuv call itself (one predictable branch); with it, TlsConn's, which keep their meaning
// (see tls_conn.h for the one difference of try_write).
#pragma once
#include <uv.h>

#include "core/tls_conn.h"

namespace pp::io {

inline int read_start(uv_stream_t *s, TlsConn *tls, uv_alloc_cb alloc, uv_read_cb read) {
    return tls ? tls->read_start(alloc, read) : uv_read_start(s, alloc, read);
}
inline int read_stop(uv_stream_t *s, TlsConn *tls) { return tls ? tls->read_stop() : uv_read_stop(s); }
inline int try_write(uv_stream_t *s, TlsConn *tls, const uv_buf_t *bufs, unsigned n) {
    return tls ? tls->try_write(bufs, n) : uv_try_write(s, bufs, n);
}
inline int write(uv_write_t *req, uv_stream_t *s, TlsConn *tls, const uv_buf_t *bufs, unsigned n, uv_write_cb cb) {
    return tls ? tls->write(req, bufs, n, cb) : uv_write(req, s, bufs, n, cb);
}
inline int shutdown(uv_shutdown_t *req, uv_stream_t *s, TlsConn *tls, uv_shutdown_cb cb) {
    return tls ? tls->shutdown(req, cb) : uv_shutdown(req, s, cb);
}

}  // namespace pp::io
