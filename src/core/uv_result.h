// What to do with a libuv result (DESIGN.md: check every libuv return). Two kinds of call:
//
// - Those that can fail only through a programming error in this code (uv_timer_start on an
//   initialised, open timer with a callback; uv_idle_start; uv_timer_init; uv_tcp_init, which
//   opens no socket): PP_UV_MUST(call). A failure means a broken internal invariant, and those
//   abort (DESIGN.md), naming the call, the place and libuv's reason. The success path costs
//   one compare; nothing is formatted unless the call failed.
// - Those that can fail at runtime (sockets, reads, writes, socket options): handled where they
//   are made (the connection closed and counted); warn_uv_failure logs the unusual ones.
//
// scripts/check-uv-results.py (ctest uv_results_checked) fails on a libuv result left unused.
#pragma once
#include <uv.h>

namespace pp {

class Logger;

[[noreturn]] void must_failed(int rc, const char *call, const char *file, int line);

inline void must(int rc, const char *call, const char *file, int line) {
    if (__builtin_expect(rc != 0, 0)) must_failed(rc, call, file, line);
}

// A runtime failure that closed a connection and that no peer explains (not a reset or an EOF:
// a socket option or a read that could not start): a WARN naming `what` and libuv's reason.
// At most one per 10 s per thread, saying how many were not logged, so that a failure on every
// connection cannot flood the log; those in between go to DEBUG.
void warn_uv_failure(const Logger &log, const char *what, int rc);

}  // namespace pp

#define PP_UV_MUST(call) ::pp::must((call), #call, __FILE__, __LINE__)
