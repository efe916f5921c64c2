// Runtime changes to the backends, from any thread: add one, drain or remove one (no new
// requests; those in flight finish; idle pooled connections close), change a weight. The
// backend table only grows and each worker learns of a change on its own thread, so no
// request path takes a lock for this.
#include "core/proxy.h"
#include "core/worker.h"

namespace pp {

void Proxy::backends_changed() {
    if (state_.load() == PP_STATE_RUNNING) {
        for (auto &w : shared_->workers) w->post_backends_changed();
    } else {  // no worker thread runs yet: bring their tables up to date here
        for (auto &w : shared_->workers) w->sync_backends();
    }
    std::lock_guard<std::mutex> lock(health_mu_);
    if (health_) health_->backends_changed();
}

void Proxy::ensure_health_checker() {
    if (state_.load() != PP_STATE_RUNNING) return;  // start() makes it if a group checks
    std::lock_guard<std::mutex> lock(health_mu_);
    if (health_) return;
    bool any = false;
    for (size_t g = 0; g < shared_->groups.size(); g++) {
        const Group &group = shared_->groups[g];
        any = any || (!group.retired.load() && group.settings.health_check != static_cast<int64_t>(HealthCheck::none));
    }
    if (!any) return;
    auto checker = std::make_unique<HealthChecker>(*shared_);
    std::string why;
    if (checker->start(&why) != PP_OK) {
        shared_->logger.log(PP_LOG_ERROR, "reload: health checks could not start: %s", why.c_str());
        return;
    }
    health_ = std::move(checker);
}

int Proxy::add_backend(const BackendSpec &spec, std::string *why, const char *reason) {
    if (state_.load() == PP_STATE_STOPPED) {
        *why = "the proxy was stopped";
        return PP_ESTATE;
    }
    int id;
    {
        std::lock_guard<std::mutex> lock(shared_->backends_mu);
        if (shared_->live_backends >= Shared::kMaxBackends) {
            *why = "at most " + std::to_string(Shared::kMaxBackends) + " backends at once (removed ones not counted)";
            return PP_ESYS;
        }
        if (shared_->backends.full()) {
            *why = "all " + std::to_string(Shared::kMaxBackendIds) + " backend ids used, removed backends included";
            return PP_ESYS;
        }
        if (shared_->group_id(spec.group) < 0) {  // a reload removed it since the caller looked
            *why = "no backend group named '" + spec.group + "' (a reload removed it)";
            return PP_EBADVALUE;
        }
        id = shared_->add_backend(spec);
    }
    backends_changed();
    shared_->logger.event(PP_EVENT_BACKEND_ADDED, id, spec.text, reason);
    shared_->logger.log(PP_LOG_INFO, "backend %s added (id %d, weight %d)", spec.text.c_str(), id, spec.weight);
    return id;
}

int Proxy::set_backend_admin(int id, int admin, std::string *why, const char *reason) {
    Backend &b = shared_->backends[static_cast<size_t>(id)];
    {
        std::lock_guard<std::mutex> lock(shared_->backends_mu);
        int was = b.admin.load();
        if (was == Backend::removed) {
            *why = "backend " + std::to_string(id) + " (" + b.name + ") was removed";
            return PP_ESTATE;
        }
        if (was == admin) return PP_OK;  // no change, no event
        b.admin.store(admin);
        if (admin == Backend::removed) shared_->live_backends--;
        shared_->config_epoch.fetch_add(1, std::memory_order_release);
    }
    backends_changed();
    static const char *words[] = {"ready again", "draining", "removed"};
    int type = admin == Backend::removed    ? PP_EVENT_BACKEND_REMOVED
               : admin == Backend::draining ? PP_EVENT_BACKEND_DRAINING
                                            : PP_EVENT_BACKEND_READY;
    shared_->logger.event(type, id, b.name, reason ? reason : words[admin]);
    shared_->logger.log(PP_LOG_INFO, "backend %s %s", b.name.c_str(), words[admin]);
    return PP_OK;
}

int Proxy::revive_backend(int id, std::string *why, const char *reason) {
    Backend &b = shared_->backends[static_cast<size_t>(id)];
    {
        std::lock_guard<std::mutex> lock(shared_->backends_mu);
        if (b.admin.load() != Backend::removed) return PP_OK;
        if (shared_->live_backends >= Shared::kMaxBackends) {
            *why = "at most " + std::to_string(Shared::kMaxBackends) + " backends at once (removed ones not counted)";
            return PP_ESYS;
        }
        shared_->live_backends++;
        b.admin.store(Backend::active);
        shared_->config_epoch.fetch_add(1, std::memory_order_release);
    }
    backends_changed();
    shared_->logger.event(PP_EVENT_BACKEND_ADDED, id, b.name, reason);
    shared_->logger.log(PP_LOG_INFO, "backend %s back (id %d)", b.name.c_str(), id);
    return PP_OK;
}

int Proxy::set_backend_weight(int id, int weight, std::string *why) {
    Backend &b = shared_->backends[static_cast<size_t>(id)];
    if (b.admin.load() == Backend::removed) {
        *why = "backend " + std::to_string(id) + " (" + b.name + ") was removed";
        return PP_ESTATE;
    }
    int was = b.weight.exchange(weight);
    if (was != weight) shared_->logger.log(PP_LOG_INFO, "backend %s weight %d -> %d", b.name.c_str(), was, weight);
    return PP_OK;
}

}  // namespace pp
