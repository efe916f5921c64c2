// pp_config_set_*_hook and pp_exchange_*: argument checks, then the handle (proto/http_hooks.h)
// records what the hook asked for; the protocol applies it when the hook returns.
#include <strings.h>

#include <cstring>
#include <string>

#include "capi/handles.h"
#include "core/shared.h"
#include "proto/http_hooks.h"

namespace {

using pp::fail;

int check_exchange(const pp_exchange *ex, const char *fn) {
    if (!ex) return fail(PP_EINVAL, std::string(fn) + ": exchange is NULL");
    if (ex->magic != pp_exchange::kMagic) {
        return fail(PP_EINVAL, std::string(fn) + ": not a live pp_exchange (a handle is valid during its hook call only)");
    }
    if (ex->thread != std::this_thread::get_id()) {
        return fail(PP_ESTATE, std::string(fn) + ": only on the hook's own thread, during the call");
    }
    return PP_OK;
}

// The head-changing calls: a head to change, and not once the hook has answered or paused.
int check_head(const pp_exchange *ex, const char *fn) {
    if (int rc = check_exchange(ex, fn)) return rc;
    if (!ex->head) return fail(PP_ESTATE, std::string(fn) + ": a connect hook has no fields");
    return PP_OK;
}

int check_request(const pp_exchange *ex, const char *fn, bool connect_too) {
    if (int rc = check_exchange(ex, fn)) return rc;
    const bool ok = ex->kind == pp_exchange::Kind::request || (connect_too && ex->kind == pp_exchange::Kind::connect);
    if (!ok) return fail(PP_ESTATE, std::string(fn) + ": only in a request hook" + (connect_too ? " or a connect hook" : ""));
    if (ex->responded || ex->paused) {
        return fail(PP_ESTATE, std::string(fn) + ": the hook already " + (ex->responded ? "answered" : "paused") +
                                   " this exchange");
    }
    return PP_OK;
}

int check_field_args(const char *name, const char *value, const char *fn, bool need_value) {
    if (!name) return fail(PP_EINVAL, std::string(fn) + ": name is NULL");
    if (need_value && !value) return fail(PP_EINVAL, std::string(fn) + ": value is NULL");
    std::string why;
    if (int rc = pp::check_hook_field(name, need_value ? value : nullptr, &why)) return fail(rc, std::string(fn) + ": " + why);
    return PP_OK;
}

}  // namespace

extern "C" {

PP_API int pp_config_set_request_hook(pp_config *cfg, pp_request_hook_fn fn, void *userdata) {
    if (int rc = pp::check_config(cfg, "pp_config_set_request_hook")) return rc;
    cfg->settings.callbacks.request_hook = fn;
    cfg->settings.callbacks.request_hook_userdata = fn ? userdata : nullptr;
    return PP_OK;
}

PP_API int pp_config_set_response_hook(pp_config *cfg, pp_response_hook_fn fn, void *userdata) {
    if (int rc = pp::check_config(cfg, "pp_config_set_response_hook")) return rc;
    cfg->settings.callbacks.response_hook = fn;
    cfg->settings.callbacks.response_hook_userdata = fn ? userdata : nullptr;
    return PP_OK;
}

PP_API int pp_config_set_connect_hook(pp_config *cfg, pp_connect_hook_fn fn, void *userdata) {
    if (int rc = pp::check_config(cfg, "pp_config_set_connect_hook")) return rc;
    cfg->settings.callbacks.connect_hook = fn;
    cfg->settings.callbacks.connect_hook_userdata = fn ? userdata : nullptr;
    return PP_OK;
}

PP_API int pp_exchange_field_count(const pp_exchange *ex) {
    if (int rc = check_head(ex, "pp_exchange_field_count")) return rc;
    return static_cast<int>(ex->head->headers.size());
}

PP_API int pp_exchange_field(const pp_exchange *ex, size_t index, const char **name, const char **value) {
    if (int rc = check_head(ex, "pp_exchange_field")) return rc;
    if (!name || !value) return fail(PP_EINVAL, "pp_exchange_field: name or value is NULL");
    if (index >= ex->head->headers.size()) {
        return fail(PP_ENOTFOUND, "pp_exchange_field: index " + std::to_string(index) + " is not below " +
                                      std::to_string(ex->head->headers.size()));
    }
    *name = ex->head->headers[index].name.c_str();
    *value = ex->head->headers[index].value.c_str();
    return PP_OK;
}

PP_API const char *pp_exchange_find_field(const pp_exchange *ex, const char *name) {
    if (check_head(ex, "pp_exchange_find_field") != PP_OK) return nullptr;
    if (!name) {
        fail(PP_EINVAL, "pp_exchange_find_field: name is NULL");
        return nullptr;
    }
    const std::string *v = ex->head->find(name);
    return v ? v->c_str() : nullptr;
}

PP_API int pp_exchange_set_field(pp_exchange *ex, const char *name, const char *value) {
    if (int rc = check_head(ex, "pp_exchange_set_field")) return rc;
    if (int rc = check_field_args(name, value, "pp_exchange_set_field", true)) return rc;
    return pp::guard("pp_exchange_set_field", [&]() -> int {
        std::string why;
        if (int rc = pp::head_set_field(*ex->head, name, value, ex->max_head_bytes, &why)) {
            return fail(rc, "pp_exchange_set_field: " + why);
        }
        if (strcasecmp(name, "host") == 0) ex->host_set = true;
        return PP_OK;
    });
}

PP_API int pp_exchange_add_field(pp_exchange *ex, const char *name, const char *value) {
    if (int rc = check_head(ex, "pp_exchange_add_field")) return rc;
    if (int rc = check_field_args(name, value, "pp_exchange_add_field", true)) return rc;
    if (strcasecmp(name, "host") == 0) {  // one Host only (RFC 9112 3.2)
        return fail(PP_EINVAL, "pp_exchange_add_field: a request has one Host: set it with pp_exchange_set_field");
    }
    return pp::guard("pp_exchange_add_field", [&]() -> int {
        std::string why;
        if (int rc = pp::head_add_field(*ex->head, name, value, ex->max_head_bytes, &why)) {
            return fail(rc, "pp_exchange_add_field: " + why);
        }
        return PP_OK;
    });
}

PP_API int pp_exchange_remove_field(pp_exchange *ex, const char *name) {
    if (int rc = check_head(ex, "pp_exchange_remove_field")) return rc;
    if (int rc = check_field_args(name, nullptr, "pp_exchange_remove_field", false)) return rc;
    if (strcasecmp(name, "host") == 0) ex->host_set = true;  // (removed: none goes upstream)
    if (pp::head_remove_field(*ex->head, name) == 0) {
        return fail(PP_ENOTFOUND, std::string("pp_exchange_remove_field: no field named '") + name + "'");
    }
    return PP_OK;
}

PP_API int pp_exchange_set_target(pp_exchange *ex, const char *target) {
    if (int rc = check_request(ex, "pp_exchange_set_target", false)) return rc;
    if (!target) return fail(PP_EINVAL, "pp_exchange_set_target: target is NULL");
    const size_t len = std::strlen(target);
    // Origin form, or "*" (OPTIONS): an absolute form would name a host the routes never saw.
    bool ok = len > 0 && len <= 8192 && (target[0] == '/' || std::strcmp(target, "*") == 0);
    for (size_t i = 0; ok && i < len; i++) ok = static_cast<unsigned char>(target[i]) > ' ' && target[i] != 0x7f;
    if (!ok) {
        return fail(PP_EINVAL, "pp_exchange_set_target: a target is a path ('/...', or '*') of at most 8192 bytes without "
                               "spaces or control characters");
    }
    return pp::guard("pp_exchange_set_target", [&]() -> int {
        ex->target = target;
        ex->target_set = true;
        return PP_OK;
    });
}

PP_API int pp_exchange_set_group(pp_exchange *ex, const char *group) {
    if (int rc = check_request(ex, "pp_exchange_set_group", true)) return rc;
    if (!group) return fail(PP_EINVAL, "pp_exchange_set_group: group is NULL");
    const auto &sh = *static_cast<const pp::Shared *>(ex->shared);
    const int g = std::strcmp(group, "default") == 0 ? 0 : sh.group_id(group);
    if (g < 0) {
        // The request cannot go where the hook meant: it gets a 500 rather than another group.
        ex->failure = std::string("the hook picked backend group '") + group + "', which does not exist";
        return fail(PP_ENOTFOUND, std::string("pp_exchange_set_group: no backend group named '") + group + "'");
    }
    ex->group = g;
    ex->backend = -1;
    return PP_OK;
}

PP_API int pp_exchange_set_backend(pp_exchange *ex, int backend_id) {
    if (int rc = check_request(ex, "pp_exchange_set_backend", false)) return rc;
    const auto &sh = *static_cast<const pp::Shared *>(ex->shared);
    if (backend_id < 0 || static_cast<size_t>(backend_id) >= sh.backends.size()) {
        ex->failure = "the hook picked backend " + std::to_string(backend_id) + ", which does not exist";
        return fail(PP_ENOTFOUND, "pp_exchange_set_backend: no backend " + std::to_string(backend_id));
    }
    ex->backend = backend_id;
    ex->group = sh.backends[static_cast<size_t>(backend_id)].group;
    return PP_OK;
}

PP_API int pp_exchange_respond(pp_exchange *ex, int status, const char *const *fields, const char *body,
                               size_t body_len) {
    if (int rc = check_request(ex, "pp_exchange_respond", false)) return rc;
    return pp::guard("pp_exchange_respond", [&]() -> int {
        std::string why;
        if (int rc = pp::serialize_answer(status, fields, body, body_len, &ex->response, &why)) {
            return fail(rc, "pp_exchange_respond: " + why);
        }
        ex->responded = true;
        ex->status = status;
        return PP_OK;
    });
}

PP_API int pp_exchange_pause(pp_exchange *ex, uint64_t *token) {
    if (int rc = check_request(ex, "pp_exchange_pause", false)) return rc;
    if (!token) return fail(PP_EINVAL, "pp_exchange_pause: token is NULL");
    return pp::guard("pp_exchange_pause", [&]() -> int {
        auto &sh = *const_cast<pp::Shared *>(static_cast<const pp::Shared *>(ex->shared));
        ex->token = sh.parking.park(static_cast<pp::ClientBase *>(ex->client), ex->worker);
        ex->paused = true;
        *token = ex->token;
        return PP_OK;
    });
}

PP_API int pp_exchange_resume(pp_proxy *proxy, uint64_t token) {
    if (int rc = pp::check_proxy(proxy, "pp_exchange_resume")) return rc;
    return pp::guard("pp_exchange_resume", [&]() -> int {
        std::string why;
        int rc = proxy->core->resume(token, &why);
        return rc == PP_OK ? PP_OK : fail(rc, "pp_exchange_resume: " + why);
    });
}

}  // extern "C"
