// Backends given by host name (a Kubernetes headless service, Consul DNS): each name is
// resolved with uv_getaddrinfo at start and again every dns_refresh, on a thread of its own.
// Every address it resolves to is a backend of its own, named "host:port/ip"; addresses that
// appear are added, those that vanish are removed (requests in flight finish), through the same
// runtime calls an embedder uses. A failed lookup changes nothing (the last answer stands) and
// is logged when the name's state changes, not on every refresh.
#pragma once
#include <uv.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/settings.h"

namespace pp {

class Proxy;
struct Shared;

class DnsWatcher {
public:
    DnsWatcher(Proxy &proxy, Shared &shared);
    ~DnsWatcher();
    DnsWatcher(const DnsWatcher &) = delete;
    DnsWatcher &operator=(const DnsWatcher &) = delete;

    int start(std::string *why);
    void stop();  // idempotent; joins the thread

private:
    struct Name;
    static void on_stop(uv_async_t *a);

    Proxy &proxy_;
    Shared &shared_;
    uv_loop_t loop_{};
    uv_async_t stop_async_{};
    std::thread thread_;
    std::vector<std::unique_ptr<Name>> names_;
    std::atomic<bool> started_{false};
};

}  // namespace pp
