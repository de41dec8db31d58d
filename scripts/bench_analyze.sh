#!/usr/bin/env bash
# Throughput of `callwatch analyze` on a large capture against `tshark -z rtp,streams`
# on the same file, in the same run: wall time, CPU time, packets per second and peak
# memory of each, and the ratio (target: callwatch >= 30x tshark's packets/s).
#
#   bash scripts/bench_analyze.sh                  # 2,000 calls x 20 s RTP, 200 at once
#   CALLS=500 RTP_SECONDS=10 bash scripts/bench_analyze.sh
#   FILE=/tmp/big.pcap bash scripts/bench_analyze.sh   # an existing capture instead
#
# Environment: CALLS, RTP_SECONDS, CONCURRENCY (generator), FILE (skip generation),
# WORK (where generated captures are kept and reused, default /tmp/callwatch-bench),
# RUNS (timed runs of each tool, default 3; the best is reported), TIMEOUT (seconds per
# run, default 600), MAX_GB (refuse to generate more, default 3).
#
# Bounded: the capture size is estimated before generating (about 230 bytes per RTP
# packet) and refused above MAX_GB; every run is under `timeout`. The capture is read
# once into the page cache before timing, so both tools read from memory.
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-2000}
RTP_SECONDS=${RTP_SECONDS:-20}
CONCURRENCY=${CONCURRENCY:-200}
WORK=${WORK:-/tmp/callwatch-bench}
RUNS=${RUNS:-3}
TIMEOUT=${TIMEOUT:-600}
MAX_GB=${MAX_GB:-3}

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v capinfos >/dev/null 2>&1 || need+=(wireshark-common)
[ -x /usr/bin/time ] || need+=(time)
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "== cargo build --release"
cargo build --release --locked --bin callwatch 2>&1 | tail -n 1
BIN=target/release/callwatch

mkdir -p "$WORK"
EXPECT=""
if [ -z "${FILE:-}" ]; then
  FILE="$WORK/load_${CALLS}calls_${RTP_SECONDS}s_c${CONCURRENCY}.pcap"
  EXPECT="$FILE.json"
  est_bytes=$(python3 -c "print(int($CALLS * $RTP_SECONDS * 100 * 230))")
  if [ "$est_bytes" -gt $((MAX_GB * 1024 * 1024 * 1024)) ]; then
    echo "refusing: about $((est_bytes >> 20)) MB of capture (MAX_GB=$MAX_GB)" >&2
    exit 2
  fi
  if [ -s "$FILE" ] && [ -s "$EXPECT" ]; then
    echo "== reusing $FILE"
  else
    echo "== generating $FILE (about $((est_bytes >> 20)) MB)"
    start=$(date +%s.%N)
    timeout "$TIMEOUT" python3 scripts/gen_load_pcap.py "$FILE" --calls "$CALLS" \
      --rtp-seconds "$RTP_SECONDS" --concurrency "$CONCURRENCY" > "$EXPECT.tmp"
    mv "$EXPECT.tmp" "$EXPECT"
    echo "   generated in $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
  fi
fi
[ -s "$FILE" ] || { echo "no capture at $FILE" >&2; exit 2; }

FRAMES=$(capinfos -c -M "$FILE" | awk -F': *' '/Number of packets/ {print $2}')
SIZE_MB=$(( $(stat -c %s "$FILE") >> 20 ))
cat "$FILE" > /dev/null   # page cache

echo "== machine"
echo "   date:   $(date -Iseconds)"
echo "   cpu:    $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "   memory: $(free -h | awk '/Mem:/ {print $2 " total, " $7 " available"}')"
echo "   load:   $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) before the runs"
echo "   rustc:  $(rustc --version)"
echo "   tshark: $(tshark --version 2>/dev/null | head -n 1)"
echo "   file:   $FILE, ${SIZE_MB} MB, $FRAMES frames"

# run NAME CMD... : RUNS timed runs; keeps the best wall time with its CPU time and
# the largest peak RSS; prints one line per run. Results in R_WALL, R_CPU, R_RSS_KB.
run() {
  local name=$1; shift
  local best_wall="" best_cpu="" max_rss=0 i out
  out=$(mktemp)
  for i in $(seq 1 "$RUNS"); do
    local load
    load=$(cut -d' ' -f1 /proc/loadavg)
    if ! timeout "$TIMEOUT" /usr/bin/time -v -o "$out.time" "$@" > /dev/null 2> "$out.err"; then
      echo "   $name run $i failed (exit status above 0); stderr:" >&2
      tail -n 5 "$out.err" >&2
    fi
    local wall cpu rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
             n = split($2, p, ":"); s = 0; for (j = 1; j <= n; j++) s = s * 60 + p[j]; print s }' "$out.time")
    cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u + s}' "$out.time")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out.time")
    printf "   %-8s run %d: wall %7.2f s, cpu %7.2f s, peak RSS %7.1f MB (load %s)\n" \
      "$name" "$i" "$wall" "$cpu" "$(python3 -c "print($rss / 1024)")" "$load"
    if [ -z "$best_wall" ] || python3 -c "import sys; sys.exit(0 if $wall < $best_wall else 1)"; then
      best_wall=$wall; best_cpu=$cpu
    fi
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    if [ "$name" = callwatch ] && [ "$i" -eq 1 ]; then cp "$out.err" "$WORK/last_callwatch_stderr.txt"; fi
  done
  rm -f "$out" "$out.time" "$out.err"
  R_WALL=$best_wall; R_CPU=$best_cpu; R_RSS_KB=$max_rss
}

echo "== callwatch analyze --format json FILE > /dev/null   ($RUNS runs)"
run callwatch "$BIN" analyze --format json "$FILE"
CW_WALL=$R_WALL; CW_CPU=$R_CPU; CW_RSS=$R_RSS_KB
SUMMARY=$(grep " agent legs" "$WORK/last_callwatch_stderr.txt" || true)
echo "   summary: ${SUMMARY#callwatch: }"

echo "== tshark -q -z rtp,streams -r FILE > /dev/null   ($RUNS runs)"
run tshark tshark -q -z rtp,streams -r "$FILE"
TS_WALL=$R_WALL; TS_CPU=$R_CPU; TS_RSS=$R_RSS_KB

if [ -n "$EXPECT" ] && [ -s "$EXPECT" ]; then
  python3 - "$EXPECT" "$SUMMARY" <<'EOF'
import json, re, sys
exp = json.load(open(sys.argv[1]))["expected"]
line = sys.argv[2]
m = re.search(r"(\d+) agent legs", line)
got = {"agent_legs": int(m.group(1)) if m else None}
for rule, n in re.findall(r"([a-z_]+) (\d+)", line.split("violations:", 1)[-1].split(";", 1)[0]):
    got[rule] = int(n)
bad = {k: (v, got.get(k, 0)) for k, v in exp.items() if got.get(k, 0) != v}
print("   check against the generator: " + ("OK, " + json.dumps(exp) if not bad else
      "MISMATCH (expected, got): " + json.dumps(bad)))
EOF
fi

python3 - "$FRAMES" "$CW_WALL" "$CW_CPU" "$CW_RSS" "$TS_WALL" "$TS_CPU" "$TS_RSS" <<'EOF'
import sys
frames = int(sys.argv[1])
cw_wall, cw_cpu, cw_rss, ts_wall, ts_cpu, ts_rss = map(float, sys.argv[2:])
def rate(t): return frames / t if t > 0 else float("inf")
print("== result (best of the runs)")
print(f"   {'':10} {'wall s':>8} {'cpu s':>8} {'M pkt/s wall':>13} {'M pkt/s cpu':>12} {'peak RSS MB':>12}")
for name, w, c, r in (("callwatch", cw_wall, cw_cpu, cw_rss), ("tshark", ts_wall, ts_cpu, ts_rss)):
    print(f"   {name:10} {w:8.2f} {c:8.2f} {rate(w)/1e6:13.3f} {rate(c)/1e6:12.3f} {r/1024:12.1f}")
ratio_wall = rate(cw_wall) / rate(ts_wall)
ratio_cpu = rate(cw_cpu) / rate(ts_cpu)
print(f"   ratio callwatch/tshark packets/s: {ratio_wall:.1f}x wall clock, {ratio_cpu:.1f}x CPU time"
      f" (target >= 30x): {'met' if ratio_wall >= 30 else 'NOT met'}")
print(f"   memory: callwatch {cw_rss/1024:.1f} MB vs tshark {ts_rss/1024:.1f} MB peak RSS")
EOF
