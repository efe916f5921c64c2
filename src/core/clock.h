// One monotonic millisecond clock for every thread, so deadlines compare across workers.
#pragma once
#include <uv.h>

#include <cstdint>

namespace pp {

inline uint64_t mono_ms() { return uv_hrtime() / 1000000u; }

// For a warning said at most once per quiet_ms under a storm: true (and *last_ms becomes now)
// when quiet_ms has passed since the last one.
inline bool quiet_long_enough(uint64_t *last_ms, uint64_t quiet_ms) {
    const uint64_t now = mono_ms();
    if (now - *last_ms < quiet_ms) return false;
    *last_ms = now;
    return true;
}

// For a warning said once per burst: true on the first event after quiet_ms without any
// (*last_ms is the last event's time, updated on every call, warned or not), so a storm that
// never pauses is warned about once, not every quiet_ms.
inline bool first_of_burst(uint64_t *last_ms, uint64_t quiet_ms) {
    const uint64_t now = mono_ms();
    const bool first = *last_ms == 0 || now - *last_ms >= quiet_ms;
    *last_ms = now;
    return first;
}

}  // namespace pp
