// Thread-local last-error text and the exception type used inside the core.
#pragma once
#include <stdexcept>
#include <string>

#include "poolproxy.h"

namespace pp {

// Records `message` as the calling thread's last error and returns `code`, so a shim can write
// `return fail(PP_EINVAL, "...")`.
int fail(int code, const std::string &message);

// The calling thread's last error message ("" when none).
const char *last_error();

// Thrown by core code for caller-visible failures; the C shims turn it into (code, message).
class Error : public std::runtime_error {
public:
    Error(int code, const std::string &message) : std::runtime_error(message), code_(code) {}
    int code() const { return code_; }

private:
    int code_;
};

}  // namespace pp
