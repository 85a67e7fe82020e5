#!/usr/bin/env bash
# The router build's part of the test command (scripts/test.sh runs it):
#   1. builds netwarden for aarch64-unknown-linux-musl with the test profile (static, rust-lld)
#      and checks that it is static;
#   2. runs the gateway's unit tests for aarch64 under qemu-aarch64 (the cargo runner in
#      .cargo/config.toml);
#   3. runs `netwarden demo` with that aarch64 binary under qemu-aarch64 and checks that the
#      shipped capture's nmap scan raises its high alert;
#   4. packages that binary as a .deb (cross/package-deb.sh) and checks what dpkg-deb lists,
#      and the packaged default config with the packaged binary.
# One build (dev/test profile, dependencies at opt-level 2) serves all of it; the size-tuned
# release-small build is not part of CI (cross/size-report.sh, docs/install.md).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=aarch64-unknown-linux-musl
started=$SECONDS
say() { printf '   cross: %s (%ds)\n' "$*" $((SECONDS - started)) >&2; }

# One invocation builds the binary and the test harnesses, so both see the same features
# (dev-dependencies unify features only in invocations that build tests): `cargo test` below
# then compiles nothing again.
cargo build -p netwarden --target "$target" --lib --bins --tests --locked
bin=target/$target/debug/netwarden
if grep -qa 'ld-linux' "$bin"; then
    echo "cross/test.sh: $bin is not static" >&2
    exit 1
fi
say "built $(stat -c %s "$bin") bytes (unstripped, test profile)"

cargo test -p netwarden --target "$target" --lib --locked
say "unit tests passed under qemu-aarch64"

demo=$(qemu-aarch64 "$bin" demo 2>/dev/null)
printf '%s\n' "$demo" | grep -E '^(ALERT|[0-9]+ datagrams)' >&2
# The shipped capture's scanner (tests/data/pcap/scan-mixed.scan.json).
if ! printf '%s\n' "$demo" | grep -qE '^ALERT .*\[high\].*10\.213\.0\.1'; then
    echo "cross/test.sh: the aarch64 demo raised no high alert for the scanner 10.213.0.1" >&2
    exit 1
fi
say "aarch64 demo raised the scan alert"

out=$(mktemp -d "${TMPDIR:-/tmp}/netwarden-cross.XXXXXX")
trap 'rm -rf "$out"' EXIT
deb=$(cross/package-deb.sh "$bin" "$out")
info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb")
for want in 'Package: netwarden' 'Architecture: arm64' ' postinst' ' prerm' ' postrm' ' conffiles'; do
    grep -qF -- "$want" <<<"$info" || { echo "dpkg-deb --info lacks '$want':" >&2; echo "$info" >&2; exit 1; }
done
if grep -q '^ *Depends:' <<<"$info"; then
    echo "cross/test.sh: a static binary's package should depend on nothing" >&2
    exit 1
fi
for want in ./usr/bin/netwarden ./lib/systemd/system/netwarden.service \
    ./usr/share/netwarden/systemd/capture.conf ./etc/netwarden/netwarden.toml \
    ./usr/share/doc/netwarden/install.md; do
    grep -qE -- " $want\$" <<<"$contents" || { echo "dpkg-deb --contents lacks $want:" >&2; echo "$contents" >&2; exit 1; }
done
dpkg-deb -x "$deb" "$out/root"
dpkg-deb -e "$deb" "$out/root/DEBIAN"
grep -qx /etc/netwarden/netwarden.toml "$out/root/DEBIAN/conffiles"
grep -q 'adduser --system' "$out/root/DEBIAN/postinst"
for s in postinst prerm postrm; do sh -n "$out/root/DEBIAN/$s"; done
# The packaged config is valid for the packaged binary.
qemu-aarch64 "$out/root/usr/bin/netwarden" validate "$out/root/etc/netwarden/netwarden.toml" >&2
# The OpenWrt recipe's scripts.
sh -n cross/openwrt/netwarden/files/netwarden.init
python3 -m json.tool cross/openwrt/netwarden/files/netwarden-capture.json >/dev/null
say "$(basename "$deb"): $(stat -c %s "$deb") bytes; info, contents, config and unit checked"
