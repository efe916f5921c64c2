// A circuit breaker's transition, reported once: an event for the embedder and a log line.
#pragma once
#include "core/backend.h"
#include "core/circuit_breaker.h"
#include "obs/log.h"

namespace pp {

void report_breaker(const Logger &log, Backend &b, CircuitBreaker::Transition t, const char *why);

}  // namespace pp
