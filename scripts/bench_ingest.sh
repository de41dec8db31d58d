#!/usr/bin/env bash
# HEP ingest benchmark (issue 4), for a person to run (not CI): builds release, starts
# `callwatch run` on loopback with a temporary config and store, and drives it with
# `callwatch loadgen` over UDP at a series of offered rates (`--pps`), a bounded time
# each, in two mixes, each on a fresh daemon:
#   1. signalling only: the story mix, SIP only (7.9 HEP packets per call);
#   2. RTCP mix: the same calls, and each answered call also reports RTCP (HEP type 5,
#      SR + SDES) from both sides every RTCP_INTERVAL_MS of its talk time, between the
#      call's SDP media addresses, as an SBC or rtpengine does (about 36 packets per
#      call at the defaults, 4 in 5 of them RTCP: legs do not end every 8 packets).
# For each rate it prints the offered rate, the rate loadgen achieved, the rate the daemon
# received and ingested, the drops it counted (kernel receive buffer and engine queue),
# the unreported loss (sent - received - kernel drops: must be 0), the daemon's CPU and
# RSS, and loadgen's own CPU (per packet sent, and its share of one core: near 100 %
# means loadgen, not the daemon, set the rate). Then, on a fresh daemon, the memory of
# 5,000 concurrent open legs.
#
# Usage: bash scripts/bench_ingest.sh
#   RATES="50000 100000 200000 300000"  offered HEP packets/s (UDP), signalling only ("" skips)
#   RTCP_RATES="$RATES"                 offered HEP packets/s, RTCP mix ("" skips it)
#   RTCP_INTERVAL_MS=10                 RTCP report interval per side (scaled call time)
#   SECONDS_EACH=8                      seconds of load per rate
#   TIME_SCALE=0.01                     loadgen --time-scale (calls 100 times shorter)
#   SKIP_BUILD=1 BIN=path/to/callwatch  use an existing binary
#   LEGS=5000                           open legs for the memory figure (0 skips it)
#   WARM_CALLS=0                        short calls sent first (they end within a second): the
#                                       wallboard's replay buffer (fixed, <= 8 MiB) is then full
#                                       before RSS is read, as in a daemon that has run a while
#   LEG_SECONDS=5                       seconds over which loadgen opens them (LEGS/LEG_SECONDS
#                                       calls/s; calls ring 1-20 s, so keep it short)
# Bounded: about 6 minutes with the defaults (every wait, loadgen included, has a limit).
set -euo pipefail

cd "$(dirname "$0")/.."
RATES=${RATES-"50000 100000 200000 300000"}
RTCP_RATES=${RTCP_RATES-$RATES}
RTCP_INTERVAL_MS=${RTCP_INTERVAL_MS:-10}
SECONDS_EACH=${SECONDS_EACH:-8}
TIME_SCALE=${TIME_SCALE:-0.01}
LEGS=${LEGS:-5000}
LEG_SECONDS=${LEG_SECONDS:-5}
WARM_CALLS=${WARM_CALLS:-0}
BIN=${BIN:-target/release/callwatch}

if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --bin callwatch >&2
fi
[ -x "$BIN" ] || { echo "no binary at $BIN" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 is needed (free ports, arithmetic)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is needed (/metrics)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/callwatch-bench-ingest.XXXXXX)
DAEMON=""
cleanup() {
    if [ -n "$DAEMON" ] && kill -0 "$DAEMON" 2>/dev/null; then
        kill -TERM "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
t = socket.socket(); t.bind(("127.0.0.1", s.getsockname()[1])); print(s.getsockname()[1])'
}

# Sums the samples of a metric whose labels contain every given pair.
metric() { # text name [label="value" ...]
    local text=$1 name=$2; shift 2
    printf '%s\n' "$text" | python3 -c '
import sys
name, want = sys.argv[1], sys.argv[2:]
total = 0.0
for line in sys.stdin:
    if line.startswith("#") or not line.strip():
        continue
    series, _, rest = line.partition(" ")
    n, _, labels = series.partition("{")
    if n != name:
        continue
    parts = labels.rstrip("}").split(",")
    if all(w in parts for w in want):
        total += float(rest.split()[0])
print(int(total))' "$name" "$@"
}

start_daemon() {
    HEP_PORT=$(free_port)
    HTTP_PORT=$(free_port)
    rm -rf "$WORK/data" && mkdir -p "$WORK/data"
    cat > "$WORK/callwatch.toml" <<EOF
[capture]
hep_listen = "127.0.0.1:$HEP_PORT"
[agents]
extensions = ["8001-8099"]
roster = ""
[http]
listen = "127.0.0.1:$HTTP_PORT"
[store]
url = "sqlite://$WORK/data/callwatch.db"
data_dir = "$WORK/data"
EOF
    RUST_LOG=warn "$BIN" run --config "$WORK/callwatch.toml" > "$WORK/daemon.log" 2>&1 &
    DAEMON=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the daemon did not start:" >&2; cat "$WORK/daemon.log" >&2; exit 1
}

stop_daemon() {
    kill -TERM "$DAEMON" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
    DAEMON=""
}

scrape() { curl -sf --max-time 5 "http://127.0.0.1:$HTTP_PORT/metrics"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$DAEMON/stat"; }
status_kb() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$DAEMON/status"; }

echo "# callwatch HEP ingest bench: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%MZ)"
echo "# UDP, ${SECONDS_EACH} s per rate, loadgen --pps RATE --time-scale $TIME_SCALE (short calls), same machine"
echo "# sent/s: loadgen while starting calls; recv/s, ingest/s: received, and taken by the"
echo "# engine, over loadgen's whole run; cpu%: the daemon's CPU over the run and the wait"
echo "# for it to settle (100 = one core); us/pkt: CPU time per packet ingested (daemon)"
echo "# and per packet sent (loadgen: user + system from /usr/bin/time, the kernel's"
echo "# loopback delivery included); lg_cpu%: loadgen's CPU over its run (100 = one core)."
echo "# On a loaded machine the rates follow the CPU share the processes got, the CPU cost"
echo "# per packet much less."

# One table on a fresh daemon: each offered rate of $2, loadgen options $3 added.
run_table() { # title rates extra-loadgen-options
    local title=$1 rates=$2 extra=$3
    echo
    echo "## $title (load $(cut -d' ' -f1-3 /proc/loadavg))"
    start_daemon
    printf '%-8s %-8s %-8s %-8s %-9s %-10s %-10s %-5s %-10s %-10s %-7s %-6s\n' \
        offered sent/s recv/s ingest/s kern_drop queue_drop unreported cpu% us/pkt_dmn \
        us/pkt_lg lg_cpu% rss_MB
    for rate in $rates; do
        before=$(scrape)
        t0_ticks=$(cpu_ticks)
        t0=$(date +%s.%N)
        # shellcheck disable=SC2086 # $extra is a list of options
        if ! timeout $((SECONDS_EACH + 60)) /usr/bin/time -f "%U %S %e" -o "$WORK/loadgen.time" \
            "$BIN" loadgen --target "127.0.0.1:$HEP_PORT" --pps "$rate" --concurrent 200000 \
            --duration-s "$SECONDS_EACH" --time-scale "$TIME_SCALE" --seed "$rate" $extra \
            2> "$WORK/loadgen.txt"; then
            echo "loadgen failed or timed out:" >&2; cat "$WORK/loadgen.txt" >&2; exit 1
        fi
        # Let the daemon drain its queue (bounded wait), then read.
        prev=-1
        for _ in $(seq 50); do
            m=$(scrape)
            now=$(metric "$m" callwatch_ingest_packets_total)
            depth=$(metric "$m" callwatch_engine_queue_depth)
            [ "$now" = "$prev" ] && [ "$depth" = 0 ] && break
            prev=$now
            sleep 0.2
        done
        sleep 0.3 # one more look at the kernel's drop count (read every 250 ms)
        t1=$(date +%s.%N)
        t1_ticks=$(cpu_ticks)
        after=$(scrape)
        sent=$(sed -n 's/^loadgen: \([0-9]*\) HEP packets.*/\1/p' "$WORK/loadgen.txt")
        sent_rate=$(sed -n 's/.* \([0-9]*\) packets\/s while starting calls.*/\1/p' "$WORK/loadgen.txt")
        window=$(sed -n 's/.* over UDP in \([0-9.]*\) s,.*/\1/p' "$WORK/loadgen.txt")
        d() { echo $(( $(metric "$after" "$@") - $(metric "$before" "$@") )); }
        recv=$(d callwatch_ingest_packets_total 'source="hep_udp"')
        qdrop=$(d callwatch_events_dropped_total 'sink="engine_queue"')
        kdrop=$(d callwatch_events_dropped_total 'sink="hep_udp_socket"')
        unreported=$(( sent - recv - kdrop ))
        python3 - "$rate" "$sent_rate" "$recv" "$qdrop" "$kdrop" "$unreported" "$t0" "$t1" \
            "$t0_ticks" "$t1_ticks" "$(status_kb VmRSS)" "$window" "$sent" \
            "$(tail -1 "$WORK/loadgen.time")" <<'EOF'
import sys
rate, sent_rate, recv, qdrop, kdrop, unrep, t0, t1, c0, c1, rss, window, sent, lg = sys.argv[1:]
lg_user, lg_sys, lg_wall = (float(x) for x in lg.split())
lg_cpu = lg_user + lg_sys
span = float(t1) - float(t0)
sent, recv, qdrop = int(sent), int(recv), int(qdrop)
# Rates over the time loadgen took for all it sent (calls started, then wound down);
# the daemon had taken the last packet by the end of the settle wait (span).
total = float(window)
recv_rate = recv / total
ingest_rate = (recv - qdrop) / total
cpu_s = (int(c1) - int(c0)) / 100
cpu = cpu_s / span * 100
us_dmn = cpu_s * 1e6 / max(1, recv - qdrop)
us_lg = lg_cpu * 1e6 / max(1, sent)
lg_share = lg_cpu / max(lg_wall, 1e-9) * 100
print(f"{int(rate):<8} {int(sent_rate):<8} {recv_rate:<8.0f} {ingest_rate:<8.0f} {int(kdrop):<9} "
      f"{qdrop:<10} {int(unrep):<10} {cpu:<5.0f} {us_dmn:<10.1f} {us_lg:<10.2f} "
      f"{lg_share:<7.0f} {int(rss)/1024:<6.0f}")
EOF
    done
    sed -n 's/^loadgen: \([0-9]*\) of the packets RTCP.*/# last rate: \1 of its packets RTCP/p' \
        "$WORK/loadgen.txt"
    stop_daemon
}

if [ -n "$RATES" ]; then
    run_table "signalling only (SIP)" "$RATES" ""
fi
if [ -n "$RTCP_RATES" ]; then
    run_table "RTCP mix (--rtcp-interval-ms $RTCP_INTERVAL_MS)" "$RTCP_RATES" \
        "--rtcp-interval-ms $RTCP_INTERVAL_MS"
fi
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$LEGS" = 0 ]; then exit 0; fi

echo
echo "# memory with $LEGS concurrent open legs (fresh daemon; loadgen over $LEG_SECONDS s, real call lengths)"
start_daemon
sleep 1
if [ "$WARM_CALLS" -gt 0 ]; then
    timeout 60 "$BIN" loadgen --target "127.0.0.1:$HEP_PORT" --cps "$(( WARM_CALLS / 2 ))" \
        --concurrent "$WARM_CALLS" --duration-s 2 --time-scale 0.01 --seed 3 2> /dev/null
    sleep 2
    echo "warmed up with $WARM_CALLS short calls"
fi
rss0=$(status_kb VmRSS)
secs=$LEG_SECONDS
cps=$(( LEGS / secs ))
timeout 90 "$BIN" loadgen --target "127.0.0.1:$HEP_PORT" --cps "$cps" --concurrent "$LEGS" \
    --duration-s 60 --time-scale 1 --seed 7 2> "$WORK/loadgen_legs.txt" &
LG=$!
# Calls ring 1-20 s and talk 5-30 s: after $secs s nearly every call started is still open.
# RSS is read at half and at all of them: the slope between the two is the memory each
# further leg takes, whatever the allocator kept from start-up (mimalloc keeps freed
# pages for reuse, which makes "RSS with them - RSS before" read low).
sleep "$(( secs / 2 )).3"
m=$(scrape)
open_half=$(( $(metric "$m" callwatch_legs_ringing) + $(metric "$m" callwatch_legs_active) ))
rss_half=$(status_kb VmRSS)
sleep "$(( secs - secs / 2 ))"
m=$(scrape)
open=$(( $(metric "$m" callwatch_legs_ringing) + $(metric "$m" callwatch_legs_active) ))
rss1=$(status_kb VmRSS)
hwm=$(status_kb VmHWM)
kill -INT "$LG" 2>/dev/null || true
for _ in $(seq 50); do kill -0 "$LG" 2>/dev/null || break; sleep 0.1; done
kill -KILL "$LG" 2>/dev/null || true
wait "$LG" 2>/dev/null || true
msgs=$(sed -n 's/^loadgen: \([0-9]*\) HEP packets (\([0-9]*\) bytes).*/\1/p' "$WORK/loadgen_legs.txt")
bytes=$(sed -n 's/^loadgen: \([0-9]*\) HEP packets (\([0-9]*\) bytes).*/\2/p' "$WORK/loadgen_legs.txt")
python3 - "$open" "$rss0" "$rss1" "$hwm" "${msgs:-0}" "${bytes:-0}" "$open_half" "$rss_half" <<'EOF'
import sys
open_legs, rss0, rss1, hwm, msgs, hep_bytes, open_half, rss_half = map(int, sys.argv[1:])
grown = (rss1 - rss0) * 1024
# The store keeps the SIP text of open calls in its own bounded budget (SPEC 7), outside
# the per-leg figure: the bytes of each message. Everything around them (a message's
# 11-byte header, the call's addresses and indexes) counts as memory per leg. Each of
# loadgen's IPv4 frames (no auth key) carries 99 bytes of HEP header and chunks.
sip = hep_bytes - 99 * msgs
print(f"open legs {open_legs}; RSS {rss0/1024:.1f} MB before, {rss1/1024:.1f} MB with them (VmHWM {hwm/1024:.1f} MB)")
if open_legs:
    print(f"RSS per open leg: {grown/open_legs:.0f} B, of which SIP text held for the store about "
          f"{sip/open_legs:.0f} B ({msgs} messages): about {(grown-sip)/open_legs:.0f} B per leg besides")
if open_legs > open_half > 0:
    slope = (rss1 - rss_half) * 1024 / (open_legs - open_half)
    print(f"slope from {open_half} to {open_legs} open legs ({rss_half/1024:.1f} -> {rss1/1024:.1f} MB): "
          f"{slope:.0f} B per further leg, about {slope - sip/open_legs:.0f} B besides the SIP text")
EOF
stop_daemon
echo "# engine heap per open leg (counting allocator): cargo test --release --test leg_memory -- --nocapture"
