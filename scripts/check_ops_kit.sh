#!/usr/bin/env bash
# Checks the Prometheus part of the operations kit with promtool: the alert rules parse
# and their unit tests pass (every alert seen firing and not firing). The Rust side
# (dashboards, metric names against SPEC §6 and docs/metrics.md, a real scrape) is
# tests/ops_kit.rs, run by `cargo test`.
#
# promtool comes with Debian's `prometheus` package; it is installed when missing
# (apt-get, as root or with sudo). Its service is not needed: it is stopped if the
# package started it. Exits non-zero on any failure; nothing is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null 2>&1; then
  echo "== installing promtool (Debian package prometheus)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package enables a Prometheus service on :9090; these checks need only promtool.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
  fi
fi
promtool --version | head -n 1

rules=deploy/prometheus/callwatch.rules.yml
tests=deploy/prometheus/callwatch.rules.test.yml

echo "== promtool check rules $rules"
promtool check rules "$rules"

echo "== promtool check config deploy/prometheus/prometheus.yml"
# The example names the rules at their installed path; check it against the repository's.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/etc/prometheus/callwatch.rules.yml#$PWD/$rules#" deploy/prometheus/prometheus.yml > "$tmp/prometheus.yml"
promtool check config "$tmp/prometheus.yml"

echo "== promtool test rules $tests"
promtool test rules "$tests"

echo "== ops kit: promtool checks passed"
