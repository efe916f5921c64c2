// tcp mode's SNI routes ("sni_route = NAME -> GROUP"): the backend group of a TLS connection
// picked by the server name of its ClientHello (proto/client_hello.h), its bytes relayed as
// they are (the proxy does not terminate its TLS), as HAProxy's use_backend on req.ssl_sni.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace pp {

class SniTable {
public:
    // "NAME -> GROUP": NAME a host name ("example.com", any case) or "*.example.com" (any name
    // below it); GROUP a group's name or "default". False and *why when one does not parse or
    // names no group (`group_id` gives -1).
    bool build(const std::vector<std::string> &routes, const std::function<int(std::string_view)> &group_id,
               std::string *why);
    bool empty() const { return routes_.empty(); }
    // The group of the first route that matches `name` (lower case), or -1.
    int match(const std::string &name) const;

private:
    struct Route {
        std::string name;  // "example.com", or ".example.com" for "*.example.com"
        bool below = false;
        int group = 0;
    };
    std::vector<Route> routes_;
};

}  // namespace pp
