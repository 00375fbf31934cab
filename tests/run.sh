#!/usr/bin/env bash
# run.sh - runs every test of radshare and prints one closing line "N passed, N failed".
#
# A test is a program: tests/unit/test_*.c (built into $BUILD/tests/) or an executable
# script tests/*/test_* (any language). A test may print TAP lines ("ok N ...", "not ok N ...")
# for its sub-cases; each counts. Otherwise the test counts once, by its exit status.
# Scripts get RADSHARE (the binary under test), BUILD, SAN, and run from the repository root.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export RADSHARE=${RADSHARE:-$PWD/$BUILD/radshare}
export BUILD SAN=${SAN:-0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"

passed=0
failed=0
failed_names=()

tests=()
for t in "$BUILD"/tests/test_*; do [ -x "$t" ] && tests+=("$t"); done
for t in tests/*/test_*; do [ -x "$t" ] && [ -f "$t" ] && tests+=("$t"); done
[ -n "${TESTS:-}" ] && { sel=(); for t in "${tests[@]}"; do [[ "$t" == *$TESTS* ]] && sel+=("$t"); done; tests=("${sel[@]}"); }

for t in "${tests[@]}"; do
    name=${t#"$BUILD"/}
    log="$LOGDIR/$(echo "$name" | tr '/' '_').log"
    start=$(date +%s)
    timeout "${TEST_TIMEOUT:-1200}" "$t" >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    ok=$(grep -c '^ok ' "$log")
    nok=$(grep -c '^not ok ' "$log")
    if [ $((ok + nok)) -gt 0 ]; then
        if [ "$rc" -ne 0 ] && [ "$nok" -eq 0 ]; then nok=1; fi   # crashed after its last line
        passed=$((passed + ok)); failed=$((failed + nok))
    elif [ "$rc" -eq 0 ]; then
        passed=$((passed + 1)); ok=1
    else
        failed=$((failed + 1)); nok=1
    fi
    if [ "$nok" -gt 0 ]; then
        failed_names+=("$name")
        printf 'FAIL %-50s %4d ok %4d failed  (%ss)\n' "$name" "$ok" "$nok" "$secs"
        grep -E '^not ok|CHECK failed|ERROR|Sanitizer|runtime error' "$log" | head -20 | sed 's/^/     /'
        echo "     (full log: $log)"
    else
        printf 'pass %-50s %4d ok  (%ss)\n' "$name" "$ok" "$secs"
    fi
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
