//! IPv4 headers (RFC 791): a validated view of one packet.
//!
//! Input is the network-layer bytes from [`super::link`]; output is the addresses, the
//! protocol, the fragment fields and the payload clipped to the header's total length
//! (Ethernet padding dropped). Options are skipped; the header checksum is not checked,
//! since a passive tap sees what the endpoints accepted and NIC offload often leaves
//! checksums unfilled in locally captured packets.

use std::net::Ipv4Addr;

use super::bytes::{array, be16, u8_at};
use super::counters::DecodeErrorKind;

/// A parsed IPv4 packet header and its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv4Packet<'a> {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub id: u16,
    /// Offset of this fragment's payload in the datagram, in bytes.
    pub fragment_offset: usize,
    pub more_fragments: bool,
    pub payload: &'a [u8],
}

impl Ipv4Packet<'_> {
    /// Whether this packet is one piece of a fragmented datagram (RFC 791 §3.2).
    pub fn is_fragment(&self) -> bool {
        self.more_fragments || self.fragment_offset != 0
    }
}

const MIN_HEADER: usize = 20;

/// Parses the IPv4 header at the start of `b`.
///
/// A total length above the captured bytes is [`DecodeErrorKind::Truncated`] (snaplen);
/// a total length of 0 is taken as "as captured", which is what TCP segmentation
/// offload leaves in packets captured on the sending host.
pub(crate) fn parse(b: &[u8]) -> Result<Ipv4Packet<'_>, DecodeErrorKind> {
    let first = u8_at(b, 0).ok_or(DecodeErrorKind::Truncated)?;
    if first >> 4 != 4 {
        return Err(DecodeErrorKind::BadIpHeader);
    }
    let header_len = usize::from(first & 0x0f) * 4;
    if header_len < MIN_HEADER {
        return Err(DecodeErrorKind::BadIpHeader);
    }
    if b.len() < header_len {
        return Err(DecodeErrorKind::Truncated);
    }
    let total = usize::from(be16(b, 2).ok_or(DecodeErrorKind::Truncated)?);
    let end = if total == 0 { b.len() } else { total };
    if end < header_len {
        return Err(DecodeErrorKind::BadIpHeader);
    }
    let payload = b.get(header_len..end).ok_or(DecodeErrorKind::Truncated)?;
    let flags_frag = be16(b, 6).ok_or(DecodeErrorKind::Truncated)?;
    let protocol = u8_at(b, 9).ok_or(DecodeErrorKind::Truncated)?;
    let src = array::<4>(b, 12).ok_or(DecodeErrorKind::Truncated)?;
    let dst = array::<4>(b, 16).ok_or(DecodeErrorKind::Truncated)?;
    Ok(Ipv4Packet {
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        protocol,
        id: be16(b, 4).ok_or(DecodeErrorKind::Truncated)?,
        fragment_offset: usize::from(flags_frag & 0x1fff) * 8,
        more_fragments: flags_frag & 0x2000 != 0,
        payload,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv4 header (no options unless `options` is not empty) followed by `payload`.
    pub(crate) fn packet(
        protocol: u8,
        id: u16,
        frag: (usize, bool),
        options: &[u8],
        payload: &[u8],
    ) -> Vec<u8> {
        let hl = 20 + options.len();
        let total = (hl + payload.len()) as u16;
        let ff = ((frag.0 / 8) as u16) | if frag.1 { 0x2000 } else { 0 };
        let mut v = vec![0x40 | (hl / 4) as u8, 0];
        v.extend_from_slice(&total.to_be_bytes());
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&ff.to_be_bytes());
        v.extend_from_slice(&[64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        v.extend_from_slice(options);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn plain_packet() {
        let b = packet(17, 7, (0, false), &[], b"hello");
        let p = parse(&b).unwrap();
        assert_eq!(p.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(p.dst, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!((p.protocol, p.id, p.payload), (17, 7, &b"hello"[..]));
        assert!(!p.is_fragment());
    }

    #[test]
    fn options_are_skipped_and_padding_dropped() {
        let mut b = packet(17, 1, (0, false), &[1, 1, 1, 0], b"xy");
        b.extend_from_slice(&[0; 6]);
        assert_eq!(parse(&b).unwrap().payload, b"xy");
    }

    #[test]
    fn fragment_fields() {
        let b = packet(17, 9, (1480, true), &[], b"abc");
        let p = parse(&b).unwrap();
        assert_eq!((p.fragment_offset, p.more_fragments), (1480, true));
        assert!(p.is_fragment());
    }

    #[test]
    fn total_length_past_capture_is_truncated() {
        let b = packet(17, 1, (0, false), &[], b"hello");
        assert_eq!(parse(&b[..b.len() - 1]), Err(DecodeErrorKind::Truncated));
        assert_eq!(parse(&b[..10]), Err(DecodeErrorKind::Truncated));
    }

    #[test]
    fn zero_total_length_means_as_captured() {
        let mut b = packet(6, 1, (0, false), &[], b"segment");
        b[2] = 0;
        b[3] = 0;
        assert_eq!(parse(&b).unwrap().payload, b"segment");
    }

    #[test]
    fn contradictions_are_bad_headers() {
        let mut b = packet(17, 1, (0, false), &[], b"x");
        b[0] = 0x44;
        assert_eq!(parse(&b), Err(DecodeErrorKind::BadIpHeader));
        b[0] = 0x65;
        assert_eq!(parse(&b), Err(DecodeErrorKind::BadIpHeader));
        let mut b = packet(17, 1, (0, false), &[], b"x");
        b[3] = 10;
        assert_eq!(parse(&b), Err(DecodeErrorKind::BadIpHeader));
    }
}
