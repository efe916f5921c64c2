#!/bin/sh
# Makes a local apt repository from built .deb files, so that `apt-get install
# libpoolproxy-dev` works by name.
#   scripts/apt-repo.sh [DEB_DIR] [REPO_DIR]     (defaults: .. and /srv/poolproxy-apt)
# then, as root:
#   echo "deb [trusted=yes] file:REPO_DIR ./" > /etc/apt/sources.list.d/poolproxy.list
#   apt-get update && apt-get install libpoolproxy-dev
set -eu
debs="${1:-..}"
repo="${2:-/srv/poolproxy-apt}"
command -v dpkg-scanpackages >/dev/null || { echo "apt-repo: needs dpkg-dev (apt-get install dpkg-dev)"; exit 1; }
mkdir -p "$repo"
found=0
for d in "$debs"/libpoolproxy1_*.deb "$debs"/libpoolproxy-dev_*.deb "$debs"/poolproxy_*.deb; do
    [ -f "$d" ] || continue
    cp "$d" "$repo/"
    found=$((found + 1))
done
[ "$found" -gt 0 ] || { echo "apt-repo: no poolproxy .deb files in $debs"; exit 1; }
(cd "$repo" && dpkg-scanpackages --multiversion . /dev/null > Packages && gzip -9c Packages > Packages.gz)
echo "apt-repo: $found package(s) in $repo"
echo "add it with:  echo 'deb [trusted=yes] file:$(cd "$repo" && pwd) ./' > /etc/apt/sources.list.d/poolproxy.list"
