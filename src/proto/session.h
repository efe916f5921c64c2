// A client session in tcp mode: the client socket, the backend connection it was given, and
// the relay between them (full duplex, backpressure, half-close, idle timeout).
#pragma once
#include <uv.h>

#include <cstdint>
#include <vector>

#include "core/intrusive_list.h"

namespace pp {

class Worker;
struct PooledConn;

struct Session {
    enum class State { acquiring, connecting, relaying, closing };

    Worker *worker = nullptr;
    uv_tcp_t client;
    uv_timer_t idle_timer;
    uv_shutdown_t shutdown_backend_req;
    uv_shutdown_t shutdown_client_req;
    PooledConn *conn = nullptr;
    int backend_id = -1;
    State state = State::acquiring;
    std::vector<bool> failed;  // backends that failed to connect for this session: not tried again
    uint64_t wait_since_ms = 0;
    uint64_t last_activity_ms = 0;
    int open_handles = 0;
    int writes_pending = 0;
    int shutdowns_pending = 0;
    bool client_eof = false;
    bool backend_eof = false;
    bool client_read_paused = false;
    bool backend_read_paused = false;
    ListHook link;       // in the worker's session list
    ListHook wait_link;  // in the worker's waiting queue
};

// The tcp relay, driven by the worker.
namespace tcp_relay {

// Starts a session for an accepted client fd (closes the fd on failure).
void start(Worker &w, int fd);
// Tries to give a session a backend connection now. Returns false when every eligible backend
// is at its cap (the caller queues it); true when it got one, is connecting, or was closed.
bool try_acquire(Session *s);
// The connection opened for the session is ready, or failed.
void on_connected(Session *s, PooledConn *conn);
void on_connect_failed(Session *s, int backend_id);
// Closes the session and its backend connection.
void close(Session *s, const char *why);

}  // namespace tcp_relay

}  // namespace pp
