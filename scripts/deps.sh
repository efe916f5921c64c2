#!/bin/sh
# Installs everything libpoolproxy needs on Debian 12, from Debian's packages only.
#   scripts/deps.sh          build dependencies (enough for the demo)
#   scripts/deps.sh --test   also what the test suites drive (real servers, bindings' toolchains)
#                            and the Debian packaging tools (CI builds and checks the packages)
#   scripts/deps.sh --bench  also the peers and load tools bench/ compares against (HAProxy,
#                            nginx with its stream module, wrk, ab, strace, perf, gnuplot)
set -eu
export DEBIAN_FRONTEND=noninteractive

build_pkgs="build-essential cmake ninja-build pkg-config git ca-certificates procps
 libuv1-dev node-llhttp libssl-dev"
test_pkgs="libcmocka-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
 redis-server redis-tools nginx-light curl python3
 debhelper dpkg-dev help2man lintian abigail-tools
 valgrind clang libclang-rt-14-dev testssl.sh python3-cryptography"
bench_pkgs="haproxy nginx-light libnginx-mod-stream wrk apache2-utils strace linux-perf gnuplot-nox python3"

pkgs="$build_pkgs"
[ "${1:-}" = "--bench" ] && pkgs="$pkgs $bench_pkgs"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs $test_pkgs"
    # The bindings' toolchains: whatever go/cargo the machine has, else Debian's.
    command -v go >/dev/null 2>&1 || pkgs="$pkgs golang-go"
    # Debian's Rust comes with the pkg-config crate packaged, so no registry index is needed
    # (cargo 1.63 predates the sparse crates.io index).
    command -v cargo >/dev/null 2>&1 || pkgs="$pkgs cargo rustc rustfmt rust-clippy librust-pkg-config-dev"
fi

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
if [ -z "$missing" ]; then
    echo "deps: all packages installed"
else
    echo "deps: installing$missing"
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
    echo "deps: packages done"
fi

# promtool (tests check /metrics with it) ships in Debian's prometheus package, whose
# installation would also enable and start a Prometheus server. So the package is only
# downloaded and unpacked into a cache directory, and nothing else of it runs.
PROMTOOL_DIR=/var/cache/poolproxy-test/prometheus
if [ "${1:-}" = "--test" ] && [ ! -x "$PROMTOOL_DIR/usr/bin/promtool" ]; then
    echo "deps: unpacking promtool from Debian's prometheus package into $PROMTOOL_DIR"
    tmp=$(mktemp -d)
    chmod 755 "$tmp"  # apt downloads as the _apt user where it can
    (cd "$tmp" && $SUDO apt-get download -qq prometheus 2>/dev/null || { $SUDO apt-get update -qq && $SUDO apt-get download -qq prometheus; })
    $SUDO mkdir -p "$PROMTOOL_DIR"
    $SUDO dpkg-deb -x "$tmp"/prometheus_*.deb "$PROMTOOL_DIR"
    rm -rf "$tmp"
    "$PROMTOOL_DIR/usr/bin/promtool" --version >/dev/null
fi
