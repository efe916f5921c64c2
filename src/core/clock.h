// One monotonic millisecond clock for every thread, so deadlines compare across workers.
#pragma once
#include <uv.h>

#include <cstdint>

namespace pp {

inline uint64_t mono_ms() { return uv_hrtime() / 1000000u; }

}  // namespace pp
