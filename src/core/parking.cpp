#include "core/parking.h"

namespace pp {

std::atomic<uint64_t> Parking::next_{1};

uint64_t Parking::park(ClientBase *c, int worker) {
    const uint64_t token = next_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mu_);
    parked_.emplace(token, Entry{c, worker, false});
    return token;
}

int Parking::resume(uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = parked_.find(token);
    if (it == parked_.end() || it->second.resumed) return -1;
    it->second.resumed = true;
    return it->second.worker;
}

ClientBase *Parking::claim(uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = parked_.find(token);
    if (it == parked_.end()) return nullptr;
    ClientBase *c = it->second.client;
    parked_.erase(it);
    return c;
}

void Parking::forget(uint64_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    parked_.erase(token);
}

}  // namespace pp
