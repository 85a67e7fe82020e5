#!/usr/bin/env bash
# What the router binary weighs, and what in it costs what (docs/install.md, "Size of the router
# binary").
#
#   cross/size-report.sh [TARGET]      (default aarch64-unknown-linux-musl)
#
# Builds the `release-small` profile once with `strip = false` (same code, symbols kept), then:
#   - strips a copy with binutils' strip: that size is what `cross/build.sh` ships;
#   - prints the ELF sections (binutils' size -A);
#   - sums the sizes of the code and data symbols (nm -S, demangled) by crate, so that tract,
#     rustls/ring, sled, tokio, ... can be told apart. Symbols that LTO merged or that have
#     no size (hand-written assembly, some C) land in "(unattributed)": the sum of the rows is
#     less than the file size, and the last line says by how much.
# Not run by CI (a fat-LTO build of tract takes about 15 minutes on 2 cores).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=${1:-aarch64-unknown-linux-musl}
case "$target" in
    aarch64-unknown-linux-musl) tools=aarch64-linux-gnu ;;
    *) echo "size-report.sh: $target is not configured (see cross/README.md)" >&2; exit 1 ;;
esac

started=$SECONDS
# cross/build.sh's release-small build (same flags), with the symbols kept.
CARGO_PROFILE_RELEASE_SMALL_STRIP=false cross/build.sh "$target" release-small >/dev/null
built=$((SECONDS - started))
bin=target/$target/release-small/netwarden
out=$(mktemp -d "${TMPDIR:-/tmp}/netwarden-size.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$tools-strip" -o "$out/netwarden" "$bin"
stripped=$(stat -c %s "$out/netwarden")

printf 'build: %s s (release-small, %s)\n' "$built" "$target"
printf 'unstripped: %s bytes\nstripped:   %s bytes (%.2f MiB; goal 10 MB = 10,000,000 bytes)\n\n' \
    "$(stat -c %s "$bin")" "$stripped" "$(echo "$stripped / 1048576" | bc -l)"
"$tools-size" -A "$out/netwarden" | awk 'NR > 2 && $2 > 4096 { printf "  %-22s %10d\n", $1, $2 }'
echo
"$tools-nm" -S --size-sort --demangle "$bin" | python3 -c '
import re, sys
sizes, total = {}, 0
for line in sys.stdin:
    parts = line.rstrip("\n").split(" ", 3)
    if len(parts) < 4 or parts[2] not in "tTrRdDbBwWvV":
        continue
    size, name = int(parts[1], 16), parts[3]
    if parts[2] in "bB":          # .bss takes no file space
        continue
    total += size
    # The crate: the first path segment, looking through <impl ... as ...> and generics.
    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name.lstrip("<&*[(_ "))
    if m:
        crate = m.group(1)
    elif name.startswith("ring_core_"):
        crate = "ring"
    elif name.startswith("OUTLINED_FUNCTION_"):
        crate = "(LLVM-outlined, any crate)"
    else:
        crate = "(C: musl libc and others)"
    if crate.startswith("tract_"):
        crate = "tract (all tract_* crates)"
    sizes[crate] = sizes.get(crate, 0) + size
rows = sorted(sizes.items(), key=lambda kv: -kv[1])
print("symbol bytes by crate (code and data, before stripping):")
for crate, n in rows[:25]:
    print(f"  {crate:34s} {n:10,d}  {100*n/total:5.1f} %")
rest = sum(n for _, n in rows[25:])
label = "(the other %d crates)" % max(len(rows) - 25, 0)
print(f"  {label:34s} {rest:10,d}  {100*rest/total:5.1f} %")
label = "total with a size"
print(f"  {label:34s} {total:10,d}")
'
