#!/usr/bin/env bash
# Builds the Cortex-M firmware image (cross/firmware-image, release: opt-level z, LTO,
# panic=abort), boots it on QEMU's MPS2 AN386 board (Cortex-M4F) with semihosting, and checks the
# flow table it prints against the built-in frames. Prints the image's flash and RAM use.
# Called by scripts/test.sh; needs qemu-system-arm (Debian package qemu-system-arm), readelf
# (binutils) and the thumbv7em-none-eabihf Rust target, which scripts/test.sh installs.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
cargo build --release --locked
elf=target/thumbv7em-none-eabihf/release/netwarden-firmware-image

out="$(timeout 60 qemu-system-arm -machine mps2-an386 -nographic \
    -semihosting-config enable=on,target=native -kernel "$elf")"
printf '%s\n' "$out" | sed 's/^/  qemu: /' >&2

# What the built-in frames must give (see src/main.rs): bytes are IP lengths (40-byte TCP/IP
# headers + payload; IPv6 UDP 48 + payload; ICMP echo 84).
expect=(
    "refused: arp=Some(NotIp) cut=Some(Truncated)"
    "flow table: 4 of 12 flows open"
    "flow proto=6 10.0.0.1:40000 > 10.0.0.2:80 vlan=0 s2d=4p/260B d2s=3p/1120B dur=13ms flags=0x1b/0x1b"
    "flow proto=17 [2001:db8::1]:5353 > [2001:db8::35]:53 vlan=42 s2d=1p/78B d2s=1p/138B dur=11ms flags=0x00/0x00"
    "flow proto=1 10.0.0.1:0 > 10.0.0.2:2048 vlan=0 s2d=1p/84B d2s=0p/0B dur=0ms flags=0x00/0x00"
    "flow proto=1 10.0.0.2:0 > 10.0.0.1:0 vlan=0 s2d=1p/84B d2s=0p/0B dur=0ms flags=0x00/0x00"
    "stats: frames=13 packets=11 bytes=1764 not_ip=1 truncated=1 flows=4 ended=0"
    "arp: packets=3 requests=1 replies=2 unsolicited=1 bindings=2 changed=1 flip=Some((10.0.0.2, 2, 102, true))"
)
fail=0
for line in "${expect[@]}"; do
    if ! grep -qxF -- "$line" <<<"$out"; then
        echo "firmware image: missing line: $line" >&2
        fail=1
    fi
done
((fail == 0)) || exit 1

# Flash: what is loaded from flash (vector table, code, read-only data, .data's initial values).
# RAM: static data (.data, .bss, .uninit); the stack (the meter lives there) is on top.
flash=0
ram=0
while read -r name size; do
    case "$name" in
    .vector_table | .text | .rodata) flash=$((flash + 16#$size)) ;;
    .data) flash=$((flash + 16#$size)) ram=$((ram + 16#$size)) ;;
    .bss | .uninit) ram=$((ram + 16#$size)) ;;
    esac
done < <(readelf -SW "$elf" | sed -n 's/^ *\[ *[0-9]*\] *\(\.[^ ]*\) *[A-Z_]* *[0-9a-f]* *[0-9a-f]* *\([0-9a-f]*\) .*/\1 \2/p')
echo "firmware image: flash $flash bytes ($((flash * 10 / 1024 / 10)).$((flash * 10 / 1024 % 10)) KB of the 64 KB budget), static RAM $ram bytes" >&2
grep -F "meter:" <<<"$out" | sed 's/^/firmware image: /' >&2
echo "firmware image: OK (flow table as expected under qemu-system-arm mps2-an386)" >&2
