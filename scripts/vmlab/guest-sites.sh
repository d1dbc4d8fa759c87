#!/usr/bin/env bash
# In the VM lab's guest: two weft sites on one machine, each bound to its own virtual Bluetooth
# controller (alpha on hci0, beta on hci1). Bluetooth sockets exist only in the initial network
# namespace, so the sites cannot live in two namespaces: each listens on its own adapter and
# dials from it, and their broker, app and local sockets sit on loopback ports of their own.
# Beta uses alpha's web app; every transfer is checked with sha256.
set -euo pipefail
weft=$WEFT_REPO/.build/debug/weft
if [[ ! -x $weft ]]; then
    echo "guest-sites: skipped: $weft is not built (swift build)"
    exit 0
fi
work=/tmp/weft-sites
mkdir -p "$work/www"
fail() {
    echo "guest-sites: FAILED: $*"
    for log in "$work"/*.log; do
        echo "--- ${log##*/}"
        tail -25 "$log"
    done
    echo "--- Bluetooth connections"
    hcitool con 2>&1
    echo "--- dmesg"
    dmesg | tail -40
    exit 1
}
wait_for() { # seconds, command...
    local seconds=$1 deadline=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || fail "timed out after $seconds s waiting for: $*"
        sleep 0.2
    done
}
links_up() { # site, count, transport
    (($(grep 'link up' "$work/$1.log" 2>/dev/null | grep -c "transport=$3" || true) >= $2))
}

bluetooth_controllers=3
source "$WEFT_REPO/scripts/vmlab/bluetooth-controllers.sh"
ip link set lo up
printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
megabytes=2
head -c $((megabytes << 20)) /dev/urandom >"$work/www/payload.bin"
digest=$(sha256sum <"$work/www/payload.bin" | cut -d' ' -f1)
/usr/bin/python3 -m http.server 18080 --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
wait_for 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/1883'
wait_for 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080'

# site NAME SOCKETS APPS: a site's config, with the tunnel sockets and app sections given.
site() {
    cat >"$work/$1.yaml" <<YAML
siteName: $1
crypto:
  key: "weft-vmlab-sites-key"
logger:
  level: info
  file: $work/$1.log
messageChannel:
  mqtt:
    brokerServer: mqtt://127.0.0.1:1883
tunnel:
  localSockets:
$2
$3
stateDir: $work/$1-state
YAML
}
start() { # name
    rm -f "$work/$1.log"
    "$weft" run --config "$work/$1.yaml" >>"$work/$1.out" 2>&1 &
}
stop() { # name
    pkill -TERM -f "run --config $work/$1[.]yaml" 2>/dev/null || true
    wait_for 60 bash -c "! pgrep -f 'run --config $work/$1[.]yaml' >/dev/null"
}
# Fetches the payload through beta's local socket; prints the goodput in Mbit/s.
fetch() {
    local out=$work/fetched.bin seconds
    rm -f "$out"
    seconds=$(curl -sS --fail --max-time 600 -o "$out" -w '%{time_total}' http://127.0.0.1:18000/payload.bin) ||
        fail "the transfer failed"
    [[ $(sha256sum <"$out" | cut -d' ' -f1) == "$digest" ]] || fail "sha256 differs"
    /usr/bin/python3 -c "print(f'{$megabytes * 8 * 1.048576 / $seconds:.2f}')"
}

# transfer_during NAME COMMAND...: a transfer through the tunnel, COMMAND run once a quarter
# has arrived; every byte must arrive.
transfer_during() {
    local name=$1 out=$work/during.bin
    shift
    rm -f "$out"
    curl -sS --fail --max-time 600 -o "$out" http://127.0.0.1:18000/payload.bin &
    local transfer=$!
    while (($(stat -c %s "$out" 2>/dev/null || echo 0) < (megabytes << 18))) && kill -0 "$transfer" 2>/dev/null; do
        sleep 0.05
    done
    local arrived
    arrived=$(stat -c %s "$out" 2>/dev/null || echo 0)
    (($arrived < (megabytes << 20))) || fail "$name: the transfer was over before the event"
    "$@"
    local start=$SECONDS
    wait "$transfer" || fail "$name: the transfer failed"
    [[ $(sha256sum <"$out" | cut -d' ' -f1) == "$digest" ]] || fail "$name: sha256 differs"
    echo "   $name at $((arrived >> 10)) KiB: finished $((SECONDS - start)) s later, sha256 equal, no byte lost"
}
alpha_apps='localExposedApps:
- appName: web
  appSocket: tcp:127.0.0.1:18080'
beta_apps='remoteApps:
- siteName: alpha
  appName: web
  localSocket: tcp:127.0.0.1:18000'
bluetooth_socket() { # adapter
    printf '  - mode: dedicated-address\n    transportProtocol: bluetooth\n    listenAddress: %s\n    listenPort: 3\n' "$1"
}

usb_gadget_socket='  - mode: usb-gadget
    transportProtocol: usb'
usb_host_socket='  - mode: usb-host
    transportProtocol: usb'

echo "== guest-sites: a TCP-only tunnel over loopback (this guest's baseline: under emulation the CPU is the limit)"
site alpha '  - mode: dedicated-address
    listenAddress: 127.0.0.2
    listenPort: 47000' "$alpha_apps"
site beta '  - mode: dedicated-address
    listenAddress: 127.0.0.3
    listenPort: 47000' "$beta_apps"
start alpha
start beta
wait_for 120 links_up beta 1 tls
rate=$(fetch)
echo "   HTTP $megabytes MiB over TCP only: sha256 equal, $rate Mbit/s"
echo "vmlab-figure tcp-goodput-mbit $rate"
stop beta
stop alpha

echo "== guest-sites: a Bluetooth-only tunnel (alpha on hci0, beta on hci1, RFCOMM channel 3)"
site alpha "$(bluetooth_socket hci0)" "$alpha_apps"
site beta "$(bluetooth_socket hci1)" "$beta_apps"
start alpha
start beta
wait_for 120 links_up beta 1 bluetooth
wait_for 30 links_up alpha 1 bluetooth
rate=$(fetch)
echo "   HTTP $megabytes MiB over Bluetooth only: sha256 equal, $rate Mbit/s"
echo "vmlab-figure bluetooth-goodput-mbit $rate"
stop beta
stop alpha

echo "== guest-sites: a USB-only tunnel (alpha the gadget on dummy_udc, beta the host on dummy_hcd)"
for module in dummy_hcd libcomposite usb_f_fs; do
    modprobe "$module" || fail "modprobe $module"
done
mount -t configfs none /sys/kernel/config 2>/dev/null || true
# libusb hears of devices plugged in later through udev's daemon.
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 || echo "   (no udevd: re-linking after a replug waits for the dial backoff)"
site alpha "$usb_gadget_socket" "$alpha_apps"
site beta "$usb_host_socket" "$beta_apps"
start alpha
start beta
wait_for 120 links_up beta 1 usb
rate=$(fetch)
echo "   HTTP $megabytes MiB over USB only: sha256 equal, $rate Mbit/s"
echo "vmlab-figure usb-goodput-mbit $rate"
stop beta
stop alpha

echo "== guest-sites: TCP + Bluetooth + USB aggregated in one tunnel"
tls_socket='  - mode: dedicated-address
    listenAddress: 127.0.0.2
    listenPort: 47000'
site alpha "$tls_socket
$(bluetooth_socket hci0)
$usb_gadget_socket" "$alpha_apps"
site beta "$(bluetooth_socket hci1)
$usb_host_socket" "$beta_apps
restfulApi:
  enabled: true
  listenAddr: 127.0.0.1:18081"
start alpha
start beta
for transport in tls bluetooth usb; do wait_for 120 links_up beta 1 "$transport"; done
# weft status names each link's transport and where it goes.
"$weft" status --config "$work/beta.yaml" >"$work/status.txt" 2>&1 || fail "weft status: $(cat "$work/status.txt")"
for name in "bluetooth ..:..:..:..:..:.. channel 3" "usb gadget weft-[0-9a-f]{16}" tls; do
    grep -Eq "$name" "$work/status.txt" || fail "weft status does not show $name: $(cat "$work/status.txt")"
done
grep -E "tls|bluetooth|usb" "$work/status.txt" | sed 's/^/   status: /'
rate=$(fetch)
echo "   HTTP $megabytes MiB over TCP + Bluetooth + USB: sha256 equal, $rate Mbit/s"
echo "vmlab-figure aggregated-goodput-mbit $rate"

cut_tcp() {
    if iptables -I INPUT -p tcp --dport 47000 -j DROP 2>/dev/null &&
        iptables -I INPUT -p tcp --sport 47000 -j DROP 2>/dev/null; then
        cut_with=iptables
    else
        # No netfilter in this guest: the TCP link's sockets are destroyed instead.
        ss -K '( dport = :47000 or sport = :47000 )' >/dev/null
        cut_with=ss
    fi
}
transfer_during "the TCP link cut" cut_tcp
echo "   (cut with $cut_with; the transfer finished on Bluetooth and USB)"
[[ $cut_with == iptables ]] && iptables -F INPUT

unplug_usb() {
    local udc
    udc=$(echo /sys/kernel/config/usb_gadget/weft-*/UDC)
    controller=$(cat "$udc")
    echo >"$udc"
    sleep 2
    echo "$controller" >"$udc"
}
links_before=$(grep 'link up' "$work/beta.log" | grep -c 'transport=usb')
transfer_during "the USB cable pulled for 2 s" unplug_usb
wait_for 120 links_up beta $((links_before + 1)) usb
echo "   the USB link came back without a restart"
stop beta
stop alpha

echo "== guest-sites: an adapter down at start is named in an error, then picked up when it comes up"
# As at boot, when bluetoothd powers the adapter on after weft started. alpha uses hci2 here, a
# controller no link has used: taking down an adapter whose last RFCOMM session may still be
# closing oopses Debian 6.1's krfcommd (see docs/ARCHITECTURE.md), after which no RFCOMM connect
# on this kernel returns (seen once in CI with hci0).
hciconfig hci2 down
site alpha "$(bluetooth_socket hci2)" "$alpha_apps"
site beta "$(bluetooth_socket hci1)" "$beta_apps"
start alpha
start beta
wait_for 60 grep -q 'tunnel.localSockets\[0\].listenAddress: Bluetooth adapter hci2 cannot be used' "$work/alpha.log"
grep -q 'site running' "$work/alpha.log" || fail "alpha did not run on without its adapter"
links_up beta 1 bluetooth && fail "a Bluetooth link came up while hci2 was down"
hciconfig hci2 up
hciconfig hci2 piscan
wait_for 60 grep -q 'Bluetooth adapter is up: listening for links' "$work/alpha.log"
wait_for 120 links_up beta 1 bluetooth
rate=$(fetch)
echo "   hci2: named at start (tunnel.localSockets[0].listenAddress), picked up when it came up; HTTP over it: sha256 equal"
stop beta
stop alpha

echo "== guest-sites: a missing adapter is named by key and name, and the site runs on"
site gamma "$(bluetooth_socket hci7)" ""
start gamma
wait_for 60 grep -q 'tunnel.localSockets\[0\].listenAddress: Bluetooth adapter hci7 cannot be used' "$work/gamma.log"
sleep 1
pgrep -f "run --config $work/gamma[.]yaml" >/dev/null || fail "gamma stopped: $(cat "$work/gamma.out")"
stop gamma
echo "   hci7: logged as an error naming tunnel.localSockets[0].listenAddress; the site ran on"

echo "guest-sites: ok"
