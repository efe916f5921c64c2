#include "core/address.h"

#include <arpa/inet.h>

#include <cstring>

namespace pp {

int Address::port() const {
    if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in *>(&storage)->sin_port);
    if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_port);
    return 0;
}

std::string Address::to_string() const {
    char host[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&storage)->sin_addr, host, sizeof host);
        return std::string(host) + ":" + std::to_string(port());
    }
    if (family() == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6 *>(&storage)->sin6_addr, host, sizeof host);
        return "[" + std::string(host) + "]:" + std::to_string(port());
    }
    return "?";
}

static bool parse_port(const std::string &text, bool allow_zero, int *port, std::string *why) {
    if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) {
        *why = "port must be a number in " + std::string(allow_zero ? "0" : "1") + "..65535, got '" + text + "'";
        return false;
    }
    int p = std::stoi(text);
    if (p > 65535 || (p == 0 && !allow_zero)) {
        *why = "port must be a number in " + std::string(allow_zero ? "0" : "1") + "..65535, got '" + text + "'";
        return false;
    }
    *port = p;
    return true;
}

bool parse_address(const std::string &text, bool allow_port_zero, Address *out, std::string *why) {
    std::string host, port_text;
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            *why = "expected '[IPv6]:port', got '" + text + "'";
            return false;
        }
        host = text.substr(1, close - 1);
        port_text = text.substr(close + 2);
        int port = 0;
        if (!parse_port(port_text, allow_port_zero, &port, why)) return false;
        sockaddr_in6 sin6{};
        sin6.sin6_family = AF_INET6;
        sin6.sin6_port = htons(static_cast<uint16_t>(port));
        if (inet_pton(AF_INET6, host.c_str(), &sin6.sin6_addr) != 1) {
            *why = "'" + host + "' is not an IPv6 address";
            return false;
        }
        *out = Address{};
        std::memcpy(&out->storage, &sin6, sizeof sin6);
        out->len = sizeof sin6;
        return true;
    }
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) {
        *why = "expected 'host:port', got '" + text + "'";
        return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) {
        *why = "an IPv6 address needs brackets, as in '[::1]:80'; got '" + text + "'";
        return false;
    }
    int port = 0;
    if (!parse_port(port_text, allow_port_zero, &port, why)) return false;
    if (host.empty() || host == "*") host = "0.0.0.0";
    if (host == "localhost") host = "127.0.0.1";
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &sin.sin_addr) != 1) {
        *why = "'" + host + "' is not an IPv4 address";
        return false;
    }
    *out = Address{};
    std::memcpy(&out->storage, &sin, sizeof sin);
    out->len = sizeof sin;
    return true;
}

bool parse_host_name_port(const std::string &text, std::string *host, int *port) {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon > 253) return false;
    std::string name = text.substr(0, colon), why;
    if (!parse_port(text.substr(colon + 1), false, port, &why)) return false;
    bool letter = false;
    size_t label = 0;
    for (size_t i = 0; i < name.size(); i++) {
        char c = name[i];
        if (c == '.') {
            if (label == 0 || name[i - 1] == '-') return false;
            label = 0;
            continue;
        }
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && label > 0)) return false;
        if (++label > 63) return false;
        letter = letter || (c < '0' || c > '9');
    }
    if (label == 0 || name.back() == '-' || !letter) return false;  // all digits: an IP, not a name
    *host = name;
    return true;
}

}  // namespace pp
