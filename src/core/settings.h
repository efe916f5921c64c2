// The resolved configuration a proxy runs with. Filled through the option table (options.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/address.h"
#include "poolproxy.h"

namespace pp {

enum class Mode : int64_t { tcp = 0, http = 1 };
enum class LbPolicy : int64_t { round_robin = 0, least_conn = 1, random = 2 };
enum class HealthCheck : int64_t { none = 0, tcp = 1, http = 2 };

struct BackendSpec {
    std::string text;  // as the user wrote it (without the weight)
    Address addr;
    int weight = 1;
    // A host name, resolved at start and every dns_refresh: each address it resolves to becomes
    // a backend of its own (addr is unused).
    bool dynamic = false;
    std::string host;
    int port = 0;
    // "host:port" as the user configured it, when text is not (a DNS answer's backend):
    // what health checks send as Host.
    std::string authority;
    // Backend groups: the group it belongs to ("" = the default group), and what it overrides
    // of its group (HAProxy's per-server maxconn, Envoy's endpoint hostname).
    std::string group;
    int64_t pool_max = -1;    // -1: the group's pool_max
    std::string host_header;  // "" = the Host the request has; else the Host sent to this backend
};

// A certificate of the TLS listener (or a group's client certificate): its chain (PEM) and its
// key (PEM; "" = in the chain's file).
struct TlsCertSpec {
    std::string cert;
    std::string key;
    // "CERT.pem[,key=KEY.pem]", split at the first ",key=" (the one syntax of tls_cert and
    // backend_tls_cert).
    static TlsCertSpec parse(const std::string &text) {
        const size_t k = text.find(",key=");
        return TlsCertSpec{text.substr(0, k), k == std::string::npos ? std::string() : text.substr(k + 5)};
    }
    const std::string &key_file() const { return key.empty() ? cert : key; }
};

// A named backend group ("group = NAME opt=value ..."): its own lb, pool limits, health check,
// timeouts and breaker; an option it does not set follows the top-level value (HAProxy's
// defaults section). Backends join it with "backend = host:port,group=NAME".
struct GroupSpec {
    std::string name;
    std::vector<std::pair<std::string, std::string>> options;  // in the order set
};

struct Callbacks {
    pp_log_fn log_fn = nullptr;
    void *log_userdata = nullptr;
    int log_max_level = PP_LOG_INFO;
    pp_event_fn event_fn = nullptr;
    void *event_userdata = nullptr;
    pp_access_fn access_fn = nullptr;
    void *access_userdata = nullptr;
    pp_request_hook_fn request_hook = nullptr;
    void *request_hook_userdata = nullptr;
    pp_response_hook_fn response_hook = nullptr;
    void *response_hook_userdata = nullptr;
    pp_connect_hook_fn connect_hook = nullptr;
    void *connect_hook_userdata = nullptr;
};

// Numbers are int64_t so one member-pointer type serves every numeric option; durations are ms.
struct Settings {
    int64_t mode = 0;
    std::string listen_text;
    Address listen;
    std::vector<BackendSpec> backends;
    int64_t workers = 0;
    int64_t max_connections = 0;
    int64_t worker_max_sessions = 0;
    int64_t overflow_max = 0;
    int64_t exact_balance = 0;
    int64_t lb = 0;
    int64_t pool_max = 0;
    int64_t pool_min_idle = 0;
    int64_t pool_idle_timeout = 0;
    int64_t max_conn_lifetime = 0;
    int64_t queue_max = 0;
    int64_t queue_timeout = 0;
    int64_t connect_timeout = 0;
    int64_t idle_timeout = 0;
    int64_t drain_timeout = 0;
    int64_t listen_backlog = 0;
    std::string admin_listen_text;  // "" = no admin listener
    Address admin_listen;
    // TLS termination on the listener (core/tls_server.h): on when a certificate is set.
    std::vector<TlsCertSpec> tls_certs;  // [0] is the default; the others are chosen by SNI
    int64_t tls_min_version = 0;         // 0: TLS 1.2, 1: TLS 1.3
    std::string tls_ciphers;             // TLS 1.2 cipher list ("" = OpenSSL's default)
    std::string tls_ciphersuites;        // TLS 1.3 suites ("" = OpenSSL's default)
    std::string tls_client_ca;           // CA file client certificates are checked against
    int64_t tls_verify_client = 0;       // 0 none, 1 optional, 2 required
    int64_t tls_handshake_timeout = 0;
    int64_t tls_session_tickets = 0;
    // TLS toward the backends (a group may set these; core/tls_client.h).
    int64_t backend_tls = 0;
    int64_t backend_tls_verify = 0;
    std::string backend_tls_ca;    // "" = the system's trust store
    std::string backend_tls_name;  // SNI and the name checked ("" = each backend's configured host)
    std::string backend_tls_cert;  // "CERT.pem[,key=KEY.pem]": a client certificate (mTLS), or ""
    // http mode
    int64_t response_timeout = 0;
    int64_t client_header_timeout = 0;
    int64_t client_idle_timeout = 0;
    int64_t client_io_timeout = 0;
    int64_t backend_io_timeout = 0;
    int64_t tunnel_timeout = 0;
    int64_t lingering_timeout = 0;  // 0: an answer's connection closes at once
    int64_t lingering_time = 0;
    int64_t lingering_max_bytes = 0;
    int64_t max_header_size = 0;
    int64_t max_header_fields = 0;
    int64_t max_body_size = 0;
    int64_t max_requests_per_conn = 0;
    int64_t max_client_requests = 0;
    int64_t add_forwarded = 0;
    int64_t via = 0;
    // resilience
    int64_t health_check = 0;
    std::string health_path;
    std::string health_host;  // "" = each backend's configured host:port
    std::string health_status_text;
    int health_status_lo = 200, health_status_hi = 399;
    int64_t health_interval = 0;
    int64_t health_timeout = 0;
    // Set by the user (pp_config_set, a flag, a file); until then health_timeout follows a
    // health_interval shorter than its default down (HAProxy's "timeout check").
    bool health_timeout_explicit = false;
    int64_t health_rise = 0;
    int64_t health_fall = 0;
    int64_t breaker_failures = 0;
    int64_t breaker_open_time = 0;
    int64_t breaker_max_open_time = 0;
    int64_t breaker_half_open_requests = 0;
    int64_t breaker_on_5xx = 0;
    int64_t retries = 0;
    int64_t dns_refresh = 0;
    int64_t backend_max_requests = 0;
    int64_t backend_max_pending = 0;
    // Named backend groups, in the order first named (group id i + 1; the default group is 0),
    // and the routes (http mode) in order, as written: parsed by the http protocol, which
    // owns the route syntax.
    std::vector<GroupSpec> groups;
    std::vector<std::string> routes;
    // tcp mode: "NAME -> GROUP", the group picked by a TLS ClientHello's server name (proto/sni_routes.h).
    std::vector<std::string> sni_routes;
    Callbacks callbacks;

    // Every option at its default (parsed from the table's default text).
    Settings();
};

}  // namespace pp
