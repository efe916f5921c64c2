// Parsing and printing of "host:port" socket addresses (IPv4, [IPv6], localhost).
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

namespace pp {

struct Address {
    sockaddr_storage storage{};
    socklen_t len = 0;

    const sockaddr *sa() const { return reinterpret_cast<const sockaddr *>(&storage); }
    int family() const { return storage.ss_family; }
    int port() const;
    // "127.0.0.1:80" or "[::1]:80".
    std::string to_string() const;
};

// Parses "1.2.3.4:80", "[::1]:80", "localhost:80", "*:80" / ":80" (any IPv4 address) and
// "[::]:80". Port 0 is accepted only when allow_port_zero. Returns false with a reason in *why.
bool parse_address(const std::string &text, bool allow_port_zero, Address *out, std::string *why);

// "name:port" with a DNS host name (RFC 1123 labels): true with the name and port, for
// backends resolved at runtime. False for anything else (IP literals included).
bool parse_host_name_port(const std::string &text, std::string *host, int *port);

}  // namespace pp
