// A backend attempt's outcome, into the backend's circuit breaker, and the transition that
// follows reported once: an event for the embedder and a log line. The one way both callers
// (a session's exchange, session::outcome; a connect nobody waits for, BackendPool) feed a
// breaker.
#pragma once
#include "core/backend.h"
#include "core/circuit_breaker.h"
#include "obs/log.h"

namespace pp {

void report_breaker(const Logger &log, Backend &b, CircuitBreaker::Transition t, const char *why);
// breaker.record(...), then report_breaker for its transition. `probe`, `epoch`: as admit() said.
void record_attempt(const Logger &log, Backend &b, bool success, bool probe, uint32_t epoch, const char *why);

}  // namespace pp
