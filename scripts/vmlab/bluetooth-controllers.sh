# Sourced by the VM lab's guest scripts: virtual Bluetooth controllers (btvirt), up and
# connectable: hci0 and hci1, or as many as $bluetooth_controllers says (2 to 9).
# btvirt's emulated controllers do their crypto through AF_ALG.
for module in algif_skcipher algif_hash hci_vhci rfcomm; do
    modprobe "$module" || { echo "modprobe $module failed"; exit 1; }
done
count=${bluetooth_controllers:-2}
last=hci$((count - 1))
btvirt -l"$count" >/tmp/btvirt.log 2>&1 &
for _ in $(seq 1 100); do [[ -e /sys/class/bluetooth/$last ]] && break; sleep 0.1; done
[[ -e /sys/class/bluetooth/$last ]] || { echo "btvirt made no controllers: $(cat /tmp/btvirt.log)"; exit 1; }
for ((index = 0; index < count; index++)); do
    hci=hci$index
    hciconfig "$hci" up
    hciconfig "$hci" piscan
done
