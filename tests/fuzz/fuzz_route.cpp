// libFuzzer target: the route syntax and the matcher. What parse_route takes, the table takes or
// refuses with a reason; matching a request whose Host, target and fields come from the input
// never fails; a stripped target keeps an origin-form target's leading '/'.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proto/route_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto groups = [](std::string_view name) { return name.size() < 8 ? static_cast<int>(name.size()) : -1; };
    pp::Route r;
    std::string why;
    pp::RouteTable t;
    if (pp::parse_route(text, groups, &r, &why)) {
        if (!t.add(r, &why) && why.empty()) {
            std::fprintf(stderr, "fuzz_route: the table refused '%s' without a reason\n", text.c_str());
            std::abort();
        }
    } else if (why.empty()) {
        std::fprintf(stderr, "fuzz_route: '%s' refused without a reason\n", text.c_str());
        std::abort();
    }
    // The same bytes as a request: Host, target and a field.
    pp::HttpHead head;
    head.method = "GET";
    head.target = text.empty() || text[0] != '/' ? "/" + text : text;
    head.headers.push_back({"Host", text});
    head.headers.push_back({"X-Env", text});
    const pp::Route *m = t.match(head);
    if (m) {
        const std::string out = pp::RouteTable::rewritten_target(*m, head.target);
        if (out.empty() || out[0] != '/') {
            std::fprintf(stderr, "fuzz_route: '%s' rewritten to '%s'\n", head.target.c_str(), out.c_str());
            std::abort();
        }
    }
    (void)pp::normalized_host(text);
    return 0;
}
