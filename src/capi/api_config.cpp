// pp_config_* and pp_option_*: argument checks, then the option table does the work.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "capi/handles.h"
#include "core/errors.h"
#include "core/options.h"
#include "proto/route_table.h"

namespace pp {

int check_config(const pp_config *cfg, const char *fn) {
    if (!cfg) return fail(PP_EINVAL, std::string(fn) + ": config is NULL");
    if (cfg->magic != pp_config::kMagic) return fail(PP_EINVAL, std::string(fn) + ": not a live pp_config handle");
    return PP_OK;
}

int copy_out(const std::string &text, char *buf, size_t buflen, const char *fn) {
    if (!buf || buflen == 0) return fail(PP_EINVAL, std::string(fn) + ": buf is NULL or buflen is 0");
    if (text.size() + 1 > buflen) {
        std::memcpy(buf, text.data(), buflen - 1);
        buf[buflen - 1] = '\0';
        return fail(PP_ETRUNC, std::string(fn) + ": needs " + std::to_string(text.size() + 1) + " bytes, got " +
                                   std::to_string(buflen));
    }
    std::memcpy(buf, text.c_str(), text.size() + 1);
    return PP_OK;
}

// set_option, and for a route its syntax too (the http protocol's, proto/route_table.h), so
// that a bad route is refused where it is written; the group it names is checked when the proxy
// is made, as groups may be declared after it.
int set_checked(Settings *s, const std::string &name, const std::string &value, std::string *why) {
    if (name == "route") {
        Route r;
        RouteTable scratch;
        std::string reason;
        if (!parse_route(value, [](std::string_view) { return 0; }, &r, &reason) || !scratch.add(std::move(r), &reason)) {
            *why = "option 'route' '" + value + "': " + reason;
            return PP_EBADVALUE;
        }
    }
    return set_option(s, name, value, why);
}

static std::string trim(const std::string &s) {
    size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return "";
    size_t b = s.find_last_not_of(" \t\r");
    return s.substr(a, b - a + 1);
}

}  // namespace pp

using pp::fail;
using pp::guard;

extern "C" {

PP_API size_t pp_option_count(void) { return pp::option_count(); }

PP_API int pp_option_get_info(size_t index, pp_option_info *info) {
    if (!info) return fail(PP_EINVAL, "pp_option_get_info: info is NULL");
    const pp::OptionDef *d = pp::option_at(index);
    if (!d) {
        return fail(PP_EINVAL, "pp_option_get_info: index " + std::to_string(index) + " is not below " +
                                   std::to_string(pp::option_count()));
    }
    pp_option_info full{};
    full.struct_size = sizeof full;
    full.name = d->name;
    full.type = d->type;
    full.default_text = d->default_text;
    full.choices = d->choices;
    full.min = d->min;
    full.max = d->max;
    full.help = d->help;
    size_t n = info->struct_size < sizeof full ? info->struct_size : sizeof full;
    std::memcpy(static_cast<void *>(info), &full, n);
    info->struct_size = n;
    return PP_OK;
}

PP_API int pp_config_new(pp_config **out) {
    if (!out) return fail(PP_EINVAL, "pp_config_new: out is NULL");
    *out = nullptr;
    return guard("pp_config_new", [&]() -> int {
        *out = new pp_config;
        return PP_OK;
    });
}

PP_API void pp_config_free(pp_config *cfg) {
    if (!cfg || cfg->magic != pp_config::kMagic) return;
    cfg->magic = pp::kPoisoned;
    delete cfg;
}

PP_API int pp_config_set(pp_config *cfg, const char *name, const char *value) {
    if (int rc = pp::check_config(cfg, "pp_config_set")) return rc;
    if (!name) return fail(PP_EINVAL, "pp_config_set: name is NULL");
    if (!value) return fail(PP_EINVAL, std::string("pp_config_set: value for '") + name + "' is NULL");
    return guard("pp_config_set", [&]() -> int {
        std::string why;
        int rc = pp::set_checked(&cfg->settings, name, value, &why);
        return rc == PP_OK ? PP_OK : fail(rc, why);
    });
}

PP_API int pp_config_get(const pp_config *cfg, const char *name, char *buf, size_t buflen) {
    if (int rc = pp::check_config(cfg, "pp_config_get")) return rc;
    if (!name) return fail(PP_EINVAL, "pp_config_get: name is NULL");
    return guard("pp_config_get", [&]() -> int {
        const pp::OptionDef *d = pp::find_option(name);
        if (!d) return fail(PP_ENOOPT, std::string("no option named '") + name + "'");
        return pp::copy_out(pp::get_option(cfg->settings, *d), buf, buflen, "pp_config_get");
    });
}

PP_API int pp_config_add_backend(pp_config *cfg, const char *address, int weight) {
    if (int rc = pp::check_config(cfg, "pp_config_add_backend")) return rc;
    if (!address) return fail(PP_EINVAL, "pp_config_add_backend: address is NULL");
    if (weight < 1 || weight > 1000) {
        return fail(PP_EINVAL, "pp_config_add_backend: weight must be in 1..1000, got " + std::to_string(weight));
    }
    return guard("pp_config_add_backend", [&]() -> int {
        pp::BackendSpec spec;
        std::string why;
        if (pp::parse_host_name_port(address, &spec.host, &spec.port) && std::strncmp(address, "localhost:", 10) != 0) {
            spec.dynamic = true;  // resolved at start and every dns_refresh
        } else if (!pp::parse_address(address, false, &spec.addr, &why)) {
            return fail(PP_EADDR, std::string("backend '") + address + "': " + why);
        }
        spec.text = address;
        spec.weight = weight;
        cfg->settings.backends.push_back(spec);
        return PP_OK;
    });
}

PP_API int pp_config_backend_count(const pp_config *cfg) {
    if (int rc = pp::check_config(cfg, "pp_config_backend_count")) return rc;
    return static_cast<int>(cfg->settings.backends.size());
}

PP_API int pp_config_load_file(pp_config *cfg, const char *path) {
    if (int rc = pp::check_config(cfg, "pp_config_load_file")) return rc;
    if (!path) return fail(PP_EINVAL, "pp_config_load_file: path is NULL");
    return guard("pp_config_load_file", [&]() -> int {
        std::ifstream in(path);
        if (!in) return fail(PP_EIO, std::string("cannot read config file '") + path + "': " + std::strerror(errno));
        // Parse into a copy: a file with a bad line changes nothing.
        pp::Settings next = cfg->settings;
        std::string line;
        int lineno = 0;
        while (std::getline(in, line)) {
            lineno++;
            size_t hash = line.find('#');
            if (hash != std::string::npos) line.resize(hash);
            line = pp::trim(line);
            if (line.empty()) continue;
            std::string where = std::string(path) + ":" + std::to_string(lineno) + ": ";
            size_t eq = line.find('=');
            if (eq == std::string::npos) return fail(PP_EBADVALUE, where + "expected 'name = value', got '" + line + "'");
            std::string name = pp::trim(line.substr(0, eq));
            std::string value = pp::trim(line.substr(eq + 1));
            std::string why;
            int rc = pp::set_checked(&next, name, value, &why);
            if (rc != PP_OK) return fail(rc, where + why);
        }
        cfg->settings = next;
        return PP_OK;
    });
}

PP_API int pp_config_set_log_callback(pp_config *cfg, pp_log_fn fn, void *userdata, int max_level) {
    if (int rc = pp::check_config(cfg, "pp_config_set_log_callback")) return rc;
    if (max_level < PP_LOG_ERROR || max_level > PP_LOG_DEBUG) {
        return fail(PP_EINVAL, "pp_config_set_log_callback: max_level must be PP_LOG_ERROR..PP_LOG_DEBUG, got " +
                                   std::to_string(max_level));
    }
    cfg->settings.callbacks.log_fn = fn;
    cfg->settings.callbacks.log_userdata = fn ? userdata : nullptr;
    cfg->settings.callbacks.log_max_level = max_level;
    return PP_OK;
}

PP_API int pp_config_set_event_callback(pp_config *cfg, pp_event_fn fn, void *userdata) {
    if (int rc = pp::check_config(cfg, "pp_config_set_event_callback")) return rc;
    cfg->settings.callbacks.event_fn = fn;
    cfg->settings.callbacks.event_userdata = fn ? userdata : nullptr;
    return PP_OK;
}

PP_API int pp_config_set_access_callback(pp_config *cfg, pp_access_fn fn, void *userdata) {
    if (int rc = pp::check_config(cfg, "pp_config_set_access_callback")) return rc;
    cfg->settings.callbacks.access_fn = fn;
    cfg->settings.callbacks.access_userdata = fn ? userdata : nullptr;
    return PP_OK;
}

}  // extern "C"
