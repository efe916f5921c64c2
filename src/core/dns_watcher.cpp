#include "core/dns_watcher.h"

#include <netdb.h>

#include <cstring>
#include <set>

#include "core/proxy.h"
#include "core/thread_context.h"
#include "core/uv_result.h"

namespace pp {

// One configured name: its refresh timer, the lookup in flight, and the backends (by address)
// its last answer made.
struct DnsWatcher::Name {
    DnsWatcher *owner;
    BackendSpec spec;
    uv_timer_t timer{};
    uv_getaddrinfo_t req{};
    bool resolving = false;
    bool stopping = false;
    bool failing = false;             // the last lookup failed (logged once per change)
    std::map<std::string, int> ids;   // "ip:port" -> backend id
    // Backends a former answer had and this watcher removed: an address that comes back (answers
    // that rotate) gets its old backend again, so rotation uses no new id. Bounded by the ids.
    std::map<std::string, int> retired;

    void resolve();
    void resolved(int status, addrinfo *res);
};

void DnsWatcher::Name::resolve() {
    if (resolving || stopping) return;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    req.data = this;
    std::string port = std::to_string(spec.port);
    int rc = uv_getaddrinfo(timer.loop, &req, [](uv_getaddrinfo_t *r, int status, addrinfo *res) {
        static_cast<Name *>(r->data)->resolved(status, res);
    }, spec.host.c_str(), port.c_str(), &hints);
    if (rc == 0) {
        resolving = true;
    } else if (!failing) {  // not even started (no memory, no thread): like a failed lookup
        failing = true;
        owner->shared_.logger.log(PP_LOG_WARN, "dns: cannot look %s up: %s", spec.text.c_str(), uv_strerror(rc));
    }
}

void DnsWatcher::Name::resolved(int status, addrinfo *res) {
    resolving = false;
    Proxy &proxy = owner->proxy_;
    const Logger &log = owner->shared_.logger;
    if (status == UV_ECANCELED || stopping) {
        uv_freeaddrinfo(res);
        return;
    }
    if (status < 0) {
        if (!failing) {
            log.log(PP_LOG_WARN, "dns: cannot resolve %s: %s; %s", spec.text.c_str(), uv_strerror(status),
                    ids.empty() ? "no backend from it yet" : "keeping its last addresses");
        }
        failing = true;
        uv_freeaddrinfo(res);
        return;
    }
    if (failing) log.log(PP_LOG_INFO, "dns: %s resolves again", spec.text.c_str());
    failing = false;
    std::map<std::string, Address> answer;
    for (addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        Address a;
        std::memcpy(&a.storage, ai->ai_addr, ai->ai_addrlen);
        a.len = static_cast<socklen_t>(ai->ai_addrlen);
        answer.emplace(a.to_string(), a);
    }
    uv_freeaddrinfo(res);
    std::string why;
    for (auto it = ids.begin(); it != ids.end();) {  // gone from the answer: removed
        if (answer.count(it->first)) {
            ++it;
            continue;
        }
        std::string reason = "dns: " + spec.text + " no longer resolves to it";
        // Refused only when the embedder removed it first: then it stays removed for good.
        if (proxy.set_backend_admin(it->second, Backend::removed, &why, reason.c_str()) == PP_OK) {
            retired[it->first] = it->second;
        }
        it = ids.erase(it);
    }
    for (const auto &a : answer) {  // new in the answer: added
        if (ids.count(a.first)) continue;
        auto old = retired.find(a.first);
        if (old != retired.end()) {
            std::string reason = "dns: " + spec.text + " resolves to it again";
            if (proxy.revive_backend(old->second, &why, reason.c_str()) != PP_OK) {
                log.log(PP_LOG_ERROR, "dns: %s: cannot add %s: %s", spec.text.c_str(), a.first.c_str(), why.c_str());
                continue;
            }
            ids[a.first] = old->second;
            retired.erase(old);
            continue;
        }
        BackendSpec b;
        b.text = spec.text + "/" + a.first;
        b.authority = spec.text;  // the name as configured, which virtual hosts know
        b.addr = a.second;
        b.weight = spec.weight;
        b.group = spec.group;  // what the name's entry says of its group and overrides holds for each address
        b.pool_max = spec.pool_max;
        b.host_header = spec.host_header;
        std::string reason = "dns: " + spec.text + " resolves to it";
        int id = proxy.add_backend(b, &why, reason.c_str());
        if (id < 0) {
            log.log(PP_LOG_ERROR, "dns: %s: cannot add %s: %s", spec.text.c_str(), a.first.c_str(), why.c_str());
            continue;
        }
        ids[a.first] = id;
    }
    if (answer.empty()) log.log(PP_LOG_WARN, "dns: %s resolves to no address", spec.text.c_str());
}

DnsWatcher::DnsWatcher(Proxy &proxy, Shared &shared) : proxy_(proxy), shared_(shared), thread_("pp-dns", &shared) {}

DnsWatcher::~DnsWatcher() { stop(); }

int DnsWatcher::start(std::string *why) {
    int rc = thread_.init("dns", nullptr, [this] { on_stop(); }, why);
    for (const BackendSpec &spec : shared_.settings.backends) {
        if (rc != PP_OK) break;
        if (!spec.dynamic) continue;
        auto n = std::make_unique<Name>();
        n->owner = this;
        n->spec = spec;
        n->timer.data = n.get();
        rc = LoopThread::check(uv_timer_init(thread_.loop(), &n->timer), "dns: timer", why);
        if (rc != PP_OK) break;
        names_.push_back(std::move(n));
        PP_UV_MUST(uv_timer_start(
            &names_.back()->timer, [](uv_timer_t *t) { static_cast<Name *>(t->data)->resolve(); }, 0,
            static_cast<uint64_t>(shared_.settings.dns_refresh)));
    }
    if (rc == PP_OK) rc = thread_.start(why);
    if (rc != PP_OK) stop();
    return rc;
}

void DnsWatcher::on_stop() {
    for (auto &n : names_) {
        n->stopping = true;
        // UV_EBUSY: too late, the lookup is running on a libuv thread; its callback sees
        // `stopping`, and the loop (so the stop) waits for it, which the log says.
        if (n->resolving && uv_cancel(reinterpret_cast<uv_req_t *>(&n->req)) != 0) {
            shared_.logger.log(PP_LOG_DEBUG, "dns: the lookup of %s is under way; the stop waits for it",
                               n->spec.text.c_str());
        }
    }
    // close_all (LoopThread) closes the timers next; a lookup in flight keeps the loop until it lands.
}

void DnsWatcher::stop() {
    thread_.stop();
    names_.clear();
}

}  // namespace pp
