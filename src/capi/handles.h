// The structs behind the opaque C handles. Each carries a magic tag checked on entry and
// poisoned on free, so a wrong or already-freed handle is reported instead of trusted.
#pragma once
#include <cstdint>
#include <memory>

#include "core/errors.h"
#include "core/proxy.h"
#include "core/settings.h"

struct pp_config {
    static constexpr uint32_t kMagic = 0x50504346;  // "PPCF"
    uint32_t magic = kMagic;
    pp::Settings settings;
};

struct pp_proxy {
    static constexpr uint32_t kMagic = 0x50505058;  // "PPPX"
    uint32_t magic = kMagic;
    std::unique_ptr<pp::Proxy> core;
};

namespace pp {

constexpr uint32_t kPoisoned = 0xdeadbeef;

// Runs `body` and turns every exception into an error code plus last-error text: nothing
// thrown inside the library crosses the C boundary.
template <typename F>
int guard(const char *what, F &&body) noexcept {
    try {
        return body();
    } catch (const Error &e) {
        return fail(e.code(), e.what());
    } catch (const std::bad_alloc &) {
        return fail(PP_ENOMEM, std::string(what) + ": out of memory");
    } catch (const std::exception &e) {
        return fail(PP_EINTERNAL, std::string(what) + ": internal error: " + e.what());
    } catch (...) {
        return fail(PP_EINTERNAL, std::string(what) + ": internal error");
    }
}

int check_config(const pp_config *cfg, const char *fn);
// Copies text into a caller's buffer, NUL-terminated; PP_ETRUNC (with a truncated copy) if short.
int copy_out(const std::string &text, char *buf, size_t buflen, const char *fn);
int check_proxy(const pp_proxy *proxy, const char *fn);

}  // namespace pp
