#!/usr/bin/env bash
# In the VM lab's guest: weft's own RFCOMM sockets (libbluetooth, handed to NIO) between two
# btvirt controllers — the test binary built on the host, run here (RFCOMMSocketTests).
set -euo pipefail
tests="$WEFT_REPO/.build/x86_64-unknown-linux-gnu/debug/weftPackageTests.xctest"
if [[ ! -x $tests ]]; then
    echo "guest-bluetooth-sockets: skipped: no test binary (swift build --build-tests first)"
    exit 0
fi
source "$WEFT_REPO/scripts/vmlab/bluetooth-controllers.sh"
export WEFT_VMLAB_BLUETOOTH=hci0,hci1
output=$("$tests" --testing-library swift-testing --filter RFCOMMSocketTests 2>&1 | sed 's/\x1b\[[0-9;]*m//g') || {
    echo "$output" | tail -40
    exit 1
}
echo "$output" | grep -E "^(✔|✘|↳)|rfcomm:|recorded an issue" || true
if ! echo "$output" | grep -q "Test run with 4 tests in 1 suite passed"; then
    echo "guest-bluetooth-sockets: FAILED (or skipped): the four RFCOMM tests did not all run and pass"
    exit 1
fi
echo "guest-bluetooth-sockets: ok"
