#!/usr/bin/env bash
# The VM lab: Debian's own kernel under QEMU, for what this host's kernel cannot do (virtual
# Bluetooth controllers, a virtual USB device controller with its host side).
#
#   scripts/vmlab.sh                 boots the lab and runs its checks (scripts/vmlab/guest-*.sh)
#   scripts/vmlab.sh run SCRIPT...   boots and runs SCRIPT (a path on this machine) as root in the guest
#
# Nothing is installed on the host but packages from Debian's archive (QEMU, busybox, BlueZ's
# tools). The kernel package is only downloaded and unpacked into the cache folder. The guest's
# root is this machine's own root, shared read-only over virtio-9p under a tmpfs overlay, so the
# guest runs the weft binary just built, mosquitto and btvirt as they are here. The guest has no
# network device: nothing leaves it. KVM is used when /dev/kvm works, software emulation (TCG)
# otherwise; the lab says which.
#
# Environment: WEFT_VMLAB_CACHE (default /var/cache/weft-vmlab), WEFT_VMLAB_TIMEOUT (seconds per
# boot, default 600), WEFT_VMLAB_MEMORY (MiB, default 1024), WEFT_VMLAB_ACCEL=tcg (skip the KVM probe).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

cache=${WEFT_VMLAB_CACHE:-/var/cache/weft-vmlab}
boot_timeout=${WEFT_VMLAB_TIMEOUT:-600}
memory=${WEFT_VMLAB_MEMORY:-1024}

say() { echo "vmlab: $*"; }

skip() {
    say "skipped: $*"
    exit 0
}

if [[ $(id -u) -ne 0 ]]; then
    skip "needs root (apt-get, and the guest's modules are unpacked as root)"
fi

# Packages: QEMU, busybox for the initramfs, kmod for depmod, BlueZ and its test tools for the guest.
packages=(qemu-system-x86 busybox-static kmod bluez bluez-test-tools)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed and could not be"

# One lab at a time on this machine: runs from other checkouts wait here (the cache is shared,
# and two emulated guests at once would only slow each other down).
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9

# Debian's kernel: the version linux-image-amd64 depends on, downloaded and unpacked, never installed.
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $kernel_package ]] || skip "apt knows no linux-image-amd64 (no Debian archive configured)"
release=${kernel_package#linux-image-}
kernel_root="$cache/$kernel_package"
if [[ ! -f $kernel_root/boot/vmlinuz-$release ]]; then
    say "fetching $kernel_package"
    mkdir -p "$cache/download"
    chmod 777 "$cache/download"
    (cd "$cache/download" && apt-get download -q "$kernel_package" >/dev/null 2>&1) ||
        skip "apt-get download $kernel_package failed"
    rm -rf "$kernel_root.tmp"
    dpkg-deb -x "$cache/download/${kernel_package}"_*.deb "$kernel_root.tmp"
    depmod -b "$kernel_root.tmp" "$release"
    rm -rf "$kernel_root"
    mv "$kernel_root.tmp" "$kernel_root"
    rm -f "$cache/download/${kernel_package}"_*.deb
fi
# Bookworm's kernel packages ship lib/modules, later ones usr/lib/modules.
modules="$kernel_root/lib/modules/$release"
[[ -d $modules ]] || modules="$kernel_root/usr/lib/modules/$release"

# The initramfs: busybox, the modules that mount the shared root, and /init (scripts/vmlab/init).
initrd="$cache/initrd-$release-$(cat "$repo/scripts/vmlab/init" "$0" | sha256sum | cut -c1-16).cpio"
if [[ ! -f $initrd ]]; then
    say "building the initramfs"
    staging=$(mktemp -d)
    mkdir -p "$staging"/{bin,dev,proc,sys,mnt,newroot,modules}
    cp /bin/busybox "$staging/bin/busybox"
    for applet in sh mount umount mkdir insmod switch_root cat echo sleep poweroff; do
        ln -s busybox "$staging/bin/$applet"
    done
    # The modules for virtio-9p and overlayfs, dependencies first (the order /init loads them in).
    load_order=()
    add_module() {
        local name=$1 dependency
        for dependency in $(modinfo -b "$kernel_root" -k "$release" -F depends "$name" | tr ',' ' '); do
            add_module "$dependency"
        done
        local file
        file=$(modinfo -b "$kernel_root" -k "$release" -n "$name")
        [[ " ${load_order[*]} " == *" $(basename "$file") "* ]] && return
        cp "$file" "$staging/modules/"
        load_order+=("$(basename "$file")")
    }
    for module in virtio_pci 9pnet_virtio 9p overlay; do add_module "$module"; done
    printf '%s\n' "${load_order[@]}" >"$staging/modules/order"
    cp "$repo/scripts/vmlab/init" "$staging/init"
    chmod 755 "$staging/init"
    (cd "$staging" && find . | busybox cpio -o -H newc 2>/dev/null) >"$initrd.$$"
    mv "$initrd.$$" "$initrd"
    rm -rf "$staging"
fi

accel=(-accel tcg)
accel_name="TCG (software emulation: slower)"
# KVM works when a kernel boots with it: on some hosts (nested virtualization) /dev/kvm opens but
# the guest never runs, so the probe boots the lab's kernel without a root and looks for its banner.
if [[ -r /dev/kvm && -w /dev/kvm && ${WEFT_VMLAB_ACCEL:-} != tcg ]]; then
    banner=$(timeout 30 qemu-system-x86_64 -accel kvm -cpu host -m 256 -kernel "$kernel_root/boot/vmlinuz-$release" \
        -append "console=ttyS0 panic=-1" -nic none -display none -serial stdio -monitor none -no-reboot \
        </dev/null 2>/dev/null || true)
    if grep -q "Linux version" <<<"$banner"; then
        accel=(-accel kvm -cpu host)
        accel_name="KVM"
    fi
fi

# Boots the guest once to run `$1` (a path on this machine) as root; its output comes back on the
# serial console, and its exit status in a marker line.
boot() {
    local script=$1 log status
    log=$(mktemp)
    say "booting Debian's $release with $accel_name to run ${script#"$repo"/}"
    local started=$SECONDS
    timeout --kill-after=10 "$boot_timeout" qemu-system-x86_64 "${accel[@]}" -m "$memory" -smp 2 \
        -kernel "$kernel_root/boot/vmlinuz-$release" -initrd "$initrd" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 weft.modules=$modules weft.script=$script weft.repo=$repo" \
        -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
        -nic none -display none -monitor none -serial stdio -no-reboot </dev/null 2>&1 |
        tr -d '\r' | tee "$log" | grep -v -E '^weft-vmlab-status ' || true
    status=$(awk '/^weft-vmlab-status / {print $2}' "$log" | tail -1)
    rm -f "$log"
    if [[ -z $status ]]; then
        say "the guest ended without a result after $((SECONDS - started)) s (a boot failure, or the ${boot_timeout} s limit)"
        return 1
    fi
    say "${script#"$repo"/}: exit status $status after $((SECONDS - started)) s"
    return "$status"
}

if [[ ${1:-} == run ]]; then
    shift
    for script in "$@"; do boot "$(realpath "$script")"; done
    exit 0
fi

failed=0
for script in "$repo"/scripts/vmlab/guest-*.sh; do
    boot "$script" || failed=1
done
exit "$failed"
