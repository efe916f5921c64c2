#!/bin/sh
# Configures and builds one tree. Usage: scripts/build.sh [BUILD_DIR] [extra cmake args...]
#   scripts/build.sh                                   -> build/
#   scripts/build.sh build-asan -DPOOLPROXY_SANITIZE=address
set -eu
cd "$(dirname "$0")/.."
dir="${1:-build}"
[ $# -gt 0 ] && shift
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j "$(nproc)"
