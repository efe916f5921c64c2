// A reload (pp_proxy_reload, the CLI's SIGHUP): a running proxy takes up a new configuration's
// backend groups, backends and routes without touching a client connection. Like Envoy's
// cluster updates: a group whose options changed is replaced by a new group of that name, its
// backends re-added under it before the old ones are removed (those finish what they carry),
// and its waiting sessions move to the new group on each worker's own thread. Backends are
// matched by what identifies them (address, group, pool_max=, host=); a weight changes in place.
// Other options need a restart: each that changed is named in a warning. Nothing changes when
// the new configuration is not one a proxy could be made with.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/options.h"
#include "core/protocol.h"
#include "core/proxy.h"
#include "core/thread_context.h"
#include "core/worker.h"

namespace pp {

namespace {

// What a reload does to one group of the new configuration.
struct GroupPlan {
    std::string name;  // "" = the default group
    Settings settings;
    int current = -1;  // its live group now, or -1 (a new group)
    bool replace = false;  // current's options differ: a new group takes its name
    int id = -1;  // the id it has once applied
    std::shared_ptr<const TlsClient> tls{};  // a new group's backend_tls context, made before anything changes
};

// Names every option that changed but is read only when a proxy is made.
void warn_restart_needed(const Settings &running, const Settings &next, const Logger &log) {
    for (size_t i = 0; i < option_count(); i++) {
        const OptionDef &d = *option_at(i);
        const std::string name = d.name;
        if (name == "backend" || name == "group" || name == "route" || group_scoped(name)) continue;
        if (name.compare(0, 4, "tls_") == 0 && name != "tls_handshake_timeout" &&
            running.tls_certs.empty() == next.tls_certs.empty()) {
            continue;  // taken up by the reload (a new TLS generation)
        }
        const std::string a = get_option(running, d), b = get_option(next, d);
        if (a != b) {
            log.log(PP_LOG_WARN, "reload: option %s changed (%s -> %s): restart to apply it", d.name, a.c_str(),
                    b.c_str());
        }
    }
}

// Whether two groups check their backends the same way (a check's verdict carries over).
bool same_health_check(const Settings &a, const Settings &b) {
    return a.health_check != static_cast<int64_t>(HealthCheck::none) && a.health_check == b.health_check &&
           a.health_path == b.health_path && a.health_host == b.health_host &&
           a.health_status_text == b.health_status_text;
}

}  // namespace

namespace {
void add_file(std::string &out, const std::string &path);
}  // namespace

std::string backend_tls_files(const Settings &g) {
    std::string out;
    if (!g.backend_tls) return out;
    add_file(out, g.backend_tls_ca);
    const TlsCertSpec c = TlsCertSpec::parse(g.backend_tls_cert);
    add_file(out, c.cert);
    add_file(out, c.key);
    return out;
}

namespace {
void add_file(std::string &out, const std::string &path) {
    if (path.empty()) return;
    FILE *f = std::fopen(path.c_str(), "rb");
    out += path + '\0';
    if (!f) return;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && out.size() < (16u << 20)) out.append(buf, n);
    std::fclose(f);
}
}  // namespace

// What the listener's TLS was made from on disk: the certificate, key and CA files' bytes.
std::string tls_files(const Settings &s) {
    std::string out;
    for (const TlsCertSpec &c : s.tls_certs) {
        add_file(out, c.cert);
        add_file(out, c.key);
    }
    add_file(out, s.tls_client_ca);
    return out;
}

namespace {

bool same_names(const Settings &a, const Settings &b) {
    std::vector<std::string> x, y;
    for (const BackendSpec &s : a.backends) {
        if (s.dynamic) x.push_back(backend_text(s));
    }
    for (const BackendSpec &s : b.backends) {
        if (s.dynamic) y.push_back(backend_text(s));
    }
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    return x == y;
}

bool has_name_backends(const Settings &s, const std::string &group) {
    for (const BackendSpec &b : s.backends) {
        if (b.dynamic && b.group == group) return true;
    }
    return false;
}

}  // namespace

int Proxy::reload(const Settings &wanted, std::string *why) {
    std::lock_guard<std::mutex> one_at_a_time(reload_mu_);  // pp_proxy_stop takes it too
    // The log and event callbacks it runs here count as the proxy's own: pp_proxy_stop or an
    // add from one of them is refused (PP_ESTATE) instead of waiting on the locks held.
    ThreadContext in_reload(shared_.get());
    if (state_.load() != PP_STATE_RUNNING || stopping_.load()) {
        *why = state_.load() == PP_STATE_STOPPED || stopping_.load() ? "the proxy was stopped"
                                                 : "the proxy is not running yet (make it with the configuration wanted)";
        return PP_ESTATE;
    }
    const Settings &running = shared_->settings;
    // The callbacks are the proxy's own (a configuration read from a file has none), and so is
    // the mode: a new configuration is checked as this proxy would run it.
    Settings next = wanted;
    next.callbacks = running.callbacks;
    next.mode = running.mode;
    if (int rc = validate_settings(next, why); rc != PP_OK) return rc;
    const Logger &log = shared_->logger;

    // Groups: kept, replaced (options changed) or new; the live groups not named are removed.
    std::vector<GroupPlan> plan;
    const Settings base = without_lists(next);
    plan.push_back(GroupPlan{"", group_settings(base, nullptr)});
    for (const GroupSpec &g : next.groups) plan.push_back(GroupPlan{g.name, group_settings(base, &g)});
    size_t new_ids = 0;
    for (GroupPlan &p : plan) {
        p.current = shared_->group_id(p.name);
        // A group's backend_tls files count as its options: a renewed client certificate or CA
        // keeps its file name.
        if (p.current >= 0 && (!same_group_options(shared_->groups[static_cast<size_t>(p.current)].settings, p.settings) ||
                               backend_tls_files(p.settings) != shared_->groups[static_cast<size_t>(p.current)].tls_files)) {
            // A host name's backends come from DNS answers under the group they were made in.
            if (has_name_backends(running, p.name) || has_name_backends(next, p.name)) {
                log.log(PP_LOG_WARN, "reload: group '%s' has backends given by host name: its changed options need a restart",
                        p.name.empty() ? "default" : p.name.c_str());
            } else {
                p.replace = true;
            }
        }
        if (p.current < 0 || p.replace) {
            new_ids++;
            bool failed = false;
            p.tls = TlsClient::make(p.settings, &failed, why);
            if (failed) {
                if (!p.name.empty()) *why = "group '" + p.name + "': " + *why;
                return PP_EBADVALUE;
            }
        }
    }
    if (shared_->groups.size() + new_ids > Shared::kMaxGroupIds) {
        *why = "all " + std::to_string(Shared::kMaxGroupIds) +
               " backend group ids are used (each reload that changes a group takes one): restart to apply it";
        return PP_ESYS;
    }
    const auto planned_id = [&plan](std::string_view name) {
        if (name == "default") name = "";
        for (size_t i = 0; i < plan.size(); i++) {
            if (plan[i].name == name) return static_cast<int>(i);
        }
        return -1;
    };
    if (!shared_->protocol->stage_routes(next, planned_id, false, why)) return PP_EBADVALUE;

    // The listener's certificates (and its other tls_ options): a new generation, made and
    // checked before anything changes; an expired certificate refuses the reload (the ones in
    // use stay). Turning TLS on or off needs a restart (a listener's clients expect one or
    // the other): warned below.
    std::unique_ptr<TlsServer> new_tls;
    if (!tls_.empty() && !next.tls_certs.empty()) {
        bool changed = false;
        for (size_t i = 0; i < option_count(); i++) {
            const OptionDef &d = *option_at(i);
            if (std::string(d.name).compare(0, 4, "tls_") == 0) changed = changed || get_option(tls_settings_, d) != get_option(next, d);
        }
        if (changed || tls_files(next) != tls_files_) {  // (a renewed certificate keeps its file name)
            new_tls = TlsServer::make(next, log, true, why);
            if (!new_tls) return PP_EBADVALUE;
        }
    }

    // Backends: the configured addresses (host names stay as they started: DNS owns theirs).
    // One that matches a live backend of a kept group stays; the others are added, and live
    // backends nothing matched are removed. Planned and applied under one hold of backends_mu,
    // so that no runtime add or removal (the API, DNS) lands in between; the events are sent
    // once it is released (a callback may call pp_proxy_add_backend).
    std::unique_lock<std::mutex> lock(shared_->backends_mu);
    std::vector<const BackendSpec *> to_add;
    std::vector<int> predecessor;  // per to_add: the old group's backend it re-adds (its health goes on), or -1
    std::vector<std::pair<int, int>> reweigh;
    std::vector<bool> matched(shared_->backends.size(), false), succeeded(shared_->backends.size(), false);
    const auto same = [](const Backend &b, const BackendSpec &spec) {
        return b.name == spec.text && b.own_pool_max == spec.pool_max && b.host_header == spec.host_header;
    };
    for (const BackendSpec &spec : next.backends) {
        if (spec.dynamic) continue;
        const GroupPlan &g = plan[static_cast<size_t>(planned_id(spec.group))];
        int found = -1;
        for (size_t i = 0; g.current >= 0 && i < shared_->backends.size() && found < 0; i++) {
            const Backend &b = shared_->backends[i];
            if (matched[i] || succeeded[i] || b.from_name || b.admin.load() == Backend::removed) continue;
            if (b.group == g.current && same(b, spec)) found = static_cast<int>(i);
        }
        if (found < 0 || g.replace) {  // (a replaced group's backend is re-added under its successor)
            to_add.push_back(&spec);
            predecessor.push_back(found);
            if (found >= 0) succeeded[static_cast<size_t>(found)] = true;
            continue;
        }
        matched[static_cast<size_t>(found)] = true;
        if (shared_->backends[static_cast<size_t>(found)].weight.load() != spec.weight) reweigh.emplace_back(found, spec.weight);
    }
    std::vector<int> to_remove;
    for (size_t i = 0; i < matched.size(); i++) {
        const Backend &b = shared_->backends[i];
        if (matched[i] || b.admin.load() == Backend::removed) continue;
        if (b.from_name) continue;  // the DNS watcher's, with the name that made it (and its group stays)
        to_remove.push_back(static_cast<int>(i));
    }

    std::vector<int> removed_groups, kept_for_names, added;
    {
        if (shared_->live_backends + to_add.size() > Shared::kMaxBackends) {
            *why = "at most " + std::to_string(Shared::kMaxBackends) +
                   " backends at once, and a reload adds the new ones before it removes the old";
            return PP_ESYS;
        }
        if (shared_->backends.size() + to_add.size() > Shared::kMaxBackendIds) {
            *why = "all " + std::to_string(Shared::kMaxBackendIds) + " backend ids would be used, removed backends included";
            return PP_ESYS;
        }
        // From here nothing can fail. New groups first (the old of a replaced one stays live
        // until its successor has its backends), then the backends, which group_id now finds.
        for (GroupPlan &p : plan) {
            if (p.current >= 0 && !p.replace) {
                p.id = p.current;
                continue;
            }
            auto group = std::make_unique<Group>();
            group->name = p.name;
            group->settings = p.settings;
            group->tls = p.tls;
            group->tls_files = backend_tls_files(p.settings);
            p.id = static_cast<int>(shared_->groups.add(std::move(group)));
        }
        for (size_t i = 0; i < to_add.size(); i++) {
            // Health goes on from the backend it re-adds (a replaced group's) when the new group
            // checks it the same way: one found down stays down until its checks pass, instead
            // of taking requests until the first fails. Checked otherwise (or not at all), it
            // starts healthy, as any new backend.
            bool healthy = true;
            if (predecessor[i] >= 0) {
                const Backend &old = shared_->backends[static_cast<size_t>(predecessor[i])];
                const GroupPlan &g = plan[static_cast<size_t>(planned_id(to_add[i]->group))];
                if (same_health_check(*old.gs, g.settings)) healthy = old.healthy.load();
            }
            added.push_back(shared_->add_backend(*to_add[i], healthy));  // (counts itself in live_backends)
        }
        // A worker that finds a retired group or a removed backend below sees this bump too,
        // so it takes up what was added before it refuses a session (Worker::catch_up).
        shared_->config_epoch.fetch_add(1, std::memory_order_release);
        for (const GroupPlan &p : plan) {
            if (!p.replace) continue;
            Group &old = shared_->groups[static_cast<size_t>(p.current)];
            old.replaced_by.store(p.id, std::memory_order_release);
            old.retired.store(true, std::memory_order_release);
            // Earlier groups of the name point straight at the newest: live_group walks one
            // step, however many reloads replaced the group.
            for (size_t g = 0; g < shared_->groups.size(); g++) {
                if (shared_->groups[g].replaced_by.load() == p.current) shared_->groups[g].replaced_by.store(p.id);
            }
        }
        for (size_t g = 0; g < shared_->groups.size(); g++) {  // live groups the configuration no longer names
            Group &group = shared_->groups[g];
            if (group.retired.load()) continue;
            bool named = false;
            for (const GroupPlan &p : plan) named = named || p.id == static_cast<int>(g);
            if (named) continue;
            if (has_name_backends(running, group.name)) {  // DNS goes on adding to it by name
                kept_for_names.push_back(static_cast<int>(g));
                continue;
            }
            group.retired.store(true, std::memory_order_release);
            removed_groups.push_back(static_cast<int>(g));
        }
        shared_->config_epoch.fetch_add(1, std::memory_order_release);  // the retirements, before the removals
        for (int id : to_remove) {
            shared_->backends[static_cast<size_t>(id)].admin.store(Backend::removed);
            shared_->live_backends--;
        }
        // The routes, before the last bump: a worker that catches up takes them with the rest.
        std::string unused;
        const auto live_id = [this](std::string_view name) {
            return shared_->group_id(name == "default" ? std::string() : std::string(name));
        };
        shared_->protocol->stage_routes(next, live_id, true, &unused);  // checked above, with the same names
        shared_->config_epoch.fetch_add(1, std::memory_order_release);
    }
    lock.unlock();
    for (int id : added) log.event(PP_EVENT_BACKEND_ADDED, id, shared_->backends[static_cast<size_t>(id)].name, "reload");
    for (int id : to_remove) log.event(PP_EVENT_BACKEND_REMOVED, id, shared_->backends[static_cast<size_t>(id)].name, "reload");
    for (const auto &rw : reweigh) shared_->backends[static_cast<size_t>(rw.first)].weight.store(rw.second);
    if (new_tls) {  // new connections handshake with it; those under way finish with theirs
        shared_->tls.store(new_tls.get(), std::memory_order_release);
        tls_.push_back(std::move(new_tls));
        tls_settings_ = without_lists(next);
        tls_settings_.tls_certs = next.tls_certs;
        tls_files_ = tls_files(next);
        log.log(PP_LOG_INFO, "reload: the listener's TLS certificates and options taken up (%zu certificate(s))",
                next.tls_certs.size());
    }
    if (tls_.empty() != next.tls_certs.empty()) {
        log.log(PP_LOG_WARN, "reload: TLS on the listener %s: restart to apply it", tls_.empty() ? "turned on" : "turned off");
    }
    ensure_health_checker();
    backends_changed();  // each worker: pools, groups and waiters, the new routes; the checker

    size_t added_groups = 0, replaced = 0;
    for (const GroupPlan &p : plan) {
        const char *name = p.name.empty() ? "default" : p.name.c_str();
        if (p.replace) {
            replaced++;
            log.log(PP_LOG_INFO, "reload: group '%s' replaced (its options changed): id %d -> %d", name, p.current, p.id);
        } else if (p.current < 0) {
            added_groups++;
            log.log(PP_LOG_INFO, "reload: group '%s' added (id %d)", name, p.id);
        }
    }
    for (int g : removed_groups) {
        log.log(PP_LOG_INFO, "reload: group '%s' removed (id %d)", shared_->groups[static_cast<size_t>(g)].name.c_str(), g);
    }
    for (int g : kept_for_names) {
        log.log(PP_LOG_WARN, "reload: group '%s' has backends given by host name: removing it needs a restart",
                shared_->groups[static_cast<size_t>(g)].name.c_str());
    }
    if (!same_names(running, next)) {
        log.log(PP_LOG_WARN, "reload: backends given by host name changed: restart to apply them");
    }
    warn_restart_needed(running, wanted, log);
    log.log(PP_LOG_INFO,
            "reload: %zu group(s) added, %zu replaced, %zu removed; %zu backend(s) added, %zu removed, %zu "
            "re-weighted; %zu route(s)",
            added_groups, replaced, removed_groups.size(), to_add.size(), to_remove.size(), reweigh.size(),
            next.routes.size());
    return PP_OK;
}

}  // namespace pp
