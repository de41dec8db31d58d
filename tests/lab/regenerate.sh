#!/usr/bin/env bash
# Regenerate the lab captures in tests/data/lab/ from real SIP software:
# SIPp (customer trunk, agent phones, survey IVR, B2BUA PBX) talking through
# Kamailio 5.6, captured with dumpcap on the loopback of one network namespace
# per story. See tests/lab/README.md.
#
#   sudo bash tests/lab/regenerate.sh              # every story, in parallel
#   sudo bash tests/lab/regenerate.sh STORY...     # only these
#   JOBS=4 KEEP=1 sudo -E bash tests/lab/regenerate.sh
#
# JOBS: stories run at once (default: all). KEEP=1 keeps the work directory
# (SIPp message logs, Kamailio log) even when everything succeeded.
# Needs root (ip netns), sipp (Debian sip-tester), kamailio, dumpcap, tshark,
# editcap, python3. Never touches the host's own interfaces.
set -euo pipefail

LAB="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$LAB/../.." && pwd)"
OUT="$ROOT/tests/data/lab"
SC="$LAB/scenarios"
G711="${G711:-/usr/share/sip-tester/g711a.pcap}"
JOBS="${JOBS:-0}"
KEEP="${KEEP:-0}"
STORY_TIMEOUT=90       # hard bound for every process of a story, seconds

ALL_STORIES=(
  answered_in_4s_then_transferred_to_survey
  answered_after_13s_is_a_late_answer
  agent_hangs_up_first_without_survey
  agent_rings_15s_and_caller_cancels
  caller_cancels_after_5s_without_violation
  agent_holds_customer_longer_than_threshold
  outbound_call_from_agent_has_no_ring_rule
  early_media_183_starts_the_ring
  agent_rejects_with_486_after_11s
  parallel_ringing_gives_two_legs_one_answered
  survey_transfer_failing_with_503_is_survey_missing
  fragmented_invite_is_reassembled
  sip_over_tcp_is_followed
  retransmitted_invite_and_200_count_once
  b2bua_agent_leg_is_linked_to_customer_leg
  gbk_display_name_is_decoded
  glare_bye_counts_the_earlier_bye
  attended_transfer_to_survey_with_replaces
  switch_side_hold_is_no_violation
  cancel_racing_the_answer_loses_to_the_200
  registrations_options_and_ivr_calls_give_no_leg
  capture_started_mid_call_gives_no_leg
  capture_ending_mid_call_leaves_the_leg_open
  internal_call_between_agents_gives_two_legs
)

# Two stories replay another story's scenarios and keep only part of the capture.
scenarios_of() {
  case "$1" in
    capture_started_mid_call_gives_no_leg) echo agent_hangs_up_first_without_survey ;;
    capture_ending_mid_call_leaves_the_leg_open) echo answered_after_13s_is_a_late_answer ;;
    *) echo "$1" ;;
  esac
}

die() { echo "regenerate: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for t in sipp kamailio dumpcap tshark editcap python3 ip timeout; do
  command -v "$t" >/dev/null || die "missing $t (apt-get install sip-tester kamailio tshark)"
done
[ -r "$G711" ] || die "missing $G711 (Debian package sip-tester)"

if [ $# -gt 0 ]; then STORIES=("$@"); else STORIES=("${ALL_STORIES[@]}"); fi
# story_number STORY: its place in ALL_STORIES (01, 02 ...), which names its
# namespace and its Call-IDs; fails for an unknown story
story_number() {
  local i
  for i in "${!ALL_STORIES[@]}"; do
    if [ "${ALL_STORIES[$i]}" = "$1" ]; then printf '%02d\n' $((i + 1)); return 0; fi
  done
  return 1
}
for s in "${STORIES[@]}"; do
  story_number "$s" >/dev/null || die "unknown story $s"
done

WORK="$(mktemp -d /tmp/callwatch-lab.XXXXXX)"
NSPREFIX="cwlab$$"
STORY_PIDS=()

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for p in "${STORY_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${STORY_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  # a namespace left behind by a story killed hard
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NSPREFIX-" || true); do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  if [ "$rc" = 0 ] && [ "$KEEP" != 1 ]; then rm -rf "$WORK"; else echo "work directory kept: $WORK" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The sound the SIPp endpoints play: the first 3 s of sip-tester's G.711 A-law
# sample, one SSRC per side, and a new SSRC for the talk after a hold.
for f in customer:0C057001 agent:0A6E7001 customer_resume:0C057002 agent_resume:0A6E7002; do
  python3 "$LAB/make_rtp.py" "$G711" "$WORK/rtp_${f%%:*}.pcap" "${f#*:}" 100
done

# ----------------------------------------------------------------------------
# One story: runs in its own subshell, in its own network namespace.
# ----------------------------------------------------------------------------
run_story() {
  local story="$1" idx="$2"
  local ns="$NSPREFIX-$idx" dir="$WORK/$story"
  local pids=() kdefs=() mtu="" sipp_rc=0 kpid="" dpid="" keep_from="" keep_to=""
  local scen; scen="$(scenarios_of "$story")"
  mkdir -p "$dir"
  ln -s "$WORK"/rtp_*.pcap "$dir/"

  story_cleanup() {
    for p in "${pids[@]}" $dpid $kpid; do kill -TERM "$p" 2>/dev/null || true; done
    sleep 0.2
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  }
  trap 'story_cleanup; exit 1' INT TERM

  case "$story" in
    retransmitted_invite_and_200_count_once) kdefs=(-A NO_AUTO_100) ;;
    glare_bye_counts_the_earlier_bye) kdefs=(-A BYE_DELAY) ;;
    cancel_racing_the_answer_loses_to_the_200) kdefs=(-A CANCEL_DELAY) ;;
    fragmented_invite_is_reassembled) mtu=1200 ;;
    # seconds after the first packet: the capture starts after the answer...
    capture_started_mid_call_gives_no_leg) keep_from=3.0 ;;
    # ...or ends 1.5 s after it
    capture_ending_mid_call_leaves_the_leg_open) keep_to=14.5 ;;
  esac

  ip netns add "$ns"
  local X=(ip netns exec "$ns")
  "${X[@]}" ip link set lo up
  [ -n "$mtu" ] && "${X[@]}" ip link set lo mtu "$mtu"

  # [CID=fmt] sipp_at ROLE IP PORT MEDIA_PORT DELAY_S [sipp args...]
  # one SIPp in the background, DELAY_S seconds from now; a UAC role gets the
  # proxy (127.0.0.10:5060) as remote host in its args. Call-IDs are
  # s<story number>-<role>-<n>@<ip> unless CID gives another -cid_str format.
  sipp_at() {
    local role="$1" ip="$2" port="$3" mport="$4" delay="$5"; shift 5
    local cid="${CID:-s${idx}-${role}-%u@%s}"
    ( cd "$dir" && sleep "$delay" && exec "${X[@]}" timeout -k 5 "$STORY_TIMEOUT" \
        sipp -sf "$SC/$scen/$role.xml" -i "$ip" -p "$port" -bind_local \
        -mi "$ip" -mp "$mport" -nostdin -timeout 80s -timeout_error \
        -cid_str "$cid" \
        -trace_msg -message_file "$dir/$role.messages.log" \
        -trace_err -error_file "$dir/$role.errors.log" \
        "$@" >"$dir/$role.screen.log" 2>&1 ) &
    pids+=($!)
  }
  local P=127.0.0.10:5060

  # Kamailio, then the capture
  "${X[@]}" timeout -k 5 "$STORY_TIMEOUT" kamailio -f "$LAB/kamailio.cfg" -DD -E \
      -Y "$dir" -P "$dir/kamailio.pid" -m 32 -M 8 "${kdefs[@]}" >"$dir/kamailio.log" 2>&1 &
  kpid=$!
  "${X[@]}" timeout -k 5 "$STORY_TIMEOUT" dumpcap -i lo -P -f "udp or tcp" \
      -w "$dir/capture.pcap" >"$dir/dumpcap.log" 2>&1 &
  dpid=$!
  local i
  for i in $(seq 50); do
    grep -q "Capturing on" "$dir/dumpcap.log" 2>/dev/null \
      && grep -q "Listening on" "$dir/kamailio.log" 2>/dev/null && break
    sleep 0.1
  done
  sleep 0.5

  local T=(-t u1) GBK=()
  case "$story" in
    sip_over_tcp_is_followed) T=(-t t1) ;;
    gbk_display_name_is_decoded) GBK=(-key gbk_name $'\xc0\xee\xc4\xc8') ;;
  esac

  # roles: servers first, then the callers (DELAY_S after the servers)
  case "$story" in
    answered_in_4s_then_transferred_to_survey|survey_transfer_failing_with_503_is_survey_missing)
      sipp_at phone8001 127.0.0.11 5060 6000 0 -m 1
      sipp_at survey 127.0.0.30 5060 6000 0 -m 1
      sleep 0.5
      sipp_at trunk 127.0.0.20 5060 6000 0 $P -m 1
      # the INVITE the REFER asks for, between the NOTIFYs 100 and 200 (story 1:
      # at +8.1 s and +9.6 s; story 11: +6.1 s and +7.6 s); SIPp's start-up time
      # varies by ~0.3 s, check_capture.py checks the order
      if [ "$story" = answered_in_4s_then_transferred_to_survey ]; then
        sipp_at trunk_survey 127.0.0.20 5061 6100 8.7 $P -m 1
      else
        # straight to the survey IVR (a proxy would turn its 503 into a 500)
        sipp_at trunk_survey 127.0.0.20 5061 6100 6.5 127.0.0.30:5060 -m 1
      fi
      ;;
    parallel_ringing_gives_two_legs_one_answered)
      sipp_at phone8001 127.0.0.11 5060 6000 0 -m 1
      sipp_at phone8002 127.0.0.12 5060 6000 0 -m 1
      sleep 0.5
      sipp_at trunk 127.0.0.20 5060 6000 0 $P -m 1
      ;;
    internal_call_between_agents_gives_two_legs)
      sipp_at phone8002 127.0.0.12 5060 6000 0 -m 1
      sleep 0.5
      sipp_at phone8001 127.0.0.11 5060 6000 0 $P -m 1
      ;;
    registrations_options_and_ivr_calls_give_no_leg)
      sipp_at survey 127.0.0.30 5060 6000 0 -m 1
      sleep 0.5
      sipp_at phone8001 127.0.0.11 5060 6000 0 $P -m 1
      sipp_at trunk 127.0.0.20 5060 6000 0.5 $P -m 1
      ;;
    outbound_call_from_agent_has_no_ring_rule)
      sipp_at trunk 127.0.0.20 5060 6000 0 -m 1
      sleep 0.5
      sipp_at phone8001 127.0.0.11 5060 6000 0 $P -m 1
      ;;
    b2bua_agent_leg_is_linked_to_customer_leg)
      sipp_at phone8001 127.0.0.11 5060 6000 0 -m 1
      sipp_at pbx_uas 127.0.0.40 5060 6000 0 -m 1
      sleep 0.5
      # the customer leg's Call-ID is s15-trunk-1@127.0.0.20 (X-Call-ID in pbx_uac.xml)
      sipp_at trunk 127.0.0.20 5060 6000 0 $P -m 1
      sipp_at pbx_uac 127.0.0.40 5070 6100 0.2 $P -m 1
      ;;
    attended_transfer_to_survey_with_replaces)
      sipp_at phone8001 127.0.0.11 5060 6000 0 -m 1
      sipp_at survey 127.0.0.30 5060 6000 0 -m 2
      sleep 0.5
      sipp_at trunk 127.0.0.20 5060 6000 0 $P -m 1
      # consultation at +6.5 s (Call-ID s18-consult-1@127.0.0.11, named by the
      # Replaces of the REFER); REFER at +9.5 s, NOTIFY 100 at +9.6 s, the
      # INVITE with Replaces at +10 s (answered +11 s), NOTIFY 200 at +11.6 s
      CID="s18-consult-%u@%s" sipp_at phone8001_consult 127.0.0.11 5062 6100 6.5 $P -m 1
      sipp_at trunk_survey 127.0.0.20 5061 6100 10.0 $P -m 1
      ;;
    *)
      sipp_at phone8001 127.0.0.11 5060 6000 0 "${T[@]}" -m 1
      sleep 0.5
      sipp_at trunk 127.0.0.20 5060 6000 0 $P "${T[@]}" "${GBK[@]}" -m 1
      ;;
  esac

  local p
  for p in "${pids[@]}"; do
    wait "$p" || sipp_rc=1
  done
  sleep 1          # let the last retransmissions and ACKs go through
  kill -TERM "$dpid" 2>/dev/null || true
  wait "$dpid" 2>/dev/null || true
  kill -TERM "$kpid" 2>/dev/null || true
  wait "$kpid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  trap - INT TERM

  if [ -n "$keep_from$keep_to" ]; then
    local t0 args=()
    t0="$(tshark -r "$dir/capture.pcap" -c 1 -T fields -e frame.time_epoch 2>/dev/null)"
    [ -n "$keep_from" ] && args+=(-A "$(python3 -c "print($t0 + $keep_from)")")
    [ -n "$keep_to" ] && args+=(-B "$(python3 -c "print($t0 + $keep_to)")")
    mv "$dir/capture.pcap" "$dir/capture.full.pcap"
    editcap -F pcap "${args[@]}" "$dir/capture.full.pcap" "$dir/capture.pcap"
  fi
  if [ "$sipp_rc" != 0 ]; then
    echo "FAIL $story: a SIPp role did not complete its scenario (see $dir/*.errors.log)" >&2
    return 1
  fi
  if ! python3 "$LAB/check_capture.py" "$dir/capture.pcap" "$OUT/$story.expect.json" \
        "$story" >"$dir/check.log" 2>&1; then
    echo "FAIL $story: capture does not match the story:" >&2
    sed 's/^/    /' "$dir/check.log" >&2
    return 1
  fi
  cp "$dir/capture.pcap" "$OUT/$story.pcap"
  echo "ok   $story ($(sed -n 's/^summary: //p' "$dir/check.log"))"
}

start=$(date +%s)
fails=0
running=0
for s in "${STORIES[@]}"; do
  num="$(story_number "$s")"
  run_story "$s" "$num" &
  STORY_PIDS+=($!)
  running=$((running + 1))
  if [ "$JOBS" -gt 0 ] && [ "$running" -ge "$JOBS" ]; then
    wait -n || fails=$((fails + 1))
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || fails=$((fails + 1))
  running=$((running - 1))
done
STORY_PIDS=()
echo "regenerated $((${#STORIES[@]} - fails))/${#STORIES[@]} stories in $(( $(date +%s) - start )) s; total size $(du -ch "$OUT"/*.pcap 2>/dev/null | tail -1 | cut -f1)"
[ "$fails" = 0 ]
