#!/usr/bin/env bash
# Store benchmark, for a person (not CI): write throughput of flagged legs with their
# SIP messages through the spool and the writer, and the inspectors' list queries with
# 1,000,000 stored legs, on SQLite and on a throwaway PostgreSQL (scripts/pg_test.sh,
# with PostgreSQL's durable defaults). Prints a Markdown table; takes a few minutes on
# 2 cores (about 10 GB of free disk for 1M legs on both backends plus the spool).
#
#   scripts/bench_store.sh                          # 1M legs, 10k flagged legs written, 50 runs
#   scripts/bench_store.sh --legs 100000 --runs 20  # smaller and quicker
#   scripts/bench_store.sh --backend sqlite         # no PostgreSQL needed
#
# Any option of `cargo run --example store_bench -- --help` may be given.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked --example store_bench
bench=target/release/examples/store_bench
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

backend=both
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--backend" ]; then
    j=$((i + 1))
    backend="${!j}"
  fi
done

if [ "$backend" = sqlite ]; then
  timeout 900 "$bench" "$@"
else
  PG_TEST_DURABLE=1 timeout 900 bash scripts/pg_test.sh "$bench" "$@"
fi
rm -rf target/store_bench
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
