// The ClientHello reader (sni_route) on hellos OpenSSL itself makes, whole, split into
// records, and a byte at a time; and on what is not one.
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <string>

#include "proto/client_hello.h"

namespace {

// A client's first flight, as OpenSSL writes it for `sni` ("" = no server name).
std::string make_hello(const char *sni) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);
    if (*sni) SSL_set_tlsext_host_name(ssl, sni);
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);  // wants to read the server's answer: the hello is written
    char *p = nullptr;
    const long n = BIO_get_mem_data(wb, &p);
    std::string out(p, static_cast<size_t>(n));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return out;
}

pp::HelloRead read(const std::string &b, std::string *name) {
    return pp::read_client_hello(reinterpret_cast<const uint8_t *>(b.data()), b.size(), name);
}

TEST(ClientHello, FindsTheNameLowerCase) {
    std::string name;
    EXPECT_EQ(read(make_hello("Api.Example.COM"), &name), pp::HelloRead::found);
    EXPECT_EQ(name, "api.example.com");
}

TEST(ClientHello, WithoutServerName) {
    std::string name;
    EXPECT_EQ(read(make_hello(""), &name), pp::HelloRead::no_name);
}

TEST(ClientHello, IncompleteUntilWholeAByteAtATime) {
    const std::string h = make_hello("a.test");
    std::string name;
    for (size_t n = 0; n < h.size(); n++) {
        ASSERT_EQ(read(h.substr(0, n), &name), pp::HelloRead::incomplete) << n;
    }
    EXPECT_EQ(read(h, &name), pp::HelloRead::found);
    EXPECT_EQ(name, "a.test");
}

TEST(ClientHello, SpanningRecords) {
    const std::string h = make_hello("split.example");
    const std::string body = h.substr(5);
    std::string split;
    for (size_t at = 0; at < body.size(); at += 7) {  // records of 7 bytes of the message each
        const std::string part = body.substr(at, 7);
        split += std::string("\x16\x03\x01", 3) + static_cast<char>(part.size() >> 8) + static_cast<char>(part.size() & 0xff) + part;
    }
    std::string name;
    EXPECT_EQ(read(split, &name), pp::HelloRead::found);
    EXPECT_EQ(name, "split.example");
    EXPECT_EQ(read(split.substr(0, split.size() - 3), &name), pp::HelloRead::incomplete);
}

TEST(ClientHello, NotTls) {
    std::string name;
    EXPECT_EQ(read("GET / HTTP/1.1\r\n\r\n", &name), pp::HelloRead::not_tls);
    EXPECT_EQ(read(std::string("\x16\x03\x01\x00\x00", 5), &name), pp::HelloRead::not_tls);  // an empty record
    EXPECT_EQ(read(std::string("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9), &name), pp::HelloRead::not_tls);  // a ServerHello
    std::string bad = make_hello("a.test");
    bad[bad.find("a.test") + 1] = '/';  // inside the name: not a host name character
    EXPECT_NE(read(bad, &name), pp::HelloRead::found);
    EXPECT_EQ(read(std::string(20000, '\x16'), &name), pp::HelloRead::not_tls);  // a record header longer than allowed
}

}  // namespace
