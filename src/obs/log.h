// Delivers log lines and events to the embedder's callbacks.
#pragma once
#include <string>

#include "core/settings.h"

namespace pp {

class Logger {
public:
    explicit Logger(const Callbacks &cb) : cb_(cb) {}

    bool enabled(int level) const { return cb_.log_fn && level <= cb_.log_max_level; }
    // printf-style; formats only when the level is enabled.
    void log(int level, const char *fmt, ...) const __attribute__((format(printf, 3, 4)));
    void event(int type, int backend_id, const std::string &address, const std::string &reason) const;
    bool access_enabled() const { return cb_.access_fn != nullptr; }
    void access(const pp_access_entry &entry) const { cb_.access_fn(cb_.access_userdata, &entry); }

private:
    Callbacks cb_;
};

}  // namespace pp
