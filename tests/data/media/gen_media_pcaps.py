#!/usr/bin/env python3
"""Synthetic SIP+RTP captures for the media-quality tests (tests/tshark_rtp.rs).

A copy of shared/tools/gen_sip_rtp_pcap.py (standards.md §6.6) extended with one
scenario per media edge case. Deterministic: the same script writes the same bytes.

Usage: gen_media_pcaps.py all DIR                     (every fixture of tests/data/media)
       gen_media_pcaps.py OUT.pcap NCALLS PKTS         (bulk load pcap, as the original)
       [SORT=1] gen_media_pcaps.py OUT.pcap edge       (golden edge case, as the original)
SORT=1 writes frames in time order (the golden numbers in standards.md 6.6 use SORT=1).
The 'edge' scenario writes a single call whose caller->callee stream contains
loss, a duplicate, a reordered pair, a sequence wrap and a marker bit, so the
tshark -z rtp,streams counters can be compared with hand-computed values.
"""
import struct
import sys

LINKTYPE_ETHERNET = 1
import os
SORT = os.environ.get('SORT') == '1'


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ip4(a: str) -> bytes:
    return bytes(int(x) for x in a.split("."))


def frame(src, sport, dst, dport, payload: bytes) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    tot = 20 + udp_len
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, 0, 0, 64, 17, 0, ip4(src), ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + iph + udp


class Pcap:
    def __init__(self, path):
        self.f = open(path, "wb")
        self.f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET))

    def write(self, t: float, pkt: bytes):
        sec = int(t)
        usec = int(round((t - sec) * 1e6))
        if usec >= 1000000:
            sec += 1
            usec -= 1000000
        self.f.write(struct.pack("<IIII", sec, usec, len(pkt), len(pkt)))
        self.f.write(pkt)

    def write_us(self, t_us: int, pkt: bytes):
        self.f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(pkt), len(pkt)))
        self.f.write(pkt)

    def close(self):
        self.f.close()


PCMU_TE = [(0, "PCMU/8000"), (101, "telephone-event/8000")]


def sdp(ip, port, codecs=None):
    codecs = codecs or PCMU_TE
    body = (
        "v=0\r\n"
        f"o=- 1 1 IN IP4 {ip}\r\n"
        "s=-\r\n"
        f"c=IN IP4 {ip}\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP {' '.join(str(pt) for pt, _ in codecs)}\r\n"
        + "".join(f"a=rtpmap:{pt} {name}\r\n" for pt, name in codecs)
        + "a=sendrecv\r\n"
    )
    return body


def sip_msg(start, headers, body=""):
    h = "".join(f"{k}: {v}\r\n" for k, v in headers)
    ct = "Content-Type: application/sdp\r\n" if body else ""
    return (f"{start}\r\n{h}{ct}Content-Length: {len(body)}\r\n\r\n{body}").encode()


def call_setup(p: Pcap, t, n, a_ip, b_ip, a_port, b_port, codecs=None):
    cid = f"call{n}@{a_ip}"
    via = f"SIP/2.0/UDP {a_ip}:5060;branch=z9hG4bK{n}a"
    frm = f"<sip:cust{n}@{a_ip}>;tag=f{n}"
    to = f"<sip:agent{n}@{b_ip}>"
    inv = sip_msg(f"INVITE sip:agent{n}@{b_ip} SIP/2.0", [
        ("Via", via), ("Max-Forwards", "70"), ("From", frm), ("To", to),
        ("Call-ID", cid), ("CSeq", "1 INVITE"), ("Contact", f"<sip:c@{a_ip}>")], sdp(a_ip, a_port, codecs))
    p.write(t, frame(a_ip, 5060, b_ip, 5060, inv))
    ok = sip_msg("SIP/2.0 200 OK", [
        ("Via", via), ("From", frm), ("To", to + f";tag=t{n}"),
        ("Call-ID", cid), ("CSeq", "1 INVITE"), ("Contact", f"<sip:a@{b_ip}>")], sdp(b_ip, b_port, codecs))
    p.write(t + 0.010, frame(b_ip, 5060, a_ip, 5060, ok))
    ack = sip_msg(f"ACK sip:a@{b_ip} SIP/2.0", [
        ("Via", f"SIP/2.0/UDP {a_ip}:5060;branch=z9hG4bK{n}b"), ("Max-Forwards", "70"),
        ("From", frm), ("To", to + f";tag=t{n}"), ("Call-ID", cid), ("CSeq", "1 ACK")])
    p.write(t + 0.020, frame(a_ip, 5060, b_ip, 5060, ack))


def rtp(seq, ts, ssrc, pt=0, marker=False, payload=None):
    b1 = 0x80
    b2 = (0x80 if marker else 0) | pt
    if payload is None:
        payload = b"\xff" * 160
    return struct.pack("!BBHII", b1, b2, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def bulk(path, ncalls, pkts):
    p = Pcap(path)
    events = []
    t0 = 1_700_000_000.0
    for n in range(ncalls):
        a_ip = f"10.1.{n // 250}.{n % 250 + 1}"
        b_ip = f"10.2.{n // 250}.{n % 250 + 1}"
        call_setup(p, t0 + n * 0.001, n, a_ip, b_ip, 40000, 50000)
    # interleave RTP of all calls in time order
    base = t0 + ncalls * 0.001 + 0.1
    for i in range(pkts):
        t = base + i * 0.020
        for n in range(ncalls):
            a_ip = f"10.1.{n // 250}.{n % 250 + 1}"
            b_ip = f"10.2.{n // 250}.{n % 250 + 1}"
            off = (n % 20) * 0.001
            p.write(t + off, frame(a_ip, 40000, b_ip, 50000, rtp(1000 + i, 160 * i, 0x1000 + n)))
            p.write(t + off + 0.0005, frame(b_ip, 50000, a_ip, 40000, rtp(2000 + i, 320 * i, 0x2000 + n)))
    p.close()


def edge(path, sort=None):
    """One call. A->B stream: 200 packets starting at seq 65500 (wraps),
    seq 65510..65512 lost (3), seq 5 duplicated, seq 20/21 swapped, marker on
    first packet and on seq 100 after a 100 ms silence gap (timestamps keep
    running), jitter spike of +30 ms on seq 50."""
    p = Pcap(path)
    t0 = 1_700_000_000.0
    a_ip, b_ip = "10.0.0.1", "10.0.0.2"
    call_setup(p, t0, 0, a_ip, b_ip, 40000, 50000)
    base = t0 + 0.1
    start = 65500
    sched = []
    for i in range(200):
        seq = (start + i) & 0xFFFF
        ts = 160 * i
        at = base + i * 0.020
        if seq in (65510, 65511, 65512):
            continue
        if seq == 50:
            at += 0.030
        if seq >= 100 and start + i > 65535:
            at += 0.100  # gap before talk spurt (arrivals late by 100 ms vs ts)
        mk = (i == 0) or (seq == 100)
        sched.append((at, seq, ts, mk))
    # swap arrival of seq 20 and 21
    idx20 = next(k for k, s in enumerate(sched) if s[1] == 20)
    a, b = sched[idx20], sched[idx20 + 1]
    sched[idx20] = (a[0], b[1], b[2], b[3])
    sched[idx20 + 1] = (b[0], a[1], a[2], a[3])
    # duplicate seq 5 (arrives 1 ms after original)
    idx5 = next(k for k, s in enumerate(sched) if s[1] == 5)
    d = sched[idx5]
    sched.insert(idx5 + 1, (d[0] + 0.001, d[1], d[2], d[3]))
    if sort is None:
        sort = SORT
    for at, seq, ts, mk in (sorted(sched, key=lambda s: s[0]) if sort else sched):
        p.write(at, frame(a_ip, 40000, b_ip, 50000, rtp(seq, ts, 0xAAAA0001, marker=mk)))
    # clean reverse stream, 200 packets
    for i in range(200):
        p.write(base + 0.005 + i * 0.020, frame(b_ip, 50000, a_ip, 40000, rtp(3000 + i, 160 * i, 0xBBBB0002)))
    p.close()
    print("A->B packets written:", len(sched), file=sys.stderr)


# ---------------------------------------------------------------------------------------
# Fixtures of tests/data/media. Times are integer microseconds; every capture starts
# with a SIP INVITE/200/ACK whose SDP names the payload types used, so that tshark
# knows the dynamic ones (telephone-event, opus) exactly as callwatch does.

T0_US = 1_700_000_000 * 1_000_000
G729_FRAME = b"\x11" * 20          # 2 x 10 ms G.729 frames
OPUS_FRAME = b"\x22" * 61


class Lcg:
    """Tiny deterministic PRNG (Numerical Recipes LCG) so fixtures never change."""

    def __init__(self, seed):
        self.x = seed & 0xFFFFFFFF

    def next(self):
        self.x = (1664525 * self.x + 1013904223) & 0xFFFFFFFF
        return self.x

    def uniform(self, lo, hi):
        return lo + (hi - lo) * (self.next() / 2**32)


class Capture:
    """Collects frames with times, writes them sorted by time (stable) unless told."""

    def __init__(self):
        self.frames = []

    def sip_call(self, t_us, n, a_ip, b_ip, a_port, b_port, codecs=None):
        class Sink:
            def __init__(s):
                s.out = []

            def write(s, t, pkt):
                s.out.append((int(round(t * 1e6)), pkt))
        sink = Sink()
        call_setup(sink, t_us / 1e6, n, a_ip, b_ip, a_port, b_port, codecs)
        self.frames.extend(sink.out)

    def udp(self, t_us, src, sport, dst, dport, payload):
        self.frames.append((int(t_us), frame(src, sport, dst, dport, payload)))

    def write(self, path, sort=True):
        p = Pcap(path)
        frames = sorted(self.frames, key=lambda f: f[0]) if sort else self.frames
        for t, pkt in frames:
            p.write_us(t, pkt)
        p.close()


def stream(cap, t_us, src, sport, dst, dport, ssrc, n, seq0, ts0, pt=0, step=160,
           ptime_us=20_000, payload=None, jitter=None, drop=(), marker_first=True):
    """A plain stream: n packets, optional per-packet arrival jitter function."""
    for i in range(n):
        seq = (seq0 + i) & 0xFFFF
        if seq in drop:
            continue
        at = t_us + i * ptime_us + (jitter(i) if jitter else 0)
        cap.udp(at, src, sport, dst, dport,
                rtp(seq, ts0 + step * i, ssrc, pt, marker_first and i == 0, payload))


def rtcp_rr(ssrc, about):
    """A minimal RTCP RR with one report block (RFC 3550 §6.4.2)."""
    block = struct.pack("!IB3sIIII", about, 0, b"\0\0\0", 0x0001_0000, 12, 0, 0)
    return struct.pack("!BBHI", 0x81, 201, 7, ssrc) + block


def fx_edge(d):
    edge(os.path.join(d, "edge.pcap"), sort=True)


def fx_edge_unsorted(d):
    # Same packets in sequence order: pcap times go backwards (a merged capture).
    edge(os.path.join(d, "edge_unsorted.pcap"), sort=False)


def fx_silence_marker(d):
    """PCMU with silence suppression: talk spurts start with the marker bit and the
    timestamp jumps over the silence; one spurt is preceded by a comfort noise packet,
    one starts without the marker (a sender that forgets it)."""
    cap = Capture()
    a, b = "10.0.1.1", "10.0.1.2"
    cap.sip_call(T0_US, 1, a, b, 40000, 50000,
                 [(0, "PCMU/8000"), (13, "CN/8000"), (101, "telephone-event/8000")])
    t = T0_US + 100_000
    seq, ts = 1000, 5000
    for spurt, (n, gap_ms, marker, cn) in enumerate(
            [(60, 0, True, False), (40, 800, True, False), (50, 1500, True, True),
             (30, 400, False, False), (80, 2200, True, False)]):
        if gap_ms:
            if cn:
                cap.udp(t, a, 40000, b, 50000, rtp(seq, ts, 0x5110_0001, 13, False, b"\x40"))
                seq += 1
            t += gap_ms * 1000
            ts += gap_ms * 8
        for i in range(n):
            cap.udp(t, a, 40000, b, 50000,
                    rtp(seq, ts, 0x5110_0001, 0, marker and i == 0))
            seq += 1
            ts += 160
            t += 20_000
    stream(cap, T0_US + 105_000, b, 50000, a, 40000, 0x5110_0002, 300, 7, 0)
    cap.write(os.path.join(d, "silence_marker.pcap"))


def fx_clock_mismatch(d):
    """PCMA (8000 Hz) whose sender steps its timestamp 320 per 20 ms."""
    cap = Capture()
    a, b = "10.0.2.1", "10.0.2.2"
    cap.sip_call(T0_US, 2, a, b, 40002, 50002, [(8, "PCMA/8000")])
    stream(cap, T0_US + 100_000, a, 40002, b, 50002, 0xC10C_0001, 1500, 300, 0, pt=8, step=320)
    stream(cap, T0_US + 110_000, b, 50002, a, 40002, 0xC10C_0002, 1500, 900, 0, pt=8)
    cap.write(os.path.join(d, "clock_mismatch.pcap"))


def fx_jitter(d):
    """PCMU with arrival jitter: up to 40 ms one way (some packets overtake others),
    mild 0-3 ms the other way, and RTCP receiver reports multiplexed on the RTP port
    (RFC 5761) that must not count as RTP."""
    cap = Capture()
    a, b = "10.0.3.1", "10.0.3.2"
    cap.sip_call(T0_US, 3, a, b, 40004, 50004)
    rng = Lcg(3)
    big = [int(rng.uniform(0, 40_000)) for _ in range(1000)]
    small = [int(rng.uniform(0, 3_000)) for _ in range(1000)]
    stream(cap, T0_US + 100_000, a, 40004, b, 50004, 0x1177_0001, 1000, 20000, 1000,
           jitter=lambda i: big[i])
    stream(cap, T0_US + 100_500, b, 50004, a, 40004, 0x1177_0002, 1000, 40000, 777,
           jitter=lambda i: small[i])
    for k in range(1, 5):
        cap.udp(T0_US + 100_000 + k * 5_000_000 + 7, b, 50004, a, 40004,
                rtcp_rr(0x1177_0002, 0x1177_0001))
    cap.write(os.path.join(d, "jitter.pcap"))


def fx_ssrc_change(d):
    """Same 5-tuple, the sender's SSRC changes mid-call (re-anchoring): two streams."""
    cap = Capture()
    a, b = "10.0.4.1", "10.0.4.2"
    cap.sip_call(T0_US, 4, a, b, 40006, 50006)
    stream(cap, T0_US + 100_000, a, 40006, b, 50006, 0x55C0_0001, 300, 100, 0)
    stream(cap, T0_US + 100_000 + 300 * 20_000 + 3_000, a, 40006, b, 50006, 0x55C0_0002,
           300, 31000, 9_000_000)
    stream(cap, T0_US + 100_900, b, 50006, a, 40006, 0x55C0_0003, 600, 5, 0)
    cap.write(os.path.join(d, "ssrc_change.pcap"))


def fx_codecs(d):
    """Four calls: PCMU with a DTMF digit (telephone-event 101), PCMA with loss,
    G.729 with jitter and loss, Opus (PT 111, 48000 Hz) with jitter; RTCP on port+1."""
    cap = Capture()
    rng = Lcg(7)
    # 1: PCMU + RFC 4733 telephone-event in the same SSRC
    a, b = "10.0.5.1", "10.0.5.2"
    cap.sip_call(T0_US, 51, a, b, 40010, 50010)
    t, seq, ts = T0_US + 100_000, 2000, 80_000
    for i in range(100):
        cap.udp(t, a, 40010, b, 50010, rtp(seq, ts, 0xC0DE_0001, 0, i == 0))
        seq, ts, t = seq + 1, ts + 160, t + 20_000
    ev_ts = ts
    for k in range(9):  # 6 updates + 3 end packets, all with the event's start timestamp
        end = k >= 6
        dur = 160 * min(k + 1, 6)
        payload = struct.pack("!BBH", 5, (0x80 if end else 0) | 10, dur)
        cap.udp(t, a, 40010, b, 50010, rtp(seq, ev_ts, 0xC0DE_0001, 101, k == 0, payload))
        seq, t = seq + 1, t + 20_000
    ts = ev_ts + 160 * 9
    for i in range(100):
        cap.udp(t + int(rng.uniform(0, 2_000)), a, 40010, b, 50010,
                rtp(seq, ts, 0xC0DE_0001, 0, False))
        seq, ts, t = seq + 1, ts + 160, t + 20_000
    stream(cap, T0_US + 100_300, b, 50010, a, 40010, 0xC0DE_0002, 209, 100, 0)
    # 2: PCMA with random loss
    a, b = "10.0.6.1", "10.0.6.2"
    codecs = [(8, "PCMA/8000"), (101, "telephone-event/8000")]
    cap.sip_call(T0_US + 50_000, 52, a, b, 40012, 50012, codecs)
    lost = {s for s in range(10_000, 10_500) if rng.next() % 100 < 4}
    stream(cap, T0_US + 150_000, a, 40012, b, 50012, 0xC0DE_0003, 500, 10_000, 0, pt=8,
           drop=lost)
    stream(cap, T0_US + 150_700, b, 50012, a, 40012, 0xC0DE_0004, 500, 60_000, 0, pt=8)
    for k in range(1, 3):
        cap.udp(T0_US + 150_000 + k * 4_000_000, b, 50013, a, 40013,
                rtcp_rr(0xC0DE_0004, 0xC0DE_0003))
    # 3: G.729 with jitter and a burst of loss
    a, b = "10.0.7.1", "10.0.7.2"
    cap.sip_call(T0_US + 60_000, 53, a, b, 40014, 50014, [(18, "G729/8000")])
    jit = [int(rng.uniform(0, 12_000)) for _ in range(400)]
    stream(cap, T0_US + 160_000, a, 40014, b, 50014, 0xC0DE_0005, 400, 777, 0, pt=18,
           payload=G729_FRAME, jitter=lambda i: jit[i], drop=set(range(900, 910)))
    stream(cap, T0_US + 160_900, b, 50014, a, 40014, 0xC0DE_0006, 400, 3, 0, pt=18,
           payload=G729_FRAME)
    # 4: Opus at 48 kHz
    a, b = "10.0.8.1", "10.0.8.2"
    opus = [(111, "opus/48000/2"), (101, "telephone-event/8000")]
    cap.sip_call(T0_US + 70_000, 54, a, b, 40016, 50016, opus)
    jit2 = [int(rng.uniform(0, 6_000)) for _ in range(400)]
    stream(cap, T0_US + 170_000, a, 40016, b, 50016, 0xC0DE_0007, 400, 50_000, 123_456,
           pt=111, step=960, payload=OPUS_FRAME, jitter=lambda i: jit2[i])
    stream(cap, T0_US + 170_400, b, 50016, a, 40016, 0xC0DE_0008, 400, 1, 0, pt=111,
           step=960, payload=OPUS_FRAME)
    cap.write(os.path.join(d, "codecs.pcap"))


def fx_loss_restart(d):
    """Bursty loss, many duplicates, then the sender restarts its sequence numbers
    (a jump of 20000 with the same SSRC); the reverse stream starts at seq 0."""
    cap = Capture()
    a, b = "10.0.9.1", "10.0.9.2"
    cap.sip_call(T0_US, 9, a, b, 40020, 50020)
    rng = Lcg(9)
    t, seq, ts = T0_US + 100_000, 30_000, 0
    for i in range(800):
        if i == 400:
            seq += 20_000
        burst = 100 <= i < 112 or 300 <= i < 305 or 600 <= i < 640
        if not burst:
            pkt = rtp(seq, ts, 0x1055_0001, 0, i == 0)
            cap.udp(t, a, 40020, b, 50020, pkt)
            if rng.next() % 50 == 0:
                cap.udp(t + 500, a, 40020, b, 50020, pkt)
        seq, ts, t = (seq + 1) & 0xFFFF, ts + 160, t + 20_000
    stream(cap, T0_US + 100_200, b, 50020, a, 40020, 0x1055_0002, 800, 0, 0)
    cap.write(os.path.join(d, "loss_restart.pcap"))


def fx_late_edges(d):
    """Reordering at both ends of a stream (the first two packets swapped, the
    second-to-last packet late) and an RTP timestamp wrap through 2^32; the reverse
    stream has a late packet that arrives after the sequence wrapped."""
    cap = Capture()
    a, b = "10.0.10.1", "10.0.10.2"
    cap.sip_call(T0_US, 10, a, b, 40030, 50030)
    base_ts = 2**32 - 160 * 100
    sched = []
    for i in range(300):
        sched.append([T0_US + 100_000 + i * 20_000, 4000 + i, (base_ts + 160 * i) & 0xFFFFFFFF])
    # the first two packets swap places: the first one seen is seq 4001, then 4000
    # (whose timestamp is before the first seen: "in the past" for Wireshark 4.0)
    sched[0][1:], sched[1][1:] = sched[1][1:], sched[0][1:]
    # the second-to-last packet arrives 30 ms after the last: last seen != highest
    sched[-2][0] = sched[-1][0] + 30_000
    for at, s, ts in sched:
        cap.udp(at, a, 40030, b, 50030, rtp(s, ts, 0x1A7E_0001, 0, False))
    # reverse: wraps at 65535, one packet from before the wrap arrives 100 ms late
    rev = []
    for i in range(200):
        rev.append([T0_US + 100_300 + i * 20_000, (65_440 + i) & 0xFFFF, 160 * i])
    late = rev.pop(90)           # seq 65530
    late[0] += 100_000           # arrives after seq 65535 -> 0 wrap
    rev.append(late)
    for at, s, ts in rev:
        cap.udp(at, b, 50030, a, 40030, rtp(s, ts, 0x1A7E_0002, 0, False))
    cap.write(os.path.join(d, "late_edges.pcap"))


FIXTURES = [fx_edge, fx_edge_unsorted, fx_silence_marker, fx_clock_mismatch, fx_jitter,
            fx_ssrc_change, fx_codecs, fx_loss_restart, fx_late_edges]


def write_all(d):
    for fx in FIXTURES:
        fx(d)


if __name__ == "__main__":
    out = sys.argv[1]
    if out == "all":
        write_all(sys.argv[2])
    elif len(sys.argv) > 2 and sys.argv[2] == "edge":
        edge(out)
    else:
        bulk(out, int(sys.argv[2]), int(sys.argv[3]))
