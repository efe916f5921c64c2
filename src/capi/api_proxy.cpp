// pp_proxy_*: lifecycle and stats shims.
#include <cstring>
#include <string>

#include "capi/handles.h"
#include "core/options.h"
#include "core/address.h"
#include "core/backend.h"
#include "core/errors.h"
#include "proto/protocols.h"

namespace pp {

int check_proxy(const pp_proxy *proxy, const char *fn) {
    if (!proxy) return fail(PP_EINVAL, std::string(fn) + ": proxy is NULL");
    if (proxy->magic != pp_proxy::kMagic) return fail(PP_EINVAL, std::string(fn) + ": not a live pp_proxy handle");
    return PP_OK;
}

template <typename T>
static int check_struct(const T *out, const char *fn, const char *type) {
    if (!out) return fail(PP_EINVAL, std::string(fn) + ": out is NULL");
    if (out->struct_size < sizeof(size_t)) {
        return fail(PP_EINVAL, std::string(fn) + ": set out->struct_size = sizeof(" + type + ") first");
    }
    return PP_OK;
}

static int refuse_on_own_thread(const pp_proxy *proxy, const char *fn) {
    if (proxy->core->on_own_thread()) {
        return fail(PP_ESTATE, std::string(fn) + ": not allowed from a callback (it would wait for its own thread)");
    }
    return PP_OK;
}

}  // namespace pp

using pp::fail;
using pp::guard;

extern "C" {

PP_API int pp_proxy_new(pp_proxy **out, const pp_config *cfg) {
    if (!out) return fail(PP_EINVAL, "pp_proxy_new: out is NULL");
    *out = nullptr;
    if (int rc = pp::check_config(cfg, "pp_proxy_new")) return rc;
    return guard("pp_proxy_new", [&]() -> int {
        auto proxy = std::make_unique<pp_proxy>();
        proxy->core = std::make_unique<pp::Proxy>(cfg->settings, pp::protocol_for(cfg->settings));
        *out = proxy.release();
        return PP_OK;
    });
}

PP_API int pp_proxy_start(pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_start")) return rc;
    if (int rc = pp::refuse_on_own_thread(proxy, "pp_proxy_start")) return rc;
    return guard("pp_proxy_start", [&]() -> int {
        std::string why;
        int rc = proxy->core->start(&why);
        return rc == PP_OK ? PP_OK : fail(rc, why);
    });
}

PP_API int pp_proxy_stop(pp_proxy *proxy, int drain_ms) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_stop")) return rc;
    if (int rc = pp::refuse_on_own_thread(proxy, "pp_proxy_stop")) return rc;
    return guard("pp_proxy_stop", [&]() -> int {
        std::string why;
        int rc = proxy->core->stop(drain_ms, &why);
        return rc == PP_OK ? PP_OK : fail(rc, "pp_proxy_stop: " + why);
    });
}

PP_API int pp_proxy_free(pp_proxy *proxy) {
    if (!proxy) return PP_OK;
    if (int rc = pp::check_proxy(proxy, "pp_proxy_free")) return rc;
    if (int rc = pp::refuse_on_own_thread(proxy, "pp_proxy_free")) return rc;
    if (proxy->core->state() == PP_STATE_RUNNING) {
        return fail(PP_ESTATE, "pp_proxy_free: the proxy is running; call pp_proxy_stop first");
    }
    return guard("pp_proxy_free", [&]() -> int {
        proxy->magic = pp::kPoisoned;
        delete proxy;
        return PP_OK;
    });
}

PP_API int pp_proxy_state(const pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_state")) return rc;
    return proxy->core->state();
}

PP_API int pp_proxy_local_address(const pp_proxy *proxy, char *buf, size_t buflen) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_local_address")) return rc;
    if (proxy->core->state() == PP_STATE_CREATED) {
        return fail(PP_ESTATE, "pp_proxy_local_address: the proxy has not been started");
    }
    return guard("pp_proxy_local_address",
                 [&]() -> int { return pp::copy_out(proxy->core->bound().to_string(), buf, buflen, "pp_proxy_local_address"); });
}

PP_API int pp_proxy_local_port(const pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_local_port")) return rc;
    if (proxy->core->state() == PP_STATE_CREATED) {
        return fail(PP_ESTATE, "pp_proxy_local_port: the proxy has not been started");
    }
    return proxy->core->bound().port();
}

PP_API int pp_proxy_stats(const pp_proxy *proxy, pp_stats *out) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_stats")) return rc;
    if (int rc = pp::check_struct(out, "pp_proxy_stats", "pp_stats")) return rc;
    proxy->core->stats(out);
    return PP_OK;
}

PP_API int pp_proxy_worker_count(const pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_worker_count")) return rc;
    return proxy->core->worker_count();
}

PP_API int pp_proxy_worker_stats(const pp_proxy *proxy, int index, pp_worker_stats *out) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_worker_stats")) return rc;
    if (int rc = pp::check_struct(out, "pp_proxy_worker_stats", "pp_worker_stats")) return rc;
    if (index < 0 || index >= proxy->core->worker_count()) {
        return fail(PP_EINVAL, "pp_proxy_worker_stats: index " + std::to_string(index) + " is not in 0.." +
                                   std::to_string(proxy->core->worker_count() - 1));
    }
    proxy->core->worker_stats(index, out);
    return PP_OK;
}

PP_API int pp_proxy_backend_count(const pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_backend_count")) return rc;
    return proxy->core->backend_count();
}

PP_API int pp_proxy_backend_stats(const pp_proxy *proxy, int index, pp_backend_stats *out, char *addr_buf,
                                  size_t addr_len) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_backend_stats")) return rc;
    if (int rc = pp::check_struct(out, "pp_proxy_backend_stats", "pp_backend_stats")) return rc;
    if (index < 0 || index >= proxy->core->backend_count()) {
        return fail(PP_EINVAL, "pp_proxy_backend_stats: index " + std::to_string(index) + " is not in 0.." +
                                   std::to_string(proxy->core->backend_count() - 1));
    }
    proxy->core->backend_stats(index, out);
    if (addr_buf) {
        return guard("pp_proxy_backend_stats", [&]() -> int {
            return pp::copy_out(proxy->core->backend(index).name, addr_buf, addr_len, "pp_proxy_backend_stats");
        });
    }
    return PP_OK;
}

PP_API int pp_proxy_latency(const pp_proxy *proxy, int kind, int worker, pp_latency *out) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_latency")) return rc;
    if (int rc = pp::check_struct(out, "pp_proxy_latency", "pp_latency")) return rc;
    if (kind < PP_LATENCY_REQUEST || kind > PP_LATENCY_TLS_BACKEND_HANDSHAKE) {
        return fail(PP_EINVAL, "pp_proxy_latency: kind " + std::to_string(kind) + " is not a pp_latency_kind");
    }
    if (worker < -1 || worker >= proxy->core->worker_count()) {
        return fail(PP_EINVAL, "pp_proxy_latency: worker " + std::to_string(worker) + " is not -1 (all) or in 0.." +
                                   std::to_string(proxy->core->worker_count() - 1));
    }
    proxy->core->latency(static_cast<pp_latency_kind>(kind), worker, out);
    return PP_OK;
}

PP_API int pp_proxy_metrics(const pp_proxy *proxy, char *buf, size_t size, size_t *len) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_metrics")) return rc;
    if (!len) return fail(PP_EINVAL, "pp_proxy_metrics: len is NULL");
    if (!buf && size > 0) return fail(PP_EINVAL, "pp_proxy_metrics: buf is NULL but size is not 0");
    return guard("pp_proxy_metrics", [&]() -> int {
        std::string text = proxy->core->metrics_text();
        *len = text.size();
        if (size > 0) {
            size_t n = text.size() < size ? text.size() : size - 1;
            std::memcpy(buf, text.data(), n);
            buf[n] = '\0';
        }
        if (text.size() >= size) {
            return fail(PP_ETRUNC, "pp_proxy_metrics: the text is " + std::to_string(text.size()) +
                                       " bytes; the buffer holds " + std::to_string(size) + " with its NUL");
        }
        return PP_OK;
    });
}

PP_API int pp_proxy_admin_port(const pp_proxy *proxy) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_admin_port")) return rc;
    int port = proxy->core->admin_port();
    if (port < 0) return fail(PP_ESTATE, "pp_proxy_admin_port: the admin listener is off or not running");
    return port;
}

namespace {
int check_backend_id(const pp_proxy *proxy, int id, const char *fn) {
    if (id < 0 || id >= proxy->core->backend_count()) {
        return fail(PP_EINVAL, std::string(fn) + ": backend id " + std::to_string(id) + " is not in 0.." +
                                   std::to_string(proxy->core->backend_count() - 1));
    }
    if (proxy->core->on_own_thread()) {
        return fail(PP_ESTATE, std::string(fn) + ": not allowed from inside a callback");
    }
    return PP_OK;
}
}  // namespace

PP_API int pp_proxy_add_backend(pp_proxy *proxy, const char *address, int weight) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_add_backend")) return rc;
    if (!address) return fail(PP_EINVAL, "pp_proxy_add_backend: address is NULL");
    if (weight < 1 || weight > 1000) {
        return fail(PP_EINVAL, "pp_proxy_add_backend: weight must be in 1..1000, got " + std::to_string(weight));
    }
    if (proxy->core->on_own_thread()) return fail(PP_ESTATE, "pp_proxy_add_backend: not allowed from inside a callback");
    return guard("pp_proxy_add_backend", [&]() -> int {
        pp::BackendSpec spec;
        std::string why;
        if (!pp::parse_address(address, false, &spec.addr, &why)) {
            return fail(PP_EADDR, std::string("pp_proxy_add_backend: backend '") + address + "': " + why);
        }
        spec.text = address;
        spec.weight = weight;
        int rc = proxy->core->add_backend(spec, &why);
        return rc < 0 ? fail(rc, "pp_proxy_add_backend: " + why) : rc;
    });
}

PP_API int pp_proxy_add_backend_spec(pp_proxy *proxy, const char *spec_text) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_add_backend_spec")) return rc;
    if (!spec_text) return fail(PP_EINVAL, "pp_proxy_add_backend_spec: spec is NULL");
    if (proxy->core->on_own_thread()) return fail(PP_ESTATE, "pp_proxy_add_backend_spec: not allowed from inside a callback");
    return guard("pp_proxy_add_backend_spec", [&]() -> int {
        // The option's own parser, on a scratch configuration: one syntax, one set of messages.
        pp::Settings scratch;
        std::string why;
        if (int rc = pp::set_option(&scratch, "backend", spec_text, &why)) return fail(rc, "pp_proxy_add_backend_spec: " + why);
        const pp::BackendSpec &spec = scratch.backends.back();
        if (spec.dynamic) {
            return fail(PP_EADDR, std::string("pp_proxy_add_backend_spec: '") + spec.text +
                                      "' is a host name: give an address (names are resolved only from the configuration)");
        }
        if (proxy->core->group_id(spec.group) < 0) {
            return fail(PP_EBADVALUE, "pp_proxy_add_backend_spec: no backend group named '" + spec.group +
                                          "' (pp_proxy_reload adds groups)");
        }
        int rc = proxy->core->add_backend(spec, &why);
        return rc < 0 ? fail(rc, "pp_proxy_add_backend_spec: " + why) : rc;
    });
}

PP_API int pp_proxy_reload(pp_proxy *proxy, const pp_config *cfg) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_reload")) return rc;
    if (int rc = pp::check_config(cfg, "pp_proxy_reload")) return rc;
    if (int rc = pp::refuse_on_own_thread(proxy, "pp_proxy_reload")) return rc;
    return guard("pp_proxy_reload", [&]() -> int {
        std::string why;
        int rc = proxy->core->reload(cfg->settings, &why);
        return rc == PP_OK ? PP_OK : fail(rc, "pp_proxy_reload: " + why);
    });
}

PP_API int pp_proxy_remove_backend(pp_proxy *proxy, int id) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_remove_backend")) return rc;
    if (int rc = check_backend_id(proxy, id, "pp_proxy_remove_backend")) return rc;
    return guard("pp_proxy_remove_backend", [&]() -> int {
        std::string why;
        int rc = proxy->core->set_backend_admin(id, pp::Backend::removed, &why);
        return rc < 0 ? fail(rc, "pp_proxy_remove_backend: " + why) : rc;
    });
}

PP_API int pp_proxy_drain_backend(pp_proxy *proxy, int id, int drain) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_drain_backend")) return rc;
    if (int rc = check_backend_id(proxy, id, "pp_proxy_drain_backend")) return rc;
    if (drain != 0 && drain != 1) return fail(PP_EINVAL, "pp_proxy_drain_backend: drain must be 0 or 1");
    return guard("pp_proxy_drain_backend", [&]() -> int {
        std::string why;
        int rc = proxy->core->set_backend_admin(id, drain ? pp::Backend::draining : pp::Backend::active, &why);
        return rc < 0 ? fail(rc, "pp_proxy_drain_backend: " + why) : rc;
    });
}

PP_API int pp_proxy_set_backend_weight(pp_proxy *proxy, int id, int weight) {
    if (int rc = pp::check_proxy(proxy, "pp_proxy_set_backend_weight")) return rc;
    if (int rc = check_backend_id(proxy, id, "pp_proxy_set_backend_weight")) return rc;
    if (weight < 1 || weight > 1000) {
        return fail(PP_EINVAL, "pp_proxy_set_backend_weight: weight must be in 1..1000, got " + std::to_string(weight));
    }
    return guard("pp_proxy_set_backend_weight", [&]() -> int {
        std::string why;
        int rc = proxy->core->set_backend_weight(id, weight, &why);
        return rc < 0 ? fail(rc, "pp_proxy_set_backend_weight: " + why) : rc;
    });
}

}  // extern "C"
