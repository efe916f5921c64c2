#include "core/health_checker.h"

#include <cstdio>
#include <cstring>

#include "core/circuit_breaker.h"
#include "core/stream_io.h"
#include "core/tls_client.h"
#include "core/thread_context.h"
#include "core/uv_result.h"

namespace pp {

namespace {
constexpr size_t kMaxStatusLine = 1024;
}

// One backend's checker: its rise/fall state, the interval and timeout timers, and the probe
// in flight (at most one).
struct HealthChecker::Check {
    struct Probe {
        Check *check;  // nullptr once finished (the handle is closing)
        uv_tcp_t tcp{};
        uv_connect_t connect_req{};
        uv_write_t write_req{};
        std::string request;
        std::unique_ptr<TlsConn> tls;  // backend_tls (after tcp: freed before it)
        char buf[kMaxStatusLine];
        size_t len = 0;
    };

    Check(HealthChecker &hc, Backend &b, const Settings &st)
        : owner(hc), backend(b), settings(st), state(static_cast<int>(st.health_rise), static_cast<int>(st.health_fall),
                                                       b.healthy.load(std::memory_order_relaxed)) {}  // a reload's copy starts as its predecessor was

    HealthChecker &owner;
    Backend &backend;
    const Settings &settings;
    HealthState state;
    uv_timer_t interval{};
    uv_timer_t timeout{};
    Probe *probe = nullptr;

    void start_probe();
    void connected(Probe *pr);
    void start_tls(Probe *pr);
    static void on_probe_alloc(uv_handle_t *h, size_t, uv_buf_t *out);
    static void on_probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *);
    static void on_tls_alloc(uv_handle_t *h, size_t, uv_buf_t *buf);
    static void on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
    void finish(bool ok, const std::string &why);
    void record(bool ok, const std::string &why);  // the outcome, with rise/fall
};

void HealthChecker::Check::start_probe() {
    if (backend.admin.load(std::memory_order_relaxed) == Backend::removed) {
        uv_timer_stop(&interval);  // removed: no more checks (unless its DNS name brings it back)
        return;
    }
    if (probe) return;  // the previous check has not ended (cannot happen: timeout < interval)
    auto *p = new Probe;
    p->check = this;
    p->tcp.data = p;
    p->connect_req.data = p;
    p->write_req.data = p;
    probe = p;
    int rc = uv_tcp_init(interval.loop, &p->tcp);
    if (rc != 0) {  // no handle to close: the probe goes at once
        probe = nullptr;
        delete p;
        record(false, std::string("cannot open a socket: ") + uv_strerror(rc));
        return;
    }
    PP_UV_MUST(uv_timer_start(
        &timeout, [](uv_timer_t *t) { static_cast<Check *>(t->data)->finish(false, "no answer within health_timeout"); },
        static_cast<uint64_t>(settings.health_timeout), 0));
    rc = uv_tcp_connect(&p->connect_req, &p->tcp, backend.addr.sa(), [](uv_connect_t *req, int status) {
        auto *pr = static_cast<Probe *>(req->data);
        Check *c = pr->check;
        if (!c) return;  // finished (timed out, or stopping) meanwhile
        if (status < 0) {
            c->finish(false, std::string("connect: ") + uv_strerror(status));
            return;
        }
        if (c->backend.tls) {  // backend_tls: the check speaks TLS, as the requests do
            c->start_tls(pr);
            return;
        }
        c->connected(pr);
    });
    if (rc != 0) finish(false, std::string("connect: ") + uv_strerror(rc));
}

void HealthChecker::Check::on_probe_alloc(uv_handle_t *h, size_t, uv_buf_t *out) {
    auto *q = static_cast<Probe *>(h->data);
    *out = uv_buf_init(q->buf + q->len, static_cast<unsigned>(kMaxStatusLine - 1 - q->len));
}
void HealthChecker::Check::on_probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *) {
    auto *q = static_cast<Probe *>(s->data);
    Check *ck = q->check;
    if (!ck || nread == 0) return;
    if (nread < 0) {
        ck->finish(false, "connection closed before a status line");
        return;
    }
    q->len += static_cast<size_t>(nread);
    q->buf[q->len] = '\0';
    if (!std::strstr(q->buf, "\r\n")) {
        if (q->len >= kMaxStatusLine - 1) ck->finish(false, "status line too long");
        return;
    }
    int major = 0, minor = 0, status = 0;
    if (std::sscanf(q->buf, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || major != 1) {
        ck->finish(false, "not an HTTP/1.x response");
        return;
    }
    bool ok = status >= ck->settings.health_status_lo && status <= ck->settings.health_status_hi;
    ck->finish(ok, "status " + std::to_string(status) + (ok ? "" : " not in " + ck->settings.health_status_text));
}
void HealthChecker::Check::on_tls_alloc(uv_handle_t *h, size_t, uv_buf_t *buf) {
    static_cast<Probe *>(h->data)->tls->on_raw_alloc(buf);
}
void HealthChecker::Check::on_tls_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    static_cast<Probe *>(s->data)->tls->on_raw_read(nread, buf);
}

// Connected (and, with backend_tls, handshaken): a tcp check has passed; an http check asks.
void HealthChecker::Check::connected(Probe *pr) {
    if (settings.health_check == static_cast<int64_t>(HealthCheck::tcp)) {
        finish(true, pr->tls ? "connect and TLS handshake succeeded" : "connect succeeded");
        return;
    }
    const std::string &host = !settings.health_host.empty()   ? settings.health_host
                              : !backend.host_header.empty() ? backend.host_header
                                                              : backend.authority;
    pr->request = "GET " + settings.health_path + " HTTP/1.1\r\nHost: " + host +
                  "\r\nUser-Agent: poolproxy-health-check\r\nConnection: close\r\n\r\n";
    uv_buf_t b = uv_buf_init(&pr->request[0], static_cast<unsigned>(pr->request.size()));
    auto *stream = reinterpret_cast<uv_stream_t *>(&pr->tcp);
    if (io::write(&pr->write_req, stream, pr->tls.get(), &b, 1, [](uv_write_t *, int) {}) != 0) {
        finish(false, "cannot send the check request");
        return;
    }
    if (pr->tls) return;  // its reader was set before the handshake (start_tls)
    const int read_rc = uv_read_start(stream, on_probe_alloc, on_probe_read);
    if (read_rc != 0) finish(false, std::string("cannot read the answer: ") + uv_strerror(read_rc));
}

// The backend's TLS handshake first, verified as a request's connection would be: a backend
// whose certificate is refused fails its checks with the reason.
void HealthChecker::Check::start_tls(Probe *pr) {
    SSL *ssl = backend.tls->new_ssl(backend.tls_host());
    if (!ssl) {
        finish(false, "tls: out of memory");
        return;
    }
    pr->tls = std::make_unique<TlsConn>(ssl, reinterpret_cast<uv_stream_t *>(&pr->tcp), on_tls_alloc, on_tls_read,
                                        [](uv_stream_t *st, int status) {
                                            auto *q = static_cast<Probe *>(st->data);
                                            Check *ck = q->check;
                                            if (!ck) return;
                                            if (status < 0) {
                                                ck->finish(false, "tls: " + q->tls->failure_text());
                                                return;
                                            }
                                            ck->connected(q);
                                        });
    // The answer's reader is set before the handshake ends: what the backend sends with it is
    // handed over in the same pass (this loop is not a worker's: nothing is deferred here).
    (void)pr->tls->read_start(on_probe_alloc, on_probe_read);
    if (const int rc = pr->tls->start_handshake()) finish(false, std::string("tls: ") + uv_strerror(rc));
}

void HealthChecker::Check::finish(bool ok, const std::string &why) {
    Probe *p = probe;
    if (!p) return;
    probe = nullptr;
    p->check = nullptr;
    uv_timer_stop(&timeout);
    uv_close(reinterpret_cast<uv_handle_t *>(&p->tcp), [](uv_handle_t *h) { delete static_cast<Probe *>(h->data); });
    record(ok, why);
}

void HealthChecker::Check::record(bool ok, const std::string &why) {
    if (!ok) backend.health_checks_failed.fetch_add(1, std::memory_order_relaxed);
    HealthState::Transition t = state.record(ok);
    if (t == HealthState::Transition::none) return;
    bool up = t == HealthState::Transition::went_up;
    backend.healthy.store(up, std::memory_order_relaxed);
    backend.transitions.fetch_add(1, std::memory_order_relaxed);
    const Logger &log = owner.shared_.logger;
    char reason[512];
    std::snprintf(reason, sizeof reason, "%s (%lld check(s) in a row)", why.c_str(),
                  static_cast<long long>(up ? settings.health_rise : settings.health_fall));
    log.event(up ? PP_EVENT_BACKEND_HEALTHY : PP_EVENT_BACKEND_UNHEALTHY, backend.id, backend.name, reason);
    log.log(up ? PP_LOG_INFO : PP_LOG_WARN, "backend %s is %s: %s", backend.name.c_str(), up ? "healthy" : "unhealthy",
            reason);
}

HealthChecker::HealthChecker(Shared &shared) : shared_(shared), thread_("pp-health", &shared) {}

HealthChecker::~HealthChecker() { stop(); }

int HealthChecker::start(std::string *why) {
    auto on_wake = [this] {
        std::string err;
        if (add_checks(&err) != PP_OK) shared_.logger.log(PP_LOG_ERROR, "%s", err.c_str());
    };
    int rc = thread_.init("health checks", on_wake, [this] { close_handles(); }, why);
    if (rc == PP_OK) rc = add_checks(why);
    if (rc == PP_OK) rc = thread_.start(why);
    if (rc != PP_OK) stop();
    return rc;
}

int HealthChecker::add_checks(std::string *why) {
    const size_t n = shared_.backends.size();
    const auto off = [](const Settings &st) { return st.health_check == static_cast<int64_t>(HealthCheck::none); };
    uv_loop_t *loop = thread_.loop();
    for (auto &c : checks_) {  // a removed backend back in a DNS answer: its checks resume
        if (c->backend.admin.load(std::memory_order_relaxed) == Backend::removed) continue;
        if (off(c->settings) || uv_is_active(reinterpret_cast<uv_handle_t *>(&c->interval))) continue;
        PP_UV_MUST(uv_timer_start(
            &c->interval, [](uv_timer_t *t) { static_cast<Check *>(t->data)->start_probe(); }, 0,
            static_cast<uint64_t>(c->settings.health_interval)));
    }
    for (size_t i = checks_.size(); i < n; i++) {
        // Each backend is checked as its group says (a group without checks: never, though it
        // keeps its place here, the checks being indexed by backend id).
        const Settings &st = *shared_.backends[i].gs;
        auto c = std::make_unique<Check>(*this, shared_.backends[i], st);
        c->interval.data = c.get();
        c->timeout.data = c.get();
        int rc = LoopThread::check(uv_timer_init(loop, &c->interval), "health checks: timer", why);
        if (rc != PP_OK) return rc;
        rc = LoopThread::check(uv_timer_init(loop, &c->timeout), "health checks: timer", why);
        if (rc != PP_OK) {
            uv_close(reinterpret_cast<uv_handle_t *>(&c->interval), nullptr);
            return rc;
        }
        if (off(st)) {
            checks_.push_back(std::move(c));
            continue;
        }
        // Spread the backends' checks over one interval instead of checking all at once.
        uint64_t first = static_cast<uint64_t>(st.health_interval) * i / n;
        PP_UV_MUST(uv_timer_start(
            &c->interval, [](uv_timer_t *t) { static_cast<Check *>(t->data)->start_probe(); }, first,
            static_cast<uint64_t>(st.health_interval)));
        checks_.push_back(std::move(c));
    }
    return PP_OK;
}

// The wake-up may come from any thread at any time, stop() included: LoopThread drops it once
// the handles are closed, so it never reaches a closed or freed handle.
void HealthChecker::backends_changed() { thread_.wake(); }

void HealthChecker::close_handles() {
    thread_.close_all([](uv_handle_t *h) {
        if (h->type != UV_TCP) return;  // a probe in flight: it frees itself once closed
        auto *p = static_cast<Check::Probe *>(h->data);
        if (p->check) p->check->probe = nullptr;
        p->check = nullptr;
        uv_close(h, [](uv_handle_t *x) { delete static_cast<Check::Probe *>(x->data); });
    });
}

void HealthChecker::stop() {
    thread_.stop();
    checks_.clear();
}

}  // namespace pp
