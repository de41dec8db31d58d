#!/usr/bin/env python3
"""Check a fresh lab capture against its story, independently of callwatch.

usage: check_capture.py CAPTURE.pcap STORY.expect.json STORY

Reads the capture with tshark and checks what the story is about, so that a
capture spoilt by scheduling jitter or a misbehaving tool is never committed:

- the ring time of every expected leg that has a "ring_ms" range, measured the
  simple way (first 180/183 of the leg's dialog, else its first INVITE, to the
  first final response to the INVITE) falls in that range;
- agent hold episodes (re-INVITE with a=sendonly/inactive, to the next
  re-INVITE with a=sendrecv or the first BYE) fall in "holds"/"hold_ms";
- RTP streams of each answered leg have the expected packet counts;
- the story's point is on the wire (IP fragments, TCP, retransmissions, GBK
  bytes, the fork's CANCEL Reason, crossing BYEs, Replaces ...);
- tshark finds nothing malformed.

Prints what it measured; exit status 1 on a mismatch.
"""
import json
import subprocess
import sys

PHONES = {"8001": "127.0.0.11", "8002": "127.0.0.12"}
FIELDS = [
    "frame.number", "frame.time_epoch", "ip.src", "ip.dst", "udp.srcport", "tcp.srcport",
    "sip.Call-ID", "sip.Method", "sip.Status-Code", "sip.CSeq.method", "sip.to.tag",
    "sdp.media_attr", "sdp.connection_info.address", "sdp.media.port", "sip.msg_hdr",
]

errors = []


def fail(msg):
    errors.append(msg)


def tshark(pcap, *args):
    return subprocess.run(["tshark", "-r", pcap, *args], check=True, capture_output=True,
                          text=True, errors="replace").stdout


def sip_messages(pcap):
    cmd = ["-Y", "sip", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a",
           "-E", "aggregator=|"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = []
    for line in tshark(pcap, *cmd).splitlines():
        v = dict(zip(FIELDS, line.split("\t")))
        v["t"] = float(v["frame.time_epoch"])
        v["ip.src"] = v["ip.src"].split("|")[-1]
        v["ip.dst"] = v["ip.dst"].split("|")[-1]
        v["status"] = int(v["sip.Status-Code"]) if v["sip.Status-Code"] else None
        v["attrs"] = v["sdp.media_attr"].split("|") if v["sdp.media_attr"] else []
        out.append(v)
    return out


def in_range(name, value, rng):
    if value is None:
        fail(f"{name}: not measurable, expected {rng}")
        return
    if not (rng[0] <= value <= rng[1]):
        fail(f"{name}: measured {value} ms, outside the expected {rng}")


def direction_of(attrs):
    for a in ("sendonly", "inactive", "recvonly", "sendrecv"):
        if a in attrs:
            return a
    return "sendrecv"


def measure_leg(msgs, leg):
    cid, agent = leg["call_id"], leg["agent"]
    phone = PHONES.get(agent)
    mine = [m for m in msgs if m["sip.Call-ID"] == cid]
    if not mine:
        fail(f"leg {agent} {cid}: no SIP message with that Call-ID")
        return {}
    inbound = leg["direction"] == "inbound"
    # the phone's copies: inbound, responses the phone sent; outbound, all copies
    resp = [m for m in mine if m["status"] and m["sip.CSeq.method"] == "INVITE"
            and (not inbound or m["ip.src"] == phone)]
    invites = [m for m in mine if m["sip.Method"] == "INVITE" and not m["sip.to.tag"]]
    ring = [m for m in resp if m["status"] in (180, 183)]
    final = [m for m in resp if m["status"] >= 200]
    res = {}
    start = ring[0]["t"] if ring else (invites[0]["t"] if invites else None)
    if start is not None and final:
        res["ring_ms"] = round((final[0]["t"] - start) * 1000)
    # holds by the agent's side (first copy of each re-INVITE)
    holds, cur, seen = [], None, set()
    for m in mine:
        if m["sip.Method"] != "INVITE" or not m["sip.to.tag"]:
            if m["sip.Method"] == "BYE" and cur:
                holds.append((cur[0], round((m["t"] - cur[1]) * 1000)))
                cur = None
            continue
        key = m["sip.msg_hdr"].split("CSeq:")[1].split("\\r\\n")[0] if "CSeq:" in m["sip.msg_hdr"] else m["frame.number"]
        if key in seen:
            continue
        seen.add(key)
        by = "agent" if (m["ip.src"] == phone) == True else "customer"
        if m["ip.src"] == "127.0.0.10":
            # Kamailio's copy; the sender is the other end of the previous hop
            continue
        d = direction_of(m["attrs"])
        if d in ("sendonly", "inactive") and cur is None:
            cur = (by, m["t"])
        elif d in ("sendrecv", "recvonly") and cur and cur[0] == by:
            holds.append((by, round((m["t"] - cur[1]) * 1000)))
            cur = None
    res["holds"] = holds
    return res


def count_rtp(pcap):
    out = tshark(pcap, "-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams")
    streams = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 9 and parts[6].startswith("0x"):
            streams.append({"src": parts[2], "sport": parts[3], "dst": parts[4],
                            "dport": parts[5], "ssrc": parts[6],
                            "codec": parts[7], "packets": int(parts[8]), "lost": int(parts[9])})
    return streams


def raw_bytes(pcap):
    with open(pcap, "rb") as f:
        return f.read()


def story_checks(story, pcap, msgs):
    def n(pred):
        return sum(1 for m in msgs if pred(m))

    if story == "fragmented_invite_is_reassembled":
        frags = int(tshark(pcap, "-Y", "ip.flags.mf == 1", "-T", "fields", "-e", "frame.number")
                    .count("\n"))
        if frags < 2:
            fail(f"expected the INVITE IP-fragmented on both hops, saw {frags} first fragments")
        return f"{frags} fragmented datagrams"
    if story == "sip_over_tcp_is_followed":
        tcp = n(lambda m: m["tcp.srcport"])
        udp = n(lambda m: m["udp.srcport"])
        if tcp < 10 or udp:
            fail(f"expected SIP over TCP only, saw {tcp} TCP and {udp} UDP frames")
        return f"{tcp} SIP frames over TCP"
    if story == "retransmitted_invite_and_200_count_once":
        inv_t = n(lambda m: m["sip.Method"] == "INVITE" and m["ip.src"] == "127.0.0.20")
        inv_p = n(lambda m: m["sip.Method"] == "INVITE" and m["ip.dst"] == "127.0.0.11")
        ok_p = n(lambda m: m["status"] == 200 and m["sip.CSeq.method"] == "INVITE"
                 and m["ip.src"] == "127.0.0.11")
        prov = n(lambda m: m["status"] and m["status"] < 200)
        if inv_t < 2 or inv_p < 2 or ok_p < 2 or prov:
            fail(f"expected retransmissions: INVITE trunk x{inv_t}, INVITE to phone x{inv_p}, "
                 f"200 from phone x{ok_p}, provisional {prov} (want >=2, >=2, >=2, 0)")
        return f"INVITE x{inv_t}+x{inv_p}, 200 x{ok_p}"
    if story == "gbk_display_name_is_decoded":
        if b'From: "\xc0\xee\xc4\xc8" <sip:13812345678@' not in raw_bytes(pcap):
            fail("GBK bytes C0 EE C4 C8 not found in a From header on the wire")
        return "GBK display name on the wire"
    if story == "parallel_ringing_gives_two_legs_one_answered":
        c = [m for m in msgs if m["sip.Method"] == "CANCEL" and m["ip.dst"] == "127.0.0.11"]
        if not c or 'Reason: SIP;cause=200;text="Call completed elsewhere"' not in c[0]["sip.msg_hdr"]:
            fail("no CANCEL to 8001 with Reason: SIP;cause=200")
        return "CANCEL with Reason cause=200"
    if story == "glare_bye_counts_the_earlier_bye":
        byes = [m for m in msgs if m["sip.Method"] == "BYE" and m["ip.dst"] == "127.0.0.10"]
        oks = [m for m in msgs if m["status"] == 200 and m["sip.CSeq.method"] == "BYE"]
        if len(byes) < 2 or not oks or byes[1]["t"] > oks[0]["t"]:
            fail("the two BYEs do not cross (second BYE sent after the first 200 OK)")
        elif byes[0]["ip.src"] != "127.0.0.11":
            fail("the agent's BYE is not the first")
        else:
            return f"BYEs {round((byes[1]['t'] - byes[0]['t']) * 1000)} ms apart, agent first"
        return ""
    if story in ("answered_in_4s_then_transferred_to_survey",
                 "survey_transfer_failing_with_503_is_survey_missing",
                 "attended_transfer_to_survey_with_replaces"):
        # the customer's INVITE to the survey (a separate SIPp started at a fixed
        # offset) must fall between the NOTIFY 100 and the final NOTIFY
        notify = [m for m in msgs if m["sip.Method"] == "NOTIFY" and m["ip.src"] == "127.0.0.20"]
        leg = [m for m in msgs if "-trunk_survey-" in m["sip.Call-ID"]]
        inv = [m for m in leg if m["sip.Method"] == "INVITE"]
        fin = [m for m in leg if m["status"] and m["status"] >= 200 and m["sip.CSeq.method"] == "INVITE"]
        if len(notify) != 2 or not inv or not fin:
            fail(f"expected 2 NOTIFYs from the trunk and the survey leg, saw {len(notify)} NOTIFYs")
            return ""
        if not (notify[0]["t"] < inv[0]["t"] and fin[0]["t"] < notify[1]["t"]):
            fail("the survey leg does not fall between the NOTIFY 100 and the final NOTIFY")
        note = (f"survey INVITE {round((inv[0]['t'] - notify[0]['t']) * 1000)} ms after NOTIFY 100, "
                f"its final response {round((notify[1]['t'] - fin[0]['t']) * 1000)} ms before the final NOTIFY")
        if story != "attended_transfer_to_survey_with_replaces":
            return note
        refer = [m for m in msgs if m["sip.Method"] == "REFER"]
        rep = [m for m in msgs if m["sip.Method"] == "INVITE" and "Replaces: s18-consult-1@" in m["sip.msg_hdr"]]
        if not refer or "?Replaces=s18-consult-1%40127.0.0.11" not in refer[0]["sip.msg_hdr"] or not rep:
            fail("no REFER with Replaces or no INVITE with Replaces")
        return "REFER + INVITE with Replaces; " + note
    if story == "cancel_racing_the_answer_loses_to_the_200":
        cancel = [m for m in msgs if m["sip.Method"] == "CANCEL"]
        ok = [m for m in msgs if m["status"] == 200 and m["sip.CSeq.method"] == "INVITE"]
        if not cancel or not ok or cancel[0]["t"] > ok[0]["t"]:
            fail("the CANCEL is not on the wire before the 200 OK")
        if n(lambda m: m["status"] == 487) or n(lambda m: m["sip.Method"] == "CANCEL" and m["ip.dst"] == "127.0.0.11"):
            fail("the CANCEL reached the phone or a 487 was sent")
        if cancel and ok:
            return f"CANCEL {round((ok[0]['t'] - cancel[0]['t']) * 1000)} ms before the 200 OK"
        return ""
    if story == "registrations_options_and_ivr_calls_give_no_leg":
        reg = n(lambda m: m["sip.Method"] == "REGISTER")
        opt = n(lambda m: m["sip.Method"] == "OPTIONS")
        inv = n(lambda m: m["sip.Method"] == "INVITE")
        if reg != 2 or opt != 1 or inv != 2:
            fail(f"expected 2 REGISTER, 1 OPTIONS, 2 INVITE copies; saw {reg}, {opt}, {inv}")
        return f"{reg} REGISTER, {opt} OPTIONS"
    if story == "capture_started_mid_call_gives_no_leg":
        if n(lambda m: m["sip.Method"] in ("INVITE", "ACK")) or not n(lambda m: m["sip.Method"] == "BYE"):
            fail("expected no INVITE/ACK and a BYE in the cut capture")
        return "starts after the ACK"
    if story == "capture_ending_mid_call_leaves_the_leg_open":
        if n(lambda m: m["sip.Method"] == "BYE") or not n(lambda m: m["status"] == 200):
            fail("expected a 200 OK and no BYE in the cut capture")
        return "ends before any BYE"
    return ""


def main():
    pcap, expect_path, story = sys.argv[1:4]
    expect = json.load(open(expect_path))
    msgs = sip_messages(pcap)
    malformed = tshark(pcap, "-Y", "_ws.malformed or _ws.expert.severity == error and sip",
                       "-T", "fields", "-e", "frame.number").split()
    if malformed:
        fail(f"tshark finds malformed/erroneous SIP in frames {malformed[:10]}")
    notes = []
    streams = count_rtp(pcap)
    for leg in expect["legs"]:
        got = measure_leg(msgs, leg)
        name = f"{leg['agent']} {leg['direction']} {leg['call_id']}"
        if "ring_ms" in leg:
            in_range(f"{name} ring_ms", got.get("ring_ms"), leg["ring_ms"])
            notes.append(f"{leg['agent']} ring {got.get('ring_ms')} ms")
        holds = got.get("holds", [])
        if "holds" in leg:
            if len(holds) != len(leg["holds"]):
                fail(f"{name}: measured holds {holds}, expected {leg['holds']}")
            else:
                for (by, ms), want in zip(holds, leg["holds"]):
                    if by != want["by"]:
                        fail(f"{name}: hold by {by}, expected {want['by']}")
                    in_range(f"{name} hold", ms, want["ms"])
            notes.append(f"holds {holds}")
        if "hold_ms" in leg:
            in_range(f"{name} hold_ms", sum(ms for by, ms in holds if by == "agent"), leg["hold_ms"])
        if "media" in leg:
            # the streams to or from the media address the phone gave in this dialog
            phone = PHONES[leg["agent"]]
            ends = {(m["sdp.connection_info.address"].split("|")[0], m["sdp.media.port"].split("|")[0])
                    for m in msgs if m["sip.Call-ID"] == leg["call_id"] and m["ip.src"] == phone
                    and m["sdp.media.port"]}
            mine = [s for s in streams
                    if (s["src"], s["sport"]) in ends or (s["dst"], s["dport"]) in ends]
            want = sorted(m["packets"] for m in leg["media"])
            got_p = sorted(s["packets"] for s in mine)
            if want != got_p or any(s["lost"] for s in mine):
                fail(f"{name}: RTP streams {mine}, expected packets {want} and no loss")
    total_rtp = sum(s["packets"] for s in streams)
    extra = story_checks(story, pcap, msgs)
    print(f"summary: {'; '.join(notes)}; {len(msgs)} SIP, {total_rtp} RTP"
          + (f"; {extra}" if extra else ""))
    for e in errors:
        print("error:", e)
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
