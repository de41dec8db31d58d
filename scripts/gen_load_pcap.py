#!/usr/bin/env python3
"""Large SIP+RTP capture for callwatch benchmarks: a call centre's busy hour.

Derived from ../shared/tools/gen_sip_rtp_pcap.py (same frame and pcap writers), extended
to what `callwatch analyze` sees on a mirror port between the switch and the agents:

- a switch (PBX/ACD, SIP 10.20.0.5:5060, media 10.20.0.6) offering customer calls to
  agent phones 8001-8099 (10.30.1.1-99), one UDP leg per call;
- every call: INVITE (SDP) / 100 / 180 / then
  * answered: 200 (SDP) / ACK, RTP both ways every 20 ms (PCMA, 160-byte payload) for
    --rtp-seconds, then BYE / 200 from the customer's side or, for --agent-hangup-pct
    of the calls, from the agent's phone (agent_hangup_first and survey_missing);
  * --late-pct of the calls ring 11-15 s before the answer (late_answer), the others
    1.5-8 s;
  * --cancel-pct of the calls are cancelled by the caller after 2-8 s of ringing:
    CANCEL / 200 / 487 / ACK, no RTP;
- calls start at a steady rate so that about --concurrency are in progress at once;
- frames are written in capture-time order (a heap merge of the calls), classic pcap,
  Ethernet, microsecond timestamps. Memory stays small whatever the size.

Usage:
  gen_load_pcap.py OUT.pcap [--calls 2000] [--rtp-seconds 20] [--concurrency 200]
                   [--late-pct 10] [--cancel-pct 8] [--agent-hangup-pct 15] [--seed 1]

Prints a JSON summary on stdout: frames written, calls by kind, and the agent legs and
violations callwatch (default configuration) is expected to report.
"""
import argparse
import heapq
import json
import random
import struct
import sys

LINKTYPE_ETHERNET = 1
SWITCH_SIP = "10.20.0.5"
SWITCH_MEDIA = "10.20.0.6"
T0_US = 1_795_735_595_000_000  # 2026-11-27 07:26:35 +08:00, like the lab captures
PTIME_US = 20_000


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def udp_header(src, sport, dst, dport, payload_len: int) -> bytes:
    """Ethernet + IPv4 + UDP headers for a payload of `payload_len` bytes. With a zero IP
    id and no UDP checksum they only depend on the addresses and the length, so RTP
    streams reuse one per stream."""
    udp_len = 8 + payload_len
    tot = 20 + udp_len
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, 0, 0, 64, 17, 0, ip4(src), ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + iph + struct.pack("!HHHH", sport, dport, udp_len, 0)


def frame(src, sport, dst, dport, payload: bytes) -> bytes:
    return udp_header(src, sport, dst, dport, len(payload)) + payload


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb", buffering=1 << 20)
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))
        self.frames = 0
        self.bytes = 24

    def write(self, t_us: int, pkt: bytes):
        self.f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt), len(pkt)))
        self.f.write(pkt)
        self.frames += 1
        self.bytes += 16 + len(pkt)

    def close(self):
        self.f.close()


def sdp(ip, port, sess):
    return (
        "v=0\r\n"
        f"o=- {sess} {sess} IN IP4 {ip}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {ip}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 8 101\r\n"
        "a=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def sip_msg(start, headers, body=""):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    ct = "Content-Type: application/sdp\r\n" if body else ""
    return f"{start}\r\n{h}{ct}Content-Length: {len(body)}\r\n\r\n{body}".encode()


class Call:
    """One customer call to one agent: its plan and its frames in time order."""

    def __init__(self, n, start_us, agent, kind, ring_us, talk_us, agent_hangs_up):
        self.n = n
        self.start = start_us
        self.agent = agent
        self.kind = kind  # "answered" or "cancelled"
        self.ring = ring_us
        self.talk = talk_us
        self.agent_hangs_up = agent_hangs_up
        self.phone = f"10.30.1.{agent - 8000}"
        self.customer = f"138{(10_000_000 + n * 7919) % 100_000_000:08d}"
        self.phone_port = 20_000 + 2 * (n % 20_000)
        self.switch_port = 30_000 + 2 * (n % 15_000)

    def frames(self):
        """Yields (t_us, seq, frame bytes) in time order."""
        n, ph, ext, cust = self.n, self.phone, self.agent, self.customer
        cid = f"ld{n:07d}-{(n * 2654435761) & 0xFFFFFFFF:08x}@{SWITCH_SIP}"
        ftag, ttag = f"sw{n:x}a", f"ph{n:x}b"
        via = f"SIP/2.0/UDP {SWITCH_SIP}:5060;branch=z9hG4bK{n:x}inv;rport"
        frm = f"\"{cust}\" <sip:{cust}@{SWITCH_SIP}>;tag={ftag}"
        to = f"<sip:{ext}@{SWITCH_SIP}>"
        to_t = f"{to};tag={ttag}"
        sw_contact = f"<sip:{cust}@{SWITCH_SIP}:5060>"
        ph_contact = f"<sip:{ext}@{ph}:5060>"
        ua = ("User-Agent", "Yealink SIP-T46U 108.86.0.20")
        t = self.start
        k = 0

        def sw(at, payload):
            return (at, n, payload, True)

        def fromphone(at, payload):
            return (at, n, payload, False)

        out = []
        out.append(sw(t, sip_msg(f"INVITE sip:{ext}@{ph}:5060 SIP/2.0", [
            ("Via", via), ("Max-Forwards", "69"), ("From", frm), ("To", to),
            ("Contact", sw_contact), ("Call-ID", cid), ("CSeq", "101 INVITE"),
            ("Allow", "INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY"),
            ("User-Agent", "callwatch-loadgen switch")],
            sdp(SWITCH_MEDIA, self.switch_port, 1000 + n))))
        resp = [("Via", via), ("From", frm), ("To", to_t), ("Call-ID", cid)]
        out.append(fromphone(t + 4_000, sip_msg("SIP/2.0 100 Trying", [
            ("Via", via), ("From", frm), ("To", to), ("Call-ID", cid), ("CSeq", "101 INVITE"), ua])))
        ring_start = t + 20_000
        out.append(fromphone(ring_start, sip_msg("SIP/2.0 180 Ringing", resp + [
            ("CSeq", "101 INVITE"), ("Contact", ph_contact), ua])))
        ring_end = ring_start + self.ring
        if self.kind == "cancelled":
            out.append(sw(ring_end, sip_msg(f"CANCEL sip:{ext}@{ph}:5060 SIP/2.0", [
                ("Via", via), ("Max-Forwards", "69"), ("From", frm), ("To", to),
                ("Call-ID", cid), ("CSeq", "101 CANCEL")])))
            out.append(fromphone(ring_end + 3_000, sip_msg("SIP/2.0 200 OK", resp + [
                ("CSeq", "101 CANCEL"), ua])))
            out.append(fromphone(ring_end + 5_000, sip_msg("SIP/2.0 487 Request Terminated", resp + [
                ("CSeq", "101 INVITE"), ua])))
            out.append(sw(ring_end + 8_000, sip_msg(f"ACK sip:{ext}@{ph}:5060 SIP/2.0", [
                ("Via", via), ("Max-Forwards", "69"), ("From", frm), ("To", to_t),
                ("Call-ID", cid), ("CSeq", "101 ACK")])))
            for f in out:
                yield self._wire(f, k)
                k += 1
            return
        out.append(fromphone(ring_end, sip_msg("SIP/2.0 200 OK", resp + [
            ("CSeq", "101 INVITE"), ("Contact", ph_contact),
            ("Allow", "INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS"), ua],
            sdp(ph, self.phone_port, 2000 + n))))
        out.append(sw(ring_end + 10_000, sip_msg(f"ACK sip:{ext}@{ph}:5060 SIP/2.0", [
            ("Via", f"SIP/2.0/UDP {SWITCH_SIP}:5060;branch=z9hG4bK{n:x}ack;rport"),
            ("Max-Forwards", "69"), ("From", frm), ("To", to_t), ("Call-ID", cid),
            ("CSeq", "101 ACK")])))
        for f in out:
            yield self._wire(f, k)
            k += 1

        # RTP both ways from the answer until the BYE.
        media_start = ring_end + 30_000
        packets = self.talk // PTIME_US
        sw_hdr = udp_header(SWITCH_MEDIA, self.switch_port, ph, self.phone_port, 172)
        ph_hdr = udp_header(ph, self.phone_port, SWITCH_MEDIA, self.switch_port, 172)
        sw_ssrc = (0x5A000000 + n * 3) & 0xFFFFFFFF
        ph_ssrc = (0xA5000000 + n * 5) & 0xFFFFFFFF
        payload = b"\xd5" * 160  # PCMA silence
        # A little jitter: a fixed pattern per call, 0-1.5 ms, keeps the figures sane.
        jit = [((n * 31 + i * 17) % 7) * 250 for i in range(16)]
        pack = struct.Struct("!BBHII").pack
        for i in range(packets):
            base = media_start + i * PTIME_US
            marker = 0x80 if i == 0 else 0
            yield (base + jit[i & 15], n, k,
                   sw_hdr + pack(0x80, marker | 8, (1000 + n + i) & 0xFFFF, (i * 160) & 0xFFFFFFFF, sw_ssrc) + payload)
            yield (base + 7_000 + jit[(i + 5) & 15], n, k + 1,
                   ph_hdr + pack(0x80, marker | 8, (5000 + n + i) & 0xFFFF, (i * 160 + 777) & 0xFFFFFFFF, ph_ssrc) + payload)
            k += 2

        bye_at = media_start + packets * PTIME_US + 15_000
        if self.agent_hangs_up:
            bye_via = f"SIP/2.0/UDP {ph}:5060;branch=z9hG4bK{n:x}bye;rport"
            bye = fromphone(bye_at, sip_msg(f"BYE sip:{cust}@{SWITCH_SIP}:5060 SIP/2.0", [
                ("Via", bye_via), ("Max-Forwards", "70"), ("From", f"{to_t}"), ("To", frm),
                ("Call-ID", cid), ("CSeq", "2 BYE"), ua]))
            ok = sw(bye_at + 6_000, sip_msg("SIP/2.0 200 OK", [
                ("Via", bye_via), ("From", to_t), ("To", frm), ("Call-ID", cid), ("CSeq", "2 BYE")]))
        else:
            bye_via = f"SIP/2.0/UDP {SWITCH_SIP}:5060;branch=z9hG4bK{n:x}bye;rport"
            bye = sw(bye_at, sip_msg(f"BYE sip:{ext}@{ph}:5060 SIP/2.0", [
                ("Via", bye_via), ("Max-Forwards", "69"), ("From", frm), ("To", to_t),
                ("Call-ID", cid), ("CSeq", "102 BYE")]))
            ok = fromphone(bye_at + 6_000, sip_msg("SIP/2.0 200 OK", [
                ("Via", bye_via), ("From", frm), ("To", to_t), ("Call-ID", cid),
                ("CSeq", "102 BYE"), ua]))
        yield self._wire(bye, k)
        yield self._wire(ok, k + 1)

    def _wire(self, ev, k):
        at, n, payload, from_switch = ev
        if from_switch:
            pkt = frame(SWITCH_SIP, 5060, self.phone, 5060, payload)
        else:
            pkt = frame(self.phone, 5060, SWITCH_SIP, 5060, payload)
        return (at, n, k, pkt)


def plan(args):
    rng = random.Random(args.seed)
    talk_us = int(args.rtp_seconds * 1_000_000)
    mean_ring = 0.1 * 13.0 + 0.9 * 4.75
    mean_len_us = int((mean_ring + args.rtp_seconds + 0.1) * 1_000_000)
    gap_us = max(1_000, mean_len_us // max(1, args.concurrency))
    calls = []
    summary = {"calls": args.calls, "answered": 0, "cancelled": 0, "late_answers": 0,
               "agent_hangups": 0}
    for n in range(args.calls):
        start = T0_US + n * gap_us + rng.randrange(0, gap_us // 2 + 1)
        agent = 8001 + n % 99
        r = rng.random() * 100
        if r < args.cancel_pct:
            kind, ring, hangup = "cancelled", rng.randrange(2_000_000, 8_000_000), False
            summary["cancelled"] += 1
        else:
            kind = "answered"
            summary["answered"] += 1
            if rng.random() * 100 < args.late_pct:
                ring = rng.randrange(11_000_000, 15_000_000)
                summary["late_answers"] += 1
            else:
                ring = rng.randrange(1_500_000, 8_000_000)
            hangup = rng.random() * 100 < args.agent_hangup_pct
            summary["agent_hangups"] += int(hangup)
        calls.append(Call(n, start, agent, kind, ring, talk_us, hangup))
    return calls, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--rtp-seconds", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--late-pct", type=float, default=10.0)
    ap.add_argument("--cancel-pct", type=float, default=8.0)
    ap.add_argument("--agent-hangup-pct", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if args.calls < 1 or args.rtp_seconds < 0 or args.concurrency < 1:
        ap.error("--calls and --concurrency must be positive, --rtp-seconds not negative")

    calls, summary = plan(args)
    p = Pcap(args.out)
    # Calls start in order, so a call's generator is opened only when time reaches its
    # INVITE: the heap holds the calls in progress, not all of them.
    heap = []
    pending = iter(calls)
    nxt = next(pending, None)
    while heap or nxt is not None:
        while nxt is not None and (not heap or nxt.start <= heap[0][0]):
            g = nxt.frames()
            first = next(g, None)
            if first is not None:
                heapq.heappush(heap, (first[0], first[1], first[2], first[3], g))
            nxt = next(pending, None)
        at, n, k, pkt, g = heap[0]
        p.write(at, pkt)
        follow = next(g, None)
        if follow is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (follow[0], follow[1], follow[2], follow[3], g))
    p.close()

    summary.update({
        "frames": p.frames,
        "bytes": p.bytes,
        "rtp_seconds": args.rtp_seconds,
        "concurrency": args.concurrency,
        "expected": {
            "agent_legs": args.calls,
            "late_answer": summary["late_answers"],
            "agent_hangup_first": summary["agent_hangups"],
            "survey_missing": summary["agent_hangups"],
        },
    })
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
