#!/bin/sh
# Installs what the tests need, builds, and runs every test suite:
#   1. the normal build: ctest (header, cmocka C API, GoogleTest core, integration with redis,
#      the CLI, installed-library consumers, the demo)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build: the same suites
#   3. ThreadSanitizer build: the same suites
#   4. the Go binding: go vet, go test -race, against the plain build's library
#   5. the Rust binding: cargo test, cargo clippy -D warnings, cargo fmt --check
# Ends with one summary line "N passed, N failed".
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh --test

PASSED=0
FAILED=0
RESULTS=""
run_ctest() {  # name builddir ctest-args...
    name="$1"; dir="$2"; shift 2
    log="$dir/ctest.log"
    echo "==> $name"
    set +e
    (cd "$dir" && ctest --output-on-failure --timeout 600 "$@") >"$log" 2>&1
    rc=$?
    set -e
    tail -n 25 "$log" | sed -n '/tests passed/,$p;/FAILED/p;/Failed/p' | sed 's/^/    /'
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1 || true)
    total=$(echo "$line" | sed -n 's/.*out of \([0-9]*\).*/\1/p')
    failed=$(echo "$line" | sed -n 's/.*passed, \([0-9]*\) tests\{0,1\} failed.*/\1/p')
    if [ -z "$total" ]; then
        total=1; failed=1
        tail -n 40 "$log"
    fi
    [ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
    PASSED=$((PASSED + total - failed))
    FAILED=$((FAILED + failed))
    RESULTS="$RESULTS\n  $name: $((total - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ] || grep -A 30 -E "\*\*\*Failed|FAILED" "$log" | head -80
}

echo "==> build (RelWithDebInfo, -Wall -Wextra -Werror)"
sh scripts/build.sh build -DPOOLPROXY_BUILD_TESTS=ON >/dev/null
run_ctest "normal build" build

echo "==> build (ASan + UBSan)"
sh scripts/build.sh build-asan -DPOOLPROXY_BUILD_TESTS=ON -DPOOLPROXY_SANITIZE=address >/dev/null
# The install/consumer test links plain programs against the instrumented library: not
# meaningful under ASan, and covered by the normal build.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run_ctest "asan+ubsan" build-asan -E 'install_consumers'

echo "==> build (TSan)"
sh scripts/build.sh build-tsan -DPOOLPROXY_BUILD_TESTS=ON -DPOOLPROXY_SANITIZE=thread >/dev/null
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/tests/tsan.supp" \
    run_ctest "tsan" build-tsan -E 'install_consumers'

# count_go LOG: adds the PASS/FAIL lines of `go test -v` (tests, subtests, examples).
count_go() {
    name="$1"; log="$2"; rc="$3"
    p=$(grep -cE '^ *--- PASS' "$log" || true)
    f=$(grep -cE '^ *--- FAIL' "$log" || true)
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    RESULTS="$RESULTS\n  $name: $p passed, $f failed"
    grep -E '^(ok|FAIL|---)' "$log" | grep -vE '^ *--- PASS' | sed 's/^/    /' | head -20
}

# The bindings build against the plain build tree (its uninstalled poolproxy.pc has an rpath).
export PKG_CONFIG_PATH="$(pwd)/build/pkgconfig"

echo "==> go binding ($(go version))"
set +e
(cd bindings/go && go vet ./... && go test -race -count=1 -v ./...) >build/go-test.log 2>&1
rc=$?
set -e
count_go "go (vet, test -race)" build/go-test.log "$rc"

echo "==> rust binding ($(cargo --version))"
if [ "$(command -v cargo)" = /usr/bin/cargo ] && [ -d /usr/share/cargo/registry ]; then
    # Debian's cargo: build from Debian's packaged crates (librust-*-dev), offline.
    export CARGO_HOME="$(pwd)/build/cargo-home"
    mkdir -p "$CARGO_HOME"
    printf '[source.crates-io]\nreplace-with = "debian"\n[source.debian]\ndirectory = "/usr/share/cargo/registry"\n' \
        >"$CARGO_HOME/config.toml"
fi
export CARGO_TARGET_DIR="$(pwd)/build/cargo-target"
rlog=build/rust-test.log
set +e
(cd bindings/rust && LD_LIBRARY_PATH="$(pwd)/../../build" cargo test 2>&1) >"$rlog"
rc=$?
set -e
p=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$rlog" | awk '{s+=$1} END {print s+0}')
f=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$rlog" | awk '{s+=$1} END {print s+0}')
[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || { f=1; tail -n 30 "$rlog"; }
[ "$f" -eq 0 ] || grep -E "panicked|FAILED|failures:" "$rlog" | head -20
PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
RESULTS="$RESULTS\n  rust (cargo test): $p passed, $f failed"
for check in "clippy --all-targets -- -D warnings" "fmt --check"; do
    set +e
    # shellcheck disable=SC2086
    (cd bindings/rust && cargo $check) >build/rust-check.log 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then PASSED=$((PASSED + 1)); r="1 passed, 0 failed"
    else FAILED=$((FAILED + 1)); r="0 passed, 1 failed"; tail -n 30 build/rust-check.log; fi
    RESULTS="$RESULTS\n  rust (cargo $check): $r"
done

printf "\nsummary:%b\n" "$RESULTS"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
