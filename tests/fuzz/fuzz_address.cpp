// libFuzzer target: the address parsers. Whatever parses must print as text that parses back
// to the same address; a host name must be a name, never an IP literal.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/address.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    pp::Address a;
    std::string why;
    if (pp::parse_address(text, true, &a, &why)) {
        pp::Address b;
        const std::string printed = a.to_string();
        if (!pp::parse_address(printed, true, &b, &why) || b.len != a.len ||
            std::memcmp(&a.storage, &b.storage, a.len) != 0 || b.port() != a.port()) {
            std::fprintf(stderr, "fuzz_address: '%s' printed as '%s', which does not parse back (%s)\n",
                         text.c_str(), printed.c_str(), why.c_str());
            std::abort();
        }
    } else if (why.empty()) {
        std::fprintf(stderr, "fuzz_address: '%s' refused without a reason\n", text.c_str());
        std::abort();
    }
    std::string host;
    int port = -1;
    if (pp::parse_host_name_port(text, &host, &port)) {
        if (host.empty() || port < 0 || port > 65535) std::abort();
        pp::Address lit;
        std::string w;
        if (pp::parse_address(host + ":1", false, &lit, &w) && host != "localhost") {
            std::fprintf(stderr, "fuzz_address: '%s' taken as a host name, but it is an address\n", text.c_str());
            std::abort();
        }
    }
    return 0;
}
