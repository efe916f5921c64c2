#include "obs/admin_server.h"

#include <cstdio>

#include "core/thread_context.h"
#include "poolproxy.h"
#include "proto/http_stream.h"
#include "core/uv_result.h"

namespace pp {

namespace {
constexpr size_t kMaxHead = 8192;
constexpr uint64_t kRequestTimeoutMs = 5000;

const char *reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}
}  // namespace

struct AdminServer::Conn {
    explicit Conn(AdminServer *s) : server(s), req(HttpStream::Role::request, limits()) {}
    static HttpStream::Limits limits() {
        HttpStream::Limits l;
        l.max_header_size = kMaxHead;
        l.max_target = 2048;
        return l;
    }
    AdminServer *server;
    uv_tcp_t tcp{};
    uv_timer_t timer{};
    uv_write_t write_req{};
    HttpStream req;
    char buf[kMaxHead];
    size_t len = 0;
    std::string out;
    bool answered = false;
    int open_handles = 2;
};

AdminServer::AdminServer(const Address &addr, Handler handler, const Shared *context)
    : addr_(addr), handler_(std::move(handler)), thread_("pp-admin", context) {}

AdminServer::~AdminServer() { stop(); }

int AdminServer::start(std::string *why) {
    int rc = thread_.init("admin_listen", nullptr, [this] { close_handles(); }, why);
    if (rc != PP_OK) return rc;
    rc = LoopThread::check(uv_tcp_init(thread_.loop(), &listener_), "admin_listen: listener", why);
    if (rc != PP_OK) {
        stop();
        return rc;
    }
    listener_.data = this;
    int uv = uv_tcp_bind(&listener_, addr_.sa(), 0);
    if (uv == 0) uv = uv_listen(reinterpret_cast<uv_stream_t *>(&listener_), 128, on_connection);
    sockaddr_storage bound{};
    int len = sizeof bound;
    if (uv == 0) uv = uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr *>(&bound), &len);
    if (uv != 0) {
        *why = "admin_listen: cannot listen on " + addr_.to_string() + ": " + uv_strerror(uv);
        stop();
        // Out of descriptors or memory is the system's state, not the address's.
        bool system = uv == UV_EMFILE || uv == UV_ENFILE || uv == UV_ENOMEM || uv == UV_ENOBUFS;
        return system ? PP_ESYS : PP_EBIND;
    }
    bound_.storage = bound;
    bound_.len = static_cast<socklen_t>(len);
    port_.store(bound_.port());
    rc = thread_.start(why);
    if (rc != PP_OK) stop();
    return rc;
}

void AdminServer::stop() {
    thread_.stop();
    port_.store(-1);
}

void AdminServer::close_handles() {
    thread_.close_all([this](uv_handle_t *h) {
        // The listener closes plainly (next pass); every other handle is a connection's.
        if (h != reinterpret_cast<uv_handle_t *>(&listener_)) close_conn(static_cast<Conn *>(h->data));
    });
}

void AdminServer::on_conn_closed(uv_handle_t *h) {
    auto *c = static_cast<Conn *>(h->data);
    if (--c->open_handles == 0) {
        c->server->conns_--;
        delete c;
    }
}

void AdminServer::close_conn(Conn *c) {
    if (uv_is_closing(reinterpret_cast<uv_handle_t *>(&c->tcp))) return;
    uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp), on_conn_closed);
    uv_close(reinterpret_cast<uv_handle_t *>(&c->timer), on_conn_closed);
}

void AdminServer::on_connection(uv_stream_t *server_stream, int status) {
    auto *self = static_cast<AdminServer *>(server_stream->data);
    if (status < 0) return;
    auto *c = new Conn(self);
    c->tcp.data = c;
    c->timer.data = c;
    uv_loop_t *loop = self->thread_.loop();
    if (uv_tcp_init(loop, &c->tcp) != 0) {  // cannot happen on Unix (no socket yet); be safe
        delete c;
        return;
    }
    if (uv_timer_init(loop, &c->timer) != 0) {
        c->open_handles = 1;
        uv_close(reinterpret_cast<uv_handle_t *>(&c->tcp), on_conn_closed);
        self->conns_++;
        return;
    }
    self->conns_++;
    if (uv_accept(server_stream, reinterpret_cast<uv_stream_t *>(&c->tcp)) != 0) {
        close_conn(c);
        return;
    }
    PP_UV_MUST(uv_timer_start(
        &c->timer,
        [](uv_timer_t *t) {
            auto *conn = static_cast<Conn *>(t->data);
            if (conn->answered) return;
            conn->server->answer(conn, "", "");  // 408 for a request never finished
        },
        kRequestTimeoutMs, 0));
    int rc = uv_read_start(
        reinterpret_cast<uv_stream_t *>(&c->tcp),
        [](uv_handle_t *h, size_t, uv_buf_t *buf) {
            auto *conn = static_cast<Conn *>(h->data);
            *buf = uv_buf_init(conn->buf + conn->len, static_cast<unsigned>(kMaxHead - conn->len));
        },
        [](uv_stream_t *stream, ssize_t nread, const uv_buf_t *) {
            auto *conn = static_cast<Conn *>(stream->data);
            if (conn->answered) return;
            if (nread == 0) return;
            if (nread < 0) {
                close_conn(conn);
                return;
            }
            size_t start = conn->len;
            conn->len += static_cast<size_t>(nread);
            HttpStream::Step step = conn->req.feed(conn->buf + start, conn->len - start);
            if (step.error_status) {
                conn->server->answer(conn, "!", std::to_string(step.error_status));
            } else if (step.head_done) {
                conn->server->answer(conn, conn->req.head().method, conn->req.head().target);
            } else if (conn->len == kMaxHead) {
                conn->server->answer(conn, "!", "431");
            }
        });
    if (rc != 0) close_conn(c);
}

// method "" = timed out; "!" = refused with the status in `target`.
void AdminServer::answer(Conn *c, const std::string &method, const std::string &target) {
    c->answered = true;
    uv_read_stop(reinterpret_cast<uv_stream_t *>(&c->tcp));
    uv_timer_stop(&c->timer);
    AdminResponse r;
    if (method.empty()) {
        r.status = 408;
    } else if (method == "!") {
        r.status = std::stoi(target);
    } else if (method != "GET" && method != "HEAD") {
        r.status = 405;
    } else {
        std::string path = target.substr(0, target.find('?'));
        r = handler_(path);
    }
    if (r.status != 200 && r.body.empty()) r.body = std::string(reason(r.status)) + "\n";
    char head[256];
    int n = std::snprintf(head, sizeof head,
                          "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
                          r.status, reason(r.status), r.content_type, r.body.size(),
                          r.status == 405 ? "Allow: GET, HEAD\r\n" : "");
    c->out.assign(head, static_cast<size_t>(n));
    if (method != "HEAD") c->out += r.body;
    uv_buf_t buf = uv_buf_init(&c->out[0], static_cast<unsigned>(c->out.size()));
    c->write_req.data = c;
    int rc = uv_write(&c->write_req, reinterpret_cast<uv_stream_t *>(&c->tcp), &buf, 1,
                      [](uv_write_t *req, int) { close_conn(static_cast<Conn *>(req->data)); });
    if (rc != 0) close_conn(c);
}

}  // namespace pp
