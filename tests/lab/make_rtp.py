#!/usr/bin/env python3
"""Make the RTP sound files the SIPp scenarios play (play_pcap_audio).

Takes the G.711 A-law sample that Debian's sip-tester ships
(/usr/share/sip-tester/g711a.pcap: 236 packets, 30 ms each, SSRC 0xDEE0EE8F),
keeps its first N packets (3 s by default, to keep the fixtures small) and
rewrites the SSRC, so that the customer's and the agent's streams of a call
are told apart by SSRC too, as on a real call.

usage: make_rtp.py SRC.pcap DST.pcap SSRC_HEX [PACKETS]
"""
import struct
import sys


def main():
    src, dst, ssrc = sys.argv[1], sys.argv[2], int(sys.argv[3], 16)
    keep = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    data = open(src, "rb").read()
    magic = data[:4]
    if magic != b"\xd4\xc3\xb2\xa1":
        sys.exit("expected a little-endian microsecond pcap")
    linktype = struct.unpack("<I", data[20:24])[0]
    if linktype != 1:
        sys.exit("expected Ethernet link type")
    out = bytearray(data[:24])
    off, n = 24, 0
    while off + 16 <= len(data) and n < keep:
        ts_s, ts_us, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        pkt = bytearray(data[off + 16:off + 16 + incl])
        off += 16 + incl
        # Ethernet(14) + IPv4(ihl*4) + UDP(8) + RTP: SSRC at RTP offset 8
        ihl = (pkt[14] & 0x0F) * 4
        rtp = 14 + ihl + 8
        pkt[rtp + 8:rtp + 12] = struct.pack(">I", ssrc)
        out += struct.pack("<IIII", ts_s, ts_us, len(pkt), len(pkt)) + pkt
        n += 1
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
