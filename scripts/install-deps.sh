#!/usr/bin/env bash
# Installs the Debian packages weft builds and tests with, if any is missing.
# Needs root (or sudo) only when something is missing. Swift itself is expected at /opt/swift
# or on PATH (https://www.swift.org/install/linux/debian/).
set -euo pipefail

# Build: pkg-config, libmosquitto-dev, libbluetooth-dev (Bluetooth links), libusb-1.0-0-dev (USB links), ngtcp2 with GnuTLS (QUIC links). Tests and the demo: a broker (mosquitto), real apps and
# clients (python3's HTTP server, redis over a Unix socket, curl) and a STUN server (coturn).
# The network lab: iproute2 (ip, tc, ss), iptables, ethtool. The benchmark's baselines and plot:
# socat, stunnel4, openssh (ssh -L), openssl, gnuplot-nox. The dashboard's test: chromium (headless)
# and a font for its screenshot. Link transports' tests: nginx (a TLS-terminating reverse proxy in
# front of WebSocket links) and tinyproxy (an HTTP CONNECT proxy). The NAT lab: tcpdump (a capture
# at the relay) and conntrack (a router forgets its mappings). weft top's test: tmux (a terminal
# whose screen the test reads and whose keys it types). The test command: gdb (a hung test process's
# threads are printed before it is killed).
packages=(pkg-config libmosquitto-dev libbluetooth-dev libusb-1.0-0-dev libngtcp2-dev libngtcp2-crypto-gnutls-dev libgnutls28-dev mosquitto mosquitto-clients python3 redis-server redis-tools curl coturn
    iproute2 iptables ethtool socat stunnel4 openssh-server openssh-client openssl gnuplot-nox
    chromium fonts-dejavu-core nginx-light tinyproxy tcpdump conntrack tmux dnsmasq-base bind9-dnsutils iperf3 gdb)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]} > 0)); then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "install-deps: need root to install ${missing[*]}" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Packaged mosquitto, redis and coturn may start system services; tests and the demo start their
# own on free ports and never use those.
if ! command -v swift >/dev/null && [[ -x /opt/swift/usr/bin/swift ]]; then
    echo "install-deps: Swift is at /opt/swift/usr/bin; add it to PATH"
fi
command -v swift >/dev/null || [[ -x /opt/swift/usr/bin/swift ]] || {
    echo "install-deps: Swift 6.1 or later is required: https://www.swift.org/install/linux/" >&2
    exit 1
}
