#!/usr/bin/env bash
# Builds weft_<version>_<arch>.deb with dpkg-deb from a release build that links the Swift runtime
# in (--static-swift-stdlib): the target needs no Swift toolchain, only the Debian libraries named
# in Depends, which dpkg-shlibdeps computes from the binary.
#
#   scripts/package-deb.sh [--out DIR] [--no-build]
#
# --no-build packages what .build-deb/release/weft already holds. The package goes to DIR
# (default .build-deb/packages); its path is the last line printed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
[[ -x /opt/swift/usr/bin/swift ]] && export PATH="/opt/swift/usr/bin:$PATH"

out=$root/.build-deb/packages
build=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --out) out=$(realpath -m "$2"); shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "usage: $0 [--out DIR] [--no-build]" >&2; exit 2 ;;
    esac
done

# dpkg-shlibdeps is in dpkg-dev; binutils strips the binary.
missing=()
command -v dpkg-shlibdeps >/dev/null || missing+=(dpkg-dev)
command -v strip >/dev/null || missing+=(binutils)
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "package-deb: needs ${missing[*]} (apt-get install ${missing[*]})" >&2
        exit 1
    fi
    apt-get install -y -q "${missing[@]}" >/dev/null
fi

version=$(sed -n 's/^ *static let release = "\([^"]*\)".*/\1/p' Sources/weft/WeftVersion.swift)
[[ -n $version ]] || { echo "package-deb: no release version in Sources/weft/WeftVersion.swift" >&2; exit 1; }
arch=$(dpkg --print-architecture)
scratch=$root/.build-deb

if [[ $build -eq 1 ]]; then
    # Man pages first: ArgumentParser's generate-manual plugin builds the package its own way
    # (release, runtime not linked in), so the static link below must come after it.
    echo "== man pages (ArgumentParser's generate-manual)"
    rm -rf "$scratch/plugins/GenerateManual/outputs"
    swift package --scratch-path "$scratch" plugin generate-manual --multi-page \
        --authors "the weft developers" >/dev/null
    echo "== release build, Swift runtime linked in"
    swift build -c release --static-swift-stdlib --product weft --scratch-path "$scratch"
fi
binary=$scratch/release/weft
[[ -x $binary ]] || { echo "package-deb: $binary is not built" >&2; exit 1; }
if ldd "$binary" | grep -q libswiftCore; then
    echo "package-deb: $binary links the Swift runtime dynamically (build it with --static-swift-stdlib)" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/weft_${version}_${arch}
doc=$stage/usr/share/doc/weft

install -D -m 0755 "$binary" "$stage/usr/bin/weft"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/weft"

# The hardened unit of examples/systemd, with the packaged binary's path.
install -d "$stage/lib/systemd/system"
sed -e 's|/usr/local/bin/weft|/usr/bin/weft|g' \
    -e '/^#   install -m 0644 weft.service/,/^#   systemctl daemon-reload/d' \
    examples/systemd/weft.service >"$stage/lib/systemd/system/weft.service"
chmod 0644 "$stage/lib/systemd/system/weft.service"

# The config postinst copies to /etc/weft on first install, and the full reference.
install -D -m 0644 packaging/debian/config.yaml "$stage/usr/share/weft/config.yaml"
install -d "$doc"
gzip -9n <config.yaml >"$doc/config.yaml.example.gz"
gzip -9n <README.md >"$doc/README.md.gz"
install -m 0644 packaging/debian/copyright "$doc/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")/" \
    packaging/debian/changelog | gzip -9n >"$doc/changelog.gz"
chmod 0644 "$doc"/*

# Man pages from the command line's help, compressed as Debian wants them.
install -d "$stage/usr/share/man/man1"
pages=$scratch/plugins/GenerateManual/outputs/weft
if compgen -G "$pages/weft*.1" >/dev/null; then
    for page in "$pages"/weft*.1; do
        # whatis reads NAME: a subcommand's page is named weft.trust.pin there, as its file is,
        # and its synopsis keeps "weft trust pin".
        awk '/^\.Nm "[^"]*"$/ && !named { full = substr($0, 5); name = full; gsub(/"/, "", name);
                 gsub(/ /, ".", name); print ".Nm " name; named = 1; next }
             /^\.Nm$/ && full != "" { print ".Nm " full; next }
             { print }' "$page" | gzip -9n >"$stage/usr/share/man/man1/$(basename "$page").gz"
    done
else
    echo "package-deb: no man pages in $pages (run without --no-build once)" >&2
    exit 1
fi
chmod 0644 "$stage"/usr/share/man/man1/*

# Shell completions, from the binary itself.
install -d "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
# (bash completions are sourced, not run: no #! line)
"$stage/usr/bin/weft" --generate-completion-script bash | sed '1{/^#!/d}' \
    >"$stage/usr/share/bash-completion/completions/weft"
"$stage/usr/bin/weft" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_weft"
"$stage/usr/bin/weft" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/weft.fish"
chmod 0644 "$stage"/usr/share/bash-completion/completions/weft "$stage"/usr/share/zsh/vendor-completions/_weft \
    "$stage"/usr/share/fish/vendor_completions.d/weft.fish

# Yams, the YAML parser, compiles libyaml's C sources into its CYaml module; a static Swift
# binary cannot take Debian's libyaml-0-2 instead. Said to lintian with the reason.
install -D -m 0644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/weft"

# Depends: the shared libraries the binary links, as dpkg-shlibdeps names their packages.
mkdir -p "$work/shlibs/debian"
printf 'Source: weft\n\nPackage: weft\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e "$stage/usr/bin/weft" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[[ -n $shlibs ]] || { echo "package-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
# postinst creates the weft user (adduser) and registers the unit (deb-systemd-helper).
depends="$shlibs, adduser, init-system-helpers (>= 1.54~)"

install -d -m 0755 "$stage/DEBIAN"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
size=$(du -k -s --apparent-size "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" -e "s/@DEPENDS@/$depends/" \
    packaging/debian/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

mkdir -p "$out"
package=$out/weft_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$package" >/dev/null
echo "weft $version ($arch): Depends: $depends"
echo "$package"
