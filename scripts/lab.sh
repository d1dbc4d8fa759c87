#!/usr/bin/env bash
# The network lab: two network namespaces joined by N veth links, each shaped with tc tbf, with
# packet loss (iptables statistic), cuts and restores; plus an unshaped control link for the
# message-channel broker. Addresses are in 198.18.0.0/15 only. Needs root.
#
#   scripts/lab.sh up RATE [RATE...]    links 1..N with these rates (e.g. 100mbit 20mbit)
#   scripts/lab.sh cut N | restore N    drop everything on link N both ways, or stop dropping
#   scripts/lab.sh loss N PERCENT       drop PERCENT % of packets sent on link N (0 clears)
#   scripts/lab.sh status               namespaces, addresses, qdiscs
#   scripts/lab.sh down                 remove everything the lab made
#   scripts/lab.sh exec a|b CMD...      run a command in namespace a or b
#
# Link N joins a's 198.18.N.1/24 to b's 198.18.N.2/24; the control link is 198.19.0.1/24 (a) and
# 198.19.0.2/24 (b). Running `up` again first removes the previous lab.
set -euo pipefail

ns_a=weft-lab-a
ns_b=weft-lab-b

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "lab: network namespaces need root; run as root (or with sudo)" >&2
        exit 77
    fi
}

exists() { ip netns list 2>/dev/null | grep -qw "$1"; }

down() {
    for ns in "$ns_a" "$ns_b"; do
        if exists "$ns"; then ip netns delete "$ns"; fi
    done
}

up() {
    (($# >= 1)) || { echo "lab: up needs at least one rate (e.g. 100mbit)" >&2; exit 2; }
    down
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
    local n=0
    for rate in "$@"; do
        n=$((n + 1))
        ip link add "wla$n" netns "$ns_a" type veth peer name "wlb$n" netns "$ns_b"
        ip -n "$ns_a" addr add "198.18.$n.1/24" dev "wla$n"
        ip -n "$ns_b" addr add "198.18.$n.2/24" dev "wlb$n"
        ip -n "$ns_a" link set "wla$n" up
        ip -n "$ns_b" link set "wlb$n" up
        shape "$n" "$rate"
    done
    ip link add wlac netns "$ns_a" type veth peer name wlbc netns "$ns_b"
    ip -n "$ns_a" addr add 198.19.0.1/24 dev wlac
    ip -n "$ns_b" addr add 198.19.0.2/24 dev wlbc
    ip -n "$ns_a" link set wlac up
    ip -n "$ns_b" link set wlbc up
    echo "lab: $n link(s) up: $*"
}

# A tbf on both ends: RATE each way, a burst of 64 KiB, at most 50 ms of queue.
shape() {
    local n=$1 rate=$2
    ip netns exec "$ns_a" tc qdisc replace dev "wla$n" root tbf rate "$rate" burst 64kb latency 50ms
    ip netns exec "$ns_b" tc qdisc replace dev "wlb$n" root tbf rate "$rate" burst 64kb latency 50ms
}

rule() { # ns action(-A/-D) chain iface-flag iface extra...
    local ns=$1 action=$2 chain=$3 flag=$4 iface=$5
    shift 5
    ip netns exec "$ns" iptables -w "$action" "$chain" "$flag" "$iface" "$@" -m comment --comment weft-lab -j DROP
}

cut() {
    local n=$1
    rule "$ns_a" -A OUTPUT -o "wla$n"
    rule "$ns_a" -A INPUT -i "wla$n"
    rule "$ns_b" -A OUTPUT -o "wlb$n"
    rule "$ns_b" -A INPUT -i "wlb$n"
    echo "lab: link $n cut"
}

restore() {
    local n=$1
    for pair in "$ns_a:OUTPUT:-o:wla$n" "$ns_a:INPUT:-i:wla$n" "$ns_b:OUTPUT:-o:wlb$n" "$ns_b:INPUT:-i:wlb$n"; do
        IFS=: read -r ns chain flag iface <<<"$pair"
        while rule "$ns" -D "$chain" "$flag" "$iface" 2>/dev/null; do :; done
    done
    echo "lab: link $n restored"
}

loss() {
    local n=$1 percent=$2
    for pair in "$ns_a:wla$n" "$ns_b:wlb$n"; do
        IFS=: read -r ns iface <<<"$pair"
        # Remove any earlier loss rule on this interface, whatever its probability.
        { ip netns exec "$ns" iptables -w -S OUTPUT | grep -- "-o $iface .*weft-lab-loss" || true; } |
            sed 's/^-A/-D/' | while read -r spec; do eval "ip netns exec $ns iptables -w $spec"; done
        if [[ $percent != 0 ]]; then
            ip netns exec "$ns" iptables -w -A OUTPUT -o "$iface" -m statistic --mode random \
                --probability "$(awk -v p="$percent" 'BEGIN{print p/100}')" \
                -m comment --comment weft-lab-loss -j DROP
        fi
    done
    echo "lab: link $n loss $percent %"
}

status() {
    for ns in "$ns_a" "$ns_b"; do
        exists "$ns" || { echo "lab: $ns does not exist"; continue; }
        echo "== $ns"
        ip -n "$ns" -brief addr show | grep -v '^lo'
        ip netns exec "$ns" tc qdisc show | grep tbf || true
        ip netns exec "$ns" iptables -w -S | grep weft-lab || true
    done
}

need_root
command=${1:-}
shift || true
case $command in
    up) up "$@" ;;
    down) down; echo "lab: removed" ;;
    cut) cut "$1" ;;
    restore) restore "$1" ;;
    loss) loss "$1" "$2" ;;
    status) status ;;
    exec)
        side=$1
        shift
        case $side in a) ip netns exec "$ns_a" "$@" ;; b) ip netns exec "$ns_b" "$@" ;; *) echo "lab: a or b" >&2; exit 2 ;; esac
        ;;
    *) sed -n '2,16p' "$0"; exit 2 ;;
esac
