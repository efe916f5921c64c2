// Clients parked by their protocol until another thread says go on (an http request hook that
// paused its exchange for an asynchronous lookup). A parked client is known here by a token,
// never by its address: whoever resumes it may do so from any thread and at any time, after the
// client has gone too, and a token is looked up under the lock before anything is touched.
//
// Life of a token: park() on the client's worker; resume() from any thread marks it and tells
// that worker (once: a second resume is refused); claim() on the worker takes the client back
// if it is still parked; forget() on the worker when the client goes away first. Only the
// worker thread ever turns a token back into its client, so a client is never used after it
// was freed.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace pp {

struct ClientBase;

class Parking {
public:
    // Worker thread. Returns the client's token (never 0).
    uint64_t park(ClientBase *c, int worker);
    // Any thread. The worker to tell, or -1 when the token is unknown (never given, the client
    // gone, or claimed) or was resumed already.
    int resume(uint64_t token);
    // The worker thread, after resume() told it: the client, or nullptr if it went away.
    ClientBase *claim(uint64_t token);
    // The worker thread: the client goes away while parked.
    void forget(uint64_t token);

private:
    struct Entry {
        ClientBase *client;
        int worker;
        bool resumed;
    };
    std::mutex mu_;
    std::unordered_map<uint64_t, Entry> parked_;
    // Tokens are unique in the process, not just the proxy: one kept across a proxy's restart
    // (an embedder that makes a new proxy) never resumes another proxy's exchange.
    static std::atomic<uint64_t> next_;
};

}  // namespace pp
