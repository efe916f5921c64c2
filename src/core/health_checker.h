// Active health checks: one checker per backend for the whole proxy (not one per worker), on a
// thread and loop of their own. Every health_interval each backend gets a check: a connect
// (health_check tcp) or an HTTP/1.1 GET of health_path whose status must be in health_status
// (http); no answer within health_timeout fails it. health_fall failures in a row mark the
// backend unhealthy, health_rise successes healthy again (HAProxy's semantics); selection skips
// unhealthy backends, and each change is reported once as an event.
#pragma once
#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "core/loop_thread.h"
#include "core/shared.h"

namespace pp {

class HealthChecker {
public:
    explicit HealthChecker(Shared &shared);
    ~HealthChecker();
    HealthChecker(const HealthChecker &) = delete;
    HealthChecker &operator=(const HealthChecker &) = delete;

    int start(std::string *why);
    void stop();  // idempotent; joins the thread
    // Any thread, also while stop() runs: backends were added or removed; checks start or stop
    // accordingly.
    void backends_changed();

private:
    struct Check;
    void close_handles();  // the loop thread, when stopping
    // Loop thread (or before it runs): a check for each backend added since; checks resume for
    // a removed backend that came back.
    int add_checks(std::string *why);

    Shared &shared_;
    std::vector<std::unique_ptr<Check>> checks_;
    LoopThread thread_;  // last: its loop closes while the checks still exist
};

}  // namespace pp
