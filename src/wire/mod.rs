//! Pure parsers: bytes in, validated views out. No I/O, no clock, no panics on any
//! input (every length from the wire goes through checked arithmetic).
//!
//! Link layer to transport ([`decode`]: Ethernet, 802.1Q, Linux SLL v1/v2, raw IP,
//! IPv4 with capped defragmentation, IPv6, UDP, SIP-over-TCP stream reassembly), then the
//! application protocols: [`sip`], [`sdp`], [`rtp`], [`rtcp`], [`hep`].

/// The transport a SIP message or media packet travelled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Sctp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Sctp => "sctp",
        }
    }
}

pub mod decode;
pub mod hep;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod sip;
