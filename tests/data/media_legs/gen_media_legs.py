#!/usr/bin/env python3
"""Whole agent calls (SIP + SDP + RTP) with media trouble, for tests/tshark_lab.rs.

Based on a copy of shared/tools/gen_sip_rtp_pcap.py (standards.md §6.6): the same
Ethernet/IPv4/UDP framing and classic pcap writer, extended with complete SIP dialogs
between a switch and agents' phones (INVITE/183/180/200/ACK, re-INVITE, REFER/NOTIFY,
BYE) and RTP streams with random loss, bursts, arrival jitter, duplicates, reordering,
an SSRC change, DTMF events, silence with a marker-bit restart, and one-way stretches.

Deterministic: the same script writes the same bytes (own xorshift generator, integer
microsecond times, frames written in arrival order). Each capture gets a
`<name>.expect.json` beside it, in the format of tests/data/lab (story, config
overrides as dotted SPEC §4 keys, and per agent leg the fields that matter); the
media figures there are the design (what was sent), not what callwatch printed.

Usage: gen_media_legs.py DIR      (writes every capture and expect file into DIR)

Network (one LAN, the tap sees everything once):
  switch (PBX) SIP      10.20.0.1:5060
  media gateway         10.20.2.1   customer side of the media, ports 20000+
  agent 8001 phone      10.20.1.1:5060, media 10.20.1.1:30000+
  agent 8002 phone      10.20.1.2:5060, media 10.20.1.2:30000+
  survey IVR (96000)    10.20.3.1:5060, media 10.20.3.1:40000
"""
import json
import os
import struct
import sys

LINKTYPE_ETHERNET = 1

PBX = "10.20.0.1"
GW = "10.20.2.1"
PHONE1 = "10.20.1.1"
PHONE2 = "10.20.1.2"
IVR = "10.20.3.1"
CUSTOMER = "13812345678"

# Capture start: 2027-01-15T09:00:00+08:00.
T0 = 1_800_000_000 * 1_000_000


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def frame(src, sport, dst, dport, payload: bytes, ident=0) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    tot = 20 + udp_len
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident & 0xFFFF, 0, 64, 17, 0,
                      ip4(src), ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + iph + udp


class Capture:
    """Frames collected with arrival times (µs after T0), written in arrival order
    (insertion order among equal times)."""

    def __init__(self):
        self.frames = []

    def udp(self, t_us, src, sport, dst, dport, payload):
        self.frames.append((t_us, len(self.frames), src, sport, dst, dport, payload))

    def sip(self, t_ms, src, dst, payload):
        self.udp(t_ms * 1000, src, 5060, dst, 5060, payload)

    def write(self, path):
        with open(path, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
            for n, (t, _, src, sport, dst, dport, payload) in enumerate(
                    sorted(self.frames, key=lambda x: (x[0], x[1]))):
                pkt = frame(src, sport, dst, dport, payload, ident=n)
                at = T0 + t
                f.write(struct.pack("<IIII", at // 1_000_000, at % 1_000_000, len(pkt), len(pkt)))
                f.write(pkt)


class Rng:
    """xorshift64: the same numbers on every Python."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        s = self.s
        s ^= (s << 13) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 7
        s ^= (s << 17) & 0xFFFFFFFFFFFFFFFF
        self.s = s
        return s

    def below(self, n):
        return self.next() % n

    def pick(self, k, lo, hi):
        """k distinct integers in [lo, hi), sorted."""
        out = set()
        while len(out) < k:
            out.add(lo + self.below(hi - lo))
        return sorted(out)


# ---- SDP and SIP ------------------------------------------------------------------------

def sdp(ip, port, version=1, direction="sendrecv"):
    return (
        "v=0\r\n"
        f"o=- 4711 {version} IN IP4 {ip}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {ip}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        f"a={direction}\r\n"
    )


def sip_msg(start, headers, body="", ctype="application/sdp"):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    ct = f"Content-Type: {ctype}\r\n" if body else ""
    return f"{start}\r\n{h}{ct}Content-Length: {len(body.encode())}\r\n\r\n{body}".encode()


class Dialog:
    """One SIP dialog as the tap sees it between two UAs (`a` the caller, `b` the callee)."""

    def __init__(self, call_id, a_user, a_ip, a_tag, b_user, b_ip, b_tag):
        self.call_id = call_id
        self.a = (a_user, a_ip, a_tag)
        self.b = (b_user, b_ip, b_tag)
        self.cseq = {"a": 1, "b": 0}

    def _ends(self, by_a):
        return (self.a, self.b) if by_a else (self.b, self.a)

    def _headers(self, by_a, cseq, method, branch, to_tag=True, extra=(), response=False):
        (fu, fip, ftag), (tu, tip, ttag) = self._ends(by_a)
        # A request's Contact is its sender's, a response's the responder's.
        cu, cip = (tu, tip) if response else (fu, fip)
        to = f"<sip:{tu}@{tip}>" + (f";tag={ttag}" if to_tag else "")
        return [
            ("Via", f"SIP/2.0/UDP {fip}:5060;branch=z9hG4bK{branch}"),
            ("Max-Forwards", "70"),
            ("From", f"<sip:{fu}@{fip}>;tag={ftag}"),
            ("To", to),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{cu}@{cip}:5060>"),
            *extra,
        ]

    def request(self, by_a, method, body="", extra=(), ctype="application/sdp", initial=False):
        side = "a" if by_a else "b"
        if method != "ACK":
            self.cseq[side] += 0 if initial else 1
        cseq = self.cseq[side]
        (_, _, _), (tu, tip, _) = self._ends(by_a)
        branch = f"{self.call_id.split('@')[0]}{side}{method}{cseq}"
        msg = sip_msg(f"{method} sip:{tu}@{tip}:5060 SIP/2.0",
                      self._headers(by_a, cseq, method, branch, to_tag=not initial, extra=extra),
                      body, ctype)
        return msg, (by_a, cseq, method, branch)

    def response(self, req, code, reason, body="", to_tag=True):
        by_a, cseq, method, branch = req
        return sip_msg(f"SIP/2.0 {code} {reason}",
                       self._headers(by_a, cseq, method, branch, to_tag=to_tag, response=True),
                       body)


# ---- RTP --------------------------------------------------------------------------------

def rtp(seq, ts, ssrc, pt=0, marker=False, payload=None):
    if payload is None:
        payload = b"\xff" * 160
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt,
                       seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def stream(cap, src, dst, ssrc, start_ms, n, seq0, ts0, jitter_us=None, drop=(),
           dup=(), swap=(), marker_at=(0,), gaps=None, delay_us=0):
    """n packets of 20 ms PCMU sent from start_ms; returns what was sent.

    jitter_us(i) -> extra arrival delay of packet i; drop: indices lost; dup: indices
    that arrive twice (the copy 1 ms later); swap: indices i whose arrival swaps with
    i+1; marker_at: indices with the marker bit; gaps: {index: ms} silences inserted
    before a packet (sender-side: the sequence goes on, the timestamp follows the
    clock). Returns (packets written, expected, lost) as Wireshark 4.0 counts them
    (valid when the first and last packets are neither dropped nor swapped).
    """
    (sip_, sport), (dip, dport) = src, dst
    sched = []
    shift_ms = 0
    for i in range(n):
        if gaps and i in gaps:
            shift_ms += gaps[i]
        send_us = (start_ms + shift_ms + 20 * i) * 1000
        ts = ts0 + 8 * (shift_ms + 20 * i)
        if i in drop:
            continue
        at = send_us + delay_us + (jitter_us(i) if jitter_us else 0)
        sched.append([at, i, (seq0 + i) & 0xFFFF, ts, i in marker_at])
    for i in swap:
        k = next(k for k, s in enumerate(sched) if s[1] == i)
        sched[k][0], sched[k + 1][0] = sched[k + 1][0], sched[k][0]
    written = 0
    for at, i, seq, ts, mk in sched:
        cap.udp(at, sip_, sport, dip, dport, rtp(seq, ts, ssrc, 0, mk))
        written += 1
        if i in dup:
            cap.udp(at + 1000, sip_, sport, dip, dport, rtp(seq, ts, ssrc, 0, mk))
            written += 1
    return written, n, n - written


def dtmf(cap, src, dst, ssrc, start_ms, seq0, ts, digit, packets=7):
    """An RFC 4733 digit: `packets` events 20 ms apart, the last three marked end."""
    (sip_, sport), (dip, dport) = src, dst
    for k in range(packets + 2):
        end = k >= packets - 1
        duration = 160 * min(k + 1, packets)
        payload = struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)
        cap.udp((start_ms + 20 * min(k, packets - 1)) * 1000 + (k - min(k, packets - 1)) * 500,
                sip_, sport, dip, dport, rtp(seq0 + k, ts, ssrc, 101, k == 0, payload))
    return packets + 2


# ---- call building blocks ------------------------------------------------------------

def inbound_call(cap, call_id, tag, agent, phone_ip, gw_port, phone_port, answer_ms,
                 early_183=False):
    """The switch offers the customer's media (GW:gw_port) to the agent's phone; 100,
    180 (or 183 with SDP), 200 with the phone's SDP at answer_ms, ACK."""
    d = Dialog(call_id, CUSTOMER, PBX, f"c{tag}", agent, phone_ip, f"p{tag}")
    inv, r = d.request(True, "INVITE", sdp(GW, gw_port), initial=True)
    cap.sip(0, PBX, phone_ip, inv)
    cap.sip(15, phone_ip, PBX, d.response(r, 100, "Trying", to_tag=False))
    if early_183:
        cap.sip(120, phone_ip, PBX, d.response(r, 183, "Session Progress", sdp(phone_ip, phone_port)))
    else:
        cap.sip(120, phone_ip, PBX, d.response(r, 180, "Ringing"))
    cap.sip(answer_ms, phone_ip, PBX, d.response(r, 200, "OK", sdp(phone_ip, phone_port)))
    ack, _ = d.request(True, "ACK")
    cap.sip(answer_ms + 12, PBX, phone_ip, ack)
    return d


def bye(cap, d, by_a, t_ms, src, dst):
    req, r = d.request(by_a, "BYE")
    cap.sip(t_ms, src, dst, req)
    cap.sip(t_ms + 8, dst, src, d.response(r, 200, "OK"))


def expect(path, story, legs, config=None):
    with open(path, "w") as f:
        json.dump({"story": story, "config": config or {}, "legs": legs}, f, indent=2)
        f.write("\n")


def media(frm, counts, codec="PCMU"):
    packets, _expected, lost = counts
    return {"from": frm, "codec": codec, "packets": packets, "lost": lost}


# ---- the captures -------------------------------------------------------------------------

def loss_jitter_duplicates(d):
    """An inbound call, 30 s of talk. Customer→agent: 4 % random loss plus a burst of
    8, 0-12 ms arrival jitter, two duplicates. Agent→customer: 0-3 ms jitter, one
    swapped pair, one loss. The customer's loss (4.5 %) is above the 3 % limit."""
    cap = Capture()
    rng = Rng(0xC0FFEE01)
    dlg = inbound_call(cap, "ml1-trunk@10.20.0.1", "ml1", "8001", PHONE1, 20000, 30000, 2000)
    n = 1500
    drop = set(rng.pick(60, 1, n - 1))
    drop |= set(range(700, 708))
    drop = sorted(drop)
    dup = [i for i in (101, 1201) if i not in drop]
    cust = stream(cap, (GW, 20000), (PHONE1, 30000), 0x3C1A0001, 2040, n, 31_000, 160_000,
                  jitter_us=lambda i: rng.below(12_000), drop=drop, dup=dup)
    agent = stream(cap, (PHONE1, 30000), (GW, 20000), 0x5A6E0001, 2045, n, 65_200, 4_294_800_000,
                   jitter_us=lambda i: rng.below(3_000), drop=(900,), swap=(400,))
    bye(cap, dlg, True, 32_200, PBX, PHONE1)
    name = "loss_jitter_duplicates"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Inbound call to 8001 answered after 2 s, 30 s of PCMU each way. The customer's "
           f"stream loses {len(drop)} of 1500 packets (at random and a burst of 8) and "
           f"{len(dup)} packets arrive twice, with 0-12 ms arrival jitter: lost "
           f"{cust[2]} ({100 * cust[2] / n:.1f} %) > 3 %, poor_audio. The agent's stream "
           "wraps its sequence and timestamp, has 0-3 ms jitter, one swapped pair and one "
           "loss. The customer hangs up.",
           [{"agent": "8001", "direction": "inbound", "call_id": "ml1-trunk@10.20.0.1",
             "outcome": "answered", "hangup_by": "customer", "end_reason": "bye",
             "violations": ["poor_audio"],
             "media": [media("customer", cust), media("agent", agent)]}])


def ssrc_change_and_dtmf(d):
    """The switch re-anchors the customer's media mid-call: same addresses and ports,
    a new SSRC, sequence and timestamp base. The agent sends an RFC 4733 digit."""
    cap = Capture()
    rng = Rng(0xC0FFEE02)
    dlg = inbound_call(cap, "ml2-trunk@10.20.0.1", "ml2", "8001", PHONE1, 20010, 30010, 1500)
    c1 = stream(cap, (GW, 20010), (PHONE1, 30010), 0x3C1A0011, 1530, 400, 100, 0,
                jitter_us=lambda i: rng.below(2_000))
    c2 = stream(cap, (GW, 20010), (PHONE1, 30010), 0x3C1A0012, 1530 + 400 * 20, 450, 52_000,
                1_000_000_000, jitter_us=lambda i: rng.below(2_000))
    # The agent's stream: speech, a digit "5" at 6 s (9 event packets with PT 101, the
    # same SSRC, its own sequence numbers), then speech again.
    a_before = stream(cap, (PHONE1, 30010), (GW, 20010), 0x5A6E0011, 1535, 225, 7000, 80_000,
                      jitter_us=lambda i: rng.below(1_000))
    ev = dtmf(cap, (PHONE1, 30010), (GW, 20010), 0x5A6E0011, 1535 + 225 * 20, 7225,
              80_000 + 8 * 225 * 20, 5)
    a_after = stream(cap, (PHONE1, 30010), (GW, 20010), 0x5A6E0011, 1535 + 225 * 20 + 160, 617,
                     7225 + ev, 80_000 + 8 * (225 * 20 + 160), jitter_us=lambda i: rng.below(1_000))
    bye(cap, dlg, False, 19_000, PHONE1, PBX)  # the agent hangs up: agent_hangup_first
    agent_packets = a_before[0] + ev + a_after[0]
    name = "ssrc_change_and_dtmf"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Inbound call to 8001; after 8 s the switch re-anchors the customer's media on "
           "the same ports with a new SSRC (a second stream of the leg). The agent's phone "
           "sends the digit 5 as RFC 4733 events in its stream, then hangs up first.",
           [{"agent": "8001", "direction": "inbound", "call_id": "ml2-trunk@10.20.0.1",
             "outcome": "answered", "hangup_by": "agent", "end_reason": "bye",
             "violations": ["agent_hangup_first", "survey_missing"],
             "media": [media("customer", c1), media("customer", c2),
                       {"from": "agent", "codec": "PCMU", "packets": agent_packets, "lost": 0}]}])


def one_way_stretch(d):
    """Both ways for 4 s, then the customer's audio stops for 9 s while the agent's
    goes on (a broken path), then both for 3 s."""
    cap = Capture()
    rng = Rng(0xC0FFEE03)
    dlg = inbound_call(cap, "ml3-trunk@10.20.0.1", "ml3", "8002", PHONE2, 20020, 30020, 3000)
    c = stream(cap, (GW, 20020), (PHONE2, 30020), 0x3C1A0021, 3020, 350, 5, 0,
               jitter_us=lambda i: rng.below(4_000), gaps={200: 9000}, marker_at=(0, 200))
    a = stream(cap, (PHONE2, 30020), (GW, 20020), 0x5A6E0021, 3025, 800, 9, 0,
               jitter_us=lambda i: rng.below(4_000))
    bye(cap, dlg, True, 19_200, PBX, PHONE2)
    name = "one_way_stretch"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Inbound call to 8002 answered after 3 s; both ways for 4 s, then only the "
           "agent's audio for 9 s (the customer's stream resumes with the next sequence "
           "number and a marker bit), then both for 3 s; the customer hangs up.",
           [{"agent": "8002", "direction": "inbound", "call_id": "ml3-trunk@10.20.0.1",
             "outcome": "answered", "hangup_by": "customer", "end_reason": "bye",
             "violations": ["one_way_audio"],
             "media": [media("customer", c), media("agent", a)]}])


def early_media_and_reinvite(d):
    """Agent 8001 calls out: 183 with SDP and 4 s of ringback (early media), 200, talk;
    the switch's re-INVITE moves its media to another gateway port with a new SSRC."""
    cap = Capture()
    rng = Rng(0xC0FFEE04)
    dlg = Dialog("ml4-agent@10.20.1.1", "8001", PHONE1, "p-ml4", "95588123", PBX, "g-ml4")
    inv, r = dlg.request(True, "INVITE", sdp(PHONE1, 30030), initial=True)
    cap.sip(0, PHONE1, PBX, inv)
    cap.sip(10, PBX, PHONE1, dlg.response(r, 100, "Trying", to_tag=False))
    cap.sip(900, PBX, PHONE1, dlg.response(r, 183, "Session Progress", sdp(GW, 20030)))
    # Ringback then speech from the network on one SSRC: 200 + 250 packets.
    c1 = stream(cap, (GW, 20030), (PHONE1, 30030), 0x3C1A0031, 1000, 450, 400, 3000,
                jitter_us=lambda i: rng.below(5_000))
    cap.sip(5000, PBX, PHONE1, dlg.response(r, 200, "OK", sdp(GW, 20030)))
    ack, _ = dlg.request(True, "ACK")
    cap.sip(5010, PHONE1, PBX, ack)
    a1 = stream(cap, (PHONE1, 30030), (GW, 20030), 0x5A6E0031, 5020, 249, 1, 0,
                jitter_us=lambda i: rng.below(1_000))
    reinv, rr = dlg.request(False, "INVITE", sdp(GW, 20032, version=2))
    cap.sip(10_000, PBX, PHONE1, reinv)
    cap.sip(10_012, PHONE1, PBX, dlg.response(rr, 200, "OK", sdp(PHONE1, 30030, version=2)))
    ack2, _ = dlg.request(False, "ACK")
    cap.sip(10_020, PBX, PHONE1, ack2)
    c2 = stream(cap, (GW, 20032), (PHONE1, 30030), 0x3C1A0032, 10_030, 300, 900, 500_000,
                jitter_us=lambda i: rng.below(5_000))
    a2 = stream(cap, (PHONE1, 30030), (GW, 20032), 0x5A6E0031, 10_040, 300, 250, 8 * (10_040 - 5020),
                jitter_us=lambda i: rng.below(1_000), marker_at=())
    bye(cap, dlg, True, 16_100, PHONE1, PBX)
    name = "early_media_and_reinvite"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Agent 8001 dials out; the network answers 183 with SDP and plays 4 s of "
           "ringback (early media, counted in the leg's stream) before the 200. At 10 s "
           "the switch's re-INVITE moves its media to port 20032 with a new SSRC; the "
           "phone's stream follows to the new port. The agent hangs up (outbound: no "
           "rule).",
           [{"agent": "8001", "direction": "outbound", "call_id": "ml4-agent@10.20.1.1",
             "outcome": "answered", "hangup_by": "agent", "end_reason": "bye",
             "violations": [],
             "media": [media("customer", c1), media("agent", a1),
                       media("customer", c2), media("agent", a2)]}])


def survey_ivr_leg(d):
    """An inbound call; the agent transfers the customer to the survey (REFER to
    96000). The switch's dialog with the survey IVR has no agent: its RTP is in the
    capture (tshark decodes it from that dialog's SDP) but belongs to no agent leg."""
    cap = Capture()
    rng = Rng(0xC0FFEE05)
    dlg = inbound_call(cap, "ml5-trunk@10.20.0.1", "ml5", "8001", PHONE1, 20040, 30040, 2500)
    c = stream(cap, (GW, 20040), (PHONE1, 30040), 0x3C1A0041, 2520, 300, 60_000, 0,
               jitter_us=lambda i: rng.below(3_000))
    a = stream(cap, (PHONE1, 30040), (GW, 20040), 0x5A6E0041, 2525, 300, 3_000, 0,
               jitter_us=lambda i: rng.below(3_000))
    refer, rr = dlg.request(False, "REFER", extra=(
        ("Refer-To", f"<sip:96000@{PBX}>"), ("Referred-By", f"<sip:8001@{PHONE1}>")))
    cap.sip(8_600, PHONE1, PBX, refer)
    cap.sip(8_610, PBX, PHONE1, dlg.response(rr, 202, "Accepted"))
    frag100 = "SIP/2.0 100 Trying\r\n"
    n1, nr1 = dlg.request(True, "NOTIFY", frag100, ctype="message/sipfrag", extra=(
        ("Event", "refer"), ("Subscription-State", "active;expires=60")))
    cap.sip(8_620, PBX, PHONE1, n1)
    cap.sip(8_625, PHONE1, PBX, dlg.response(nr1, 200, "OK"))
    # The switch's leg to the survey IVR: no agent at either end.
    ivr = Dialog("ml5-survey@10.20.0.1", CUSTOMER, PBX, "c-ml5-s", "96000", IVR, "ivr-ml5")
    inv, ir = ivr.request(True, "INVITE", sdp(GW, 20042), initial=True)
    cap.sip(8_630, PBX, IVR, inv)
    cap.sip(8_700, IVR, PBX, ivr.response(ir, 200, "OK", sdp(IVR, 40000)))
    iack, _ = ivr.request(True, "ACK")
    cap.sip(8_710, PBX, IVR, iack)
    frag200 = "SIP/2.0 200 OK\r\n"
    n2, nr2 = dlg.request(True, "NOTIFY", frag200, ctype="message/sipfrag", extra=(
        ("Event", "refer"), ("Subscription-State", "terminated;reason=noresource")))
    cap.sip(8_720, PBX, PHONE1, n2)
    cap.sip(8_725, PHONE1, PBX, dlg.response(nr2, 200, "OK"))
    bye(cap, dlg, False, 8_800, PHONE1, PBX)
    # The survey prompt and the customer's keypresses (as audio).
    stream(cap, (IVR, 40000), (GW, 20042), 0x1F00_0051, 8_720, 400, 10, 0,
           jitter_us=lambda i: rng.below(2_000))
    stream(cap, (GW, 20042), (IVR, 40000), 0x3C1A0042, 8_725, 400, 20, 0,
           jitter_us=lambda i: rng.below(2_000))
    bye(cap, ivr, True, 17_000, PBX, IVR)
    name = "survey_ivr_leg"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Inbound call to 8001, 6 s of talk; the agent's blind REFER to 96000 is "
           "accepted, the switch calls the survey IVR (a dialog with no agent), NOTIFY "
           "sipfrag 200, the agent leaves. The IVR dialog's two RTP streams are in the "
           "capture but in no agent leg.",
           [{"agent": "8001", "direction": "inbound", "call_id": "ml5-trunk@10.20.0.1",
             "outcome": "answered", "hangup_by": "agent", "survey": "transferred",
             "end_reason": "transfer", "violations": [],
             "media": [media("customer", c), media("agent", a)]}])


def media_timeout_without_bye(d):
    """RTP stops after 8 s of talk and no BYE is ever seen; the switch's OPTIONS pings
    to the phone go on every 5 s, so the capture runs past the (lowered) media timeout
    and `analyze` closes the leg as `timeout`."""
    cap = Capture()
    rng = Rng(0xC0FFEE06)
    inbound_call(cap, "ml6-trunk@10.20.0.1", "ml6", "8002", PHONE2, 20050, 30050, 1800)
    c = stream(cap, (GW, 20050), (PHONE2, 30050), 0x3C1A0061, 1820, 400, 1, 0,
               jitter_us=lambda i: rng.below(2_000))
    a = stream(cap, (PHONE2, 30050), (GW, 20050), 0x5A6E0061, 1825, 400, 1, 0,
               jitter_us=lambda i: rng.below(2_000))
    for k in range(6):
        t = 12_000 + 5_000 * k
        opt = Dialog(f"ml6-ping{k}@10.20.0.1", "ping", PBX, f"o{k}", "8002", PHONE2, f"q{k}")
        req, r = opt.request(True, "OPTIONS", initial=True)
        cap.sip(t, PBX, PHONE2, req)
        cap.sip(t + 5, PHONE2, PBX, opt.response(r, 200, "OK"))
    name = "media_timeout_without_bye"
    cap.write(os.path.join(d, name + ".pcap"))
    expect(os.path.join(d, name + ".expect.json"),
           "Inbound call to 8002; RTP both ways for 8 s, then silence and no BYE. OPTIONS "
           "pings run to 37 s. With engine.media_timeout_ms = 15000 the leg is closed at "
           "the last RTP + 15 s as a timeout: hangup_by none, no hang-up or survey rule.",
           [{"agent": "8002", "direction": "inbound", "call_id": "ml6-trunk@10.20.0.1",
             "outcome": "answered", "hangup_by": "none", "end_reason": "timeout",
             "violations": [],
             "media": [media("customer", c), media("agent", a)]}],
           config={"engine.media_timeout_ms": 15000})


ALL = [loss_jitter_duplicates, ssrc_change_and_dtmf, one_way_stretch,
       early_media_and_reinvite, survey_ivr_leg, media_timeout_without_bye]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for make in ALL:
        make(out)
