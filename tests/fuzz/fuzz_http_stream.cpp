// libFuzzer target: one direction of HTTP/1.x (requests, or responses with
// -DPP_FUZZ_RESPONSE) through HttpStream and the head rewriting, with three properties checked
// on every input besides the sanitizers':
//  1. feeding the bytes in two pieces (split where the first byte says) finds exactly what
//     feeding them at once finds: the same heads, payload, message ends, and an error (its
//     status may differ: which limit or check trips first can depend on the split). A parser
//     whose answer depends on read boundaries is a request-smuggling bug;
//  2. every head the proxy would forward, rewritten, parses again without error and frames its
//     message the same way (method, target or status, chunked, Content-Length);
//  3. consumed never exceeds the input given.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "proto/http_stream.h"

namespace {

#ifdef PP_FUZZ_RESPONSE
constexpr pp::HttpStream::Role kRole = pp::HttpStream::Role::response;
#else
constexpr pp::HttpStream::Role kRole = pp::HttpStream::Role::request;
#endif

[[noreturn]] void fail(const char *what, const std::string &a, const std::string &b) {
    std::fprintf(stderr, "fuzz_http_stream: %s\n--- whole input:\n%s\n--- in two pieces:\n%s\n", what, a.c_str(),
                 b.c_str());
    std::abort();
}

pp::HttpStream::Limits limits() {
    pp::HttpStream::Limits l;
    l.max_header_size = 4096;
    l.max_target = 1024;
    l.max_body_size = 1 << 20;
    return l;
}

std::string framing(const pp::HttpHead &h) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " %d HTTP/%d.%d chunked=%d cl=%d:%llu ka=%d up=%d", h.status, h.http_major,
                  h.http_minor, h.chunked, h.has_content_length, static_cast<unsigned long long>(h.content_length),
                  h.keep_alive, h.upgrade);
    return h.method + " " + h.target + buf;
}

// Property 2: the rewritten head parses again, framed the same way.
void check_rewrite(const pp::HttpHead &h, bool head_response) {
    pp::HeadRewrite rw;
    rw.client_ip = "127.0.0.1";
    rw.via = "poolproxy";
    rw.keep_upgrade = h.upgrade;
    std::string out;
    if (kRole == pp::HttpStream::Role::request) pp::write_request_head(h, rw, &out);
    else pp::write_response_head(h, rw, &out);
    pp::HttpStream::Limits roomy = limits();  // the added fields may pass the first limit
    roomy.max_header_size += 1024;
    roomy.max_header_fields += 8;
    pp::HttpStream again(kRole, roomy);
    again.expect_head_response(head_response);
    pp::HttpStream::Step st = again.feed(out.data(), out.size());
    if (st.error_status != 0 || !st.head_done) fail("a rewritten head does not parse again", out, st.error);
    const pp::HttpHead &g = again.head();
    bool same = g.method == h.method && g.target == h.target && g.status == h.status && g.chunked == h.chunked &&
                g.has_content_length == h.has_content_length && g.content_length == h.content_length;
    if (!same) fail("a rewritten head frames its message differently", framing(h), framing(g));
}

void flush(std::string *seen, std::string *body) {
    if (body->empty()) return;
    seen->append("|body:").append(*body);
    body->clear();
}

// Everything the stream reported for the input, as text to compare.
std::string run(const uint8_t *data, size_t size, size_t first_piece, bool head_response, bool check) {
    pp::HttpStream s(kRole, limits());
    s.collect_body(true);
    s.expect_head_response(head_response);
    std::string seen, body;
    size_t pos = 0;
    const size_t ends[2] = {first_piece, size};
    for (size_t end : ends) {
        for (bool again = true; again;) {
            pp::HttpStream::Step st = s.feed(reinterpret_cast<const char *>(data) + pos, end - pos);
            if (st.consumed > end - pos) fail("consumed more than it was given", "", "");
            pos += st.consumed;
            // A message's payload is compared whole: how it came in slices depends on the split.
            for (const auto &piece : st.body) body.append(piece.first, piece.second);
            if (st.error_status != 0 || st.head_done || st.message_done || st.upgraded) flush(&seen, &body);
            // Refused either way; which check fires first (431 or 400) may depend on the split.
            if (st.error_status != 0) return seen + "|error";
            if (st.head_done) {
                seen += "|head " + framing(s.head());
                if (check) check_rewrite(s.head(), head_response);
            }
            if (st.message_done) seen += "|end";
            if (st.upgraded) return seen + "|upgraded";
            // After a head, feed() must be called again, even with no input left.
            again = st.head_done || (st.consumed > 0 && pos < end) || (st.message_done && pos < end);
        }
    }
    pp::HttpStream::Step fin = s.finish();
    for (const auto &piece : fin.body) body.append(piece.first, piece.second);
    flush(&seen, &body);
    if (fin.error_status != 0) seen += "|finish error " + std::to_string(fin.error_status);
    if (fin.message_done) seen += "|finish end";
    return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const bool head_response = (data[0] & 0x80) != 0;
    const size_t body_size = size - 1;
    const size_t split = body_size ? (data[0] & 0x7f) % (body_size + 1) : 0;
    const std::string whole = run(data + 1, body_size, body_size, head_response, true);
    const std::string pieces = run(data + 1, body_size, split, head_response, false);
    if (whole != pieces) fail("the answer depends on where the input was split", whole, pieces);
    return 0;
}
