// What the acceptor and every worker of one proxy share. Built before the threads start and
// destroyed after they are joined; the fields that change while running are atomics.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/overflow_queue.h"
#include "core/parking.h"
#include "core/settings.h"
#include "core/slot_table.h"
#include "core/tls_client.h"
#include "obs/counter.h"
#include "obs/log.h"

namespace pp {

class Acceptor;
class Protocol;
class TlsClient;
class TlsServer;
class Worker;

struct AcceptCounters {  // written by the acceptor thread only (workers count their own accepts)
    Counter accepted;
    Counter rejected_max;
    Counter rejected_overflow;
    Counter overflow_queued;
    Counter accept_errors;
};

// A backend group as the proxy runs it: at start 0 is the default group, i + 1 the settings'
// groups[i]. Its name and options are fixed for its life; a reload that changes a group's
// options adds a new group of that name (a new id) and retires the old one, whose backends
// are removed once the new ones are in (Envoy replaces a changed cluster the same way). A
// retired group keeps its slot: sessions that still name its id are sent to its replacement.
struct Group {
    std::string name;    // "" for the default group
    Settings settings;   // its effective options (group_settings): what its backends read
    SharedGauge waiting; // sessions waiting for a connection of this group, all workers
    std::atomic<bool> retired{false};
    std::atomic<int> replaced_by{-1};  // the group that took its name, once retired (-1: none)
    std::shared_ptr<const TlsClient> tls;  // backend_tls: its connections' TLS (nullptr: plaintext)
    std::string tls_files;  // the bytes of the CA and client certificate files it was made from
};

struct Shared {
    Shared(const Settings &s, int worker_count);

    const Settings settings;
    // Groups in id order; ids are never reused. Appended by a reload (under backends_mu),
    // read by every thread without a lock.
    static constexpr size_t kMaxGroupIds = 1024;
    SlotTable<Group, kMaxGroupIds> groups;
    // The id of the live (not retired) group named `name` ("" = the default group), or -1.
    int group_id(const std::string &name) const;
    // `g`, or the group that replaced it (and so on) when g is retired: where a session that
    // chose g before a reload goes.
    int live_group(int g) const {
        while (groups[static_cast<size_t>(g)].retired.load(std::memory_order_acquire)) {
            const int next = groups[static_cast<size_t>(g)].replaced_by.load(std::memory_order_acquire);
            if (next < 0) break;
            g = next;
        }
        return g;
    }
    const Logger logger;
    // What the client sessions speak: the only way the core reaches them (core/protocol.h).
    const Protocol *protocol = nullptr;
    // The listener's TLS (nullptr: plaintext). A reload with new certificates swaps in a new one
    // (new connections take it; the old stays alive, with the proxy, for those under way).
    std::atomic<const TlsServer *> tls{nullptr};
    const int worker_count;
    const int64_t worker_capacity;  // sessions per worker before the balancer overflows

    // Backends in id order; ids are never reused (a removed backend keeps its slot and stats).
    // At most kMaxBackends are not removed at once; removed ones do not count toward it, only
    // toward the kMaxBackendIds ids there are (a DNS address that returns gets its old id back).
    static constexpr size_t kMaxBackends = 1024;
    static constexpr size_t kMaxBackendIds = 8192;
    SlotTable<Backend, kMaxBackendIds> backends;
    std::mutex backends_mu;  // serializes adds and admin changes from API threads
    // Bumped (under backends_mu) after backends or groups are added and again after old ones
    // are retired or removed, before the workers are posted. A worker that finds a session no
    // backend compares it with the one it last synced at (Worker::catch_up): its post may not
    // have run yet, and what it saw removed was added-for before the bump it can now see.
    std::atomic<uint64_t> config_epoch{0};
    size_t live_backends = 0;  // not removed; guarded by backends_mu
    // Adds a backend (callers hold backends_mu, or no thread runs yet). Returns its id.
    // `healthy`: its health to begin with (a reload's copy of a backend takes its predecessor's),
    // set before it is published, so that the health checker starts from it.
    int add_backend(const BackendSpec &spec, bool healthy = true);
    std::vector<std::unique_ptr<Worker>> workers;
    Acceptor *acceptor = nullptr;  // set before any thread starts
    // The listening socket, bound before the threads start. Each worker polls a dup of its own
    // while Balancer::may_accept holds for it; the acceptor polls it only while none does.
    int listen_fd = -1;
    // Accepted sockets inherit TCP_NODELAY from the listener, set on it once: then no accepted
    // socket needs a setsockopt of its own.
    bool listener_nodelay = false;
    std::atomic<int> accepting_workers{0};
    OverflowQueue overflow;

    // Start probes (BackendPool) not settled yet: pp_proxy_start waits for them, bounded.
    std::atomic<int> start_probes{0};
    Parking parking;  // clients a hook paused (pp_exchange_pause), by token
    SharedGauge open_connections;  // client connections open, for max_connections
    SharedGauge waiting;           // sessions waiting for a backend connection, all workers and groups
    AcceptCounters accept;
};

}  // namespace pp
