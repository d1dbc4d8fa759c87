#!/usr/bin/env bash
# A short run of the network lab (scripts/lab.sh): two sites in their own network namespaces,
# joined by two shaped links. It measures an HTTP download over each link alone and through a
# weft tunnel over both (the same run, the same file), then cuts a link in the middle of a
# transfer through the tunnel and checks that every byte arrived. Needs root; without it, it
# says so and exits 0. Removes everything it made, even when interrupted.
#
#   scripts/lab-smoke.sh [RATE]        each link's rate, default 40mbit
#   WEFT=path/to/weft                  the binary to run (default .build/debug/weft)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-40mbit}
weft=${WEFT:-$PWD/.build/debug/weft}
megabytes=${LAB_MEGABYTES:-24}

if [[ $(id -u) -ne 0 ]]; then
    echo "lab-smoke: skipped: network namespaces need root"
    exit 0
fi
for tool in mosquitto python3 curl iptables tc; do
    command -v "$tool" >/dev/null || { echo "lab-smoke: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[[ -x $weft ]] || { echo "lab-smoke: $weft is not built (swift build)" >&2; exit 1; }

work=$(mktemp -d /tmp/weft-lab-smoke.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    bash scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
lab() { bash scripts/lab.sh "$@"; }
in_b() { ip netns exec weft-lab-b "$@"; }
wait_for() { # seconds, command...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "lab-smoke: timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}
# Downloads URL in namespace b; prints Mbit/s, checks the sha256.
fetch() {
    local url=$1 out=$work/fetched.bin
    local seconds
    seconds=$(in_b curl -sS --fail --max-time 300 -o "$out" -w '%{time_total}' "$url")
    [[ $(sha256sum <"$out" | cut -d' ' -f1) == "$digest" ]] || { echo "lab-smoke: $url: sha256 differs" >&2; return 1; }
    python3 -c "print(f'{$megabytes * 8 * 1.048576 / $seconds:.1f}')"
}

lab up "$rate" "$rate"
mkdir -p "$work/www"
head -c $((megabytes << 20)) /dev/urandom >"$work/www/payload.bin"
digest=$(sha256sum <"$work/www/payload.bin" | cut -d' ' -f1)

# The broker on the control link; the app (an HTTP server) in namespace a, on loopback for the
# tunnel and on each link's address for the baselines.
printf 'listener 1883 198.19.0.1\nallow_anonymous true\n' >"$work/mosquitto.conf"
# Background processes are started with `ip netns exec` directly, so $! is the process itself.
ip netns exec weft-lab-a mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
for address in 127.0.0.1 198.18.1.1 198.18.2.1; do
    ip netns exec weft-lab-a python3 -m http.server 8000 --bind "$address" --directory "$work/www" >/dev/null 2>&1 &
    pids+=($!)
done
cat >"$work/a.yaml" <<YAML
siteName: lab-a
crypto:
  key: "weft-lab-smoke-key"
logger:
  level: info
  file: $work/a.log
messageChannel:
  mqtt:
    brokerServer: mqtt://198.19.0.1:1883
tunnel:
  localSockets:
  - mode: dedicated-address
    listenAddress: 198.18.1.1
    listenPort: 47000
  - mode: dedicated-address
    listenAddress: 198.18.2.1
    listenPort: 47000
localExposedApps:
- appName: web
  appSocket: tcp:127.0.0.1:8000
stateDir: $work/a-state
YAML
cat >"$work/b.yaml" <<YAML
siteName: lab-b
crypto:
  key: "weft-lab-smoke-key"
logger:
  level: info
  file: $work/b.log
messageChannel:
  mqtt:
    brokerServer: mqtt://198.19.0.1:1883
remoteApps:
- siteName: lab-a
  appName: web
  localSocket: tcp:127.0.0.1:18000
stateDir: $work/b-state
YAML
# Everything listening before anything is measured.
wait_for 10 in_b bash -c 'exec 3<>/dev/tcp/198.19.0.1/1883'
for address in 198.18.1.1 198.18.2.1; do wait_for 10 in_b bash -c "exec 3<>/dev/tcp/$address/8000"; done
wait_for 10 ip netns exec weft-lab-a bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000'
ip netns exec weft-lab-a "$weft" run --config "$work/a.yaml" &
pids+=($!)
ip netns exec weft-lab-b "$weft" run --config "$work/b.yaml" &
pids+=($!)
links_up() { (($(grep -c 'link up' "$work/b.log" 2>/dev/null || true) >= 2)); }
wait_for 30 links_up

echo "== lab-smoke: $megabytes MiB over HTTP, two links of $rate each"
link1=$(fetch http://198.18.1.1:8000/payload.bin)
link2=$(fetch http://198.18.2.1:8000/payload.bin)
tunnel=$(fetch http://127.0.0.1:18000/payload.bin)
python3 - "$link1" "$link2" "$tunnel" <<'PY'
import sys
one, two, weft = map(float, sys.argv[1:])
print(f"   link 1 alone   {one:7.1f} Mbit/s")
print(f"   link 2 alone   {two:7.1f} Mbit/s")
print(f"   weft, 2 links  {weft:7.1f} Mbit/s  = {weft / (one + two) * 100:.0f} % of the sum, {weft / max(one, two):.2f} × the faster link")
PY

echo "== lab-smoke: link 1 cut once a quarter of a transfer through the tunnel has arrived"
ip netns exec weft-lab-b curl -sS --fail --max-time 300 -o "$work/failover.bin" http://127.0.0.1:18000/payload.bin &
transfer=$!
# The cut waits for the transfer's bytes (an event), not for a time that a slow start could miss.
while (($(stat -c %s "$work/failover.bin" 2>/dev/null || echo 0) < (megabytes << 18))) && kill -0 "$transfer" 2>/dev/null; do
    sleep 0.05
done
lab cut 1 >/dev/null
start=$SECONDS
if wait "$transfer" && [[ $(sha256sum <"$work/failover.bin" | cut -d' ' -f1) == "$digest" ]]; then
    echo "   the transfer finished $((SECONDS - start)) s after the cut, sha256 equal: no byte lost"
else
    echo "lab-smoke: the transfer through the tunnel failed after the cut" >&2
    tail -20 "$work/b.log" >&2
    exit 1
fi
lab restore 1 >/dev/null
