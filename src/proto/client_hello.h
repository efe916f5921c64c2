// The server name (SNI) of a TLS ClientHello, read without terminating TLS, as HAProxy's
// req.ssl_sni: tcp mode picks a backend group by it and relays the bytes untouched. Linear in
// the input, at most kMaxHello bytes looked at; fuzzed (tests/fuzz/fuzz_client_hello.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace pp {

enum class HelloRead : uint8_t {
    incomplete,  // a ClientHello so far: more bytes are needed
    found,       // the server name is in *name (lower case)
    no_name,     // a whole ClientHello without a server name
    not_tls,     // not a TLS ClientHello (or malformed, or longer than kMaxHello)
};

// The largest ClientHello read: one record's worth (2^14) plus the record header (a hello
// with post-quantum key shares is ~2 KiB).
constexpr size_t kMaxHello = 16384 + 5;

// Looks at the first `len` bytes the client sent.
HelloRead read_client_hello(const uint8_t *data, size_t len, std::string *name);

}  // namespace pp
