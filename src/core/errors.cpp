#include "core/errors.h"

namespace pp {

namespace {
thread_local std::string t_last_error;
}

int fail(int code, const std::string &message) {
    try {
        t_last_error = message;
    } catch (...) {
        // Out of memory while recording the error: the code alone still tells the caller.
    }
    return code;
}

const char *last_error() { return t_last_error.c_str(); }

}  // namespace pp
