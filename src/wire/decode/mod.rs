//! Packet decoding: from a captured frame to the UDP datagrams and SIP-over-TCP
//! messages it carries.
//!
//! Input is one frame at a time with its link type and capture timestamp, from a
//! capture file ([`crate::sources::pcap_file`]) or a live interface; output is zero or
//! more [`Datagram`]s handed to a callback: one per UDP datagram (after IPv4/IPv6
//! reassembly if it was fragmented) and one per complete SIP message on a TCP stream.
//! The decoder keeps state (fragments in progress, TCP streams) but does no I/O and
//! reads no clock: timeouts run on the frames' own timestamps.
//!
//! One layer per file, in the order a frame goes through them: [`link`] (Ethernet,
//! VLAN/QinQ, MPLS, Linux SLL v1/v2, raw IP, BSD null/loop), [`ipv4`] / [`ipv6`],
//! [`defrag`], [`udp`] / [`tcp`], then [`tcp_flows`], [`tcp_sip_stream`] and
//! [`sip_framing`] for SIP over TCP. Every lookup in frame bytes goes through
//! [`bytes`]; every kind of drop is counted in [`DecodeCounters`].
//!
//! No-panic contract: nothing reachable from frame bytes indexes unchecked, unwraps,
//! or does unchecked arithmetic on a length from the wire; every table traffic can grow
//! is capped by [`DecodeLimits`], with an eviction counter. A property test feeds
//! arbitrary bytes through every link type and checks both.

mod bytes;
mod counters;
mod defrag;
mod ipv4;
mod ipv6;
mod link;
mod sip_framing;
mod tcp;
mod tcp_flows;
mod tcp_sip_stream;
mod udp;

use std::net::{IpAddr, SocketAddr};

pub use counters::{DecodeCounters, DecodeErrorKind};

use crate::time::CaptureTime;
use crate::wire::Transport;
use defrag::{Defragmenter, FragKey, Fragment};
use link::IpVersion;
use tcp_flows::{FlowKey, TcpFlows};

/// How a frame begins: the link-layer header types the decoder reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1), with any 802.1Q / 802.1ad tags.
    Ethernet,
    /// `LINKTYPE_LINUX_SLL` (113): `tcpdump -i any` before libpcap 1.10.
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): `tcpdump -i any` since libpcap 1.10.
    LinuxSll2,
    /// `LINKTYPE_RAW` (101; also the DLT values 12 and 14 some systems write): an IPv4
    /// or IPv6 header, told apart by its version.
    RawIp,
    /// `LINKTYPE_IPV4` (228).
    Ipv4,
    /// `LINKTYPE_IPV6` (229).
    Ipv6,
    /// `LINKTYPE_NULL` (0): BSD loopback, address family in the capturing host's order.
    Null,
    /// `LINKTYPE_LOOP` (108): OpenBSD loopback, address family in network order.
    Loop,
}

impl LinkType {
    /// The link type for a pcap/pcapng `LINKTYPE_` number, if the decoder reads it.
    pub fn from_linktype(dlt: u32) -> Option<LinkType> {
        match dlt {
            1 => Some(LinkType::Ethernet),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            101 | 12 | 14 => Some(LinkType::RawIp),
            228 => Some(LinkType::Ipv4),
            229 => Some(LinkType::Ipv6),
            0 => Some(LinkType::Null),
            108 => Some(LinkType::Loop),
            _ => None,
        }
    }

    /// The canonical `LINKTYPE_` number.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
            LinkType::RawIp => 101,
            LinkType::Ipv4 => 228,
            LinkType::Ipv6 => 229,
            LinkType::Null => 0,
            LinkType::Loop => 108,
        }
    }
}

/// One unit of transport payload: a UDP datagram's payload, or one whole SIP message
/// from a TCP stream. `payload` borrows the frame or the decoder's buffers and is valid
/// for the duration of the callback only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub payload: &'a [u8],
}

/// Caps on the decoder's state. Whatever the traffic, it holds at most
/// `max_fragment_bytes + max_tcp_total_bytes` bytes of payload plus a fixed overhead
/// per fragment datagram and stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Bytes held by all IP datagrams being reassembled.
    pub max_fragment_bytes: usize,
    /// IP datagrams being reassembled at once.
    pub max_fragment_datagrams: usize,
    /// Capture time after a datagram's first fragment before it is given up.
    pub fragment_timeout_us: i64,
    /// TCP stream directions followed at once.
    pub max_tcp_streams: usize,
    /// Bytes one TCP stream direction may hold (a partial message plus out-of-order
    /// segments); also the largest SIP message read from TCP.
    pub max_tcp_stream_bytes: usize,
    /// Bytes all TCP streams may hold together.
    pub max_tcp_total_bytes: usize,
    /// Capture time without a segment before a TCP stream direction is forgotten.
    pub tcp_idle_timeout_us: i64,
    /// Capture time a hole in a TCP stream is waited for (a retransmission) before
    /// the bytes after it are read without it; an acknowledgement past the hole ends
    /// the wait at once.
    pub tcp_gap_timeout_us: i64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_fragment_bytes: 4 << 20,
            max_fragment_datagrams: 1024,
            fragment_timeout_us: 30_000_000,
            max_tcp_streams: 4096,
            max_tcp_stream_bytes: 256 << 10,
            max_tcp_total_bytes: 64 << 20,
            tcp_idle_timeout_us: 300_000_000,
            tcp_gap_timeout_us: 2_000_000,
        }
    }
}

/// What the decoder holds right now (for gauges and for tests of the caps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeMemory {
    pub fragment_datagrams: usize,
    pub fragment_bytes: usize,
    pub tcp_streams: usize,
    pub tcp_bytes: usize,
}

/// The stateful frame decoder. One per capture source: fragments and TCP streams of
/// different sources must not meet.
pub struct Decoder {
    limits: DecodeLimits,
    counters: DecodeCounters,
    defrag: Defragmenter,
    tcp: TcpFlows,
}

const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

impl Decoder {
    pub fn new(limits: DecodeLimits) -> Decoder {
        Decoder {
            defrag: Defragmenter::new(
                limits.max_fragment_bytes,
                limits.max_fragment_datagrams,
                limits.fragment_timeout_us,
            ),
            tcp: TcpFlows::new(&limits),
            counters: DecodeCounters::default(),
            limits,
        }
    }

    /// Decodes one captured frame; calls `emit` zero or more times (0 for non-IP, a
    /// fragment still waiting, a TCP segment not completing a SIP message; several for
    /// a TCP segment holding several SIP messages, or when `at` passes a deadline that
    /// releases messages held behind a lost TCP segment).
    ///
    /// Generic over `emit` so that a caller's closure is compiled into the UDP path:
    /// through a `dyn` call the datagram went out in memory, written field by field,
    /// and the caller's copy of it read those fields back with wider loads the CPU
    /// could not forward from the stores (a stall per frame, 7 % of `analyze`).
    pub fn decode<F: FnMut(Datagram<'_>) + ?Sized>(
        &mut self,
        link: LinkType,
        at: CaptureTime,
        frame: &[u8],
        emit: &mut F,
    ) {
        if self.defrag.datagrams() > 0 {
            self.defrag.expire(at, &mut self.counters);
        }
        if self.tcp.streams() > 0 {
            self.tcp.expire(at, &mut self.counters, &mut |d| emit(d));
        }
        let l3 = match link::strip(link, frame) {
            Ok(l3) => l3,
            Err(kind) => return self.counters.bump(kind),
        };
        match l3.version {
            IpVersion::V4 => self.ipv4(at, l3.bytes, emit),
            IpVersion::V6 => self.ipv6(at, l3.bytes, emit),
        }
    }

    /// Why frames or state were dropped so far, by kind.
    pub fn counters(&self) -> &DecodeCounters {
        &self.counters
    }

    /// The caps this decoder enforces.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// What the decoder holds now; never above [`Self::limits`].
    pub fn memory(&self) -> DecodeMemory {
        DecodeMemory {
            fragment_datagrams: self.defrag.datagrams(),
            fragment_bytes: self.defrag.held_bytes(),
            tcp_streams: self.tcp.streams(),
            tcp_bytes: self.tcp.held_bytes(),
        }
    }

    fn ipv4<F: FnMut(Datagram<'_>) + ?Sized>(
        &mut self,
        at: CaptureTime,
        bytes: &[u8],
        emit: &mut F,
    ) {
        let p = match ipv4::parse(bytes) {
            Ok(p) => p,
            Err(kind) => return self.counters.bump(kind),
        };
        let (src, dst) = (IpAddr::V4(p.src), IpAddr::V4(p.dst));
        if !p.is_fragment() {
            return self.transport(at, src, dst, p.protocol, p.payload, emit);
        }
        let key = FragKey {
            src,
            dst,
            id: u32::from(p.id),
            protocol: p.protocol,
        };
        let frag = Fragment {
            offset: p.fragment_offset,
            more: p.more_fragments,
            data: p.payload,
        };
        if let Some(whole) = self.defrag.push(at, key, frag, &mut self.counters) {
            self.transport(at, src, dst, p.protocol, &whole, emit);
        }
    }

    fn ipv6<F: FnMut(Datagram<'_>) + ?Sized>(
        &mut self,
        at: CaptureTime,
        bytes: &[u8],
        emit: &mut F,
    ) {
        let p = match ipv6::parse(bytes) {
            Ok(p) => p,
            Err(kind) => return self.counters.bump(kind),
        };
        let (src, dst) = (IpAddr::V6(p.src), IpAddr::V6(p.dst));
        let Some(f) = p.fragment else {
            return self.transport(at, src, dst, p.protocol, p.payload, emit);
        };
        let key = FragKey {
            src,
            dst,
            id: f.id,
            protocol: p.protocol,
        };
        let frag = Fragment {
            offset: f.offset,
            more: f.more,
            data: p.payload,
        };
        if let Some(whole) = self.defrag.push(at, key, frag, &mut self.counters) {
            match ipv6::upper_layer(p.protocol, &whole) {
                Ok((protocol, payload)) => self.transport(at, src, dst, protocol, payload, emit),
                Err(kind) => self.counters.bump(kind),
            }
        }
    }

    fn transport<F: FnMut(Datagram<'_>) + ?Sized>(
        &mut self,
        at: CaptureTime,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &[u8],
        emit: &mut F,
    ) {
        match protocol {
            PROTO_UDP => match udp::parse(payload) {
                Ok(d) => emit(Datagram {
                    src: SocketAddr::new(src, d.src_port),
                    dst: SocketAddr::new(dst, d.dst_port),
                    transport: Transport::Udp,
                    payload: d.payload,
                }),
                Err(kind) => self.counters.bump(kind),
            },
            PROTO_TCP => match tcp::parse(payload) {
                Ok(seg) => {
                    let key = FlowKey {
                        src: SocketAddr::new(src, seg.src_port),
                        dst: SocketAddr::new(dst, seg.dst_port),
                    };
                    self.tcp
                        .segment(at, key, &seg, &mut self.counters, &mut |d| emit(d));
                }
                Err(kind) => self.counters.bump(kind),
            },
            _ => self.counters.bump(DecodeErrorKind::UnsupportedIpProtocol),
        }
    }
}

#[cfg(test)]
mod tests;
