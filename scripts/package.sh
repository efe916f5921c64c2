#!/bin/sh
# Builds the Debian packages from the tracked files (a clean export, so a dirty work tree
# cannot leak into them) into build/pkg/: libpoolproxy1, libpoolproxy-dev, poolproxy.
#   scripts/package.sh            then: sudo apt install ./build/pkg/*.deb
set -eu
cd "$(dirname "$0")/.."
out="$(pwd)/build/pkg"
version=$(dpkg-parsechangelog -S Version)
rm -rf "$out"
mkdir -p "$out/poolproxy-$version"
git ls-files -z | xargs -0 cp --parents -t "$out/poolproxy-$version"
cd "$out/poolproxy-$version"
dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1 || { tail -n 60 "$out/build.log"; exit 1; }
cd "$out"
ls -1 ./*.deb
