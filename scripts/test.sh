#!/bin/sh
# Installs what the tests need, builds, and runs every test suite:
#   1. the normal build: ctest (header, cmocka C API, GoogleTest core, integration with redis,
#      the CLI, installed-library consumers, the demo)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build: the same suites
#   3. ThreadSanitizer build: the same suites
#   4. the Go binding: go vet, go test -race, against the plain build's library
#   5. the Rust binding: cargo test, cargo clippy -D warnings, cargo fmt --check
#   6. the ABI against abi/libpoolproxy.so.1.abi; the Debian packages: built, lintian, installed
#      with apt (by file and by name from a local apt repository), the autopkgtest smoke test
#   7. valgrind memcheck over the cmocka suites; every libFuzzer target for FUZZ_RUNS inputs
#      (400,000; at most FUZZ_SECONDS, 30) with a fixed seed from the seed corpus (ctest already
#      replays the corpus in all three builds); a short soak (SOAK_SECONDS, 20) with 1,000 idle
#      and churning clients and backend restarts; the hostile soak (tests/soak/hostile_soak.py)
#      for as long, in the normal and the ASan+UBSan build
# Ends with one summary line "N passed, N failed". Every check counts by its exit status; a
# suite whose results cannot be read (no ctest summary, no go or cargo test result) counts as
# failed, never as "0 failed". A build that fails ends the run (what depends on it cannot run).
#   sh scripts/test.sh                     everything, from a clone or from an export without .git
#   sh scripts/test.sh packages go         only the suites named, from: ctest abi valgrind asan
#                                          tsan fuzz soak go rust packages (ctest: the normal build)
set -eu
cd "$(dirname "$0")/.."
ALL="ctest abi valgrind asan tsan fuzz soak go rust packages"
SUITES="${*:-$ALL}"
for s in $SUITES; do
    case " $ALL " in *" $s "*) ;; *) echo "test: unknown suite '$s' (suites: $ALL)"; exit 2 ;; esac
done
want() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }
sh scripts/deps.sh --test
mkdir -p build

PASSED=0
FAILED=0
RESULTS=""

# build_tree DIR CMAKE-ARGS...: a failed build shows its log's end and stops the run.
build_tree() {
    dir="$1"
    mkdir -p "$dir"
    if ! sh scripts/build.sh "$@" >"$dir/build.log" 2>&1; then
        tail -n 40 "$dir/build.log"
        echo "test: the build in $dir failed; stopping ($PASSED passed, $((FAILED + 1)) failed so far)"
        exit 1
    fi
}

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
    if [ -z "$total" ] || [ -z "$failed" ]; then
        echo "    no ctest summary line in $log: counted as 1 failed"
        total=1; failed=1
        tail -n 40 "$log"
    fi
    [ "$rc" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
    PASSED=$((PASSED + total - failed))
    FAILED=$((FAILED + failed))
    RESULTS="$RESULTS\n  $name: $((total - failed)) passed, $failed failed"
    [ "$failed" -eq 0 ] || grep -A 30 -E "\*\*\*Failed|FAILED" "$log" | head -80
}

# check NAME COMMAND...: one pass/fail line in the summary, by COMMAND's exit status. COMMAND
# runs under set -e in a subshell, so that a shell function fails at its first failing step
# (check itself turns set -e off to read the status, which a function would inherit).
check() {
    name="$1"; shift
    set +e
    (set -e; "$@") >build/check.log 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 0 ]; then PASSED=$((PASSED + 1)); r="1 passed, 0 failed"; tail -n "${CHECK_TAIL:-2}" build/check.log | sed 's/^/    /'
    else FAILED=$((FAILED + 1)); r="0 passed, 1 failed"; tail -n 40 build/check.log; echo "    (exit status $rc)"; fi
    RESULTS="$RESULTS\n  $name: $r"
}

# count_go NAME LOG STATUS: adds the PASS/FAIL lines of `go test -v` (tests, subtests, examples).
count_go() {
    name="$1"; log="$2"; rc="$3"
    # grep -c prints 0 when nothing matches (and exits 1): the count is read either way.
    p=$(grep -cE '^ *--- PASS' "$log" || true)
    f=$(grep -cE '^ *--- FAIL' "$log" || true)
    # A failure with no '--- FAIL' line (go vet, a build error, a panic before the first test)
    # still fails, and shows the log's end, since the summary below would show nothing of it.
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || { f=1; tail -n 30 "$log"; }
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then echo "    no test ran (no '--- PASS' in $log): counted as 1 failed"; f=1; fi
    PASSED=$((PASSED + p)); FAILED=$((FAILED + f))
    RESULTS="$RESULTS\n  $name: $p passed, $f failed"
    grep -E '^(ok|FAIL|---)' "$log" | grep -vE '^ *--- PASS' | sed 's/^/    /' | head -20
}

if want ctest || want abi || want valgrind || want soak || want go || want rust; then
    echo "==> build (RelWithDebInfo, -Wall -Wextra -Werror)"
    build_tree build -DPOOLPROXY_BUILD_TESTS=ON
fi
if want ctest; then
    run_ctest "normal build" build
fi

if want abi; then
    echo "==> ABI check"
    check "abi (abidiff against abi/libpoolproxy.so.1.abi)" sh scripts/abi-check.sh build/libpoolproxy.so.1
fi

if want valgrind; then
    echo "==> valgrind memcheck (cmocka suites)"
    for t in c_test_api c_test_traffic; do
        check "valgrind memcheck ($t)" valgrind -q --error-exitcode=99 --leak-check=full \
            --errors-for-leak-kinds=definite,indirect "build/tests/$t"
    done
fi

if want asan; then
    echo "==> build (ASan + UBSan)"
    build_tree build-asan -DPOOLPROXY_BUILD_TESTS=ON -DPOOLPROXY_SANITIZE=address
    # The install/consumer test links plain programs against the instrumented library: not
    # meaningful under ASan, and covered by the normal build.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_ctest "asan+ubsan" build-asan -E 'install_consumers'
fi

if want tsan; then
    echo "==> build (TSan)"
    build_tree build-tsan -DPOOLPROXY_BUILD_TESTS=ON -DPOOLPROXY_SANITIZE=thread
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(pwd)/tests/tsan.supp" \
        run_ctest "tsan" build-tsan -E 'install_consumers'
fi

# The bindings build against the plain build tree (its uninstalled poolproxy.pc has an rpath).
export PKG_CONFIG_PATH="$(pwd)/build/pkgconfig"

if want fuzz || want soak; then
    echo "==> fuzz (libFuzzer, ${FUZZ_RUNS:-400000} inputs or ${FUZZ_SECONDS:-30} s per target) and soak (${SOAK_SECONDS:-20} s)"
fi
if want fuzz; then
    CHECK_TAIL=6
    export FUZZ_SEED="${FUZZ_SEED:-1}" FUZZ_RUNS="${FUZZ_RUNS:-400000}"
    check "fuzz (8 libFuzzer targets, ASan+UBSan, no finding)" sh scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
if want soak; then
    CHECK_TAIL=12
    check "soak (1,000 idle + busy + churning clients, backends restarted)" \
        python3 tests/soak/soak.py build/poolproxy --seconds "${SOAK_SECONDS:-20}" --idle 1000
    # Clients and backends that try to pin the pool, jam a breaker or cost the workers CPU,
    # beside well-behaved clients; under ASan+UBSan too when that tree was built in this run.
    check "hostile soak (slow readers, stalled bodies, probe aborts, 7,000-field heads)" \
        python3 tests/soak/hostile_soak.py build/poolproxy --seconds "${SOAK_SECONDS:-20}"
    if want asan; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
            check "hostile soak under ASan+UBSan" \
            python3 tests/soak/hostile_soak.py build-asan/poolproxy --seconds "${SOAK_SECONDS:-20}"
    fi
fi
CHECK_TAIL=2

if want go; then
    echo "==> go binding ($(go version))"
    set +e
    (cd bindings/go && go vet ./... && go test -race -count=1 -v ./...) >build/go-test.log 2>&1
    rc=$?
    set -e
    count_go "go (vet, test -race)" build/go-test.log "$rc"
fi

if want rust; then
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
    results=$(grep -c '^test result: ' "$rlog" || true)
    p=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\1/p' "$rlog" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^test result: .* \([0-9]*\) passed; \([0-9]*\) failed.*/\2/p' "$rlog" | awk '{s+=$1} END {print s+0}')
    [ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || { f=1; tail -n 30 "$rlog"; }
    if [ "$f" -eq 0 ] && { [ "$results" -eq 0 ] || [ "$p" -eq 0 ]; }; then
        echo "    no test ran ($results 'test result:' lines, $p passed in $rlog): counted as 1 failed"; f=1
    fi
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
fi

if want packages; then
    echo "==> Debian packages"
    # The smoke test must build against the installed libpoolproxy-dev, not the build tree's
    # uninstalled poolproxy.pc exported above for the bindings.
    unset PKG_CONFIG_PATH
    PKGS="libpoolproxy1 libpoolproxy-dev poolproxy"
    VERSION=$(dpkg-parsechangelog -S Version)
    # installed_packages: those of PKGS dpkg has in any state but not-installed.
    installed_packages() {
        for p in $PKGS; do
            # dpkg-query fails, printing nothing, for a package it has never seen: not installed.
            s=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
            case "$s" in "" | *" not-installed") ;; *) printf '%s ' "$p" ;; esac
        done
    }
    purge_packages() {
        rm -f /etc/apt/sources.list.d/poolproxy-ci.list
        left=$(installed_packages)
        # shellcheck disable=SC2086
        [ -z "$left" ] || apt-get purge -y -qq $left >/dev/null
        left=$(installed_packages)
        [ -z "$left" ] || { echo "packages: still installed after apt-get purge: $left"; return 1; }
    }
    # installed_version_is_built: apt installed this build's version of every package, so the
    # smoke test below runs what was just built (not what an earlier run left behind).
    installed_version_is_built() {
        for p in $PKGS; do
            v=$(dpkg-query -W -f='${Version}' "$p")
            [ "$v" = "$VERSION" ] || { echo "packages: $p $v is installed, not $VERSION"; return 1; }
        done
    }
    trap 'purge_packages || echo "test: could not purge the poolproxy packages"' EXIT
    check "packages (dpkg-buildpackage -us -uc -b)" sh scripts/package.sh
    lintian_run() {
        set -- build/pkg/*.changes
        [ -f "$1" ] || { echo "lintian: no build/pkg/*.changes (the package build failed or did not run)"; return 1; }
        rc=0
        lintian --allow-root --fail-on error --display-info "$@" >build/lintian.txt 2>&1 || rc=$?
        cat build/lintian.txt
        # grep -c prints 0 when nothing matches (and exits 1): the count is read either way.
        e=$(grep -c '^E:' build/lintian.txt || true)
        w=$(grep -c '^W:' build/lintian.txt || true)
        echo "lintian: $e errors, $w warnings (exit status $rc)"
        [ "$rc" -eq 0 ] && [ "$e" -eq 0 ]
    }
    check "packages (lintian, no errors)" lintian_run
    install_and_smoke() {
        purge_packages
        apt-get install -y -qq ./build/pkg/libpoolproxy1_*.deb ./build/pkg/libpoolproxy-dev_*.deb \
            ./build/pkg/poolproxy_*.deb >/dev/null
        installed_version_is_built
        AUTOPKGTEST_TMP=$(mktemp -d) sh debian/tests/smoke
    }
    check "packages (apt install ./*.deb + autopkgtest smoke)" install_and_smoke
    by_name_from_local_repo() {
        purge_packages
        rm -rf build/apt-repo
        sh scripts/apt-repo.sh build/pkg build/apt-repo
        echo "deb [trusted=yes] file:$(pwd)/build/apt-repo ./" >/etc/apt/sources.list.d/poolproxy-ci.list
        # Refresh only our list: the others stay as they are, so this needs no network.
        # APT::Sandbox::User=root: the tree may sit below a directory the _apt user cannot
        # enter (an export unpacked into a mktemp -d, mode 0700), and apt then fails to fetch.
        apt-get update -qq -o Dir::Etc::sourcelist=sources.list.d/poolproxy-ci.list \
            -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root
        apt-get install -y -qq -o APT::Sandbox::User=root libpoolproxy-dev poolproxy >/dev/null
        installed_version_is_built
        AUTOPKGTEST_TMP=$(mktemp -d) sh debian/tests/smoke
        purge_packages
    }
    check "packages (local apt repo, apt-get install libpoolproxy-dev by name)" by_name_from_local_repo
fi

printf "\nsummary:%b\n" "$RESULTS"
[ "$SUITES" = "$ALL" ] || echo "(only: $SUITES)"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
