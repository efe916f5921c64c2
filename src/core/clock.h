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

}  // namespace pp
