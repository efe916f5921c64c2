// A backend group's TLS (backend_tls): one OpenSSL client context for its connections, made
// when the group is (the proxy's start, a reload), shared by every worker (SSL_CTX is safe to
// share once set up). Each pooled connection does its handshake once and then carries request
// after request; a worker's pool keeps the last session of each backend to resume with.
#pragma once
#include <memory>
#include <string>

#include "core/settings.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct ssl_session_st SSL_SESSION;

namespace pp {

// Where the new sessions of a connection's handshakes go (a pool's slot, replacing what was
// there; TLS 1.3 sends them after the handshake): set on its SSL before the handshake.
void tls_session_slot(SSL *ssl, SSL_SESSION **slot);

class TlsClient {
public:
    // nullptr (no TLS) when the group has backend_tls off; throws nothing: *why on failure
    // and *failed set (a CA or certificate file OpenSSL cannot use).
    static std::shared_ptr<const TlsClient> make(const Settings &group, bool *failed, std::string *why);
    ~TlsClient();
    TlsClient(const TlsClient &) = delete;
    TlsClient &operator=(const TlsClient &) = delete;

    // A client SSL for a connection to a backend whose configured host is `host` (a name or an
    // address): SNI and the name checked are backend_tls_name, else `host` (an address is
    // checked against the certificate's IP entries and sent no SNI). nullptr: out of memory.
    SSL *new_ssl(const std::string &host) const;
    bool verifies() const { return verify_; }

private:
    TlsClient() = default;
    SSL_CTX *ctx_ = nullptr;
    std::string name_;  // backend_tls_name
    bool verify_ = true;
};

}  // namespace pp
