#!/usr/bin/env bash
# In the VM lab's guest: weft's USB links between a gadget on dummy_udc and libusb's host side
# on dummy_hcd — the test binary built on the host, run here (USBLinkTests).
set -euo pipefail
tests="$WEFT_REPO/.build/x86_64-unknown-linux-gnu/debug/weftPackageTests.xctest"
if [[ ! -x $tests ]]; then
    echo "guest-usb-links: skipped: no test binary (swift build --build-tests first)"
    exit 0
fi
for module in dummy_hcd libcomposite usb_f_fs; do
    modprobe "$module" || { echo "guest-usb-links: modprobe $module failed"; exit 1; }
done
mount -t configfs none /sys/kernel/config 2>/dev/null || true
export WEFT_VMLAB_USB=1
output=$("$tests" --testing-library swift-testing --filter USBLinkTests 2>&1 | sed 's/\x1b\[[0-9;]*m//g') || {
    echo "$output" | tail -40
    exit 1
}
echo "$output" | grep -E "^(✔|✘|↳)|usb:|recorded an issue" || true
if ! echo "$output" | grep -q "Test run with 2 tests in 1 suite passed"; then
    echo "guest-usb-links: FAILED (or skipped): the two USB tests did not all run and pass"
    echo "$output" | tail -30
    exit 1
fi
echo "guest-usb-links: ok"
