#!/usr/bin/env bash
# Checks the Prometheus part of the operations kit with promtool: the alert rules parse
# and their unit tests pass (every alert seen firing and not firing). The Rust side
# (dashboards, metric names against SPEC §6 and docs/metrics.md, a real scrape) is
# tests/ops_kit.rs, run by `cargo test`.
#
# It also parses every dashboard query as PromQL (Grafana variables replaced by
# neutral values), so that a typo in a panel fails here rather than on the wall.
#
# promtool comes with Debian's `prometheus` package and jq with `jq`; they are installed
# when missing (apt-get, as root or with sudo). The same package's server,
# /usr/bin/prometheus, is what tests/prometheus_e2e.rs (run later by `cargo test`) starts
# against a real daemon, on its own ports. The packaged Prometheus service is not needed:
# it is stopped if the package started it. Exits non-zero on any failure; nothing is
# skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v jq >/dev/null 2>&1 || need+=(jq)
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
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

echo "== dashboard queries parse as PromQL"
# Each panel query becomes a recording rule of a throw-away rule file (JSON is YAML).
jq -n '[inputs | .. | objects | select(has("expr")) | .expr]
  | to_entries
  | {groups: [{name: "dashboard_queries", rules: map({
      record: "dashboard_query_\(.key)",
      expr: (.value
        | gsub("\\$\\{?__rate_interval\\}?"; "1m")
        | gsub("\\$\\{?__interval\\}?"; "1m")
        | gsub("\\$\\{?__range\\}?"; "1h")
        | gsub("\\$\\{?[A-Za-z_]+(:[a-z]+)?\\}?"; ".*"))})}]}' \
  dashboards/*.json > "$tmp/dashboard-queries.json"
n=$(jq '.groups[0].rules | length' "$tmp/dashboard-queries.json")
[ "$n" -gt 0 ] || { echo "no dashboard query found" >&2; exit 1; }
promtool check rules "$tmp/dashboard-queries.json"

echo "== ops kit: promtool checks passed"
