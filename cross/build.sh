#!/usr/bin/env bash
# Static router build of netwarden, linked with rust-lld (settings in .cargo/config.toml).
#
#   cross/build.sh [TARGET] [PROFILE]
#     TARGET   aarch64-unknown-linux-musl (default)
#     PROFILE  release-small (default; opt-level z, LTO, 1 codegen unit, panic=abort, no
#              unwind tables, stripped) or any profile of the workspace (release, dev)
#
# Installs the rustup target and the C cross compiler (Debian gcc-aarch64-linux-gnu, for ring
# and tract's kernels) when missing, builds, checks that the result is a static ELF for the target,
# and prints its path and size. Not run by CI: a fat-LTO build takes several minutes.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
target=${1:-aarch64-unknown-linux-musl}
profile=${2:-release-small}

case "$target" in
    aarch64-unknown-linux-musl) gcc=aarch64-linux-gnu-gcc; pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross) ;;
    *) echo "build.sh: $target is not configured (see cross/README.md)" >&2; exit 1 ;;
esac
rustup target list --installed | grep -qx "$target" || rustup target add "$target"
if ! command -v "$gcc" >/dev/null; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
fi

if [[ $profile == release-small ]]; then
    # panic = "abort": nothing unwinds, so the DWARF unwind tables are dead weight. The flag
    # stops most crates from emitting them; the linker script drops what remains (the
    # precompiled standard library's, and those of functions calling into it: 1.85 MB at
    # opt-level "z"), and no .eh_frame_hdr is written. A panic still prints its message and
    # aborts; its backtrace is empty. See cross/no-eh-frame.ld and docs/install.md.
    export RUSTFLAGS="${RUSTFLAGS:-} -C force-unwind-tables=no -C link-arg=--no-eh-frame-hdr -C link-arg=-T$root/cross/no-eh-frame.ld"
fi
features=()
# The router binary leaves out the central-side and lab commands (eval, fleet publish|status|
# collect, plot: the `central` feature, on in every other build) to stay under 10 MB.
[[ $profile == release-small ]] && features=(--no-default-features)
cargo build -p netwarden --target "$target" --profile "$profile" --locked "${features[@]}"
dir=$profile
[[ $profile == dev ]] && dir=debug
bin=target/$target/$dir/netwarden
if grep -qa 'ld-linux' "$bin"; then
    echo "build.sh: $bin is dynamically linked" >&2
    exit 1
fi
printf '%s\t%s bytes\n' "$bin" "$(stat -c %s "$bin")"
