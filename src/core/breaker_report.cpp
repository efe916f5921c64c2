#include "core/breaker_report.h"

#include <cstdio>

#include "core/clock.h"

namespace pp {

void report_breaker(const Logger &log, Backend &b, CircuitBreaker::Transition t, const char *why) {
    char reason[256];
    switch (t) {
    case CircuitBreaker::Transition::opened:
        std::snprintf(reason, sizeof reason, "%s; open for %llums", why,
                      static_cast<unsigned long long>(b.breaker.current_open_ms()));
        log.event(PP_EVENT_BREAKER_OPEN, b.id, b.name, reason);
        log.log(PP_LOG_WARN, "backend %s: breaker open: %s", b.name.c_str(), reason);
        break;
    case CircuitBreaker::Transition::half_opened:
        log.event(PP_EVENT_BREAKER_HALF_OPEN, b.id, b.name, why);
        log.log(PP_LOG_INFO, "backend %s: breaker half-open: %s", b.name.c_str(), why);
        break;
    case CircuitBreaker::Transition::closed:
        log.event(PP_EVENT_BREAKER_CLOSED, b.id, b.name, why);
        log.log(PP_LOG_INFO, "backend %s: breaker closed: %s", b.name.c_str(), why);
        break;
    case CircuitBreaker::Transition::none: break;
    }
}

void record_attempt(const Logger &log, Backend &b, bool success, bool probe, uint32_t epoch, const char *why) {
    const CircuitBreaker::Transition t = b.breaker.record(success, probe, epoch, mono_ms());
    if (t != CircuitBreaker::Transition::none) report_breaker(log, b, t, why);
}

}  // namespace pp
