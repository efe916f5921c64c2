#include "core/uv_result.h"

#include <cstdio>
#include <cstdlib>

#include "core/clock.h"
#include "obs/log.h"

namespace pp {

namespace {
constexpr uint64_t kWarnQuietMs = 10000;
}  // namespace

void must_failed(int rc, const char *call, const char *file, int line) {
    std::fprintf(stderr, "poolproxy: %s:%d: %s failed: %s (%s); this is a bug\n", file, line, call, uv_strerror(rc),
                 uv_err_name(rc));
    std::fflush(stderr);
    std::abort();
}

void warn_uv_failure(const Logger &log, const char *what, int rc) {
    thread_local uint64_t t_last_ms = 0;
    thread_local uint64_t t_quiet = 0;  // failures not warned about since the last warning
    const uint64_t now = mono_ms();
    if (t_last_ms != 0 && now - t_last_ms < kWarnQuietMs) {
        t_quiet++;
        log.log(PP_LOG_DEBUG, "%s: %s", what, uv_strerror(rc));
        return;
    }
    if (t_quiet > 0) {
        log.log(PP_LOG_WARN, "%s: %s (and %llu similar failure(s) in the last %llus)", what, uv_strerror(rc),
                static_cast<unsigned long long>(t_quiet), static_cast<unsigned long long>(kWarnQuietMs / 1000));
    } else {
        log.log(PP_LOG_WARN, "%s: %s", what, uv_strerror(rc));
    }
    t_last_ms = now;
    t_quiet = 0;
}

}  // namespace pp
