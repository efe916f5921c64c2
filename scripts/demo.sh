#!/bin/sh
# The main job: install what is needed, build, and run the demo (built-in backends, real load,
# live stats). Extra arguments go to poolproxy-demo (--seconds N --clients N --workers N).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
sh scripts/build.sh build -DPOOLPROXY_BUILD_TESTS=OFF >/dev/null
exec ./build/poolproxy-demo "$@"
