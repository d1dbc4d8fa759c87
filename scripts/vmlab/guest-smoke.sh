#!/usr/bin/env bash
# In the VM lab's guest: two virtual Bluetooth controllers (btvirt) reach each other over RFCOMM
# and L2CAP, and the virtual USB device controller (dummy_hcd) is there.
set -uo pipefail
kmod() { modprobe "$@"; }
echo "guest: $(uname -r), $(nproc) CPUs"
# btvirt's emulated controllers do their crypto through AF_ALG.
kmod algif_skcipher && kmod algif_hash && kmod hci_vhci && kmod rfcomm && kmod dummy_hcd && kmod libcomposite && kmod usb_f_fs || exit 1
mount -t configfs none /sys/kernel/config 2>/dev/null || true
echo "udc: $(ls /sys/class/udc)"
btvirt -l2 > /tmp/btvirt.log 2>&1 &
for _ in $(seq 1 100); do [[ -e /sys/class/bluetooth/hci1 ]] && break; sleep 0.1; done
ls /sys/class/bluetooth
for hci in hci0 hci1; do hciconfig $hci up; hciconfig $hci piscan; done
hciconfig -a | grep -E "^hci|BD Address|UP RUNNING"
a0=$(hciconfig hci0 | awk '/BD Address/ {print $3}')
a1=$(hciconfig hci1 | awk '/BD Address/ {print $3}')
echo "hci0=$a0 hci1=$a1"
timeout 60 rctest -r -i hci0 -P 3 > /tmp/rc-recv.log 2>&1 &
sleep 1
timeout 30 rctest -s -i hci1 -P 3 -N 100 -b 1000 "$a0" > /tmp/rc-send.log 2>&1
echo "rctest send rc=$?"
sleep 1
tail -5 /tmp/rc-send.log; tail -5 /tmp/rc-recv.log
timeout 60 l2test -r -i hci0 -P 4113 > /tmp/l2-recv.log 2>&1 &
sleep 1
timeout 30 l2test -s -i hci1 -P 4113 -N 100 -b 1000 "$a0" > /tmp/l2-send.log 2>&1
echo "l2test send rc=$?"
sleep 1
tail -3 /tmp/l2-send.log; tail -3 /tmp/l2-recv.log
