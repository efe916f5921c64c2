// The listener's TLS side (termination): the certificates and their names, the versions and
// ciphers allowed, ALPN, session resumption and client-certificate checks, made once from the
// settings into OpenSSL contexts that every worker's connections share (SSL_CTX is safe to
// use from several threads once set up).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/settings.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace pp {

class Logger;

class TlsServer {
public:
    // nullptr and *why (naming the option, the file and OpenSSL's reason) when a certificate,
    // key or CA file cannot be used; warnings (a certificate expired or not valid yet) go to log.
    // refuse_expired: an expired (or not yet valid) certificate is an error, not a warning
    // (a reload keeps the certificates it has rather than serve one clients will refuse).
    static std::unique_ptr<TlsServer> make(const Settings &s, const Logger &log, bool refuse_expired, std::string *why);
    ~TlsServer();
    TlsServer(const TlsServer &) = delete;
    TlsServer &operator=(const TlsServer &) = delete;

    // A server-side SSL for one accepted connection (nullptr: out of memory).
    SSL *new_ssl() const;

    // A certificate and the names it serves (SAN DNS names, else its CN).
    struct Cert {
        SSL_CTX *ctx = nullptr;
        std::vector<std::string> names;  // lower case; "*.example.com" for a wildcard
        std::string file;
    };
    // The certificate for an SNI name: an exact name first, then a wildcard one label up;
    // nullptr when none (the default, the first configured, stays).
    const Cert *cert_for(const char *server_name) const;

private:
    TlsServer() = default;
    std::vector<Cert> certs_;  // [0] is the default
    bool http_ = false;        // ALPN: http/1.1 is offered back
};

// Whether OpenSSL takes `list` as TLS 1.2 ciphers (tls13 false) or TLS 1.3 suites; *why says
// why not.
bool tls_ciphers_valid(const std::string &list, bool tls13, std::string *why);

// OpenSSL's queued errors as one line (and the queue emptied): "error:...:reason".
std::string openssl_errors();

}  // namespace pp
