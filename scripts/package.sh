#!/bin/sh
# Builds the Debian packages into build/pkg/: libpoolproxy1, libpoolproxy-dev, poolproxy.
# The package is built from a copy of the source, so that nothing else can leak into it:
#   - in a git clone: the tracked files (untracked files stay out; edits to tracked files go in)
#   - elsewhere (a release tarball, a `git archive` export, an unpacked source package): the
#     tree as it is, less what .gitignore ignores (build/, build-*/, caches, *.deb, ...)
#   scripts/package.sh            then: sudo apt install ./build/pkg/*.deb
set -eu
cd "$(dirname "$0")/.."
top=$(pwd -P)
out="$top/build/pkg"
version=$(dpkg-parsechangelog -S Version)
rm -rf "$out"
mkdir -p "$out/poolproxy-$version"
list="$out/files"
# Only a clone whose top is this directory: an export unpacked inside some other repository
# must not be built from that repository's index.
if [ "$(git rev-parse --show-toplevel 2>/dev/null || true)" = "$top" ]; then
    git ls-files -z >"$list"
    from="the tracked files of the git clone"
else
    command -v git >/dev/null || { echo "package: outside a git clone this still needs git to read .gitignore (apt-get install git)"; exit 1; }
    # git reads .gitignore exactly (directory patterns, anchoring, nested files) through a
    # throwaway repository; tar --exclude-vcs-ignores ignores patterns such as 'build/'.
    # build/ and build-*/ stay out even if .gitignore is gone (build/pkg is being written).
    # core.excludesFile=/dev/null: the user's global ignores are not the project's.
    gitdir=$(mktemp -d)
    trap 'rm -rf "$gitdir"' EXIT
    git init -q --bare "$gitdir"
    git -c core.excludesFile=/dev/null --git-dir="$gitdir" --work-tree=. \
        ls-files -z --others --exclude-standard -x build/ -x 'build-*/' >"$list"
    from="the tree (not a git clone), less what .gitignore ignores"
fi
n=$(tr -cd '\0' <"$list" | wc -c)
[ "$n" -gt 0 ] || { echo "package: no source files found"; exit 1; }
xargs -0 -r cp --parents -t "$out/poolproxy-$version" <"$list"
echo "package: $n files from $from"
cd "$out/poolproxy-$version"
dpkg-buildpackage -us -uc -b >"$out/build.log" 2>&1 || { tail -n 60 "$out/build.log"; exit 1; }
cd "$out"
ls -1 ./*.deb
