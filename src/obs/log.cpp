#include "obs/log.h"

#include <cstdarg>
#include <cstdio>

namespace pp {

void Logger::log(int level, const char *fmt, ...) const {
    if (!enabled(level)) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    cb_.log_fn(cb_.log_userdata, level, line);
}

void Logger::event(int type, int backend_id, const std::string &address, const std::string &reason) const {
    if (!cb_.event_fn) return;
    pp_event ev{};
    ev.struct_size = sizeof ev;
    ev.type = type;
    ev.backend_id = backend_id;
    ev.address = address.c_str();
    ev.reason = reason.c_str();
    cb_.event_fn(cb_.event_userdata, &ev);
}

}  // namespace pp
