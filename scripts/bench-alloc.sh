#!/usr/bin/env bash
# Hot-path allocation and CPU benchmarks (ordo-one/benchmark), in their own package Benchmarks/
# so that the main build and CI never build the benchmark tooling.
#
#   scripts/bench-alloc.sh            run every benchmark, then check them against the committed
#                                     thresholds (Benchmarks/Thresholds/)
#   scripts/bench-alloc.sh --update   run them and record new thresholds (commit the result)
#   scripts/bench-alloc.sh --stacks [FILTER]
#                                     where the allocations come from (file:line, per benchmark)
#
# Exit status: 0 when the check passes (or finds only improvements: then it says so, and the
# thresholds should be updated so the gain is kept), 2 on a regression, else the tool's own
# (a build error, a missing thresholds file).
# Allocation counts are exact; times are compared loosely (see WeftHotPath.swift): run on a
# quiet machine. The first build takes several minutes (NIO and the benchmark tool in release).
# The script takes no lock: wrap it in `flock` yourself where builds must not overlap.
set -euo pipefail
cd "$(dirname "$0")/../Benchmarks"

case "${1:-}" in
--update)
    swift package --allow-writing-to-package-directory benchmark thresholds update --no-progress
    exit 0
    ;;
--stacks)
    filter="${2:-.*}"
    swift package benchmark run --allocation-stacks --allocation-stack-limit 25 --filter "$filter" --no-progress
    exit 0
    ;;
"") ;;
*)
    sed -n '2,16p' "$0"
    exit 64
    ;;
esac

swift package benchmark run --no-progress
# `swift package` exits 1 whether the tool found regressions or only improvements: read its
# verdict instead.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
swift package benchmark thresholds check --no-progress 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if grep -q "is WORSE than the defined thresholds" "$log"; then
    echo "bench-alloc: REGRESSION beyond the thresholds (see above)."
    exit 2
elif grep -q "is BETTER than the defined thresholds" "$log"; then
    echo "bench-alloc: only improvements beyond the thresholds: record them with scripts/bench-alloc.sh --update."
    exit 0
elif [ "$status" -eq 0 ]; then
    echo "bench-alloc: every benchmark is within its thresholds."
fi
exit "$status"
