#!/usr/bin/env bash
# The network lab: two network namespaces joined by N veth links, each shaped with tc tbf, with
# one-way delay, packet loss (iptables statistic), cuts and restores; plus an unshaped control
# link for the message-channel broker. Addresses are in 198.18.0.0/15 only. Needs root.
#
#   scripts/lab.sh up LINK [LINK...]    links 1..N, each RATE or RATE@DELAY[/DELAY_BACK]
#                                       (e.g. 100mbit 50mbit@25ms: link 2 has 25 ms each way,
#                                       ~50 ms RTT; 20mbit@40ms/10ms: 40 ms a->b, 10 ms b->a)
#   scripts/lab.sh cut N | restore N    drop everything on link N both ways, or stop dropping
#   scripts/lab.sh loss N PERCENT       drop PERCENT % of packets sent on link N (0 clears)
#   scripts/lab.sh status               namespaces, addresses, qdiscs, delays
#   scripts/lab.sh down                 remove everything the lab made
#   scripts/lab.sh exec a|b CMD...      run a command in namespace a or b
#
# Link N joins a's 198.18.N.1/24 (wlaN) to b's 198.18.N.2/24 (wlbN); the control link is
# 198.19.0.1/24 (a) and 198.19.0.2/24 (b). Running `up` again first removes the previous lab.
# This kernel has no netem, so a delayed link runs through a third namespace, weft-lab-m:
# wlaN <-> wmaN [scripts/delaybridge.py, a user-space L2 delay line] wmbN <-> wlbN. The tbf
# shaping stays on wlaN and wlbN (a link's queue, then its propagation delay); segmentation and
# checksum offloads are off on those four veths (the bridge moves plain frames). Bridge pids
# and logs are in /run/weft-lab/.
set -euo pipefail

ns_a=weft-lab-a
ns_b=weft-lab-b
ns_m=weft-lab-m
run=/run/weft-lab
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "lab: network namespaces need root; run as root (or with sudo)" >&2
        exit 77
    fi
}

exists() { ip netns list 2>/dev/null | grep -qw "$1"; }

# A process that is gone or a zombie (its parent is init, which may reap it late) is not alive.
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z ]]
}

# Stops the delay bridges (SIGTERM: each prints its counters to its log), then the namespaces.
stop_bridges() {
    local pidfile pid n log
    for pidfile in "$run"/bridge*.pid; do
        [[ -e $pidfile ]] || continue
        pid=$(<"$pidfile")
        if [[ $pid =~ ^[0-9]+$ ]] && grep -qa delaybridge "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 100); do alive "$pid" || break; sleep 0.05; done
            if alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        fi
        rm -f "$pidfile"
    done
    for log in "$run"/bridge*.log; do
        [[ -e $log ]] || continue
        n=${log##*/bridge}
        n=${n%.log}
        tail -n 1 "$log" | sed "s/^delaybridge:/lab: link $n bridge:/" >&2
    done
}

down() {
    stop_bridges
    for ns in "$ns_a" "$ns_b" "$ns_m"; do
        if exists "$ns"; then ip netns delete "$ns"; fi
    done
    rm -rf "$run"
}

# RATE[@DELAY[/DELAY_BACK]] -> "RATE DELAY DELAY_BACK" (ms; "" when the link has no delay).
parse_link() {
    local spec=$1 ms='([0-9]+(\.[0-9]+)?)(ms)?'
    if [[ $spec =~ ^([^@]+)$ ]]; then
        echo "$spec"
    elif [[ $spec =~ ^([^@]+)@${ms}(/${ms})?$ ]]; then
        echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]} ${BASH_REMATCH[6]:-${BASH_REMATCH[2]}}"
    else
        echo "lab: bad link '$spec' (RATE or RATE@DELAYms or RATE@DELAYms/DELAY_BACKms)" >&2
        exit 2
    fi
}

offloads_off() { # ns iface
    ip netns exec "$1" ethtool -K "$2" tx off sg off tso off gso off gro off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off gso off tso off gro off
}

# Link n through namespace m: wlaN <-> wmaN, bridge, wmbN <-> wlbN.
delayed_link() {
    local n=$1 delay=$2 back=$3
    if ! exists "$ns_m"; then
        ip netns add "$ns_m"
        ip -n "$ns_m" link set lo up
        # No addresses, no IPv6 chatter: m only moves frames.
        ip netns exec "$ns_m" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
    ip link add "wla$n" netns "$ns_a" type veth peer name "wma$n" netns "$ns_m"
    ip link add "wlb$n" netns "$ns_b" type veth peer name "wmb$n" netns "$ns_m"
    offloads_off "$ns_a" "wla$n"
    offloads_off "$ns_m" "wma$n"
    offloads_off "$ns_m" "wmb$n"
    offloads_off "$ns_b" "wlb$n"
    ip -n "$ns_m" link set "wma$n" up
    ip -n "$ns_m" link set "wmb$n" up
    mkdir -p "$run"
    local pidfile=$run/bridge$n.pid log=$run/bridge$n.log
    rm -f "$pidfile"
    echo "$delay/$back" >"$run/delay$n"
    setsid -f ip netns exec "$ns_m" /usr/bin/python3 "$here/delaybridge.py" "wma$n" "wmb$n" \
        --delay "$delay" --delay-back "$back" --pidfile "$pidfile" </dev/null >"$log" 2>&1
    for _ in $(seq 100); do
        [[ -s $pidfile ]] && return 0
        sleep 0.05
    done
    echo "lab: the delay bridge for link $n did not start:" >&2
    cat "$log" >&2
    exit 1
}

up() {
    (($# >= 1)) || { echo "lab: up needs at least one rate (e.g. 100mbit)" >&2; exit 2; }
    local spec
    for spec in "$@"; do parse_link "$spec" >/dev/null; done
    down
    ip netns add "$ns_a"
    ip netns add "$ns_b"
    for ns in "$ns_a" "$ns_b"; do ip -n "$ns" link set lo up; done
    local n=0 rate delay back
    for spec in "$@"; do
        n=$((n + 1))
        read -r rate delay back <<<"$(parse_link "$spec")"
        if [[ -n $delay ]]; then
            delayed_link "$n" "$delay" "$back"
        else
            ip link add "wla$n" netns "$ns_a" type veth peer name "wlb$n" netns "$ns_b"
        fi
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
        { ip netns exec "$ns" iptables -w -S INPUT | grep -- "-i $iface .*weft-lab-loss" || true; } |
            sed 's/^-A/-D/' | while read -r spec; do eval "ip netns exec $ns iptables -w $spec"; done
        # Packets are lost on arrival, as on a path: a drop in the sender's own OUTPUT chain
        # would fail its sendmsg with EPERM instead, which no real path does.
        if [[ $percent != 0 ]]; then
            ip netns exec "$ns" iptables -w -A INPUT -i "$iface" -m statistic --mode random \
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
    if exists "$ns_m"; then
        echo "== $ns_m (delay bridges)"
        local file n pid state
        for file in "$run"/delay*; do
            [[ -e $file ]] || continue
            n=${file##*/delay}
            pid=$(cat "$run/bridge$n.pid" 2>/dev/null || echo "?")
            state="not running"
            if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then state="pid $pid"; fi
            echo "link $n: delay $(sed 's|/| ms a->b, |' "$file") ms b->a (wma$n <-> wmb$n, bridge $state)"
        done
    fi
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
    *) sed -n '2,21p' "$0"; exit 2 ;;
esac
