#!/usr/bin/env bash
# weft's test command: installs what is missing, checks formatting, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"

bash scripts/install-deps.sh

echo "== swift format lint"
swift format lint --strict --recursive --parallel Sources Tests Package.swift

echo "== swift build"
swift build --build-tests

# The CPU-heavy suites (the network simulator, 1 GiB over TLS and over QUIC) run after the others, so they
# never starve the timing checks of the process tests on a 2-core machine.
heavy='Simulator|TunnelOverTLS|QUICLinkTests'
# A hung test fails its phase after 30 minutes (each phase takes under 15 here) and says so,
# rather than holding the run until CI gives up on it.
watchdog() {
    local status=0
    # `timeout` leads a process group of its own: the stacks below are of this run's tests only,
    # not of another checkout's on the same machine.
    timeout --kill-after=30 1800 "$@" &
    local runner=$!
    # Shortly before the limit, every thread of a test process still running is printed: a hang
    # names its test (HeavyTestGate's watchdog) and shows where it waits.
    (
        trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM
        sleep 1770 </dev/null >/dev/null 2>&1 &
        sleeper=$!
        wait "$sleeper"
        for pid in $(pgrep -g "$runner" -f 'weftPackageTests.xctest' || true); do
            echo "!! threads of the test process $pid, still running after 29.5 minutes:"
            timeout 60 gdb -p "$pid" -batch -ex 'thread apply all bt 25' 2>/dev/null | grep -E '^(Thread|#)' | head -600 || true
        done
    ) &
    local stacks=$!
    trap 'kill "$runner" "$stacks" 2>/dev/null || true' EXIT
    wait "$runner" || status=$?
    kill "$stacks" 2>/dev/null || true
    wait "$stacks" 2>/dev/null || true
    trap - EXIT
    if [[ $status -eq 124 || $status -eq 137 ]]; then
        echo "!! $* did not finish within 30 minutes: a test hung (the last 'started' lines above without an end)"
    fi
    return "$status"
}
echo "== swift test (all but the heavy suites)"
watchdog swift test --skip "$heavy"
echo "== swift test (simulator, TLS and QUIC suites)"
watchdog swift test --filter "$heavy"
