#!/bin/sh
# Runs every test binary in BUILD/tests, as many at a time as the machine has cores
# (MCNN_TEST_JOBS overrides), and prints each one's output in name order once it is done, then
# sums their "N passed, N failed" lines.  A binary that crashes or prints no summary counts as
# one failure.  The last line of the run is the total; the exit status is non-zero when
# anything failed.  MCNN_TEST_LONG=1 lets tests run their slow parts too (CI sets it).
build=${1:-build}
: "${MCNN_SHARED:=../shared}"
# Absolute, so tests that run the apps from another folder still find it.
MCNN_SHARED=$(cd "$MCNN_SHARED" 2>/dev/null && pwd || echo "$MCNN_SHARED")
export MCNN_SHARED MCNN_BUILD="$build"
# Two tests at once share the cores: OpenMP threads that wait by spinning would steal them.
: "${OMP_WAIT_POLICY:=passive}"
export OMP_WAIT_POLICY
jobs=${MCNN_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}

outdir=$(mktemp -d "${TMPDIR:-/tmp}/mcnn-tests.XXXXXX") || exit 1
trap 'rm -rf "$outdir"' EXIT INT TERM

# The binaries, the slow ones first so that they do not start last and keep one core idle.
list=$(for t in "$build"/tests/test_*; do
           case "$t" in *.d) continue ;; esac
           [ -x "$t" ] && echo "$t"
       done)
for slow in test_mpi test_shot_learning test_train test_gemm test_gemm_lowp test_classify; do
    printf '%s\n' "$list" | grep "/$slow\$"
done > "$outdir/order"
printf '%s\n' "$list" | grep -v -x -F -f "$outdir/order" >> "$outdir/order"

# Each binary writes NAME.out and NAME.status; xargs keeps $jobs of them running.
# shellcheck disable=SC2016
xargs -P "$jobs" -I{} sh -c 'n=$(basename "$1"); "$1" > "$2/$n.out" 2>&1; echo $? > "$2/$n.status"' \
    sh {} "$outdir" < "$outdir/order"

passed=0
failed=0
for t in $list; do
    name=$(basename "$t")
    out=$(cat "$outdir/$name.out" 2>/dev/null)
    status=$(cat "$outdir/$name.status" 2>/dev/null || echo 1)
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
