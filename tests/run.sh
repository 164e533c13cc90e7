#!/bin/sh
# Runs every test binary in BUILD/tests, one after another, and sums their "N passed, N failed"
# lines.  A binary that crashes or prints no summary counts as one failure.  The last line of
# the run is the total; the exit status is non-zero when anything failed.
build=${1:-build}
: "${MCNN_SHARED:=../shared}"
# Absolute, so tests that run the apps from another folder still find it.
MCNN_SHARED=$(cd "$MCNN_SHARED" 2>/dev/null && pwd || echo "$MCNN_SHARED")
export MCNN_SHARED MCNN_BUILD="$build"
passed=0
failed=0
for t in "$build"/tests/test_*; do
    case "$t" in *.d) continue ;; esac
    [ -x "$t" ] || continue
    name=$(basename "$t")
    out=$("$t" 2>&1)
    status=$?
    summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed' | sed "s|^|[$name] |"
    if [ -z "$summary" ]; then
        echo "[$name] CRASHED or printed no summary (exit $status)"
        failed=$((failed + 1))
        continue
    fi
    p=$(echo "$summary" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$summary" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed.*/\2/')
    if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
