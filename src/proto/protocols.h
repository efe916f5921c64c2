// The Protocol a proxy's sessions speak, by mode: what the embedding layer (the C API, tests)
// hands to Proxy, so that the core itself includes nothing of src/proto.
#pragma once
#include <memory>

#include "core/protocol.h"
#include "core/settings.h"

namespace pp {

// The proxy's protocol, with what it needs of the settings (http: the route table). Throws
// Error (PP_EBADVALUE, naming the route) when a route does not parse or names no group.
std::unique_ptr<Protocol> protocol_for(const Settings &settings);

}  // namespace pp
