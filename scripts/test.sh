#!/usr/bin/env bash
# The test command of the README: installs what the tests need (Debian packages, cargo
# tools), then runs the whole suite. Nothing skips silently: a test whose tool is
# missing fails.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v tshark >/dev/null 2>&1 || need_pkgs+=(tshark)
# Real SIP software for the live-daemon test (Kamailio siptrace → HEP, SIPp calls).
command -v kamailio >/dev/null 2>&1 || need_pkgs+=(kamailio)
command -v sipp >/dev/null 2>&1 || need_pkgs+=(sip-tester)
# A real PostgreSQL for the store suite (scripts/pg_test.sh runs a throwaway cluster).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_pkgs+=(postgresql)
# Debian's Chromium (driven by playwright-core from npm; no browser is downloaded).
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
command -v node >/dev/null 2>&1 || need_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
# libpcap for the optional live-capture feature (its test captures SIPp on lo).
[ -f /usr/include/pcap/pcap.h ] || need_pkgs+=(libpcap-dev)
# Chinese text in the wallboard screenshots (the test passes without, shows boxes).
fc-list 2>/dev/null | grep -qi cjk || need_pkgs+=(fonts-noto-cjk)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "== installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# Disk: a whole run builds ~5 GB under target/ and fuzz/target/. Say so up front, so a
# build that dies for want of space is not read as a code fault.
avail_kb=$(df -Pk . | awk 'NR==2 {print $4}')
echo "== disk: $((avail_kb / 1024 / 1024)) GiB free on $(df -P . | awk 'NR==2 {print $6}')"
if [ "${avail_kb:-0}" -lt $((8 * 1024 * 1024)) ]; then
  echo "warning: under 8 GiB free; the build may fail with 'No space left on device'" >&2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== ops kit (promtool rules, unit tests, dashboard queries)"
bash scripts/check_ops_kit.sh

echo "== cargo test"
bash scripts/pg_test.sh cargo test --locked --all-targets 2>&1 | tee /tmp/callwatch-test.log
grep -q "test result:" /tmp/callwatch-test.log

echo "== live capture on lo (feature live-capture, libpcap)"
cargo clippy --locked --features live-capture --all-targets -- -D warnings
cargo test --locked --features live-capture --test live_capture 2>&1 | tee /tmp/callwatch-live.log
grep -Eq "test result: ok\. [1-9]" /tmp/callwatch-live.log

echo "== wallboard and inspector pages in a real browser (headless Chromium)"
bash tests/browser/run.sh

if [ -d fuzz ] && [ "${CALLWATCH_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz (short runs on stable, no sanitizer)"
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
  for target in $(cargo fuzz list --fuzz-dir fuzz); do
    cargo fuzz run --fuzz-dir fuzz -s none "$target" -- -max_total_time="${FUZZ_SECONDS:-20}" -rss_limit_mb=2048 2>&1 | tail -n 3
  done
fi
echo "== all tests passed"
