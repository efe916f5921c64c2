#include "core/balancer.h"

#include <algorithm>

namespace pp {

Balancer::Balancer(int workers, int64_t worker_capacity, int64_t overflow_max, int64_t max_connections)
    : workers_(workers), capacity_(worker_capacity < 1 ? 1 : worker_capacity), overflow_max_(overflow_max),
      max_connections_(max_connections) {}

Balancer::Decision Balancer::pick(const std::vector<WorkerLoad> &loads, int64_t open_connections,
                                  int64_t overflow_len) {
    if (open_connections >= max_connections_) return {Kind::reject_max_connections, -1};

    int least_busy = 1000;
    for (int w = 0; w < workers_; w++) {
        if (2 * loads[w].total() < capacity_ && loads[w].busy_permille < least_busy) least_busy = loads[w].busy_permille;
    }
    for (int i = 0; i < workers_; i++) {
        int w = (cursor_ + i) % workers_;
        if (2 * loads[w].total() < capacity_ && loads[w].busy_permille <= least_busy + kBusySkew) {
            cursor_ = (w + 1) % workers_;
            return {Kind::worker, w};
        }
    }

    if (overflow_len >= overflow_max_) return {Kind::reject_overflow_full, -1};

    // Wake the least loaded worker that has room; if none has, the first to finish a session
    // drains the queue.
    int best = -1;
    for (int w = 0; w < workers_; w++) {
        if (has_spare(loads[w]) && (best < 0 || loads[w].total() < loads[best].total())) best = w;
    }
    return {Kind::overflow, best};
}

bool Balancer::may_accept(const std::vector<WorkerLoad> &loads, int self) const {
    const WorkerLoad &me = loads[static_cast<size_t>(self)];
    if (2 * me.total() >= capacity_) return false;
    int least_busy = 1000;
    int64_t sum = 0;
    for (const WorkerLoad &l : loads) {
        if (2 * l.total() < capacity_ && l.busy_permille < least_busy) least_busy = l.busy_permille;
        sum += l.total();
    }
    if (me.busy_permille > least_busy + kBusySkew) return false;
    const int64_t mean = sum / static_cast<int64_t>(loads.size());
    return me.total() <= mean + std::max(kShareSlack, mean / 4);
}

}  // namespace pp
