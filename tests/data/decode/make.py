#!/usr/bin/env python3
"""Generates the capture fixtures read by tests/decode_*.rs.

    python3 tests/data/decode/make.py

Frames are built here byte by byte (checksums filled in, so Wireshark shows them
clean); the pcapng variants are made from them by the real tools (editcap, mergecap from
Wireshark 4.0), so the reader is tested on what those tools write. The expected counts
the tests assert are printed at the end and written to expected.txt.
"""
import os
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_764_120_902  # 2025-11-26 01:35:02 UTC


def path(name):
    return os.path.join(HERE, name)


# ---- packet building ----------------------------------------------------------------

def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def a4(s):
    return bytes(int(x) for x in s.split("."))


def a6(s):
    import ipaddress
    return ipaddress.IPv6Address(s).packed


MAC_A = b"\x02\x00\x00\x00\x00\x01"
MAC_B = b"\x02\x00\x00\x00\x00\x02"


def eth(l3: bytes, ethertype=0x0800, tags=()) -> bytes:
    """Ethernet II; `tags` are (tpid, vid) pairs, outermost first."""
    h = MAC_B + MAC_A
    for tpid, vid in tags:
        h += struct.pack("!HH", tpid, vid)
    return h + struct.pack("!H", ethertype) + l3


def sll2(l3: bytes, proto=0x0800) -> bytes:
    # protocol, reserved, ifindex, ARPHRD_ETHER, PACKET_OUTGOING, addr len 6, address
    return struct.pack("!HHIHBB", proto, 0, 3, 1, 4, 6) + MAC_A + b"\0\0" + l3


def sll(l3: bytes, proto=0x0800) -> bytes:
    return struct.pack("!HHH", 0, 1, 6) + MAC_A + b"\0\0" + struct.pack("!H", proto) + l3


def ipv4(src, dst, proto, payload, ident=1, frag_off=0, mf=False):
    flags = (0x2000 if mf else 0) | (frag_off // 8)
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, flags, 64, proto,
                    0, a4(src), a4(dst))
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def ipv6(src, dst, nh, payload):
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + a6(src) + a6(dst) + payload


def l4_checksum(src, dst, proto, seg, v6=False):
    if v6:
        pseudo = a6(src) + a6(dst) + struct.pack("!IxxxB", len(seg), proto)
    else:
        pseudo = a4(src) + a4(dst) + struct.pack("!xBH", proto, len(seg))
    return csum(pseudo + seg)


def udp(src, dst, sport, dport, payload, v6=False):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = l4_checksum(src, dst, 17, seg, v6) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b""):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                      5 << 4, flags, 65535, 0, 0) + payload
    c = l4_checksum(src, dst, 6, seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def fragments(src, dst, proto, l4: bytes, ident, size=1480):
    """IPv4 fragments of one datagram (l4 = UDP/TCP header + payload)."""
    out = []
    for off in range(0, len(l4), size):
        chunk = l4[off:off + size]
        out.append(ipv4(src, dst, proto, chunk, ident, off, off + size < len(l4)))
    return out


# ---- SIP content --------------------------------------------------------------------

AGENT, PBX = "10.1.9.20", "10.1.2.3"


def sdp(ip, port, lines=0):
    body = (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n")
    for i in range(lines):
        body += f"a=x-padding-{i:03}:{'p' * 40}\r\n"
    return body


def sip(start, cseq, call_id="fixture-1@10.1.2.3", body="", via="UDP", method=None):
    if method is None:
        method = start.split()[0] if not start.startswith("SIP/") else "INVITE"
    h = (f"{start}\r\nVia: SIP/2.0/{via} {PBX}:5060;branch=z9hG4bK{cseq}\r\n"
         f"From: <sip:13800138000@{PBX}>;tag=a1\r\nTo: <sip:8001@{AGENT}>\r\n"
         f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n")
    if body:
        h += "Content-Type: application/sdp\r\n"
    return (h + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


def rtp(seq, ts, ssrc=0x1A2B3C4D):
    return struct.pack("!BBHII", 0x80, 0, seq, ts, ssrc) + bytes(160)


# ---- file writing -------------------------------------------------------------------

class Pcap:
    def __init__(self, name, linktype=1, nanos=False, big_endian=False, snaplen=262144):
        self.f = open(path(name), "wb")
        self.e = ">" if big_endian else "<"
        self.nanos = nanos
        magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
        self.f.write(struct.pack(self.e + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))
        self.offsets = []

    def write(self, t_ns: int, frame: bytes, caplen=None):
        """`t_ns`: nanoseconds after T0."""
        sec, frac_ns = divmod(t_ns, 1_000_000_000)
        frac = frac_ns if self.nanos else frac_ns // 1000
        data = frame if caplen is None else frame[:caplen]
        self.offsets.append(self.f.tell())
        self.f.write(struct.pack(self.e + "IIII", T0 + sec, frac, len(data), len(frame)))
        self.f.write(data)

    def close(self):
        self.f.close()


def ms(x):
    return int(x * 1_000_000)


def run(*args):
    subprocess.run(args, check=True)


expected = {}

# udp_mix.pcap: SIP and RTP over UDP through every header combination that Ethernet
# captures bring (plain, 802.1Q, QinQ, IPv6), two fragmented INVITEs (in order and in
# reverse), and an ARP frame. Every UDP datagram is whole.
w = Pcap("udp_mix.pcap")
t = 0
udp_count = 0
w.write(ms(t), eth(ipv4(PBX, AGENT, 17, udp(PBX, AGENT, 5060, 5060,
                                            sip("INVITE sip:8001@10.1.9.20 SIP/2.0", 1, body=sdp(PBX, 20000)))))); udp_count += 1
t += 5
w.write(ms(t), eth(ipv4(AGENT, PBX, 17, udp(AGENT, PBX, 5060, 5060,
                                            sip("SIP/2.0 180 Ringing", 1))), tags=[(0x8100, 100)])); udp_count += 1
t += 5
w.write(ms(t), eth(ipv4(AGENT, PBX, 17, udp(AGENT, PBX, 5060, 5060,
                                            sip("SIP/2.0 200 OK", 1, body=sdp(AGENT, 30000)))),
                   tags=[(0x88A8, 10), (0x8100, 100)])); udp_count += 1
t += 5
w.write(ms(t), eth(b"\x00\x01\x08\x00\x06\x04\x00\x01" + MAC_A + a4(PBX) + bytes(6) + a4(AGENT), 0x0806))
t += 5
w.write(ms(t), eth(ipv6("2001:db8::3", "2001:db8::20", 17,
                        udp("2001:db8::3", "2001:db8::20", 5060, 5060,
                            sip("OPTIONS sip:8001@[2001:db8::20] SIP/2.0", 2), v6=True)), 0x86DD)); udp_count += 1
big = udp(PBX, AGENT, 5060, 5060, sip("INVITE sip:8002@10.1.9.20 SIP/2.0", 1, "fixture-2@10.1.2.3",
                                      sdp(PBX, 20002, lines=60)))
frs = fragments(PBX, AGENT, 17, big, ident=0x4242)
assert len(frs) >= 3
for fr in frs:
    t += 1
    w.write(ms(t), eth(fr))
udp_count += 1
big2 = udp(PBX, AGENT, 5060, 5060, sip("INVITE sip:8003@10.1.9.20 SIP/2.0", 1, "fixture-3@10.1.2.3",
                                       sdp(PBX, 20004, lines=45)))
for fr in reversed(fragments(PBX, AGENT, 17, big2, ident=0x4343)):
    t += 1
    w.write(ms(t), eth(fr))
udp_count += 1
for i in range(20):
    t += 20
    w.write(ms(t), eth(ipv4(PBX, AGENT, 17, udp(PBX, AGENT, 20000, 30000, rtp(1000 + i, 160 * i)))))
    udp_count += 1
w.close()
udp_mix_offsets = w.offsets
expected["udp_mix.frames"] = len(w.offsets)
expected["udp_mix.udp_datagrams"] = udp_count

# The same frames, nanosecond pcap and big-endian pcap, written here; and pcapng by
# editcap.
for name, kw in (("udp_mix_ns.pcap", dict(nanos=True)), ("udp_mix_be.pcap", dict(big_endian=True))):
    src = open(path("udp_mix.pcap"), "rb").read()
    out = Pcap(name, **kw)
    pos = 24
    k = 0
    while pos < len(src):
        sec, usec, incl, orig = struct.unpack("<IIII", src[pos:pos + 16])
        frame = src[pos + 16:pos + 16 + incl]
        # a sub-microsecond part in the nanosecond file, which the reader must floor
        out.write((sec - T0) * 1_000_000_000 + usec * 1000 + (k * 137) % 1000, frame)
        pos += 16 + incl
        k += 1
    out.close()
run("editcap", "-F", "pcapng", path("udp_mix.pcap"), path("udp_mix.pcapng"))

# tcp_sip.pcap: SIP over TCP. The client (PBX) opens a connection to the agent's phone
# and sends: two messages in one segment, one message in three segments, two segments
# out of order, a retransmission; the phone answers; both sides close.
w = Pcap("tcp_sip.pcap")
C, S, CP, SP = PBX, AGENT, 41000, 5060
cs, ss = 1000, 5000  # initial sequence numbers
t = 0


def c2s(flags, payload=b""):
    global t, cs
    t += 1
    w.write(ms(t), eth(ipv4(C, S, 6, tcp(C, S, CP, SP, cs, ss, flags, payload))))
    cs += len(payload) + (1 if flags & (SYN | FIN) else 0)


def s2c(flags, payload=b""):
    global t, ss
    t += 1
    w.write(ms(t), eth(ipv4(S, C, 6, tcp(S, C, SP, CP, ss, cs, flags, payload))))
    ss += len(payload) + (1 if flags & (SYN | FIN) else 0)


tcp_msgs = []
c2s(SYN)
s2c(SYN | ACK)
c2s(ACK)
m1 = sip("INVITE sip:8001@10.1.9.20 SIP/2.0", 1, "tcp-1@10.1.2.3", sdp(PBX, 20010), via="TCP")
m2 = sip("INFO sip:8001@10.1.9.20 SIP/2.0", 2, "tcp-1@10.1.2.3", via="TCP")
c2s(PSH | ACK, m1 + m2)
tcp_msgs += [m1, m2]
s2c(PSH | ACK, sip("SIP/2.0 100 Trying", 1, "tcp-1@10.1.2.3", via="TCP"))
tcp_msgs.append(sip("SIP/2.0 100 Trying", 1, "tcp-1@10.1.2.3", via="TCP"))
m3 = sip("INVITE sip:8002@10.1.9.20 SIP/2.0", 3, "tcp-2@10.1.2.3", sdp(PBX, 20012, lines=40), via="TCP")
a, b = len(m3) // 3, 2 * len(m3) // 3
c2s(ACK, m3[:a])
c2s(ACK, m3[a:b])
c2s(PSH | ACK, m3[b:])
tcp_msgs.append(m3)
m4 = sip("BYE sip:8001@10.1.9.20 SIP/2.0", 4, "tcp-1@10.1.2.3", via="TCP")
m5 = sip("BYE sip:8002@10.1.9.20 SIP/2.0", 5, "tcp-2@10.1.2.3", via="TCP")
# out of order: the second segment is captured before the first
first_seq = cs
t += 1
w.write(ms(t), eth(ipv4(C, S, 6, tcp(C, S, CP, SP, first_seq + len(m4), ss, PSH | ACK, m5))))
t += 1
w.write(ms(t), eth(ipv4(C, S, 6, tcp(C, S, CP, SP, first_seq, ss, PSH | ACK, m4))))
cs += len(m4) + len(m5)
tcp_msgs += [m4, m5]
# a retransmission of the BYE segment
t += 1
w.write(ms(t), eth(ipv4(C, S, 6, tcp(C, S, CP, SP, first_seq, ss, PSH | ACK, m4))))
ok = sip("SIP/2.0 200 OK", 4, "tcp-1@10.1.2.3", via="TCP", method="BYE")
s2c(PSH | ACK, ok)
tcp_msgs.append(ok)
c2s(FIN | ACK)
s2c(FIN | ACK)
c2s(ACK)
w.close()
expected["tcp_sip.sip_messages"] = len(tcp_msgs)
with open(path("tcp_sip.messages"), "wb") as f:
    # The messages in the order the decoder must emit them, separated by a NUL.
    f.write(b"\0".join(tcp_msgs))

# sll2.pcap (LINKTYPE_LINUX_SLL2, as `tcpdump -i any` writes) and sll.pcap (v1),
# microseconds, a few SIP datagrams each.
for name, linktype, wrap in (("sll2.pcap", 276, sll2), ("sll.pcap", 113, sll)):
    w = Pcap(name, linktype=linktype)
    for i in range(3):
        w.write(ms(2.5 + i), wrap(ipv4(AGENT, PBX, 17, udp(AGENT, PBX, 5060, 5060,
                                                            sip("SIP/2.0 200 OK", 10 + i)))))
    w.close()

# unsupported_link.pcap: LINKTYPE_USER0 (147): read, counted, skipped.
w = Pcap("unsupported_link.pcap", linktype=147)
for i in range(3):
    w.write(ms(1 + i), b"\x01\x02\x03\x04")
w.close()

# two_links.pcapng: mergecap puts Ethernet (nanosecond) and SLL2 (microsecond) frames in
# one pcapng with one interface each, so if_tsresol differs per interface; a third
# interface has an unsupported link type.
run("mergecap", "-F", "pcapng", "-w", path("two_links.pcapng"), path("udp_mix_ns.pcap"),
    path("sll2.pcap"), path("unsupported_link.pcap"))
expected["two_links.frames"] = expected["udp_mix.frames"] + 3 + 3

# truncated_data.pcap: udp_mix.pcap cut in the middle of record 10's packet bytes;
# truncated_header.pcap: cut 5 bytes into record 12's header.
src = open(path("udp_mix.pcap"), "rb").read()
cut = udp_mix_offsets[10] + 16 + 20
open(path("truncated_data.pcap"), "wb").write(src[:cut])
expected["truncated_data.offset"] = udp_mix_offsets[10]
expected["truncated_data.frames"] = 10
open(path("truncated_header.pcap"), "wb").write(src[:udp_mix_offsets[12] + 5])
expected["truncated_header.offset"] = udp_mix_offsets[12]
expected["truncated_header.frames"] = 12

# corrupt.pcap: record 3 claims 100 MB of packet data.
bad = bytearray(src[:udp_mix_offsets[4]])
struct.pack_into("<I", bad, udp_mix_offsets[3] + 8, 100_000_000)
open(path("corrupt.pcap"), "wb").write(bytes(bad))
expected["corrupt.offset"] = udp_mix_offsets[3]
expected["corrupt.frames"] = 3

# not_a_capture.txt
open(path("not_a_capture.txt"), "w").write("callwatch: this is a text file, not a capture\n")

# merge_a.pcap / merge_b.pcap: interleaved timestamps, and two equal ones (file order
# must decide: a before b). Each payload names its file and position.
for name, times in (("merge_a.pcap", [1.0, 3.0, 5.0, 5.0, 9.0]),
                    ("merge_b.pcap", [2.0, 3.0, 4.0, 10.0])):
    w = Pcap(name)
    tag = name[6]
    for i, tt in enumerate(times):
        w.write(ms(tt), eth(ipv4(PBX, AGENT, 17, udp(PBX, AGENT, 7000, 7000,
                                                     f"{tag}{i}".encode()))))
    w.close()

with open(path("expected.txt"), "w") as f:
    for k, v in sorted(expected.items()):
        f.write(f"{k}={v}\n")
        print(f"{k}={v}")
