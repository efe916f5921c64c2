#include "core/options.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <vector>

#include <arpa/inet.h>
#include <unistd.h>

#include "core/tls_server.h"

namespace pp {

namespace {

constexpr int64_t kHour = 3600 * 1000;
constexpr int64_t kDay = 24 * kHour;

// The one place an option is declared. Keep rows in the order --help should list them.
const OptionDef kOptions[] = {
    {"mode", PP_OPT_ENUM, "tcp", "tcp|http", 0, 0,
     "tcp relays bytes over pre-warmed connections; http proxies HTTP/1.1 requests over reused keep-alive connections",
     &Settings::mode},
    {"listen", PP_OPT_ADDRESS, "127.0.0.1:8080", "", 0, 0,
     "address to accept clients on, host:port or [v6]:port (port 0 picks a free port)", nullptr},
    {"backend", PP_OPT_BACKEND, "", "", 0, 0,
     "backend host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]; repeat for several backends; a host name "
     "is resolved at start and every dns_refresh, each of its addresses a backend; group: the backend group it "
     "belongs to (default: the unnamed one); pool_max: its own cap instead of its group's; host: the Host sent to it",
     nullptr},
    {"group", PP_OPT_LIST, "", "", 0, 0,
     "a backend group: 'NAME [option=value ...]' with its own lb, pool_max, pool_min_idle, pool_idle_timeout, "
     "max_conn_lifetime, connect_timeout, response_timeout, retries, max_requests_per_conn, health_*, breaker_*, "
     "backend_max_requests, backend_max_pending or queue_max (the rest follow the top level); repeat for several groups",
     nullptr},
    {"route", PP_OPT_LIST, "", "", 0, 0,
     "http: '[host=H] [path=/P] [method=M] [header=NAME[:VALUE]] [strip_prefix] [host_rewrite=H] -> GROUP'; the "
     "first route whose conditions all match picks the request's group (host *.example.com: any name below it); "
     "no match: the default group; repeat for several routes (docs/ROUTING.md)",
     nullptr},
    {"sni_route", PP_OPT_LIST, "", "", 0, 0,
     "tcp: 'NAME -> GROUP', the group of a TLS connection picked by the server name of its ClientHello (NAME "
     "example.com or *.example.com: any name below it), without terminating its TLS; the first match wins; no "
     "match, no name, or not TLS: the default group; the ClientHello must come within tls_handshake_timeout",
     nullptr},
    {"workers", PP_OPT_INT, "0", "", 0, 256,
     "worker threads, each with its own event loop (0 = one per CPU)", &Settings::workers},
    {"max_connections", PP_OPT_INT, "10000", "", 1, 10000000,
     "client connections open at once; more are closed on accept and counted", &Settings::max_connections},
    {"worker_max_sessions", PP_OPT_INT, "0", "", 0, 10000000,
     "sessions one worker takes before new ones overflow (0 = max_connections / workers)",
     &Settings::worker_max_sessions},
    {"overflow_max", PP_OPT_INT, "1024", "", 0, 1000000,
     "accepted connections that may wait for a worker when all are busy; beyond, rejected",
     &Settings::overflow_max},
    {"exact_balance", PP_OPT_BOOL, "off", "", 0, 0,
     "the acceptor thread hands every new connection to a worker (round robin among those below half their "
     "capacity), like Envoy's exact_balance; off: workers below their share accept for themselves, which spares "
     "a cross-thread hand-off per connection",
     &Settings::exact_balance},
    {"lb", PP_OPT_ENUM, "round_robin", "round_robin|least_conn|random", 0, 0,
     "backend choice: smooth weighted round robin, least outstanding by power of two choices, or random",
     &Settings::lb},
    {"pool_max", PP_OPT_INT, "64", "", 0, 1000000,
     "hard cap on connections per backend across all workers (0 = no cap and no pre-warming); in tcp mode each "
     "client session holds one for its whole life, so this caps concurrent sessions per backend: clients beyond it "
     "wait queue_timeout and are then closed (logged as a warning); in http mode an upgraded connection "
     "(WebSocket) holds one until the tunnel ends (see tunnel_timeout)",
     &Settings::pool_max},
    {"pool_min_idle", PP_OPT_INT, "0", "", 0, 1000000,
     "connections per backend kept open ahead of demand, refilled in the background",
     &Settings::pool_min_idle},
    {"pool_idle_timeout", PP_OPT_DURATION, "5s", "", 0, kDay,
     "an idle pooled connection is closed after this (0 = never)", &Settings::pool_idle_timeout},
    {"max_conn_lifetime", PP_OPT_DURATION, "0", "", 0, 30 * kDay,
     "a backend connection is retired at its next idle moment after this age (0 = no limit)",
     &Settings::max_conn_lifetime},
    {"queue_max", PP_OPT_INT, "1024", "", 0, 1000000,
     "sessions that may wait for a backend connection when the pool is at pool_max (per backend group: each has its own queue)",
     &Settings::queue_max},
    {"queue_timeout", PP_OPT_DURATION, "2s", "", 1, kHour,
     "how long a session waits for a backend connection before it is closed", &Settings::queue_timeout},
    {"connect_timeout", PP_OPT_DURATION, "2s", "", 1, kHour,
     "how long connecting to a backend may take", &Settings::connect_timeout},
    {"idle_timeout", PP_OPT_DURATION, "5m", "", 0, 7 * kDay,
     "a tcp session with no byte in either direction for this long is closed (0 = never; upgraded http "
     "connections use tunnel_timeout)",
     &Settings::idle_timeout},
    {"drain_timeout", PP_OPT_DURATION, "5s", "", 0, kHour,
     "default drain time for a stop (pp_proxy_stop with a negative drain, SIGTERM in the CLI)",
     &Settings::drain_timeout},
    {"listen_backlog", PP_OPT_INT, "1024", "", 1, 65535, "listen(2) backlog", &Settings::listen_backlog},
    {"admin_listen", PP_OPT_ADDRESS, "", "", 0, 0,
     "address of the admin listener serving /metrics (Prometheus), /stats (JSON) and /healthz (\"\" = off)",
     nullptr},
    {"tls_cert", PP_OPT_LIST, "", "", 0, 0,
     "TLS on the listener: 'CERT.pem[,key=KEY.pem]', a certificate chain and its key (by default in the same "
     "file); repeat for several: the first is the default, the others are chosen by the name the client asks for "
     "(SNI) against each certificate's names (subjectAltName, wildcards one label deep)",
     nullptr},
    {"tls_min_version", PP_OPT_ENUM, "1.2", "1.2|1.3", 0, 0, "the oldest TLS version the listener accepts",
     &Settings::tls_min_version},
    {"tls_ciphers", PP_OPT_STRING,
     "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
     "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305",
     "", 0, 0,
     "TLS 1.2 ciphers the listener accepts, in OpenSSL's syntax (default: Mozilla's \"intermediate\" list, forward "
     "secret AEAD ciphers only; \"\" = OpenSSL's default list)",
     nullptr, &Settings::tls_ciphers},
    {"tls_ciphersuites", PP_OPT_STRING, "", "", 0, 0,
     "TLS 1.3 suites the listener accepts, colon-separated (\"\" = OpenSSL's default)", nullptr,
     &Settings::tls_ciphersuites},
    {"tls_session_tickets", PP_OPT_BOOL, "on", "", 0, 0,
     "TLS session resumption by tickets (keys made at start, shared by the workers)", &Settings::tls_session_tickets},
    {"tls_handshake_timeout", PP_OPT_DURATION, "10s", "", 1, kHour,
     "a client's TLS handshake must complete within this of its accept, else the connection closes",
     &Settings::tls_handshake_timeout},
    {"tls_verify_client", PP_OPT_ENUM, "none", "none|optional|required", 0, 0,
     "client certificates (mTLS): not asked for, checked when sent, or required; checked against tls_client_ca",
     &Settings::tls_verify_client},
    {"tls_client_ca", PP_OPT_STRING, "", "", 0, 0, "PEM file of the CAs client certificates must chain to",
     nullptr, &Settings::tls_client_ca},
    {"backend_tls", PP_OPT_BOOL, "off", "", 0, 0,
     "TLS to the backends: each pooled connection does its handshake once and carries many requests",
     &Settings::backend_tls},
    {"backend_tls_verify", PP_OPT_BOOL, "on", "", 0, 0,
     "check each backend's certificate chain (backend_tls_ca) and name (backend_tls_name); off: encrypt only",
     &Settings::backend_tls_verify},
    {"backend_tls_ca", PP_OPT_STRING, "", "", 0, 0,
     "PEM file of the CAs backend certificates must chain to (\"\" = the system's trust store)", nullptr,
     &Settings::backend_tls_ca},
    {"backend_tls_name", PP_OPT_STRING, "", "", 0, 0,
     "the name sent as SNI and checked in backend certificates (\"\" = each backend's configured host: its name, "
     "or its address, checked against the certificate's IP entries)",
     nullptr, &Settings::backend_tls_name},
    {"backend_tls_cert", PP_OPT_STRING, "", "", 0, 0,
     "a client certificate for the backends (mTLS): 'CERT.pem[,key=KEY.pem]' (\"\" = none)", nullptr,
     &Settings::backend_tls_cert},
    {"response_timeout", PP_OPT_DURATION, "30s", "", 1, kHour,
     "http: a backend that sends no response byte this long after the request gets the client a 504",
     &Settings::response_timeout},
    {"client_header_timeout", PP_OPT_DURATION, "10s", "", 1, kHour,
     "http: a client must send a whole request head within this of its first byte, else 408",
     &Settings::client_header_timeout},
    {"client_idle_timeout", PP_OPT_DURATION, "60s", "", 1, kDay,
     "http: a keep-alive client connection with no request in flight is closed after this",
     &Settings::client_idle_timeout},
    {"client_io_timeout", PP_OPT_DURATION, "60s", "", 1, kDay,
     "http: an exchange waiting on its client (a response it stopped reading, a request body that stalls) with no "
     "byte moving for this long ends, and both connections close (HAProxy's timeout client, nginx's send_timeout)",
     &Settings::client_io_timeout},
    {"backend_io_timeout", PP_OPT_DURATION, "60s", "", 1, kDay,
     "http: an exchange waiting on its backend past the first response byte (a body that stalls) with no byte "
     "moving for this long ends, and both connections close (HAProxy's timeout server, nginx's proxy_read_timeout)",
     &Settings::backend_io_timeout},
    {"tunnel_timeout", PP_OPT_DURATION, "1h", "", 0, 7 * kDay,
     "http: an upgraded connection (WebSocket) with no byte in either direction for this long is closed "
     "(0 = never; HAProxy's timeout tunnel); until then the tunnel holds a pool_max slot of its backend, "
     "and requests that time out in the queue behind tunnels are logged as a warning",
     &Settings::tunnel_timeout},
    {"lingering_timeout", PP_OPT_DURATION, "2s", "", 0, kHour,
     "http: after its last answer on a connection it then closes (an error such as 400, 413 or 431, or "
     "Connection: close), the proxy half-closes and reads and discards what the client still sends, so that the "
     "client is not reset before it reads the answer; it closes when the client closes its side or sends nothing "
     "for this long (0 = close at once; nginx's lingering_close and lingering_timeout)",
     &Settings::lingering_timeout},
    {"lingering_time", PP_OPT_DURATION, "5s", "", 1, kHour,
     "http: the longest a connection lingers after its last answer, however the client keeps sending (nginx's "
     "lingering_time)",
     &Settings::lingering_time},
    {"lingering_max_bytes", PP_OPT_INT, "4194304", "", 0, INT64_MAX / 2,
     "http: the most bytes a lingering connection reads and discards before it closes",
     &Settings::lingering_max_bytes},
    {"max_header_size", PP_OPT_INT, "65536", "", 1024, 1048576,
     "http: largest request or response head in bytes; a larger request head gets 431",
     &Settings::max_header_size},
    {"max_header_fields", PP_OPT_INT, "100", "", 1, 32767,
     "http: most field lines in a request or response head, trailers included; a request with more gets 431, a "
     "response 502",
     &Settings::max_header_fields},
    {"max_body_size", PP_OPT_INT, "0", "", 0, INT64_MAX / 2,
     "http: largest request body in bytes, else 413 (0 = no limit)", &Settings::max_body_size},
    {"max_requests_per_conn", PP_OPT_INT, "0", "", 0, 100000000,
     "http: a backend connection is retired after this many requests (0 = no limit)",
     &Settings::max_requests_per_conn},
    {"max_client_requests", PP_OPT_INT, "0", "", 0, 100000000,
     "http: a client connection is closed after this many requests (0 = no limit)",
     &Settings::max_client_requests},
    {"add_forwarded", PP_OPT_BOOL, "on", "", 0, 0,
     "http: add the client to X-Forwarded-For and set X-Forwarded-Proto", &Settings::add_forwarded},
    {"via", PP_OPT_BOOL, "off", "", 0, 0,
     "http: add a Via field naming poolproxy (off by default, as in HAProxy and nginx: nginx with gzip_proxied "
     "off does not compress a response to a request with Via)",
     &Settings::via},
    {"retries", PP_OPT_INT, "1", "", 0, 10,
     "times a request is sent again, to another backend when one exists, after a failed connect or (idempotent, "
     "bodiless) a reused connection that died before any response byte",
     &Settings::retries},
    {"health_check", PP_OPT_ENUM, "none", "none|tcp|http", 0, 0,
     "active health checks, one checker per backend for the whole proxy: a connect, or an HTTP GET of health_path",
     &Settings::health_check},
    {"health_path", PP_OPT_STRING, "/", "", 0, 0, "http health checks: the path to GET (starts with /)", nullptr},
    {"health_host", PP_OPT_STRING, "", "", 0, 0,
     "http health checks: the Host to send (\"\" = each backend's host:port as configured, a DNS name's "
     "backends the name)",
     nullptr},
    {"health_status", PP_OPT_STRING, "200-399", "", 0, 0,
     "http health checks: the statuses that pass, \"200\" or a range \"200-399\"", nullptr},
    {"health_interval", PP_OPT_DURATION, "2s", "", 100, kHour, "time between two checks of a backend",
     &Settings::health_interval},
    {"health_timeout", PP_OPT_DURATION, "1s", "", 10, kHour,
     "a check not answered within this fails; unless set, a shorter health_interval is the timeout too",
     &Settings::health_timeout},
    {"health_rise", PP_OPT_INT, "2", "", 1, 1000, "checks in a row that must pass to mark a backend healthy again",
     &Settings::health_rise},
    {"health_fall", PP_OPT_INT, "3", "", 1, 1000, "checks in a row that must fail to mark a backend unhealthy",
     &Settings::health_fall},
    {"breaker_failures", PP_OPT_INT, "5", "", 0, 1000000,
     "consecutive failures (connect errors, timeouts, resets, invalid responses) that open a backend's breaker "
     "(0 = no breaker)",
     &Settings::breaker_failures},
    {"breaker_open_time", PP_OPT_DURATION, "5s", "", 1, kHour,
     "how long an open breaker refuses requests before half-open probes; doubles on each re-open",
     &Settings::breaker_open_time},
    {"breaker_max_open_time", PP_OPT_DURATION, "60s", "", 1, kDay, "the longest an open breaker stays open",
     &Settings::breaker_max_open_time},
    {"breaker_half_open_requests", PP_OPT_INT, "1", "", 1, 100000,
     "probe requests a half-open breaker admits at once; a probe's success closes it",
     &Settings::breaker_half_open_requests},
    {"breaker_on_5xx", PP_OPT_BOOL, "off", "", 0, 0, "http: count 5xx responses from a backend as breaker failures",
     &Settings::breaker_on_5xx},
    {"backend_max_requests", PP_OPT_INT, "0", "", 0, 100000000,
     "requests in flight to one backend, all workers together; beyond, it is skipped and with no other "
     "backend the request gets 503 at once (0 = no limit)",
     &Settings::backend_max_requests},
    {"backend_max_pending", PP_OPT_INT, "0", "", 0, 100000000,
     "sessions waiting for a connection to one backend (at pool_max); beyond, 503 at once instead of "
     "waiting (0 = no limit beyond queue_max)",
     &Settings::backend_max_pending},
    {"dns_refresh", PP_OPT_DURATION, "30s", "", 100, kDay,
     "a backend given by host name is resolved at start and again this often; each address is a backend, "
     "added and removed as the answers change",
     &Settings::dns_refresh},
};

constexpr size_t kOptionCount = sizeof kOptions / sizeof kOptions[0];

// What a backend group may set for itself (GroupSpec): what its backends, their pools and their
// checks read. Options of the client side, the workers and the waiting queue stay proxy-wide.
const char *const kGroupOptions[] = {
    "lb", "pool_max", "pool_min_idle", "pool_idle_timeout", "max_conn_lifetime", "connect_timeout",
    "response_timeout", "retries", "max_requests_per_conn", "health_check", "health_path", "health_host",
    "health_status", "health_interval", "health_timeout", "health_rise", "health_fall", "breaker_failures",
    "breaker_open_time", "breaker_max_open_time", "breaker_half_open_requests", "breaker_on_5xx",
    "backend_max_requests", "backend_max_pending", "queue_max", "backend_tls", "backend_tls_verify",
    "backend_tls_ca", "backend_tls_name", "backend_tls_cert",
};

}  // namespace

bool group_scoped(const std::string &name) {
    for (const char *g : kGroupOptions) {
        if (name == g) return true;
    }
    return false;
}

bool same_group_options(const Settings &a, const Settings &b) {
    for (const char *name : kGroupOptions) {
        const OptionDef *d = find_option(name);
        if (d && get_option(a, *d) != get_option(b, *d)) return false;
    }
    return true;
}

namespace {

// A group's name: what a route and a backend's group= refer to it by.
// "default" names the default group (a route's "-> default").
bool valid_group_name(const std::string &name) {
    if (name.empty() || name.size() > 64 || name == "default") return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                        c == '-' || c == '.';
        if (!ok) return false;
    }
    return true;
}

GroupSpec *find_group(Settings *s, const std::string &name) {
    for (GroupSpec &g : s->groups) {
        if (g.name == name) return &g;
    }
    return nullptr;
}

std::string range_text(const OptionDef &d) {
    if (d.type == PP_OPT_DURATION) {
        return std::to_string(d.min) + "ms.." + std::to_string(d.max) + "ms";
    }
    return std::to_string(d.min) + ".." + std::to_string(d.max);
}

std::string quote(const std::string &v) { return "'" + v + "'"; }

bool parse_int(const std::string &text, int64_t *out) {
    size_t i = (!text.empty() && text[0] == '-') ? 1 : 0;
    if (text.size() == i || text.size() - i > 19) return false;
    for (size_t k = i; k < text.size(); k++) {
        if (text[k] < '0' || text[k] > '9') return false;
    }
    errno = 0;
    long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) return false;
    *out = v;
    return true;
}

bool parse_bool(const std::string &text, int64_t *out) {
    static const char *yes[] = {"on", "true", "yes", "1"};
    static const char *no[] = {"off", "false", "no", "0"};
    for (const char *w : yes) {
        if (text == w) return *out = 1, true;
    }
    for (const char *w : no) {
        if (text == w) return *out = 0, true;
    }
    return false;
}

// The words of an enum option, in order ("a|b|c" -> a, b, c); a word's index is its value.
std::vector<std::string> enum_words(const OptionDef &d) {
    std::vector<std::string> words;
    const char *p = d.choices;
    for (;;) {
        const char *end = std::strchr(p, '|');
        words.emplace_back(p, end ? static_cast<size_t>(end - p) : std::strlen(p));
        if (!end) return words;
        p = end + 1;
    }
}

bool parse_enum(const OptionDef &d, const std::string &text, int64_t *out) {
    std::vector<std::string> words = enum_words(d);
    for (size_t i = 0; i < words.size(); i++) {
        if (words[i] == text) return *out = static_cast<int64_t>(i), true;
    }
    return false;
}

std::string enum_word(const OptionDef &d, int64_t index) {
    std::vector<std::string> words = enum_words(d);
    return index >= 0 && static_cast<size_t>(index) < words.size() ? words[static_cast<size_t>(index)] : "?";
}

// "host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]"
int parse_backend(const std::string &value, BackendSpec *out, std::string *why) {
    const std::string form = "expected 'host:port[,weight=N][,group=NAME][,pool_max=N][,host=HOST]'";
    if (value.size() > 1024) {
        *why = "option 'backend': " + form + ", got " + std::to_string(value.size()) + " bytes";
        return PP_EBADVALUE;
    }
    size_t comma = value.find(',');
    std::string addr_text = value.substr(0, comma);
    int weight = 1;
    while (comma != std::string::npos) {
        const size_t next = value.find(',', comma + 1);
        const std::string item = value.substr(comma + 1, next == std::string::npos ? std::string::npos : next - comma - 1);
        comma = next;
        const size_t eq = item.find('=');
        const std::string key = item.substr(0, eq), val = eq == std::string::npos ? "" : item.substr(eq + 1);
        int64_t n = 0;
        if (key == "weight" && parse_int(val, &n) && n >= 1 && n <= 1000) {
            weight = static_cast<int>(n);
        } else if (key == "pool_max" && parse_int(val, &n) && n >= 0 && n <= 1000000) {
            out->pool_max = n;
        } else if (key == "group" && (val == "default" || valid_group_name(val))) {
            out->group = val == "default" ? "" : val;  // "default": the unnamed group, as in routes
        } else if (key == "host" && !val.empty() && val.size() <= 255 &&
                   val.find_first_of(" \t/@?#\r\n") == std::string::npos) {
            out->host_header = val;
        } else {
            *why = "option 'backend': " + form +
                   " (weight 1..1000, pool_max 0..1000000, group a name of letters, digits, '_', '-', '.'), got " +
                   quote(value) + " (at " + quote(item) + ")";
            return PP_EBADVALUE;
        }
    }
    std::string reason;
    if (parse_host_name_port(addr_text, &out->host, &out->port) && addr_text.compare(0, 10, "localhost:") != 0) {
        out->dynamic = true;  // resolved at start and every dns_refresh
    } else if (!parse_address(addr_text, false, &out->addr, &reason)) {
        *why = "option 'backend': " + reason;
        return PP_EADDR;
    }
    out->text = addr_text;
    out->weight = weight;
    return PP_OK;
}

// "NAME [option=value ...]": declares a group, or adds to one declared before.
int parse_group(Settings *s, const std::string &value, std::string *why) {
    std::vector<std::string> words;
    size_t i = 0;
    while (i < value.size()) {
        while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) i++;
        size_t j = i;
        while (j < value.size() && value[j] != ' ' && value[j] != '\t') j++;
        if (j > i) words.push_back(value.substr(i, j - i));
        i = j;
    }
    if (words.empty() || !valid_group_name(words[0])) {
        *why = "option 'group': expected 'NAME [option=value ...]' with NAME of letters, digits, '_', '-', '.' "
               "(at most 64; 'default' is the unnamed group's), got " + quote(value);
        return PP_EBADVALUE;
    }
    if (words.size() > 64) {
        *why = "option 'group': at most 63 options in one line, got " + std::to_string(words.size() - 1);
        return PP_EBADVALUE;
    }
    // Each option is checked as the top level would take it, on a scratch configuration (the
    // defaults: a copy of *s would copy its every backend and route for each group line).
    Settings scratch;
    for (size_t w = 1; w < words.size(); w++) {
        const size_t eq = words[w].find('=');
        const std::string name = words[w].substr(0, eq);
        if (eq == std::string::npos || !group_scoped(name)) {
            *why = "option 'group' " + quote(value) + ": " + quote(words[w]) +
                   " is not 'option=value' with an option a group may set (see --help for 'group')";
            return PP_EBADVALUE;
        }
        std::string reason;
        if (const int rc = set_option(&scratch, name, words[w].substr(eq + 1), &reason)) {
            *why = "option 'group' " + quote(words[0]) + ": " + reason;
            return rc;
        }
    }
    if (!find_group(s, words[0])) {
        if (s->groups.size() >= kMaxGroups) {
            *why = "option 'group': at most " + std::to_string(kMaxGroups) + " groups";
            return PP_EBADVALUE;
        }
        s->groups.push_back(GroupSpec{words[0], {}});
    }
    GroupSpec *g = find_group(s, words[0]);
    for (size_t w = 1; w < words.size(); w++) {
        const size_t eq = words[w].find('=');
        g->options.emplace_back(words[w].substr(0, eq), words[w].substr(eq + 1));
    }
    return PP_OK;
}

}  // namespace

bool parse_duration_ms(const std::string &text, int64_t *out_ms) {
    if (text.size() > 64) return false;  // no duration is written so long: linear and capped
    size_t digits = 0;
    int64_t n = 0;
    bool overflow = false;
    for (; digits < text.size() && text[digits] >= '0' && text[digits] <= '9'; digits++) {
        const int d = text[digits] - '0';
        if (n > (INT64_MAX - d) / 10) overflow = true;
        else n = n * 10 + d;
    }
    if (digits == 0) return false;
    const std::string unit = text.substr(digits);
    int64_t scale;
    if (unit.empty() || unit == "ms") scale = 1;
    else if (unit == "s") scale = 1000;
    else if (unit == "m") scale = 60 * 1000;
    else if (unit == "h") scale = kHour;
    else if (unit == "d") scale = kDay;
    else return false;
    // Too large for 64 bits: saturate, so that the range check refuses it (never a wrapped value).
    *out_ms = overflow || n > INT64_MAX / scale ? INT64_MAX : n * scale;
    return true;
}

Settings::Settings() {
    for (const OptionDef &d : kOptions) {
        if (d.type == PP_OPT_BACKEND || d.type == PP_OPT_LIST) continue;
        std::string why;
        if (set_option(this, d.name, d.default_text, &why) != PP_OK) std::abort();  // table bug
    }
    health_timeout_explicit = false;  // the default, not the user's choice
}

size_t option_count() { return kOptionCount; }

const OptionDef *option_at(size_t index) { return index < kOptionCount ? &kOptions[index] : nullptr; }

const OptionDef *find_option(const std::string &name) {
    for (const OptionDef &d : kOptions) {
        if (name == d.name) return &d;
    }
    return nullptr;
}

// A file the proxy will read when it is made: there and readable now, so that a typo is
// named where it was made.
static bool readable_file(const std::string &path, std::string *why) {
    if (::access(path.c_str(), R_OK) == 0) return true;
    *why = "cannot read " + quote(path) + ": " + std::strerror(errno);
    return false;
}

// "CERT.pem[,key=KEY.pem]": the files are read when a proxy is made (TlsServer::make).
static int parse_tls_cert(Settings *s, const std::string &value, std::string *why) {
    const TlsCertSpec c = TlsCertSpec::parse(value);
    const bool with_key = value.find(",key=") != std::string::npos;
    bool ok = !c.cert.empty() && (!with_key || !c.key.empty()) && value.size() <= 4096 &&
              c.key.find(",key=") == std::string::npos;
    for (char ch : value) ok = ok && static_cast<unsigned char>(ch) >= ' ' && ch != 0x7f;
    if (!ok) {
        *why = "option 'tls_cert': expected 'CERT.pem[,key=KEY.pem]' (file names, one line), got " + quote(value.substr(0, 80));
        return PP_EBADVALUE;
    }
    std::string reason;
    if (!readable_file(c.cert, &reason) || (!c.key.empty() && !readable_file(c.key, &reason))) {
        *why = "option 'tls_cert': " + reason + " (in " + quote(value.substr(0, 200)) + ")";
        return PP_EBADVALUE;
    }
    if (s->tls_certs.size() >= 256) {
        *why = "option 'tls_cert': at most 256 certificates";
        return PP_EBADVALUE;
    }
    s->tls_certs.push_back(c);
    return PP_OK;
}

// The text options, each with its own check.
static int set_string_option(Settings *s, const OptionDef &d, const std::string &value, std::string *why) {
    const std::string prefix = std::string("option '") + d.name + "': ";
    if (d.text) {  // a file name or an OpenSSL list
        bool ok = value.size() <= 4096;
        for (char c : value) ok = ok && static_cast<unsigned char>(c) >= ' ' && c != 0x7f;
        if (!ok) {
            *why = prefix + "expected one line of at most 4096 bytes without control characters";
            return PP_EBADVALUE;
        }
        std::string reason;
        if ((d.text == &Settings::tls_client_ca || d.text == &Settings::backend_tls_ca) && !value.empty() &&
            !readable_file(value, &reason)) {
            *why = prefix + reason;
            return PP_EBADVALUE;
        }
        if (d.text == &Settings::backend_tls_cert && !value.empty()) {
            const TlsCertSpec c = TlsCertSpec::parse(value);
            if (!readable_file(c.cert, &reason) || (!c.key.empty() && !readable_file(c.key, &reason))) {
                *why = prefix + reason;
                return PP_EBADVALUE;
            }
        }
        if (d.text == &Settings::backend_tls_name && !value.empty()) {
            // A name as certificates carry it (letters, digits, '-', '.', '_'), or an address.
            unsigned char addr[16];
            bool name = value.size() <= 253;
            for (char c : value) {
                name = name && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                                c == '.' || c == '_');
            }
            if (!name && inet_pton(AF_INET6, value.c_str(), addr) != 1) {
                *why = prefix + "expected a host name or an IP address (no port), got " + quote(value.substr(0, 80));
                return PP_EBADVALUE;
            }
        }
        if ((d.text == &Settings::tls_ciphers || d.text == &Settings::tls_ciphersuites) && !value.empty() &&
            !tls_ciphers_valid(value, d.text == &Settings::tls_ciphersuites, &reason)) {
            *why = prefix + reason + " (got " + quote(value.substr(0, 80)) + ")";
            return PP_EBADVALUE;
        }
        s->*(d.text) = value;
        return PP_OK;
    }
    if (std::strcmp(d.name, "health_path") == 0) {
        bool ok = !value.empty() && value[0] == '/' && value.size() <= 1024;
        for (char c : value) ok = ok && c > ' ' && c < 0x7f;
        if (!ok) {
            *why = prefix + "expected a path starting with / without spaces or control characters, got " + quote(value);
            return PP_EBADVALUE;
        }
        s->health_path = value;
        return PP_OK;
    }
    if (std::strcmp(d.name, "health_host") == 0) {
        // A Host value (RFC 9110 uri-host [":" port]): no '/', space, control or '@' character.
        bool ok = value.size() <= 255;
        for (char c : value) ok = ok && c > ' ' && c < 0x7f && c != '/' && c != '@' && c != '?' && c != '#';
        if (!ok) {
            *why = prefix + "expected a host or host:port (no '/', spaces or control characters), got " + quote(value);
            return PP_EBADVALUE;
        }
        s->health_host = value;
        return PP_OK;
    }
    // health_status: "200" or "200-399", within 100..599.
    // Three digits, or three digits, '-', three digits (sscanf's %d would overflow on long input).
    auto status_at = [&value](size_t at) {
        int v = 0;
        for (size_t i = at; i < at + 3; i++) {
            if (i >= value.size() || value[i] < '0' || value[i] > '9') return -1;
            v = v * 10 + (value[i] - '0');
        }
        return v;
    };
    int lo = status_at(0), hi = lo;
    if (value.size() == 7 && value[3] == '-') hi = status_at(4);
    bool ok = (value.size() == 3 || (value.size() == 7 && value[3] == '-')) && lo >= 0 && hi >= 0;
    if (!ok || lo < 100 || hi > 599 || lo > hi) {
        *why = prefix + "expected a status or a range of statuses within 100-599 such as 200-399, got " + quote(value);
        return PP_EBADVALUE;
    }
    s->health_status_text = value;
    s->health_status_lo = lo;
    s->health_status_hi = hi;
    return PP_OK;
}

int set_option(Settings *s, const std::string &name, const std::string &value, std::string *why) {
    const OptionDef *d = find_option(name);
    if (!d) {
        *why = "no option named " + quote(name) + " (see poolproxy --help for the list)";
        return PP_ENOOPT;
    }
    const std::string prefix = "option '" + name + "': ";
    int64_t v = 0;
    switch (d->type) {
    case PP_OPT_INT:
        if (!parse_int(value, &v) || v < d->min || v > d->max) {
            *why = prefix + "expected an integer in " + range_text(*d) + ", got " + quote(value);
            return PP_EBADVALUE;
        }
        break;
    case PP_OPT_DURATION:
        if (!parse_duration_ms(value, &v) || v < d->min || v > d->max) {
            *why = prefix + "expected a duration such as 250ms, 2s, 1m in " + range_text(*d) + ", got " +
                   quote(value);
            return PP_EBADVALUE;
        }
        break;
    case PP_OPT_BOOL:
        if (!parse_bool(value, &v)) {
            *why = prefix + "expected on or off, got " + quote(value);
            return PP_EBADVALUE;
        }
        break;
    case PP_OPT_ENUM:
        if (!parse_enum(*d, value, &v)) {
            *why = prefix + "expected one of " + d->choices + ", got " + quote(value);
            return PP_EBADVALUE;
        }
        break;
    case PP_OPT_ADDRESS: {
        const bool admin = std::strcmp(d->name, "admin_listen") == 0;
        if (admin && (value.empty() || value == "off")) {
            s->admin_listen_text.clear();
            return PP_OK;
        }
        Address addr;
        std::string reason;
        if (!parse_address(value, true, &addr, &reason)) {
            *why = prefix + reason;
            return PP_EBADVALUE;
        }
        (admin ? s->admin_listen : s->listen) = addr;
        (admin ? s->admin_listen_text : s->listen_text) = value;
        return PP_OK;
    }
    case PP_OPT_STRING: return set_string_option(s, *d, value, why);
    case PP_OPT_BACKEND: {
        BackendSpec spec;
        int rc = parse_backend(value, &spec, why);
        if (rc != PP_OK) return rc == PP_EADDR ? PP_EBADVALUE : rc;
        if (!spec.group.empty() && !find_group(s, spec.group)) {  // naming a group declares it
            if (s->groups.size() >= kMaxGroups) {
                *why = "option 'backend': at most " + std::to_string(kMaxGroups) + " groups";
                return PP_EBADVALUE;
            }
            s->groups.push_back(GroupSpec{spec.group, {}});
        }
        s->backends.push_back(spec);
        return PP_OK;
    }
    case PP_OPT_LIST:
        if (std::strcmp(d->name, "group") == 0) return parse_group(s, value, why);
        if (std::strcmp(d->name, "tls_cert") == 0) return parse_tls_cert(s, value, why);
        if (std::strcmp(d->name, "sni_route") == 0) {  // checked against the groups when a proxy is made
            if (value.empty() || value.size() > 1024 || value.find("->") == std::string::npos ||
                value.find_first_of("\r\n") != std::string::npos) {
                *why = "option 'sni_route': expected 'NAME -> GROUP' on one line, got " + quote(value.substr(0, 80));
                return PP_EBADVALUE;
            }
            if (s->sni_routes.size() >= 1024) {
                *why = "option 'sni_route': at most 1024 routes";
                return PP_EBADVALUE;
            }
            s->sni_routes.push_back(value);
            return PP_OK;
        }
        // route: its syntax is the http protocol's (proto/route_table.h), checked where the
        // configuration is taken in; here only its size is.
        if (value.empty() || value.size() > 4096 || value.find_first_of("\r\n") != std::string::npos) {
            *why = "option 'route': expected '[conditions] -> GROUP' on one line of at most 4096 bytes, got " +
                   quote(value.substr(0, 80));
            return PP_EBADVALUE;
        }
        if (s->routes.size() >= 1024) {
            *why = "option 'route': at most 1024 routes";
            return PP_EBADVALUE;
        }
        s->routes.push_back(value);
        return PP_OK;
    }
    s->*(d->field) = v;
    if (d->field == &Settings::health_timeout) s->health_timeout_explicit = true;
    if (d->field == &Settings::health_interval && !s->health_timeout_explicit) {
        // The user changed only the interval: a timeout longer than it would refuse the start,
        // so the default timeout is capped by the interval (and comes back when it grows).
        int64_t dflt = 0;
        parse_duration_ms(find_option("health_timeout")->default_text, &dflt);
        s->health_timeout = v < dflt ? v : dflt;
    }
    return PP_OK;
}

std::string backend_text(const BackendSpec &b) {
    std::string out = b.text;
    if (b.weight != 1) out += ",weight=" + std::to_string(b.weight);
    if (!b.group.empty()) out += ",group=" + b.group;
    if (b.pool_max >= 0) out += ",pool_max=" + std::to_string(b.pool_max);
    if (!b.host_header.empty()) out += ",host=" + b.host_header;
    return out;
}

Settings without_lists(const Settings &top) {
    Settings g = top;
    g.backends.clear();
    g.groups.clear();
    g.routes.clear();
    g.sni_routes.clear();
    return g;
}

Settings group_settings(const Settings &base, const GroupSpec *group) {
    Settings g = base;  // list-free (without_lists): copying it copies no backend or route
    g.backends.clear();
    g.groups.clear();
    g.routes.clear();
    if (!group) return g;
    for (const auto &o : group->options) {
        std::string why;
        set_option(&g, o.first, o.second, &why);  // each was checked when the group was set
    }
    return g;
}

std::string get_option(const Settings &s, const OptionDef &d) {
    switch (d.type) {
    case PP_OPT_INT: return std::to_string(s.*(d.field));
    case PP_OPT_DURATION: return std::to_string(s.*(d.field)) + "ms";
    case PP_OPT_BOOL: return s.*(d.field) ? "on" : "off";
    case PP_OPT_ENUM: return enum_word(d, s.*(d.field));
    case PP_OPT_ADDRESS: return std::strcmp(d.name, "admin_listen") == 0 ? s.admin_listen_text : s.listen_text;
    case PP_OPT_STRING:
        if (d.text) return s.*(d.text);
        if (std::strcmp(d.name, "health_host") == 0) return s.health_host;
        return std::strcmp(d.name, "health_path") == 0 ? s.health_path : s.health_status_text;
    case PP_OPT_BACKEND: {
        std::string out;
        for (const BackendSpec &b : s.backends) {
            if (!out.empty()) out += ", ";
            out += backend_text(b);
        }
        return out;
    }
    case PP_OPT_LIST: {
        std::string out;
        if (std::strcmp(d.name, "sni_route") == 0) {
            for (const std::string &r : s.sni_routes) {
                if (!out.empty()) out += "\n";
                out += r;
            }
            return out;
        }
        if (std::strcmp(d.name, "tls_cert") == 0) {
            for (const TlsCertSpec &c : s.tls_certs) {
                if (!out.empty()) out += "\n";
                out += c.cert + (c.key.empty() ? "" : ",key=" + c.key);
            }
            return out;
        }
        if (std::strcmp(d.name, "group") == 0) {
            for (const GroupSpec &g : s.groups) {
                if (!out.empty()) out += "\n";
                out += g.name;
                for (const auto &o : g.options) out += " " + o.first + "=" + o.second;
            }
            return out;
        }
        for (const std::string &r : s.routes) {
            if (!out.empty()) out += "\n";
            out += r;
        }
        return out;
    }
    }
    return "";
}

namespace {

// The checks one group's options must pass against each other (the top level's are the
// default group's).
int validate_group(const Settings &s, const std::string &where, std::string *why) {
    if (s.pool_max > 0 && s.pool_min_idle > s.pool_max) {
        *why = where + "option 'pool_min_idle' (" + std::to_string(s.pool_min_idle) + ") must not exceed 'pool_max' (" +
               std::to_string(s.pool_max) + ")";
        return PP_EBADVALUE;
    }
    if (s.pool_max == 0 && s.pool_min_idle > 0) {
        *why = where + "option 'pool_min_idle' needs pooling: 'pool_max' 0 turns the pool off";
        return PP_EBADVALUE;
    }
    if (s.breaker_max_open_time < s.breaker_open_time) {
        *why = where + "option 'breaker_max_open_time' (" + std::to_string(s.breaker_max_open_time) +
               "ms) must not be shorter than 'breaker_open_time' (" + std::to_string(s.breaker_open_time) + "ms)";
        return PP_EBADVALUE;
    }
    if (s.health_check != 0 && s.health_timeout > s.health_interval) {
        *why = where + "option 'health_timeout' (" + std::to_string(s.health_timeout) +
               "ms) must not exceed 'health_interval' (" + std::to_string(s.health_interval) +
               "ms): a check must end before the next one starts";
        return PP_EBADVALUE;
    }
    return PP_OK;
}

}  // namespace

int validate_settings(const Settings &s, std::string *why) {
    if (s.backends.empty()) {
        *why = "no backend configured: add one with pp_config_add_backend or option 'backend'";
        return PP_ENOBACKEND;
    }
    if (int rc = validate_group(s, "", why)) return rc;
    if (s.tls_verify_client != 0 && s.tls_client_ca.empty()) {
        *why = "option 'tls_verify_client': needs 'tls_client_ca', the CAs client certificates are checked against";
        return PP_EBADVALUE;
    }
    if ((s.tls_verify_client != 0 || !s.tls_client_ca.empty()) && s.tls_certs.empty()) {
        *why = "option 'tls_client_ca': client certificates need TLS on the listener: set 'tls_cert'";
        return PP_EBADVALUE;
    }
    const Settings base = without_lists(s);
    for (const GroupSpec &g : s.groups) {
        bool any = false;
        for (const BackendSpec &b : s.backends) any = any || b.group == g.name;
        if (!any) {
            *why = "group '" + g.name + "' has no backend: add one with option 'backend' (host:port,group=" + g.name + ")";
            return PP_ENOBACKEND;
        }
        if (int rc = validate_group(group_settings(base, &g), "group '" + g.name + "': ", why)) return rc;
    }
    if (!s.routes.empty() && s.mode != static_cast<int64_t>(Mode::http)) {
        *why = "option 'route' needs mode http (a tcp connection has no request to route)";
        return PP_EBADVALUE;
    }
    if (s.mode != static_cast<int64_t>(Mode::http) && !s.groups.empty() && !s.callbacks.connect_hook &&
        s.sni_routes.empty()) {
        *why = "group '" + s.groups[0].name + "' would get no connection: in tcp mode only an sni_route or a connect "
               "hook (pp_config_set_connect_hook) sends connections to a named group";
        return PP_EBADVALUE;
    }
    if (!s.sni_routes.empty() && s.mode == static_cast<int64_t>(Mode::http)) {
        *why = "option 'sni_route': tcp mode only (http mode routes with option 'route', host=)";
        return PP_EBADVALUE;
    }
    // What no route sends elsewhere goes to the default group: with no route at all it must
    // have backends (else every request would fail); with routes it may be empty (503).
    bool default_backends = false;
    for (const BackendSpec &b : s.backends) default_backends = default_backends || b.group.empty();
    if (!default_backends && s.routes.empty()) {
        *why = std::string("every backend is in a named group and no route sends a request to one: ") +
               (s.mode == static_cast<int64_t>(Mode::http) ? "add a route (option 'route', '... -> GROUP') or a backend "
                                                             "without group="
                                                           : "tcp mode sends every connection to the default group: add "
                                                             "a backend without group=");
        return PP_ENOBACKEND;
    }
    return PP_OK;
}

}  // namespace pp
