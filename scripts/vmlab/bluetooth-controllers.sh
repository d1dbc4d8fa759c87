# Sourced by the VM lab's guest scripts: two virtual Bluetooth controllers (btvirt), up and
# connectable, as hci0 and hci1. btvirt's emulated controllers do their crypto through AF_ALG.
for module in algif_skcipher algif_hash hci_vhci rfcomm; do
    modprobe "$module" || { echo "modprobe $module failed"; exit 1; }
done
btvirt -l2 >/tmp/btvirt.log 2>&1 &
for _ in $(seq 1 100); do [[ -e /sys/class/bluetooth/hci1 ]] && break; sleep 0.1; done
[[ -e /sys/class/bluetooth/hci1 ]] || { echo "btvirt made no controllers: $(cat /tmp/btvirt.log)"; exit 1; }
for hci in hci0 hci1; do
    hciconfig "$hci" up
    hciconfig "$hci" piscan
done
