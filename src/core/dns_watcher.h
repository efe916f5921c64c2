// Backends given by host name (a Kubernetes headless service, Consul DNS): each name is
// resolved with uv_getaddrinfo at start and again every dns_refresh, on a thread of its own.
// Every address it resolves to is a backend of its own, named "host:port/ip"; addresses that
// appear are added, those that vanish are removed (requests in flight finish), through the same
// runtime calls an embedder uses. A failed lookup changes nothing (the last answer stands) and
// is logged when the name's state changes, not on every refresh.
#pragma once
#include <uv.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/loop_thread.h"
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
    void on_stop();  // the loop thread: no lookup starts or lands from here on

    Proxy &proxy_;
    Shared &shared_;
    std::vector<std::unique_ptr<Name>> names_;
    LoopThread thread_;  // last: its loop closes while the names still exist
};

}  // namespace pp
