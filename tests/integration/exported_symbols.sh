#!/bin/sh
# The shared library exports only pp_* functions under version node POOLPROXY_1, no C++
# symbol, and carries SONAME libpoolproxy.so.1.
set -eu
lib="$1"
bad=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -v '^POOLPROXY_1$' | grep -v '^pp_[a-z_0-9]*@@POOLPROXY_1$' || true)
if [ -n "$bad" ]; then
    echo "FAIL: symbols exported besides pp_*:"
    echo "$bad"
    exit 1
fi
count=$(nm -D --defined-only "$lib" | grep -c ' T pp_')
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
[ "$soname" = "libpoolproxy.so.1" ] || { echo "FAIL: SONAME is '$soname'"; exit 1; }
[ "$count" -ge 25 ] || { echo "FAIL: only $count pp_ functions exported"; exit 1; }
echo "ok: $count pp_* functions exported, nothing else; SONAME $soname"
