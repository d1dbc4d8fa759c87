#!/usr/bin/env bash
# In the VM lab's guest: what weft's Bluetooth and USB links stand on works in this kernel.
# Two virtual Bluetooth controllers (btvirt) reach each other over RFCOMM and L2CAP, and a
# FunctionFS gadget bound to dummy_udc is enumerated by dummy_hcd's host side.
set -euo pipefail
fail() {
    echo "guest-smoke: FAILED: $*"
    exit 1
}
echo "guest: Linux $(uname -r), $(nproc) CPUs"
for module in dummy_hcd libcomposite usb_f_fs; do
    modprobe "$module" || fail "modprobe $module"
done
mount -t configfs none /sys/kernel/config 2>/dev/null || true

echo "-- Bluetooth: two virtual controllers"
source "$WEFT_REPO/scripts/vmlab/bluetooth-controllers.sh"
a0=$(hciconfig hci0 | awk '/BD Address/ {print $3}')
a1=$(hciconfig hci1 | awk '/BD Address/ {print $3}')
echo "hci0 $a0, hci1 $a1"
timeout 60 rctest -r -i hci0 -P 3 >/tmp/rfcomm-receiver.log 2>&1 &
sleep 1
timeout 30 rctest -s -i hci1 -P 3 -N 20 -b 1000 "$a0" >/tmp/rfcomm-sender.log 2>&1 || true
sleep 1
grep -q "Connected" /tmp/rfcomm-sender.log || fail "RFCOMM: $(cat /tmp/rfcomm-sender.log)"
grep -q "bytes in" /tmp/rfcomm-receiver.log || fail "RFCOMM: nothing received: $(cat /tmp/rfcomm-receiver.log)"
echo "RFCOMM channel 3, hci1 to hci0: connected, bytes received"
timeout 60 l2test -r -i hci0 -P 4113 >/tmp/l2cap-receiver.log 2>&1 &
sleep 1
timeout 30 l2test -s -i hci1 -P 4113 -N 20 -b 1000 "$a0" >/tmp/l2cap-sender.log 2>&1 || true
sleep 1
grep -q "Connected" /tmp/l2cap-sender.log || fail "L2CAP: $(cat /tmp/l2cap-sender.log)"
echo "L2CAP PSM 4113, hci1 to hci0: connected"

echo "-- USB: a FunctionFS gadget on dummy_udc, seen by the host side"
python3 "$WEFT_REPO/scripts/vmlab/usb-gadget.py" 1209 0001 || fail "USB gadget"
echo "guest-smoke: ok"
