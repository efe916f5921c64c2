// The option table: one row per option (name, type, default, range, help). It drives
// pp_config_set/get, the CLI flags and --help, the config-file reader and docs/OPTIONS.md.
#pragma once
#include <cstddef>
#include <string>

#include "core/settings.h"

namespace pp {

struct OptionDef {
    const char *name;
    pp_option_type type;
    const char *default_text;
    const char *choices;  // "a|b|c" for enums
    int64_t min;
    int64_t max;
    const char *help;
    int64_t Settings::*field;  // numeric, bool and enum options; nullptr for addresses and backends
    std::string Settings::*text = nullptr;  // text options kept as given (tls_ciphers, a CA file)
};

size_t option_count();
const OptionDef *option_at(size_t index);
const OptionDef *find_option(const std::string &name);

// Parses `value` for option `name` into *s. On failure returns a PP_E code and a message naming
// the option and the reason in *why, leaving *s unchanged.
int set_option(Settings *s, const std::string &name, const std::string &value, std::string *why);

// The option's current value as text (durations as "<n>ms", bools as on/off, enums as words).
std::string get_option(const Settings &s, const OptionDef &def);

// Backend groups: at most this many named ones.
constexpr size_t kMaxGroups = 256;

// A backend as the 'backend' option writes it (what pp_config_get reads back).
std::string backend_text(const BackendSpec &b);

// The top level's options without its backends, groups and routes (what group_settings
// starts from: made once, it keeps the groups' copies from copying every route).
Settings without_lists(const Settings &top);
// A group's effective options: `base` (without_lists of the top level) with the group's own
// applied (nullptr: the default group). Backends, groups and routes are empty.
Settings group_settings(const Settings &base, const GroupSpec *group);

// Whether a backend group may set option `name` for itself ("group = NAME name=value").
bool group_scoped(const std::string &name);
// Whether two groups' effective options (group_settings) are the same.
bool same_group_options(const Settings &a, const Settings &b);

// Checks the options against each other, before a proxy is made from them.
int validate_settings(const Settings &s, std::string *why);

// Duration text ("250ms", "2s", "1m", "1h", "1d", bare number = ms) to ms; false when malformed.
// A duration beyond 64 bits of ms reads as INT64_MAX, which every option's range refuses.
bool parse_duration_ms(const std::string &text, int64_t *out_ms);

}  // namespace pp
