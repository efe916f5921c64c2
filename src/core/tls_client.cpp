#include "core/tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/tls_server.h"

namespace pp {

namespace {
int session_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// A new session (ticket) of one of our connections: it replaces the pool's, which the next
// connection to the backend resumes with. Returning 1 keeps the reference OpenSSL passed.
int on_new_session(SSL *ssl, SSL_SESSION *session) {
    auto **slot = static_cast<SSL_SESSION **>(SSL_get_ex_data(ssl, session_index()));
    if (!slot) return 0;
    SSL_SESSION_free(*slot);
    *slot = session;
    return 1;
}

bool is_address(const std::string &host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}
}  // namespace

void tls_session_slot(SSL *ssl, SSL_SESSION **slot) { SSL_set_ex_data(ssl, session_index(), slot); }

TlsClient::~TlsClient() { SSL_CTX_free(ctx_); }

std::shared_ptr<const TlsClient> TlsClient::make(const Settings &g, bool *failed, std::string *why) {
    *failed = false;
    if (!g.backend_tls) return nullptr;
    std::shared_ptr<TlsClient> t(new TlsClient());
    ERR_clear_error();
    t->ctx_ = SSL_CTX_new(TLS_client_method());
    if (!t->ctx_) {
        *failed = true;
        *why = "backend_tls: cannot make a TLS context: " + openssl_errors();
        return nullptr;
    }
    t->name_ = g.backend_tls_name;
    t->verify_ = g.backend_tls_verify != 0;
    SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
    SSL_CTX_set_options(t->ctx_, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(t->ctx_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (t->verify_) {
        const int ok = g.backend_tls_ca.empty() ? SSL_CTX_set_default_verify_paths(t->ctx_)
                                                : SSL_CTX_load_verify_locations(t->ctx_, g.backend_tls_ca.c_str(), nullptr);
        if (ok != 1) {
            *failed = true;
            *why = "option 'backend_tls_ca': '" + g.backend_tls_ca + "': " + openssl_errors();
            return nullptr;
        }
        SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_NONE, nullptr);
    }
    if (!g.backend_tls_cert.empty()) {
        const TlsCertSpec c = TlsCertSpec::parse(g.backend_tls_cert);
        if (SSL_CTX_use_certificate_chain_file(t->ctx_, c.cert.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(t->ctx_, c.key_file().c_str(), SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(t->ctx_) != 1) {
            *failed = true;
            *why = "option 'backend_tls_cert': '" + g.backend_tls_cert + "': " + openssl_errors();
            return nullptr;
        }
    }
    // Sessions are kept by each worker's pool (BackendPool): the context caches none itself.
    SSL_CTX_set_session_cache_mode(t->ctx_, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(t->ctx_, on_new_session);
    return t;
}

SSL *TlsClient::new_ssl(const std::string &host) const {
    SSL *ssl = SSL_new(ctx_);
    if (!ssl) return nullptr;
    const std::string &name = name_.empty() ? host : name_;
    if (is_address(name)) {
        if (verify_) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
        SSL_set_tlsext_host_name(ssl, name.c_str());
        if (verify_) SSL_set1_host(ssl, name.c_str());
    }
    SSL_set_connect_state(ssl);
    return ssl;
}

}  // namespace pp
