#include "core/tls_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "obs/log.h"

namespace pp {

namespace {

constexpr unsigned char kSessionContext[] = "poolproxy";

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// The DNS names a certificate serves: its subjectAltName DNS entries, else (an old-style
// certificate) its subject's CN, as clients match them.
std::vector<std::string> names_of(X509 *x) {
    std::vector<std::string> out;
    auto *sans = static_cast<GENERAL_NAMES *>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type != GEN_DNS) continue;
            const unsigned char *p = ASN1_STRING_get0_data(g->d.dNSName);
            const int len = ASN1_STRING_length(g->d.dNSName);
            if (p && len > 0) out.push_back(lower(std::string(reinterpret_cast<const char *>(p), static_cast<size_t>(len))));
        }
        GENERAL_NAMES_free(sans);
    }
    if (out.empty()) {
        char cn[256];
        const int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
        if (len > 0) out.push_back(lower(std::string(cn, static_cast<size_t>(len))));
    }
    return out;
}

// SNI: the certificate whose names match, its context swapped in before the handshake goes on
// (what it sends and checks stays the first context's: versions, ciphers, tickets, client CA).
int on_server_name(SSL *ssl, int *, void *arg) {
    const auto *server = static_cast<const TlsServer *>(arg);
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name) return SSL_TLSEXT_ERR_NOACK;
    const TlsServer::Cert *c = server->cert_for(name);
    if (!c) return SSL_TLSEXT_ERR_NOACK;  // the default certificate answers
    if (SSL_get_SSL_CTX(ssl) != c->ctx) SSL_set_SSL_CTX(ssl, c->ctx);
    return SSL_TLSEXT_ERR_OK;
}

// ALPN in http mode: http/1.1 when the client offers it (curl offers h2 first); none else, and
// the handshake goes on without ALPN, as nginx does.
int on_alpn(SSL *, const unsigned char **out, unsigned char *outlen, const unsigned char *in, unsigned inlen, void *) {
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char *sel = nullptr;
    if (SSL_select_next_proto(&sel, outlen, kHttp11, sizeof kHttp11, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK;
    }
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

bool tls_ciphers_valid(const std::string &list, bool tls13, std::string *why) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        *why = "cannot make a TLS context: " + openssl_errors();
        return false;
    }
    ERR_clear_error();
    const int ok = tls13 ? SSL_CTX_set_ciphersuites(ctx, list.c_str()) : SSL_CTX_set_cipher_list(ctx, list.c_str());
    SSL_CTX_free(ctx);
    if (ok == 1) return true;
    ERR_clear_error();
    *why = tls13 ? "OpenSSL knows no TLS 1.3 suite in it (names such as TLS_AES_128_GCM_SHA256, colon-separated)"
                 : "OpenSSL selects no cipher from it (see openssl ciphers)";
    return false;
}

TlsServer::~TlsServer() {
    for (Cert &c : certs_) SSL_CTX_free(c.ctx);
}

std::unique_ptr<TlsServer> TlsServer::make(const Settings &s, const Logger &log, bool refuse_expired, std::string *why) {
    std::unique_ptr<TlsServer> t(new TlsServer());
    t->http_ = s.mode == static_cast<int64_t>(Mode::http);
    ERR_clear_error();
    for (size_t i = 0; i < s.tls_certs.size(); i++) {
        const TlsCertSpec &spec = s.tls_certs[i];
        const std::string where = "option 'tls_cert': ";
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx) {
            *why = where + "cannot make a TLS context: " + openssl_errors();
            return nullptr;
        }
        t->certs_.push_back(Cert{ctx, {}, spec.cert});
        if (SSL_CTX_use_certificate_chain_file(ctx, spec.cert.c_str()) != 1) {
            *why = where + "certificate chain '" + spec.cert + "': " + openssl_errors();
            return nullptr;
        }
        const std::string &key = spec.key_file();
        if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
            *why = where + "private key '" + key + "': " + openssl_errors();
            return nullptr;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            *why = where + "private key '" + key + "' does not belong to certificate '" + spec.cert + "'";
            ERR_clear_error();
            return nullptr;
        }
        X509 *x = SSL_CTX_get0_certificate(ctx);
        t->certs_.back().names = names_of(x);
        const char *bad = X509_cmp_current_time(X509_get0_notAfter(x)) < 0    ? "has expired"
                          : X509_cmp_current_time(X509_get0_notBefore(x)) > 0 ? "is not valid yet"
                                                                               : nullptr;
        if (bad && refuse_expired) {
            *why = where + "certificate '" + spec.cert + "' " + bad;
            return nullptr;
        }
        if (bad) log.log(PP_LOG_WARN, "tls: certificate '%s' %s: clients will refuse it", spec.cert.c_str(), bad);

        const int min = s.tls_min_version == 1 ? TLS1_3_VERSION : TLS1_2_VERSION;
        SSL_CTX_set_min_proto_version(ctx, min);
        // No compression, no renegotiation (a client could make the proxy redo handshakes),
        // the server's cipher order.
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                     (s.tls_session_tickets ? 0 : SSL_OP_NO_TICKET));
        if (!s.tls_session_tickets) SSL_CTX_set_num_tickets(ctx, 0);
        // Partial writes and a moving write buffer: SSL_write into a memory BIO never blocks,
        // but the caller's buffer may be another after a retry.
        SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
        if (!s.tls_ciphers.empty() && SSL_CTX_set_cipher_list(ctx, s.tls_ciphers.c_str()) != 1) {
            *why = "option 'tls_ciphers': no cipher in '" + s.tls_ciphers + "': " + openssl_errors();
            return nullptr;
        }
        if (!s.tls_ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, s.tls_ciphersuites.c_str()) != 1) {
            *why = "option 'tls_ciphersuites': no TLS 1.3 suite in '" + s.tls_ciphersuites + "': " + openssl_errors();
            return nullptr;
        }
        SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        if (s.tls_verify_client != 0) {
            if (SSL_CTX_load_verify_locations(ctx, s.tls_client_ca.c_str(), nullptr) != 1) {
                *why = "option 'tls_client_ca': '" + s.tls_client_ca + "': " + openssl_errors();
                return nullptr;
            }
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s.tls_client_ca.c_str());
            if (names) SSL_CTX_set_client_CA_list(ctx, names);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (s.tls_verify_client == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                               nullptr);
        }
        if (t->http_) SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
    }
    if (t->certs_.size() > 1) {
        SSL_CTX_set_tlsext_servername_callback(t->certs_[0].ctx, on_server_name);
        SSL_CTX_set_tlsext_servername_arg(t->certs_[0].ctx, t.get());
    }
    for (const Cert &c : t->certs_) {
        std::string names;
        for (const std::string &n : c.names) names += (names.empty() ? "" : ", ") + n;
        log.log(PP_LOG_INFO, "tls: certificate '%s' for %s%s", c.file.c_str(), names.empty() ? "(no name)" : names.c_str(),
                &c == &t->certs_[0] ? " (the default)" : "");
    }
    return t;
}

SSL *TlsServer::new_ssl() const {
    SSL *ssl = SSL_new(certs_[0].ctx);
    if (ssl) SSL_set_accept_state(ssl);
    return ssl;
}

const TlsServer::Cert *TlsServer::cert_for(const char *server_name) const {
    const std::string name = lower(server_name);
    for (const Cert &c : certs_) {
        for (const std::string &n : c.names) {
            if (n == name) return &c;
        }
    }
    const size_t dot = name.find('.');
    if (dot == std::string::npos) return nullptr;
    const std::string wild = "*" + name.substr(dot);
    for (const Cert &c : certs_) {
        for (const std::string &n : c.names) {
            if (n == wild) return &c;
        }
    }
    return nullptr;
}

}  // namespace pp
