#!/bin/sh
# Compares a built libpoolproxy with the committed ABI baseline (abi/libpoolproxy.so.1.abi,
# made by abidw from the exported interface only). Fails on any change a caller could notice:
# a removed or changed function, any change to a public struct. New functions do not fail
# (--no-added-syms). abidiff alone calls a changed field type merely "an ABI change", so every
# reported change fails here, not only the ones it calls incompatible. Appending a field to a
# struct_size-versioned struct is compatible by design, but it still fails until the baseline
# is updated with --update in the same commit: libabigail 2.2's has_data_member_inserted_at
# suppression also hid mid-struct insertions and type changes, so it is not used.
#   scripts/abi-check.sh build/libpoolproxy.so.1            check
#   scripts/abi-check.sh build/libpoolproxy.so.1 --update   write a new baseline (a reviewed change)
set -eu
cd "$(dirname "$0")/.."
lib="$1"
baseline=abi/libpoolproxy.so.1.abi
if [ "${2:-}" = "--update" ]; then
    abidw --exported-interfaces-only --headers-dir include --drop-private-types --suppressions abi/abi.supp --no-corpus-path \
        --out-file "$baseline" "$lib"
    echo "abi: wrote $baseline"
    exit 0
fi
set +e
abidiff --exported-interfaces-only --headers-dir2 include --drop-private-types --suppressions abi/abi.supp \
    --no-added-syms --no-show-locs \
    "$baseline" "$lib" >build/abidiff.txt 2>&1
rc=$?
set -e
cat build/abidiff.txt
# abidiff's exit status is a bit mask: 1 error, 2 usage, 4 ABI change, 8 incompatible change.
if [ $((rc & 3)) -ne 0 ]; then echo "abi: abidiff failed (status $rc)"; exit 1; fi
if [ $((rc & 12)) -ne 0 ]; then
    echo "abi: INCOMPATIBLE change against $baseline (see above). If the SONAME moves, or the change"
    echo "     was reviewed as compatible, write a new baseline: scripts/abi-check.sh LIB --update"
    exit 1
fi
echo "abi: ok, compatible with $baseline (additions, if any, are allowed)"
