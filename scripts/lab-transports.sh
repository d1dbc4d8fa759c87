#!/usr/bin/env bash
# Link transports in the network lab (scripts/lab.sh): two sites in their own namespaces, one
# tunnel of mixed links — TLS over TCP on link 1, WebSocket on link 2, QUIC on link 3 — with a cut of each kind
# in the middle of a transfer (every byte must arrive); then the dialing site's direct paths
# forbidden by iptables, so it reaches the other only through an HTTP CONNECT proxy (tinyproxy)
# and then a SOCKS5 proxy, each on the control link. Needs root; without it, it says so and
# exits 0. Removes everything it made, even when interrupted.
#
#   scripts/lab-transports.sh [RATE]   each link's rate, default 40mbit
#   WEFT=path/to/weft                  the binary to run (default .build/debug/weft)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-40mbit}
weft=${WEFT:-$PWD/.build/debug/weft}
megabytes=${LAB_MEGABYTES:-24}

if [[ $(id -u) -ne 0 ]]; then
    echo "lab-transports: skipped: network namespaces need root"
    exit 0
fi
for tool in mosquitto python3 curl iptables tc tinyproxy; do
    command -v "$tool" >/dev/null || { echo "lab-transports: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done
[[ -x $weft ]] || { echo "lab-transports: $weft is not built (swift build)" >&2; exit 1; }

work=$(mktemp -d /tmp/weft-lab-transports.XXXXXX)
pids=()
b_pid=
cleanup() {
    for pid in "${pids[@]}" $b_pid; do kill "$pid" 2>/dev/null || true; done
    pkill -f "run --config $work/" 2>/dev/null || true
    wait 2>/dev/null || true
    bash scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
lab() { bash scripts/lab.sh "$@"; }
in_a() { ip netns exec weft-lab-a "$@"; }
in_b() { ip netns exec weft-lab-b "$@"; }
wait_for() { # seconds, command...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" 2>/dev/null; do
        ((SECONDS < deadline)) || { echo "lab-transports: timed out waiting for: $*" >&2; return 1; }
        sleep 0.1
    done
}
fail() {
    echo "lab-transports: $*" >&2
    tail -20 "$work/b.log" >&2 || true
    exit 1
}
# Downloads through the tunnel in namespace b; prints Mbit/s, checks the sha256.
fetch() {
    local out=$work/fetched.bin seconds
    seconds=$(in_b curl -sS --fail --max-time 300 -o "$out" -w '%{time_total}' http://127.0.0.1:18000/payload.bin)
    [[ $(sha256sum <"$out" | cut -d' ' -f1) == "$digest" ]] || fail "sha256 differs"
    python3 -c "print(f'{$megabytes * 8 * 1.048576 / $seconds:.1f}')"
}
links_up() { # count, transport
    (($(grep 'link up' "$work/b.log" 2>/dev/null | grep -c "transport=$2" || true) >= $1))
}
# Starts site b with the given extra `tunnel:` lines (a fresh log each time).
start_b() {
    cat >"$work/b.yaml" <<YAML
siteName: lab-b
crypto:
  key: "weft-lab-transports-key"
logger:
  level: info
  file: $work/b.log
messageChannel:
  mqtt:
    brokerServer: mqtt://198.19.0.1:1883
tunnel:
  linksPerPath: 1
$1
remoteApps:
- siteName: lab-a
  appName: web
  localSocket: tcp:127.0.0.1:18000
stateDir: $work/b-state
YAML
    rm -f "$work/b.log"
    in_b "$weft" run --config "$work/b.yaml" &
    b_pid=$!
}
stop_b() {
    # b runs under `ip netns exec`: stop the weft process itself, and wait until it is gone
    # (its remote app's port must be free for the next start).
    # (`b[.]yaml`: the pattern must not match the command line of the shell that runs pgrep.)
    pkill -TERM -f "run --config $work/b[.]yaml" 2>/dev/null || true
    wait "$b_pid" 2>/dev/null || true
    wait_for 30 bash -c "! pgrep -f 'run --config $work/b[.]yaml' >/dev/null"
    b_pid=
}
# A transfer through the tunnel with link N cut once a quarter has arrived.
transfer_with_cut() {
    local n=$1 out=$work/failover.bin
    rm -f "$out"
    in_b curl -sS --fail --max-time 300 -o "$out" http://127.0.0.1:18000/payload.bin &
    local transfer=$!
    while (($(stat -c %s "$out" 2>/dev/null || echo 0) < (megabytes << 18))) && kill -0 "$transfer" 2>/dev/null; do
        sleep 0.05
    done
    lab cut "$n" >/dev/null
    local start=$SECONDS
    wait "$transfer" || fail "the transfer failed after link $n was cut"
    [[ $(sha256sum <"$out" | cut -d' ' -f1) == "$digest" ]] || fail "sha256 differs after link $n was cut"
    echo "   link $n ($2) cut mid-transfer: finished $((SECONDS - start)) s later, sha256 equal, no byte lost"
    lab restore "$n" >/dev/null
}

lab up "$rate" "$rate" "$rate"
mkdir -p "$work/www"
head -c $((megabytes << 20)) /dev/urandom >"$work/www/payload.bin"
digest=$(sha256sum <"$work/www/payload.bin" | cut -d' ' -f1)

printf 'listener 1883 198.19.0.1\nallow_anonymous true\n' >"$work/mosquitto.conf"
in_a mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
in_a python3 -m http.server 8000 --bind 127.0.0.1 --directory "$work/www" >/dev/null 2>&1 &
pids+=($!)
# Site a: TLS on link 1, WebSocket on link 2, QUIC on link 3 (UDP, the TLS socket's port number).
cat >"$work/a.yaml" <<YAML
siteName: lab-a
crypto:
  key: "weft-lab-transports-key"
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
    transportProtocol: websocket
    listenAddress: 198.18.2.1
    listenPort: 47080
  - mode: dedicated-address
    transportProtocol: quic
    listenAddress: 198.18.3.1
    listenPort: 47000
localExposedApps:
- appName: web
  appSocket: tcp:127.0.0.1:8000
stateDir: $work/a-state
YAML
wait_for 10 in_b bash -c 'exec 3<>/dev/tcp/198.19.0.1/1883'
wait_for 10 in_a bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000'
in_a "$weft" run --config "$work/a.yaml" &
pids+=($!)

echo "== lab-transports: one tunnel over a TLS, a WebSocket and a QUIC link, $rate each"
start_b ""
wait_for 30 links_up 1 tls
wait_for 30 links_up 1 websocket
wait_for 30 links_up 1 quic
mixed=$(fetch)
echo "   weft, TLS + WebSocket + QUIC: $mixed Mbit/s for three links of $rate"
transfer_with_cut 1 tls
wait_for 60 links_up 2 tls
transfer_with_cut 2 websocket
wait_for 60 links_up 2 websocket
transfer_with_cut 3 quic
wait_for 60 links_up 2 quic
stop_b

# The direct paths from b are forbidden; only the control link (the proxies, the broker) is open.
# (QUIC links cannot use a proxy: they stay down here.)
in_b iptables -A OUTPUT -d 198.18.0.0/16 -j REJECT
cat >"$work/tinyproxy.conf" <<CONF
Port 3128
Listen 198.19.0.1
Allow 198.19.0.0/24
Timeout 600
LogLevel Connect
LogFile "$work/tinyproxy.log"
BasicAuth lab s3cret
CONF
in_a tinyproxy -d -c "$work/tinyproxy.conf" >/dev/null 2>&1 &
pids+=($!)
in_a python3 scripts/socks5-proxy.py 1080 "$work/socks.log" 198.19.0.1 >/dev/null 2>&1 &
pids+=($!)
wait_for 10 in_b bash -c 'exec 3<>/dev/tcp/198.19.0.1/3128'
wait_for 10 in_b bash -c 'exec 3<>/dev/tcp/198.19.0.1/1080'
in_b bash -c 'exec 3<>/dev/tcp/198.18.1.1/47000' 2>/dev/null && fail "the direct path is still open"

for proxy in "http://lab:s3cret@198.19.0.1:3128" "socks5://198.19.0.1:1080"; do
    echo "== lab-transports: direct paths forbidden; links only through $proxy"
    start_b "  proxy: $proxy"
    wait_for 30 links_up 1 tls
    wait_for 30 links_up 1 websocket
    through=$(fetch)
    echo "   weft through the proxy: $through Mbit/s, sha256 equal"
    stop_b
done
grep -q 'CONNECT' "$work/tinyproxy.log" || fail "tinyproxy logged no CONNECT"
(($(grep -c 'CONNECT 198.18' "$work/socks.log") >= 2)) || fail "the SOCKS5 proxy carried no link"
echo "   tinyproxy and the SOCKS5 proxy each carried the TLS and the WebSocket link"
