#!/usr/bin/env python3
"""Fails when a libuv call in src/ drops its result (DESIGN.md: check every libuv return).

A call is "dropped" when it is used as a statement: it starts a statement (after `;`, `{`, `}`,
`else`, or the `)` of an `if`/`for` header or a `(void)` cast) and its closing parenthesis is
followed by `;`. Such a call must either be checked (`if (uv_x(...) != 0) ...`, `rc = uv_x(...)`)
or, when it can fail only through a programming error, go through PP_UV_MUST (src/core/uv_result.h),
which aborts naming the call. Only the calls below may stand alone.

Usage: check-uv-results.py [SRC_DIR]   (default: the src/ next to this script's directory)
Runs a self-test on built-in samples first, so that a checker that stopped seeing anything fails.
"""
import os
import re
import sys

# Calls whose result carries no error: they return void, or (the stops) libuv returns 0 from
# them unconditionally on every platform we build for ("will always succeed", uv.h docs).
ALLOWED = {
    # void
    "uv_close", "uv_walk", "uv_stop", "uv_update_time", "uv_freeaddrinfo", "uv_ref", "uv_unref",
    # int, but not an error: whether handles are still alive (checked by uv_loop_close after)
    "uv_run",
    # int, always 0
    "uv_read_stop", "uv_timer_stop", "uv_idle_stop", "uv_poll_stop",
}

CALL = re.compile(r"\buv_[a-z0-9_]+\s*\(")


def strip(text):
    """Comments, string and character literals blanked (newlines kept for line numbers)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (min(j, n) - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def dropped_calls(text):
    """(line, name) of each uv_ call whose result is dropped."""
    code = strip(text)
    found = []
    for m in CALL.finditer(code):
        name = m.group(0).rstrip("( \t\n")
        if name in ALLOWED:
            continue
        before = code[: m.start()].rstrip()
        starts_statement = (not before or before[-1] in ";{})" or re.search(r"\belse$", before) is not None)
        if not starts_statement:
            continue
        depth, j = 0, m.end() - 1  # at the call's "("
        while j < len(code):
            if code[j] == "(":
                depth += 1
            elif code[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        rest = code[j + 1 :].lstrip()
        if rest.startswith(";"):
            found.append((code.count("\n", 0, m.start()) + 1, name))
    return found


SELF_TEST = {
    "uv_timer_start(&t, cb, 1, 0);": 1,
    "if (x) uv_read_start(s, a, r);": 1,
    "(void)uv_async_send(&a);": 1,
    "else uv_tcp_nodelay(&t,\n 1);": 1,
    "f([](uv_handle_t *h) { uv_idle_start(h, cb); });": 1,
    "int rc = uv_timer_start(&t, cb, 1, 0);": 0,
    "if (uv_read_start(s, a, r) != 0) close();": 0,
    "PP_UV_MUST(uv_idle_start(&i, cb));": 0,
    "return uv_tcp_open(&t, fd);": 0,
    "uv_close(h, nullptr); uv_read_stop(s);": 0,
    "// uv_timer_start(&t, cb, 1, 0);\nx = \"uv_idle_start(h);\";": 0,
}


def main():
    for sample, want in SELF_TEST.items():
        got = len(dropped_calls(sample))
        if got != want:
            print(f"check-uv-results: self-test failed: {sample!r}: {got} dropped calls found, {want} expected")
            return 2
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    bad = []
    for d, _, files in os.walk(root):
        for f in sorted(files):
            if f.endswith((".c", ".cc", ".cpp", ".h", ".hpp")):
                path = os.path.join(d, f)
                with open(path, encoding="utf-8") as fh:
                    for line, name in dropped_calls(fh.read()):
                        bad.append(f"{os.path.relpath(path, os.path.join(root, '..'))}:{line}: {name}")
    if bad:
        print("libuv results dropped (check them, or wrap a call that can only fail by a bug in PP_UV_MUST):")
        print("\n".join(bad))
        return 1
    print("check-uv-results: every libuv result in", os.path.normpath(root), "is used")
    return 0


if __name__ == "__main__":
    sys.exit(main())
