// The acceptor's choice of worker for a new client connection. Pure logic: no sockets, no
// threads; the caller passes a snapshot of the loads.
//
// Tier 0: a worker for which may_accept() holds polls the listener and accepts new connections
//         itself, so that most connections never pass through the acceptor thread. When no
//         worker may, the acceptor polls the listener and picks as below.
// Tier 1: starting after the last worker chosen (round robin), the first worker whose load
//         (active sessions + queued hand-offs) is below half its capacity, passing over a
//         worker whose event loop is kBusySkew busier than the least busy one's. Sessions are
//         not equal: a few long-lived busy clients can load one worker while the counts stay
//         even, and new sessions then go where the CPU is (envoy#4602's uneven workers).
// Tier 2: otherwise the overflow queue, which any worker with spare capacity drains ("steals").
// Tier 3: max_connections reached, or the overflow queue full: reject, counted by reason.
#pragma once
#include <cstdint>
#include <vector>

namespace pp {

struct WorkerLoad {
    int64_t sessions = 0;  // active sessions on the worker
    int64_t queued = 0;    // accepted sockets handed to it and not yet taken up
    int busy_permille = 0; // its loop's recent busy time, per mille of wall time

    int64_t total() const { return sessions + queued; }
};

class Balancer {
public:
    enum class Kind { worker, overflow, reject_max_connections, reject_overflow_full };

    struct Decision {
        Kind kind;
        int worker;  // the chosen worker (Kind::worker), or the one to wake for the overflow (-1: none)
    };

    Balancer(int workers, int64_t worker_capacity, int64_t overflow_max, int64_t max_connections);

    // open_connections counts client connections already open, not this one.
    Decision pick(const std::vector<WorkerLoad> &loads, int64_t open_connections, int64_t overflow_len);

    // Tier 0: whether worker `self` takes connections from the listener itself: below half its
    // capacity (tier 1's test), not kBusySkew busier than the least busy worker with room, and
    // not above its share of the sessions (their mean over the workers, plus kShareSlack or a
    // quarter of the mean). Which worker wins an accept is a race the kernel decides, usually
    // for the one that was idle; the share keeps the winner of many races from gathering
    // long-lived idle connections.
    bool may_accept(const std::vector<WorkerLoad> &loads, int self) const;

    // Whether a worker with this load may take a connection from the overflow queue.
    bool has_spare(const WorkerLoad &load) const { return load.total() < capacity_; }

    int64_t worker_capacity() const { return capacity_; }

    // How much busier than the least busy worker (per mille of wall time) a worker may be and
    // still get new sessions in tier 1.
    static constexpr int kBusySkew = 200;
    // Sessions a worker may be above the mean and still accept (see may_accept).
    static constexpr int64_t kShareSlack = 4;

private:
    int workers_;
    int64_t capacity_;
    int64_t overflow_max_;
    int64_t max_connections_;
    int cursor_ = 0;
};

}  // namespace pp
