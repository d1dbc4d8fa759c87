#!/usr/bin/env bash
# The Debian package on a clean Debian 12 root: builds it (scripts/package-deb.sh), checks it
# with lintian, installs it with apt into a root made by debootstrap (cached between runs in
# /var/cache/weft-package-test), runs `weft check` and two installed sites in two network
# namespaces (198.18.200.0/24) with a mosquitto from that root, carries an HTTP request between
# them, then removes and purges the package and shows what is left. Prints the binary's size
# and start-up RSS beside the source build's. Needs root.
#
#   scripts/package-test.sh [--deb FILE]      (FILE: a package already built)
set -euo pipefail
cd "$(dirname "$0")/.."
root_dir=$PWD
[[ $(id -u) -eq 0 ]] || { echo "package-test: skipped: debootstrap, chroot and namespaces need root"; exit 0; }

deb=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --deb) deb=$(realpath "$2"); shift 2 ;;
        *) echo "usage: $0 [--deb FILE]" >&2; exit 2 ;;
    esac
done

missing=()
for tool in debootstrap:debootstrap lintian:lintian dpkg-shlibdeps:dpkg-dev curl:curl; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool##*:}")
done
[[ ${#missing[@]} -eq 0 ]] || apt-get install -y -q "${missing[@]}" >/dev/null

if [[ -z $deb ]]; then
    deb=$(bash scripts/package-deb.sh | tail -n 1)
fi
echo "== package: $deb"
dpkg-deb --info "$deb" | sed -n 's/^ \(Version\|Depends\|Installed-Size\):/   \1:/p'

echo "== lintian"
# Errors fail the test; warnings are printed.
lintian --fail-on error --tag-display-limit 0 "$deb" || { echo "!! lintian found errors"; exit 1; }

# The Debian archive this machine's apt uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n 1)
[[ -n $mirror ]] || mirror=$(awk '$1 == "deb" && $3 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
[[ -n $mirror ]] || { echo "package-test: no Debian archive in this machine's apt sources" >&2; exit 1; }

cache=/var/cache/weft-package-test
base=$cache/bookworm-minbase.tar
mkdir -p "$cache"
if [[ ! -s $base ]]; then
    echo "== debootstrap bookworm (minbase), cached in $base"
    fresh=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$fresh" "$mirror" >"$cache/debootstrap.log" 2>&1 \
        || { tail -n 20 "$cache/debootstrap.log"; exit 1; }
    tar -C "$fresh" -cf "$base.part" . && mv "$base.part" "$base"
    rm -rf "$fresh"
fi

work=$(mktemp -d /tmp/weft-package-test.XXXXXX)
chroot_dir=$work/root
ns_a=weft-pkg-a
ns_b=weft-pkg-b
cleanup() {
    set +e
    for pid in $(cat "$work"/*.pid 2>/dev/null); do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for ns in $ns_a $ns_b; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    for mount in dev/pts dev proc sys; do umount -l "$chroot_dir/$mount" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$chroot_dir"
tar -C "$chroot_dir" -xf "$base"
# The root's own mode came from a mktemp folder (0700): the weft user must be able to walk it.
chmod 0755 "$chroot_dir"
mount -t proc proc "$chroot_dir/proc"
mount -t sysfs sys "$chroot_dir/sys"
mount --bind /dev "$chroot_dir/dev"
mount --bind /dev/pts "$chroot_dir/dev/pts"
cp /etc/resolv.conf "$chroot_dir/etc/resolv.conf"
# No service starts inside the root by itself: the test starts what it needs.
printf '#!/bin/sh\nexit 101\n' >"$chroot_dir/usr/sbin/policy-rc.d"
chmod 0755 "$chroot_dir/usr/sbin/policy-rc.d"
in_root() { chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

echo "== apt-get install ./$(basename "$deb") (and mosquitto) in the clean root"
in_root apt-get update -q >"$work/apt-update.log" 2>&1 || { tail -n 20 "$work/apt-update.log"; exit 1; }
snapshot() { in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /tmp \
    -o -path /var/cache -o -path /var/lib/apt/lists -o -path /var/log \) -prune -o -print | sort; }
# mosquitto first, so the snapshot before weft holds it and its own user.
in_root apt-get install -y -q --no-install-recommends mosquitto >"$work/apt-mosquitto.log" 2>&1 \
    || { tail -n 20 "$work/apt-mosquitto.log"; exit 1; }
snapshot >"$work/before"
cp "$deb" "$chroot_dir/tmp/"
# Without its Recommends (ca-certificates): weft must run on a minimal system too.
in_root apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" >"$work/apt-weft.log" 2>&1 \
    || { tail -n 30 "$work/apt-weft.log"; exit 1; }
in_root weft version
in_root ldd /usr/bin/weft | grep -q libswiftCore && { echo "!! the packaged binary needs the Swift runtime"; exit 1; }
in_root id weft >/dev/null || { echo "!! no weft user"; exit 1; }
config=$chroot_dir/etc/weft/config.yaml
grep -q change-me-to-a-long-random-secret "$config" && { echo "!! /etc/weft/config.yaml kept the sample key"; exit 1; }
owner=$(in_root stat -c '%U:%G %a' /etc/weft/config.yaml)
[[ $owner == "root:weft 640" ]] || { echo "!! $owner on /etc/weft/config.yaml (root:weft 640 expected)"; exit 1; }
for page in weft weft.run weft.check; do
    [[ -s $chroot_dir/usr/share/man/man1/$page.1.gz ]] || { echo "!! no man page $page.1"; exit 1; }
done
in_root weft check --config /etc/weft/config.yaml

echo "== two installed sites in two namespaces, an HTTP request between them"
ip netns add "$ns_a"
ip netns add "$ns_b"
ip link add weft-pkg-va netns "$ns_a" type veth peer name weft-pkg-vb netns "$ns_b"
ip -n "$ns_a" addr add 198.18.200.1/24 dev weft-pkg-va
ip -n "$ns_b" addr add 198.18.200.2/24 dev weft-pkg-vb
for ns in $ns_a $ns_b; do ip -n "$ns" link set lo up; done
ip -n "$ns_a" link set weft-pkg-va up
ip -n "$ns_b" link set weft-pkg-vb up
key=$(in_root weft key)
# Site A: the installed config, given the mesh's key, a broker, a link socket and an app.
sed -i -e "s/^  key: .*/  key: \"$key\"/" -e "s|mqtt://127.0.0.1:1883|mqtt://198.18.200.1:1883|" \
    -e 's/^siteName: .*/siteName: pkg-a/' "$config"
cat >>"$config" <<EOF
tunnel:
  localSockets:
  - mode: dedicated-address
    transportProtocol: tls
    publicAddress: 198.18.200.1
    listenPort: 54234
localExposedApps:
- appName: web
  appSocket: tcp:127.0.0.1:8080
EOF
cat >"$chroot_dir/etc/weft/site-b.yaml" <<EOF
siteName: pkg-b
crypto:
  key: "$key"
messageChannel:
  mqtt:
    brokerServer: mqtt://198.18.200.1:1883
stateDir: /var/lib/weft/site-b
remoteApps:
- siteName: pkg-a
  appName: web
  localSocket: tcp:127.0.0.1:28080
EOF
in_root chown root:weft /etc/weft/site-b.yaml
in_root chmod 0640 /etc/weft/site-b.yaml
in_root weft check --config /etc/weft/site-b.yaml >/dev/null
printf 'listener 1883 198.18.200.1\nallow_anonymous true\n' >"$chroot_dir/tmp/mosquitto.conf"
start() { # NAME NS COMMAND...: runs COMMAND in NS inside the root, in the background
    local name=$1 ns=$2
    shift 2
    ip netns exec "$ns" chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@" >"$work/$name.log" 2>&1 &
    echo $! >"$work/$name.pid"
}
start mosquitto "$ns_a" mosquitto -c /tmp/mosquitto.conf
mkdir -p "$work/www"
head -c 1048576 /dev/urandom >"$work/www/payload"
ip netns exec "$ns_a" python3 -m http.server 8080 --bind 127.0.0.1 --directory "$work/www" \
    >"$work/http.log" 2>&1 &
echo $! >"$work/http.pid"
start site-a "$ns_a" chroot --userspec=weft:weft / weft run --config /etc/weft/config.yaml
start site-b "$ns_b" chroot --userspec=weft:weft / weft run --config /etc/weft/site-b.yaml
fetched=""
for _ in $(seq 1 120); do
    if ip netns exec "$ns_b" curl -s --max-time 10 -o "$work/fetched" http://127.0.0.1:28080/payload \
        && cmp -s "$work/fetched" "$work/www/payload"; then
        fetched=yes
        break
    fi
    sleep 0.5
done
if [[ -z $fetched ]]; then
    echo "!! no HTTP response through the installed sites"
    tail -n 20 "$work/site-a.log" "$work/site-b.log"
    exit 1
fi
echo "   1 MiB fetched from site A's web app through site B, identical"
for name in site-a site-b; do kill "$(cat "$work/$name.pid")"; done
wait "$(cat "$work/site-a.pid")" "$(cat "$work/site-b.pid")" 2>/dev/null || true

echo "== size and start-up RSS"
# RSS once a site says it runs (site B's config: no broker reachable from a namespace of its own).
startup_rss() { # LABEL COMMAND...
    local label=$1 log=$work/rss.log
    shift
    ip netns exec "$ns_b" "$@" >"$log" 2>&1 &
    local pid=$! rss=""
    for _ in $(seq 1 600); do
        grep -q "site running" "$log" && { rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status"); break; }
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [[ -n $rss ]] || { echo "!! $label did not start:"; tail -n 5 "$log"; exit 1; }
    echo "   $label: RSS $rss KiB once running"
}
sed -e 's|/var/lib/weft/site-b|/tmp/weft-rss-state|' "$chroot_dir/etc/weft/site-b.yaml" >"$work/rss.yaml"
cp "$work/rss.yaml" "$chroot_dir/tmp/rss.yaml"
echo "   packaged binary: $(($(stat -c %s "$chroot_dir/usr/bin/weft") / 1024)) KiB, Swift runtime linked in"
startup_rss "packaged binary, in the Debian 12 root" chroot "$chroot_dir" /usr/bin/weft run --config /tmp/rss.yaml
source_binary=$root_dir/.build/release/weft
if [[ -x $source_binary ]]; then
    runtime=$(ldd "$source_binary" | awk '/libswift|libFoundation|lib_Foundation|libdispatch|libBlocksRuntime/ { print $3 }')
    echo "   source build (.build/release/weft): $(($(stat -c %s "$source_binary") / 1024)) KiB" \
        "+ $(du -c -k -L $runtime | tail -n 1 | cut -f1) KiB of shared Swift runtime libraries"
    sed -i 's|/tmp/weft-rss-state|'"$work"'/rss-state|' "$work/rss.yaml"
    startup_rss "source build, on this machine" "$source_binary" run --config "$work/rss.yaml"
else
    echo "   source build: not built (swift build -c release --product weft), not compared"
fi
echo "== remove, then purge"
# site-b.yaml is the admin's own file, not the package's: it goes before the purge, as an admin
# would delete it (Debian leaves such files, and /etc/weft with them).
mv "$chroot_dir/etc/weft/site-b.yaml" "$work/site-b.yaml"
in_root apt-get remove -y -q weft >"$work/apt-remove.log" 2>&1 || { tail -n 20 "$work/apt-remove.log"; exit 1; }
[[ ! -e $chroot_dir/usr/bin/weft ]] || { echo "!! remove left /usr/bin/weft"; exit 1; }
[[ -e $config && -d $chroot_dir/var/lib/weft ]] || { echo "!! remove deleted the config or the state"; exit 1; }
[[ -e $chroot_dir/var/lib/weft/identity.key || -n $(ls -A "$chroot_dir/var/lib/weft") ]] \
    || { echo "!! remove emptied the state directory"; exit 1; }
echo "   remove kept /etc/weft/config.yaml and /var/lib/weft"
in_root apt-get purge --autoremove -y -q weft >"$work/apt-purge.log" 2>&1 || { tail -n 20 "$work/apt-purge.log"; exit 1; }
snapshot >"$work/after"
# Dependencies apt brought go with --autoremove. Debian keeps system users on purge (their
# files may live elsewhere): passwd, group and their
# backups change, nothing else may remain.
left=$(comm -13 "$work/before" "$work/after" | grep -v -E '^/etc/(passwd|group|shadow|gshadow)-?$' || true)
changed=$(comm -23 "$work/before" "$work/after" || true)
if [[ -n $left || -n $changed ]]; then
    echo "!! after purge, files differ from before the install:"
    echo "$left" | sed 's/^/   + /'
    echo "$changed" | sed 's/^/   - /'
    exit 1
fi
in_root id weft >/dev/null && echo "   purge removed everything but the weft system user (kept, as Debian does)"

echo "package-test: passed"
