#include "proto/client_hello.h"

#include <cstdint>

namespace pp {

namespace {

constexpr uint8_t kHandshake = 0x16;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kServerNameExt = 0;
constexpr uint8_t kHostName = 0;

// A bounds-checked reader over one buffer: any read past its end marks it short.
struct Reader {
    const uint8_t *p;
    size_t left;
    bool shortage = false;
    bool take(size_t n, const uint8_t **out) {
        if (n > left) {
            shortage = true;
            return false;
        }
        *out = p;
        p += n;
        left -= n;
        return true;
    }
    bool u8(uint32_t *v) {
        const uint8_t *b;
        if (!take(1, &b)) return false;
        *v = b[0];
        return true;
    }
    bool u16(uint32_t *v) {
        const uint8_t *b;
        if (!take(2, &b)) return false;
        *v = (uint32_t{b[0]} << 8) | b[1];
        return true;
    }
    bool u24(uint32_t *v) {
        const uint8_t *b;
        if (!take(3, &b)) return false;
        *v = (uint32_t{b[0]} << 16) | (uint32_t{b[1]} << 8) | b[2];
        return true;
    }
    bool skip8() {  // a vector with a one-byte length
        uint32_t n;
        const uint8_t *b;
        return u8(&n) && take(n, &b);
    }
    bool skip16() {
        uint32_t n;
        const uint8_t *b;
        return u16(&n) && take(n, &b);
    }
};

bool host_char(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

}  // namespace

HelloRead read_client_hello(const uint8_t *data, size_t len, std::string *name) {
    if (len > kMaxHello) len = kMaxHello;
    // The handshake message may span records. A first pass walks the record headers only, so
    // that a client sending its hello a byte at a time costs a few steps per read, not a copy;
    // the fragments are gathered once the message is whole.
    uint8_t head[4];
    size_t have = 0, at = 0, records = 0;
    size_t need = SIZE_MAX;  // the message's length with its 4-byte header, once known
    while (have < need) {
        if (at + 5 > len) {
            if (at < len && data[at] != kHandshake) return HelloRead::not_tls;
            if (at + 1 < len && data[at + 1] != 3) return HelloRead::not_tls;
            return HelloRead::incomplete;
        }
        const uint8_t *h = data + at;
        const size_t rec = (size_t{h[3]} << 8) | h[4];
        if (h[0] != kHandshake || h[1] != 3 || rec == 0 || rec > 16384) return HelloRead::not_tls;
        const size_t avail = len - (at + 5) < rec ? len - (at + 5) : rec;
        for (size_t i = 0; i < avail && have + i < 4; i++) head[have + i] = h[5 + i];
        have += avail;
        records++;
        if (need == SIZE_MAX && have >= 4) {
            if (head[0] != kClientHello) return HelloRead::not_tls;
            need = ((size_t{head[1]} << 16) | (size_t{head[2]} << 8) | head[3]) + 4;
            if (need > kMaxHello) return HelloRead::not_tls;
        }
        if (have >= need) break;
        if (avail < rec) return HelloRead::incomplete;  // this record is not whole yet
        at += 5 + rec;
    }
    uint8_t msg[kMaxHello];
    size_t got = 0;
    at = 0;
    for (size_t i = 0; i < records && got < need; i++) {
        const size_t rec = (size_t{data[at + 3]} << 8) | data[at + 4];
        for (size_t k = 0; k < rec && at + 5 + k < len && got < need; k++) msg[got++] = data[at + 5 + k];
        at += 5 + rec;
    }
    const uint32_t msg_len = static_cast<uint32_t>(need - 4);
    Reader r{msg + 4, msg_len};
    uint32_t v;
    const uint8_t *skip;
    if (!r.u16(&v) || (v >> 8) != 3) return HelloRead::not_tls;  // legacy_version 3.x
    if (!r.take(32, &skip) || !r.skip8() || !r.skip16() || !r.skip8()) return HelloRead::not_tls;
    if (r.left == 0) return HelloRead::no_name;  // no extensions at all
    uint32_t ext_total;
    if (!r.u16(&ext_total) || ext_total > r.left) return HelloRead::not_tls;
    Reader ext{r.p, ext_total};
    while (ext.left > 0) {
        uint32_t type, elen;
        const uint8_t *body;
        if (!ext.u16(&type) || !ext.u16(&elen) || !ext.take(elen, &body)) return HelloRead::not_tls;
        if (type != kServerNameExt) continue;
        Reader sn{body, elen};
        uint32_t list;
        if (!sn.u16(&list) || list > sn.left) return HelloRead::not_tls;
        Reader names{sn.p, list};
        while (names.left > 0) {
            uint32_t kind, nlen;
            const uint8_t *n;
            if (!names.u8(&kind) || !names.u16(&nlen) || !names.take(nlen, &n)) return HelloRead::not_tls;
            if (kind != kHostName) continue;
            if (nlen == 0 || nlen > 255) return HelloRead::not_tls;
            name->clear();
            for (uint32_t i = 0; i < nlen; i++) {
                if (!host_char(n[i])) return HelloRead::not_tls;
                const char c = static_cast<char>(n[i]);
                name->push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
            }
            return HelloRead::found;
        }
        return HelloRead::no_name;
    }
    return HelloRead::no_name;
}

}  // namespace pp
