// What the core (a worker, its pools) keeps of a client session, whatever its protocol: its
// places in the worker's lists (sessions, the waiting queue, a deadline list) and what waiting
// for a backend connection needs. A protocol's session type derives from it; the core never
// looks further (see protocol.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/intrusive_list.h"

namespace pp {

class Worker;

struct ClientBase {
    Worker *worker = nullptr;
    ListHook link;           // in the worker's session list
    ListHook wait_link;      // in the worker's waiting queue
    ListHook deadline_link;  // in one of the worker's deadline lists (the current phase's timeout)
    uint64_t deadline_due_ms = 0;  // loop time
    uint64_t wait_since_ns = 0;    // uv_hrtime when it joined the waiting queue (its place in the order)
    uint64_t queue_wait_ns = 0;    // waited in all, for the current exchange (the access log's queue_wait_us)
    // Backends that failed for this client (the current request, in http mode): not tried
    // again. Ids below 64 in a mask; the rest, rare, in a set allocated on the first such failure.
    uint64_t failed_low = 0;
    std::unique_ptr<std::vector<bool>> failed_high;
    int pending_backend = -1;  // waiting, counted in this backend's pending
    int forced_backend = -1;   // a hook pinned it to this backend (pp_exchange_set_backend)
    // The backend group its current exchange goes to (Shared::groups; 0 the default): set by
    // the protocol before it asks for a connection, and not changed while it waits.
    int16_t group = 0;
    int8_t deadline_kind = -1;
    int8_t deadline_list = -1;  // the worker's list it is in (one per deadline length)

    bool has_failed(size_t b) const {
        if (b < 64) return (failed_low >> b) & 1u;
        return failed_high && b - 64 < failed_high->size() && (*failed_high)[b - 64];
    }
    // Whether any backend failed for it: a waiter that finds no room only because of that is
    // passed over, so that it does not hold back the others.
    bool any_failed() const { return failed_low != 0 || failed_high; }
    // Whether it may use fewer backends than its group's others (some failed for it, or a hook
    // pinned it to one): such a waiter is passed over when it finds no room.
    bool narrowed() const { return forced_backend >= 0 || any_failed(); }
    void mark_failed(size_t b) {
        if (b < 64) {
            failed_low |= uint64_t{1} << b;
            return;
        }
        if (!failed_high) failed_high = std::make_unique<std::vector<bool>>();
        if (failed_high->size() <= b - 64) failed_high->resize(b - 63, false);
        (*failed_high)[b - 64] = true;
    }
    void clear_failed() {
        failed_low = 0;
        if (failed_high) failed_high->clear();
    }
};

}  // namespace pp
