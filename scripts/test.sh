#!/usr/bin/env bash
# Runs every netwarden test on a fresh Debian machine: installs what the tests need (the real
# peers from apt, the Rust components and targets, the Python venv), then
#   format and lint, the no_std firmware build for Cortex-M, Rust unit/integration/end-to-end
#   tests (mosquitto, nfcapd, softflowd, snmpd, Chromium), the fuzz targets' seeds, the aarch64
#   router build's unit tests and demo under qemu-aarch64, and the models/ pytest suite.
# Usage: scripts/test.sh        (as root, or with sudo available for apt-get)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
started=$SECONDS
step() { printf '\n== %s (%ds)\n' "$*" $((SECONDS - started)) >&2; }

step "system packages"
# Real peers used by the tests; only what is missing is installed.
need=()
command -v mosquitto >/dev/null || need+=(mosquitto)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
command -v nfcapd >/dev/null || need+=(nfdump)
command -v softflowd >/dev/null || need+=(softflowd)
command -v pmacctd >/dev/null || need+=(pmacct)
command -v snmpd >/dev/null || need+=(snmpd)
command -v snmpget >/dev/null || need+=(snmp)
command -v ping >/dev/null || need+=(iputils-ping)
command -v openssl >/dev/null || need+=(openssl)              # TLS test certificates
command -v setpriv >/dev/null || need+=(util-linux)          # the unprivileged-daemon test
command -v qemu-system-arm >/dev/null || need+=(qemu-system-arm)
command -v readelf >/dev/null || need+=(binutils)
# Packet capture test (tests/e2e/capture.rs) and the aarch64 router build.
command -v tcpdump >/dev/null || need+=(tcpdump)
command -v arpspoof >/dev/null || need+=(dsniff)           # ARP spoofing test (tests/e2e/arp_spoof.rs)
command -v nmap >/dev/null || need+=(nmap)
command -v curl >/dev/null || need+=(curl)
command -v ethtool >/dev/null || need+=(ethtool)
command -v setpriv >/dev/null || need+=(util-linux)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
[[ -f /usr/aarch64-linux-gnu/include/stdlib.h ]] || need+=(libc6-dev-arm64-cross)
command -v dpkg-deb >/dev/null || need+=(dpkg)
# Headless browser for the dashboard's end-to-end test.
command -v chromium >/dev/null || need+=(chromium)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
# Java for Spark in local mode (analytics/, the fleet job's test).
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
if ((${#need[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The Debian package starts a system-wide broker on 1883; the tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
    systemctl stop mosquitto 2>/dev/null || true
fi

step "rust components and targets"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
rustup target add thumbv7em-none-eabihf aarch64-unknown-linux-musl >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "firmware builds for thumbv7em-none-eabihf (no_std)"
cargo build -p netwarden-firmware --target thumbv7em-none-eabihf --locked

step "firmware image (cortex-m-rt) meters built-in frames under qemu-system-arm mps2-an386"
cross/firmware-image/run-qemu.sh

step "python venv (models/)"
# Before cargo test: the site-model end-to-end test (tests/e2e/site_models.rs) runs the
# central loop with models/.venv/bin/python.
models/setup-venv.sh

step "cargo test (unit, integration, end-to-end against mosquitto and nfcapd)"
# The end-to-end tests run the debug netwarden binary; build it first, in one invocation with
# the fuzz targets: both then share one feature resolution, so the fuzz smoke step below
# compiles nothing again (built alone, the fuzz crate changes features under tract-core and
# rumqttc and rebuilds them: 3 minutes).
cargo build -p netwarden -p netwarden-fuzz --locked
cargo test --workspace --locked

step "fuzz targets build and replay their seeds (fuzz/, dev profile, no sanitizer)"
# The targets are workspace members, so this links them against the test build's artefacts
# (tract is not compiled again). libFuzzer links without coverage instrumentation; with
# -runs=0 each binary runs every committed seed and regression input once. Real fuzzing is
# `cargo fuzz run` (docs/fuzzing.md).
scripts/fuzz-smoke.sh

step "router build: aarch64 musl unit tests and demo under qemu-aarch64, .deb (cross/test.sh)"
cross/test.sh

step "pytest (models/)"
(cd models && .venv/bin/python -m pytest)

step "pytest (analytics/: the fleet Spark job in local mode, about a minute)"
models/.venv/bin/python -m pytest -q analytics/tests

step "lab tools (tests/lab: flow labeller against nfdump, committed run relabelled)"
python3 -m unittest discover -s tests/lab -p 'test_*.py'

step "all tests passed"
