// The seam between the core and a protocol: what a worker and its pools call of the client
// sessions they carry, without knowing what the sessions speak. One Protocol per proxy, chosen
// by mode when the proxy is made (src/proto/protocols.h) and shared by every worker; each call
// runs on the worker's thread of the client it is given.
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "core/client.h"

namespace pp {

class Worker;
struct PooledConn;
struct Settings;

// Deadline kinds a protocol may use (0 .. kMaxDeadlineKinds-1); a worker keeps one list per
// length, so a kind may have several lengths (a backend group's own response_timeout).
constexpr int kMaxDeadlineKinds = 8;

class Protocol {
public:
    // client_bytes: the size of the protocol's session type (a worker prefetches the next
    // waiter's while it serves one).
    explicit Protocol(size_t client_bytes) : client_bytes(client_bytes) {}
    virtual ~Protocol() = default;
    const size_t client_bytes;
    // A client connection was accepted for (or handed to) this worker: make its session. The
    // protocol owns `fd` from here, and closes it if it cannot start. `peer`: the address
    // accept4 gave (len bytes), or nullptr to ask the socket.
    virtual void start(Worker &w, int fd, const sockaddr *peer, socklen_t peer_len) const = 0;
    // A waiting client may try for a backend connection now. False: still no room (it stays
    // queued); true: it left the queue (it got a connection, is connecting, or was closed).
    virtual bool try_acquire(ClientBase *c) const = 0;
    // queue_timeout passed while it waited.
    virtual void waited_too_long(ClientBase *c) const = 0;
    // The connection a pool opened for it is ready, or failed (the pool has closed it).
    virtual void attached(ClientBase *c, PooledConn *conn) const = 0;
    virtual void connect_failed(ClientBase *c, int backend_id, const char *why) const = 0;
    // Its deadline of `kind` (set with Worker::set_deadline) came.
    virtual void deadline_passed(ClientBase *c, int kind) const = 0;
    // The worker starts draining: it ends now if idle, else after what is under way.
    virtual void drain(ClientBase *c) const = 0;
    // Close it now (the drain deadline passed, the worker stops).
    virtual void close(ClientBase *c, const char *why) const = 0;
    // It was parked (Shared::parking) and someone resumed it.
    virtual void resumed(ClientBase *c) const = 0;
    // The proxy was reconfigured (a reload): the worker's thread takes up what the protocol
    // staged for it (http: the new route table). Also called before the worker's thread runs.
    virtual void reconfigure(Worker &) const {}
    // A reload checks (commit false) and then stages (commit true) what the protocol takes from
    // the new settings (http: the routes), with `group_id` naming the groups as they will be
    // ("default" included). False, with *why, when they do not parse: nothing is staged.
    virtual bool stage_routes(const Settings &, const std::function<int(std::string_view)> &, bool,
                              std::string *) const {
        return true;
    }
};

}  // namespace pp
