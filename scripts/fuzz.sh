#!/bin/sh
# Builds the libFuzzer targets with clang (ASan+UBSan, coverage on the whole core) and runs each
# for a bounded time, starting from the seed corpus in tests/fuzz/corpus (new inputs go to
# build-fuzz/corpus, never into the repo). A crash, a leak, a sanitizer report or a failed
# property stops the run with the input saved as build-fuzz/crash-*.
#   sh scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default: 20 s, every target
# FUZZ_SEED=N fixes libFuzzer's seed and FUZZ_RUNS=N bounds the inputs per target (the test
# command sets both, so that a run from the same corpus tries the same inputs on any machine;
# SECONDS stays the cap); unset, every run explores anew for SECONDS.
set -eu
cd "$(dirname "$0")/.."
SECS="${1:-20}"
[ $# -gt 0 ] && shift
TARGETS="${*:-http_request http_response exchange_request exchange_response config address route client_hello}"
command -v clang >/dev/null || { echo "fuzz: needs clang and libclang-rt-14-dev (scripts/deps.sh --test)"; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPOOLPROXY_FUZZ=ON -DPOOLPROXY_BUILD_TESTS=ON -DPOOLPROXY_BUILD_TOOLS=OFF >/dev/null
set --
for t in $TARGETS; do set -- "$@" "fuzz_$t"; done
cmake --build build-fuzz -j "$(nproc)" --target "$@" >/dev/null
status=0
for t in $TARGETS; do
    mkdir -p "build-fuzz/corpus/$t"
    log="build-fuzz/fuzz_$t.log"
    set +e
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "build-fuzz/tests/fuzz/fuzz_$t" -max_total_time="$SECS" -timeout=30 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="build-fuzz/crash-$t-" ${FUZZ_SEED:+-seed=$FUZZ_SEED} ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} \
        "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$rc" -eq 0 ] && [ "${runs:-0}" -eq 0 ]; then
        # Exit 0 without the final stats (or with none run) is no evidence: count it failed.
        echo "fuzz $t: no input executed (no stat::number_of_executed_units in $log)"
        tail -n 20 "$log"
        status=1
    elif [ "$rc" -eq 0 ]; then
        echo "fuzz $t: $runs inputs (at most ${SECS} s), $cov, no finding"
    else
        echo "fuzz $t: FINDING (exit $rc), see $log"
        grep -E "ERROR|SUMMARY|fuzz_|==[0-9]+==" "$log" | head -20
        status=1
    fi
done
exit $status
