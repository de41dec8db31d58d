#!/usr/bin/env bash
# Wallboard websocket latency with many clients (issue 5): packet → `leg.ringing` frame
# and late-answer threshold instant → `violation` frame, p50/p90/p99/max over clients ×
# probes, with `callwatch loadgen` traffic running, for CLIENTS clients and, in the same
# run, for BASELINE clients (the peer: read the CLIENTS figures as a ratio to it on a
# shared machine). Target: p99 < 100 ms with 1,000 clients.
#
#   bash scripts/bench_wallboard.sh
#   CLIENTS=2000 CPS=20 bash scripts/bench_wallboard.sh
#
# Each measurement gets a fresh `callwatch run` (loopback, ports picked by the kernel,
# temporary SQLite store and data dir, late-answer threshold THRESHOLD_MS) fed by
# `callwatch loadgen` (CPS calls/s, ring and talk times scaled so that late answers
# ring just past THRESHOLD_MS), then `examples/ws_latency.rs` (see its doc) connects
# the clients and plays PROBES probes GAP_MS apart and THRESHOLD_PROBES unanswered ones.
# The daemon's and the bench's CPU over the measurement come from /proc.
#
# Environment: CLIENTS (1000), BASELINE (1; empty to skip), PROBES (50), GAP_MS (100),
# THRESHOLD_PROBES (10), THRESHOLD_MS (2000), CPS (10), WARMUP_S (3: loadgen alone
# first), REPEAT (2 rounds of both measurements: the machine is shared, read the
# spread). Bounded: each measurement runs under `timeout` (180 s), loadgen is stopped
# when its measurement ends; a round takes about 35 s after the build.
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-1000}
BASELINE=${BASELINE-1}
PROBES=${PROBES:-50}
GAP_MS=${GAP_MS:-100}
THRESHOLD_PROBES=${THRESHOLD_PROBES:-10}
THRESHOLD_MS=${THRESHOLD_MS:-2000}
CPS=${CPS:-10}
WARMUP_S=${WARMUP_S:-3}
REPEAT=${REPEAT:-2}

# One descriptor per client in the bench, one per connection in the daemon.
need_fd=$((CLIENTS + 512))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fd" ]; then
  ulimit -n "$need_fd" 2>/dev/null || {
    echo "bench_wallboard: need $need_fd open files, the hard limit is $(ulimit -Hn)" >&2
    exit 2
  }
fi

echo "== cargo build --release (callwatch, examples/ws_latency)"
cargo build --release --locked --bin callwatch --example ws_latency 2>&1 | tail -n 1
BIN=target/release/callwatch
EX=target/release/examples/ws_latency
CLK_TCK=$(getconf CLK_TCK)
# Late answers of loadgen ring 11-14 s at scale 1 against a 10 s rule.
SCALE=$(python3 -c "print($THRESHOLD_MS / 10000)")

work=$(mktemp -d /tmp/callwatch-wsbench.XXXXXX)
daemon_pid=""
loadgen_pid=""
stop() {
  # $1: pid of a process this script started.
  if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}
cleanup() {
  stop "$loadgen_pid"
  stop "$daemon_pid"
  rm -rf "$work"
}
trap cleanup EXIT

echo "== commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo ' (working tree differs)'), $(nproc) CPUs"
echo "== load average before: $(cat /proc/loadavg)"
results=()

measure() {
  local n=$1 tag=$2
  local dir="$work/$tag"
  mkdir -p "$dir"
  cat >"$dir/callwatch.toml" <<EOF
[capture]
hep_listen = "127.0.0.1:0"
[agents]
extensions = ["8001-8099", "8500-8999"]
[rules.late_answer]
threshold_ms = $THRESHOLD_MS
[engine]
ring_timeout_ms = 60000
[http]
listen = "127.0.0.1:0"
[store]
url = "sqlite://$dir/callwatch.db"
data_dir = "$dir"
EOF
  RUST_LOG=warn "$BIN" run --config "$dir/callwatch.toml" 2>"$dir/daemon.log" &
  daemon_pid=$!
  local line=""
  for _ in $(seq 1 200); do
    line=$(grep -m1 "callwatch: HEP on" "$dir/daemon.log" 2>/dev/null || true)
    [ -n "$line" ] && break
    kill -0 "$daemon_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "bench_wallboard: the daemon did not start:" >&2
    cat "$dir/daemon.log" >&2
    exit 1
  fi
  local hep http
  hep=$(sed -E 's/.*HEP on ([0-9.]+:[0-9]+).*/\1/' <<<"$line")
  http=$(sed -E 's#.*http://([0-9.]+:[0-9]+)/metrics.*#\1#' <<<"$line")
  echo
  echo "== $tag: $n clients; daemon pid $daemon_pid, HEP $hep, HTTP $http; loadgen $CPS calls/s (time scale $SCALE)"
  # Long enough to outlast the measurement; stopped when it ends.
  timeout 300 "$BIN" loadgen --target "$hep" --cps "$CPS" --duration-s 240 \
    --time-scale "$SCALE" --capture-id 1 --seed 7 >"$dir/loadgen.log" 2>&1 &
  loadgen_pid=$!
  sleep "$WARMUP_S"
  timeout 180 "$EX" --http "$http" --hep "$hep" --clients "$n" --probes "$PROBES" \
    --gap-ms "$GAP_MS" --threshold-probes "$THRESHOLD_PROBES" --agent-base 8500 \
    --daemon-pid "$daemon_pid" --clk-tck "$CLK_TCK" --label "$n clients" | tee "$dir/result.txt"
  echo "load average: $(cat /proc/loadavg)"
  stop "$loadgen_pid"
  loadgen_pid=""
  grep -h "^loadgen:" "$dir/loadgen.log" || true
  stop "$daemon_pid"
  daemon_pid=""
  results+=("$(grep '^RESULT' "$dir/result.txt") round=$tag load=$(cut -d' ' -f1 /proc/loadavg)")
}

for round in $(seq 1 "$REPEAT"); do
  measure "$CLIENTS" "many-$round"
  if [ -n "$BASELINE" ]; then
    measure "$BASELINE" "baseline-$round"
  fi
done

echo
echo "== summary (loadgen $CPS calls/s, threshold $THRESHOLD_MS ms, $PROBES + $THRESHOLD_PROBES probes)"
printf '%s\n' "${results[@]}"
echo "== load average after: $(cat /proc/loadavg)"
