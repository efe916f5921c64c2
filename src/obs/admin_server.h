// The admin listener (option admin_listen): a small HTTP/1.1 server on its own thread and loop,
// so that scraping metrics never runs on, or waits for, a worker. One request per connection
// (answered with Connection: close), GET and HEAD only, heads up to 8 KiB, 5 s to send one.
#pragma once
#include <uv.h>

#include <atomic>
#include <functional>
#include <string>

#include "core/address.h"
#include "core/loop_thread.h"

namespace pp {

struct AdminResponse {
    int status = 200;
    const char *content_type = "text/plain; charset=utf-8";
    std::string body;
};

class AdminServer {
public:
    // Answers GET `path` (without the query string). Runs on the admin thread.
    using Handler = std::function<AdminResponse(const std::string &path)>;

    // `context`: the proxy whose thread this is (callbacks here may not stop or free it).
    AdminServer(const Address &addr, Handler handler, const Shared *context);
    ~AdminServer();
    AdminServer(const AdminServer &) = delete;
    AdminServer &operator=(const AdminServer &) = delete;

    // Binds and starts the thread. On failure returns a PP_E code and says why.
    int start(std::string *why);
    // Closes the listener and every connection, and joins the thread. Idempotent.
    void stop();
    int port() const { return port_.load(); }
    const Address &bound() const { return bound_; }  // after a successful start

private:
    struct Conn;
    static void on_connection(uv_stream_t *server, int status);
    void close_handles();  // the loop thread, when stopping
    static void on_conn_closed(uv_handle_t *h);
    static void close_conn(Conn *c);
    void answer(Conn *c, const std::string &method, const std::string &target);

    Address addr_;
    Address bound_;
    Handler handler_;
    uv_tcp_t listener_{};
    std::atomic<int> port_{-1};
    int conns_ = 0;
    LoopThread thread_;  // last: its loop closes while the rest still exists
};

}  // namespace pp
