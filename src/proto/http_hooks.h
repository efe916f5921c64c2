// The handle hooks steer an exchange through (pp_exchange, include/poolproxy.h): what a hook
// asked for, gathered while it runs and applied by the protocol after it returns (http_session
// for requests and responses, session.cpp for tcp connections). The field operations work on
// the parsed head the hook sees; they refuse what would change the message's framing.
#pragma once
#include <cstdint>
#include <string>
#include <thread>

#include "poolproxy.h"
#include "proto/http_stream.h"

struct pp_exchange {
    static constexpr uint32_t kMagic = 0x50504558;  // "PPEX"
    enum class Kind : uint8_t { request, response, connect };

    uint32_t magic = kMagic;
    Kind kind = Kind::request;
    pp::HttpHead *head = nullptr;  // the head the hook sees (a connect hook: none)
    const void *shared = nullptr;  // the proxy's pp::Shared, for group names and backend ids
    // The hook's own thread: a call from any other (a handle passed to another thread) is
    // refused, so that nothing touches the head while the worker does.
    std::thread::id thread = std::this_thread::get_id();
    size_t max_head_bytes = 0;     // what the fields may add up to (max_header_size)
    bool host_set = false;         // the hook set Host itself (it then wins over a backend's host=)

    // What the hook asked for.
    bool paused = false;
    uint64_t token = 0;           // its pause's
    bool responded = false;
    std::string response;         // the whole answer, serialized (pp_exchange_respond)
    int status = 0;
    int group = -1;               // pp_exchange_set_group
    int backend = -1;             // pp_exchange_set_backend
    bool target_set = false;
    std::string target;
    std::string failure;          // why the exchange gets a 500 instead (an unknown group...)
    // The pause: what the request hook's caller parks (a Session) and on which worker.
    void *client = nullptr;
    int worker = -1;
};

namespace pp {

// The field rules of pp_exchange_set_field and pp_exchange_add_field: PP_OK, or PP_EINVAL with
// *why. Names are tokens (RFC 9110 5.1) of at most 256 bytes, values at most 8 KiB without CR,
// LF or NUL; the framing and hop-by-hop fields are refused.
int check_hook_field(const char *name, const char *value, std::string *why);
// The operations (arguments already checked): set (first changed, the rest removed, or added),
// add, remove (how many went). Set and add return PP_OK, or PP_EINVAL with *why when the head
// would pass kMaxFields fields or `max_bytes` bytes of names and values.
int head_set_field(HttpHead &head, const char *name, const char *value, size_t max_bytes, std::string *why);
int head_add_field(HttpHead &head, const char *name, const char *value, size_t max_bytes, std::string *why);
size_t head_remove_field(HttpHead &head, const char *name);
// A hook's answer, whole: status line, its fields, Content-Length, Connection: close, body.
// PP_EINVAL with *why for a bad status or field, or a body for 1xx/204/304.
int serialize_answer(int status, const char *const *fields, const char *body, size_t body_len, std::string *out,
                     std::string *why);

}  // namespace pp
