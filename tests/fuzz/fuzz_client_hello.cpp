// libFuzzer target: the ClientHello reader (sni_route). Any bytes give an answer; a name found
// is lower case host-name characters; a prefix of the input never contradicts the whole: it is
// still incomplete, or already gives the same answer.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proto/client_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    std::string name;
    const pp::HelloRead whole = pp::read_client_hello(data, size, &name);
    if (whole == pp::HelloRead::found) {
        bool ok = !name.empty() && name.size() <= 255;
        for (char c : name) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_');
        if (!ok) {
            std::fprintf(stderr, "fuzz_client_hello: bad name '%s'\n", name.c_str());
            std::abort();
        }
    }
    for (size_t cut : {size / 3, size / 2, size - (size > 0 ? 1 : 0)}) {
        std::string part;
        const pp::HelloRead p = pp::read_client_hello(data, cut, &part);
        if (p != pp::HelloRead::incomplete && (p != whole || part != name) && size <= pp::kMaxHello) {
            std::fprintf(stderr, "fuzz_client_hello: a prefix of %zu bytes says %d, the whole %d\n", cut,
                         static_cast<int>(p), static_cast<int>(whole));
            std::abort();
        }
    }
    return 0;
}
