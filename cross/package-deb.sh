#!/usr/bin/env bash
# Builds netwarden_<version>_<arch>.deb from an already built netwarden binary, with dpkg-deb
# only (no cargo tools): the binary, the systemd unit and its capture drop-in, the default
# config (a conffile), and maintainer scripts that create the unprivileged `netwarden` user.
#
#   cross/package-deb.sh BINARY [OUT_DIR]        (OUT_DIR defaults to target/deb)
#
# The architecture is read from the binary's ELF header (aarch64 -> arm64, x86_64 -> amd64,
# ARM -> armhf). A static musl binary needs no Depends; a glibc one needs libc6.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin=${1:?usage: cross/package-deb.sh BINARY [OUT_DIR]}
out=${2:-$root/target/deb}
[[ -f $bin ]] || { echo "package-deb.sh: $bin: no such file" >&2; exit 1; }

# ELF e_machine (2 bytes, little endian, at offset 18).
machine=$(od -An -tu2 -j18 -N2 "$bin" | tr -d ' ')
case "$machine" in
    183) arch=arm64 ;;
    62) arch=amd64 ;;
    40) arch=armhf ;;
    *) echo "package-deb.sh: $bin: unknown ELF machine ${machine:-?}" >&2; exit 1 ;;
esac
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/gateway/Cargo.toml" | head -n1)
depends=""
# A dynamically linked binary has a PT_INTERP segment naming its loader.
if grep -qa 'ld-linux' "$bin"; then
    depends="Depends: libc6"
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/netwarden-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
pkg=$stage/netwarden
install -D -m 0755 "$bin" "$pkg/usr/bin/netwarden"
install -D -m 0644 "$root/cross/systemd/netwarden.service" "$pkg/lib/systemd/system/netwarden.service"
install -D -m 0644 "$root/cross/systemd/capture.conf" "$pkg/usr/share/netwarden/systemd/capture.conf"
install -D -m 0640 "$root/cross/debian/netwarden.toml" "$pkg/etc/netwarden/netwarden.toml"
install -D -m 0644 "$root/docs/install.md" "$pkg/usr/share/doc/netwarden/install.md"
install -D -m 0644 "$root/docs/netwarden.example.toml" "$pkg/usr/share/doc/netwarden/netwarden.example.toml"
cat >"$pkg/usr/share/doc/netwarden/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: netwarden
Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
install -d "$pkg/DEBIAN"
for s in postinst prerm postrm; do
    install -m 0755 "$root/cross/debian/$s" "$pkg/DEBIAN/$s"
done
echo /etc/netwarden/netwarden.toml >"$pkg/DEBIAN/conffiles"
size_kb=$(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
{
    echo "Package: netwarden"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: netwarden developers <netwarden@example.invalid>"
    echo "Section: net"
    echo "Priority: optional"
    echo "Installed-Size: $size_kb"
    [[ -z $depends ]] || echo "$depends"
    echo "Description: network anomaly detection for branch routers"
    echo " netwarden collects NetFlow v5/v9/IPFIX (or captures packets), scores every flow"
    echo " with an on-box autoencoder and publishes alerts over MQTT from a durable outbox."
} >"$pkg/DEBIAN/control"

mkdir -p "$out"
deb=$out/netwarden_${version}_${arch}.deb
# root:root ownership inside the archive without fakeroot.
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
