// The Protocol a proxy's sessions speak, by mode: what the embedding layer (the C API, tests)
// hands to Proxy, so that the core itself includes nothing of src/proto.
#pragma once
#include "core/protocol.h"
#include "core/settings.h"

namespace pp {

const Protocol &protocol_for(const Settings &settings);

}  // namespace pp
