#!/bin/sh
# The shared library exports only pp_* functions under version node POOLPROXY_1, no C++
# symbol, and carries SONAME libpoolproxy.so.1.
set -eu
lib="$1"
# nm's output goes to a file first: in a pipe its failure (no such library) would be lost and
# "no unexpected symbol" would pass on an empty list.
syms=$(mktemp)
trap 'rm -f "$syms"' EXIT
nm -D --defined-only "$lib" >"$syms" || { echo "FAIL: nm cannot read $lib"; exit 1; }
# grep -v exits 1 when it keeps no line: that is the passing case, hence || true.
bad=$(awk '{print $3}' "$syms" | grep -v '^POOLPROXY_1$' | grep -v '^pp_[a-z_0-9]*@@POOLPROXY_1$' || true)
if [ -n "$bad" ]; then
    echo "FAIL: symbols exported besides pp_*:"
    echo "$bad"
    exit 1
fi
count=$(grep -c ' T pp_' "$syms" || true)
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libpoolproxy.so.1" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
[ "$count" -ge 25 ] || { echo "FAIL: only $count pp_ functions exported"; exit 1; }
echo "ok: $count pp_* functions exported, nothing else; SONAME $soname"
