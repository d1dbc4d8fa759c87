#!/usr/bin/env bash
# Fuzzes weft's parsers, link handshake, tunnel engine and QUIC datagram entry with libFuzzer: builds the
# FuzzTesting package with the fuzzer and AddressSanitizer, then runs each target for N seconds
# (default 20) on a copy of its committed corpus (FuzzTesting/Corpus/<target>, read as seeds,
# never written).
# Fails if any target crashes, and says where the crashing input was written.
#
# Usage: scripts/fuzz.sh [seconds-per-target]
# Swift builds take the lock in $WEFT_BUILD_LOCK (default /tmp/weft-swift-build.lock), so only
# one build runs at a time on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"

seconds="${1:-20}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds-per-target]" >&2; exit 2; }
targets=(FuzzTunnelFrameParser FuzzDiscoveryMessageParser FuzzLinkHandshake FuzzTunnelEngine FuzzQUICDatagrams)
package=FuzzTesting
flags=(-c debug --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library)
lock="${WEFT_BUILD_LOCK:-/tmp/weft-swift-build.lock}"
locked() {
    if command -v flock >/dev/null; then flock "$lock" "$@"; else "$@"; fi
}

work="$(mktemp -d "${TMPDIR:-/tmp}/weft-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# Crashing inputs go here, outside the temporary directory, so they survive the run.
artifacts="$PWD/$package/.build/fuzz-artifacts"
mkdir -p "$artifacts"

echo "== fuzz: building ${targets[*]}"
start=$SECONDS
for target in "${targets[@]}"; do
    log="$work/build-$target.log"
    if ! locked swift build --package-path "$package" --product "$target" "${flags[@]}" >"$log" 2>&1; then
        # ld.gold warns about every ASan symbol it cannot export; that is noise.
        grep -v "Cannot export local symbol" "$log" >&2 || true
        echo "== fuzz: building $target failed" >&2
        exit 1
    fi
done
bin="$(locked swift build --package-path "$package" "${flags[@]}" --show-bin-path)"
echo "== fuzz: built in $((SECONDS - start)) s"

failed=()
for target in "${targets[@]}"; do
    corpus="$work/$target"
    mkdir -p "$corpus"
    cp "$package/Corpus/$target/"* "$corpus/"
    log="$work/run-$target.log"
    echo "== fuzz: $target for $seconds s"
    # The Swift runtime's own crash handler does not work under ASan; libFuzzer reports instead.
    status=0
    # Boundary integers (2^31, 2^32-1, 2^62, 2^63, 2^64-1, ...) as a dictionary for the targets
    # that read tunnel frames, so the fuzzer reaches what an honest stream never sends.
    dict=()
    [[ $target != FuzzDiscoveryMessageParser ]] && dict=(-dict="$package/Dictionaries/boundaries.dict")
    SWIFT_BACKTRACE=enable=no "$bin/$target" "$corpus" "$package/Corpus/$target" "${dict[@]}" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/$target-" >"$log" 2>&1 || status=$?
    runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")"
    coverage="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 || true)"
    if [[ $status -eq 0 ]]; then
        echo "   ok: ${runs:-?} runs, ${rate:-?} exec/s, ${coverage:-no coverage line}, corpus $(ls "$corpus" | wc -l) inputs"
    else
        failed+=("$target")
        echo "   FAILED (exit $status); the end of its log:" >&2
        grep -Ev '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED|RELOAD)' "$log" | tail -n 60 >&2
        crash="$(sed -n "s/.*Test unit written to //p" "$log" | tail -n 1)"
        if [[ -n "$crash" ]]; then
            echo "   crashing input: $crash" >&2
            trace=""
            [[ $target == FuzzTunnelEngine || $target == FuzzLinkHandshake ]] && trace="FUZZ_TRACE=1 "
            echo "   reproduce: ${trace}SWIFT_BACKTRACE=enable=no $bin/$target $crash" >&2
        fi
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "== fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "== fuzz: all ${#targets[@]} targets ran $seconds s each without a crash"
