#include "proto/sni_routes.h"

namespace pp {

namespace {

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

bool valid_name(const std::string &n) {
    if (n.empty() || n.size() > 253 || n.front() == '.' || n.back() == '.') return false;
    for (char c : n) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
        if (!ok) return false;
    }
    return n.find("..") == std::string::npos;
}

}  // namespace

bool SniTable::build(const std::vector<std::string> &routes, const std::function<int(std::string_view)> &group_id,
                     std::string *why) {
    routes_.clear();
    for (const std::string &text : routes) {
        const std::string where = "option 'sni_route' '" + text + "': ";
        const size_t arrow = text.find("->");
        if (arrow == std::string::npos) {
            *why = where + "expected 'NAME -> GROUP'";
            return false;
        }
        std::string name = trim(std::string_view(text).substr(0, arrow));
        const std::string group = trim(std::string_view(text).substr(arrow + 2));
        for (char &c : name) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
        Route r;
        if (name.size() > 2 && name.compare(0, 2, "*.") == 0) {
            r.below = true;
            name.erase(0, 1);  // ".example.com"
            if (!valid_name(name.substr(1))) name.clear();
        } else if (!valid_name(name)) {
            name.clear();
        }
        if (name.empty()) {
            *why = where + "expected a host name or *.name before '->'";
            return false;
        }
        r.name = name;
        r.group = group_id(group);
        if (r.group < 0) {
            *why = where + "no backend group named '" + group + "'";
            return false;
        }
        routes_.push_back(std::move(r));
    }
    return true;
}

int SniTable::match(const std::string &name) const {
    for (const Route &r : routes_) {
        if (!r.below) {
            if (name == r.name) return r.group;
        } else if (name.size() > r.name.size() && name.compare(name.size() - r.name.size(), r.name.size(), r.name) == 0) {
            return r.group;
        }
    }
    return -1;
}

}  // namespace pp
