// A proxy instance: the shared state, the workers and the acceptor, and their lifecycle.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "core/acceptor.h"
#include "core/dns_watcher.h"
#include "core/health_checker.h"
#include "core/shared.h"
#include "core/tls_server.h"
#include "obs/admin_server.h"
#include "obs/histogram.h"
#include "obs/stats_export.h"
#include "poolproxy.h"

namespace pp {

class Protocol;

class Proxy {
public:
    // Throws Error for settings that do not fit together. `protocol`: what the client sessions
    // speak (proto/protocols.h makes it by mode); the proxy keeps it until its threads are gone.
    Proxy(const Settings &settings, std::unique_ptr<Protocol> protocol);
    ~Proxy();
    Proxy(const Proxy &) = delete;
    Proxy &operator=(const Proxy &) = delete;

    int start(std::string *why);
    int stop(int drain_ms, std::string *why);
    int state() const { return state_; }
    // Whether the calling thread is one of this proxy's own (i.e. inside a callback).
    bool on_own_thread() const;

    const Address &bound() const { return acceptor_->bound(); }
    int worker_count() const { return shared_->worker_count; }
    int backend_count() const { return static_cast<int>(shared_->backends.size()); }
    const Backend &backend(int i) const { return shared_->backends[static_cast<size_t>(i)]; }
    // The id of the backend group named `name` ("" = the default group), or -1.
    int group_id(const std::string &name) const { return shared_->group_id(name); }

    void stats(pp_stats *out) const;
    void worker_stats(int index, pp_worker_stats *out) const;
    void backend_stats(int index, pp_backend_stats *out) const;
    // worker -1: all workers.
    void latency(pp_latency_kind kind, int worker, pp_latency *out) const;
    // Every counter, gauge and histogram, read once (proxy_stats.cpp); the export renders it.
    StatsSnapshot snapshot() const;
    // Prometheus text exposition format 0.0.4 (obs/stats_export.cpp).
    std::string metrics_text() const;
    // The stats structs as one JSON object (the admin listener's /stats).
    std::string stats_json() const;
    // Running, not draining, and at least one backend up.
    bool healthy() const;
    int admin_port() const { return admin_ ? admin_->port() : -1; }

    // Runtime changes, from any thread (backend_admin.cpp). Each returns a PP_E code and says
    // why on failure; add_backend returns the new backend's id.
    // `reason` goes into the event (e.g. which DNS answer made the change).
    int add_backend(const BackendSpec &spec, std::string *why, const char *reason = "added at runtime");
    int set_backend_admin(int id, int admin, std::string *why, const char *reason = nullptr);
    int set_backend_weight(int id, int weight, std::string *why);
    // A client a hook paused goes on (any thread): PP_ESTATE when the token is unknown, was
    // resumed already or its client is gone.
    int resume(uint64_t token, std::string *why);
    // Takes up a new configuration's groups, backends and routes (reload.cpp); any thread but
    // the proxy's own. PP_OK, or a PP_E code with *why and nothing changed.
    int reload(const Settings &next, std::string *why);
    // The DNS watcher only: a backend its answers removed is in an answer again (same address,
    // same name) and takes requests again under its old id.
    int revive_backend(int id, std::string *why, const char *reason);

private:
    HistogramSnapshot histogram(pp_latency_kind kind, int worker) const;
    void backends_changed();  // tells the workers and the health checker
    void ensure_health_checker();  // a reload gave a group health checks: start the checker if none runs
    void abandon_start();
    AdminResponse admin_answer(const std::string &path) const;

    std::unique_ptr<Protocol> protocol_;  // declared first: destroyed after everything that calls it
    // The listener's TLS contexts, shared by the workers' connections: every generation a reload
    // made (the last is in use), kept while the proxy lives, as handshakes under way use theirs.
    std::vector<std::unique_ptr<TlsServer>> tls_;
    Settings tls_settings_;  // what the last generation was made from (reload compares with it)
    std::string tls_files_;  // and its files' bytes (a renewed certificate keeps its name)
    std::unique_ptr<Shared> shared_;
    std::unique_ptr<Acceptor> acceptor_;
    std::unique_ptr<AdminServer> admin_;
    std::unique_ptr<HealthChecker> health_;  // set under health_mu_ once running (a reload may start it)
    mutable std::mutex health_mu_;
    std::mutex reload_mu_;  // one reload at a time
    std::unique_ptr<DnsWatcher> dns_;
    std::atomic<int> state_{PP_STATE_CREATED};
    std::atomic<bool> stopping_{false};
};

// The bytes of the files the listener's TLS is made from (reload.cpp).
std::string tls_files(const Settings &s);
// The same for a group's backend_tls (its CA file, client certificate and key; "" when off).
std::string backend_tls_files(const Settings &group);

// The number of workers "workers = 0" means here.
int resolve_worker_count(int64_t configured);

}  // namespace pp
