#!/bin/sh
# Installs the build into a scratch prefix and builds the examples the way users do: with
# pkg-config (examples/Makefile) and with CMake find_package(poolproxy). Then runs them.
set -eu
. "$(dirname "$0")/lib.sh"
build="$1"; src="$2"
prefix="$WORK/prefix"
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -1)
[ -f "$prefix/include/poolproxy.h" ] || fail "header not installed"
[ -f "$libdir/pkgconfig/poolproxy.pc" ] || fail "poolproxy.pc not installed"
[ -f "$libdir/cmake/poolproxy/poolproxyConfig.cmake" ] || fail "CMake package not installed"
[ -x "$prefix/bin/poolproxy" ] || fail "CLI not installed"
readlink "$libdir/libpoolproxy.so" | grep -q '^libpoolproxy.so.1$' || fail "libpoolproxy.so does not point at the SONAME"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"
pkg-config --exists poolproxy || fail "pkg-config cannot find poolproxy"
cp "$src"/examples/*.c "$src/examples/Makefile" "$WORK/"
make -s -C "$WORK" CFLAGS="-O2 -Wall -Wextra -Werror" >/dev/null || fail "examples do not build with pkg-config"
"$WORK/selftest" || fail "pkg-config selftest failed"

# minimal_proxy in front of the selftest's pattern: just check it starts and stops cleanly.
"$WORK/minimal_proxy" 127.0.0.1:0 127.0.0.1:9 >"$WORK/mp.out" &
mp=$!; PIDS="$PIDS $mp"
i=0
until grep -q '^listening on ' "$WORK/mp.out"; do i=$((i + 1)); [ $i -le 200 ] || fail "minimal_proxy did not start"; sleep 0.05; done
kill -INT "$mp"; wait "$mp" || fail "minimal_proxy did not exit cleanly"
grep -q '^sessions 0' "$WORK/mp.out" || fail "minimal_proxy printed no stats"

mkdir -p "$WORK/cm"
cp -r "$src/examples/cmake" "$WORK/cm/cmake"
cp "$src/examples/selftest.c" "$WORK/cm/"
cmake -S "$WORK/cm/cmake" -B "$WORK/cm/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null || fail "find_package(poolproxy) failed"
cmake --build "$WORK/cm/build" >/dev/null || fail "CMake consumer does not build"
"$WORK/cm/build/selftest" || fail "CMake selftest failed"
echo "ok: installed header, library, poolproxy.pc, CMake package; examples built with pkg-config and find_package and ran"
