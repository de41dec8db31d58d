//! IPv6 headers (RFC 8200): a validated view of one packet.
//!
//! Input is the network-layer bytes from [`super::link`]; output is the addresses, the
//! upper-layer protocol found after the extension headers (hop-by-hop, routing,
//! destination options, AH, mobility, HIP, shim6 are skipped, bounded in number), the
//! fragment header's fields when there is one (§4.5), and the payload clipped to the
//! payload length.

use std::net::Ipv6Addr;

use super::bytes::{array, be16, be32, u8_at};
use super::counters::DecodeErrorKind;

/// The fields of an IPv6 fragment header (RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6Fragment {
    pub id: u32,
    /// Offset of this fragment's data in the fragmentable part, in bytes.
    pub offset: usize,
    pub more: bool,
}

/// A parsed IPv6 packet: addresses, the upper-layer protocol and its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ipv6Packet<'a> {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    /// The protocol of `payload`; for a fragment, the first header of the fragmentable
    /// part (pass the reassembled bytes through [`upper_layer`]).
    pub protocol: u8,
    /// Present when the packet is a true fragment; an atomic fragment (offset 0, no
    /// more fragments, RFC 6946) is reported as a whole packet.
    pub fragment: Option<Ipv6Fragment>,
    pub payload: &'a [u8],
}

const FIXED_HEADER: usize = 40;
const HOP_BY_HOP: u8 = 0;
const ROUTING: u8 = 43;
const FRAGMENT: u8 = 44;
const AUTH: u8 = 51;
const DEST_OPTS: u8 = 60;
const MOBILITY: u8 = 135;
const HIP: u8 = 139;
const SHIM6: u8 = 140;

/// Extension headers followed at most; a longer chain is refused (bounded work).
const MAX_EXTENSIONS: usize = 8;

/// Parses the IPv6 header at the start of `b` and walks its extension headers.
///
/// A payload length of 0 (jumbogram, or segmentation offload on the capturing host) is
/// taken as "as captured".
pub(crate) fn parse(b: &[u8]) -> Result<Ipv6Packet<'_>, DecodeErrorKind> {
    let first = u8_at(b, 0).ok_or(DecodeErrorKind::Truncated)?;
    if first >> 4 != 6 {
        return Err(DecodeErrorKind::BadIpHeader);
    }
    if b.len() < FIXED_HEADER {
        return Err(DecodeErrorKind::Truncated);
    }
    let payload_len = usize::from(be16(b, 4).ok_or(DecodeErrorKind::Truncated)?);
    let next = u8_at(b, 6).ok_or(DecodeErrorKind::Truncated)?;
    let src = Ipv6Addr::from(array::<16>(b, 8).ok_or(DecodeErrorKind::Truncated)?);
    let dst = Ipv6Addr::from(array::<16>(b, 24).ok_or(DecodeErrorKind::Truncated)?);
    let after_fixed = b.get(FIXED_HEADER..).ok_or(DecodeErrorKind::Truncated)?;
    let rest = if payload_len == 0 {
        after_fixed
    } else {
        after_fixed
            .get(..payload_len)
            .ok_or(DecodeErrorKind::Truncated)?
    };
    let (protocol, fragment, payload) = walk(next, rest)?;
    Ok(Ipv6Packet {
        src,
        dst,
        protocol,
        fragment,
        payload,
    })
}

/// Skips the extension headers of a reassembled fragmentable part (RFC 8200 §4.5: what
/// follows the fragment header may still hold destination options or routing headers)
/// and returns the upper-layer protocol and its bytes.
pub(crate) fn upper_layer(next: u8, rest: &[u8]) -> Result<(u8, &[u8]), DecodeErrorKind> {
    match walk(next, rest)? {
        (protocol, None, payload) => Ok((protocol, payload)),
        // A fragment header inside a reassembled datagram: nested fragmentation is not
        // something a sender does (RFC 8200 §4.5), so refuse it rather than loop.
        (_, Some(_), _) => Err(DecodeErrorKind::BadIpHeader),
    }
}

type Walked<'a> = (u8, Option<Ipv6Fragment>, &'a [u8]);

/// Follows the chain of extension headers starting with `next`. Stops at the
/// upper-layer header, or right after a true fragment header: the rest of the chain
/// then belongs to the fragmentable part, read after reassembly.
fn walk(mut next: u8, mut rest: &[u8]) -> Result<Walked<'_>, DecodeErrorKind> {
    for _ in 0..MAX_EXTENSIONS {
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTS | MOBILITY | HIP | SHIM6 => {
                let units = usize::from(u8_at(rest, 1).ok_or(DecodeErrorKind::Truncated)?);
                (units + 1) * 8
            }
            AUTH => {
                let units = usize::from(u8_at(rest, 1).ok_or(DecodeErrorKind::Truncated)?);
                (units + 2) * 4
            }
            FRAGMENT => {
                let word = be16(rest, 2).ok_or(DecodeErrorKind::Truncated)?;
                let id = be32(rest, 4).ok_or(DecodeErrorKind::Truncated)?;
                let offset = usize::from(word >> 3) * 8;
                let more = word & 1 != 0;
                let inner = u8_at(rest, 0).ok_or(DecodeErrorKind::Truncated)?;
                let after = rest.get(8..).ok_or(DecodeErrorKind::Truncated)?;
                if offset != 0 || more {
                    let fragment = Some(Ipv6Fragment { id, offset, more });
                    return Ok((inner, fragment, after));
                }
                8
            }
            protocol => return Ok((protocol, None, rest)),
        };
        next = u8_at(rest, 0).ok_or(DecodeErrorKind::Truncated)?;
        rest = rest.get(len..).ok_or(DecodeErrorKind::Truncated)?;
    }
    Err(DecodeErrorKind::UnsupportedIpProtocol)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An IPv6 packet from 2001:db8::1 to 2001:db8::2 whose first header is `next` and
    /// whose payload (extension headers included) is `rest`.
    pub(crate) fn packet(next: u8, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(rest.len() as u16).to_be_bytes());
        v.extend_from_slice(&[next, 64]);
        v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(rest);
        v
    }

    /// A fragment header announcing `next`.
    pub(crate) fn fragment_header(next: u8, offset: usize, more: bool, id: u32) -> [u8; 8] {
        let word = ((offset / 8) as u16) << 3 | u16::from(more);
        let w = word.to_be_bytes();
        let i = id.to_be_bytes();
        [next, 0, w[0], w[1], i[0], i[1], i[2], i[3]]
    }

    #[test]
    fn plain_udp() {
        let b = packet(17, b"12345678");
        let p = parse(&b).unwrap();
        assert_eq!(
            (p.protocol, p.payload, p.fragment),
            (17, &b"12345678"[..], None)
        );
        assert_eq!(p.dst, "2001:db8::2".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn extension_headers_are_skipped() {
        // hop-by-hop (8 bytes) -> destination options (16 bytes) -> UDP
        let mut rest = vec![DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        rest.extend_from_slice(&[17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        rest.extend_from_slice(b"udp!");
        let b = packet(HOP_BY_HOP, &rest);
        let p = parse(&b).unwrap();
        assert_eq!((p.protocol, p.payload), (17, &b"udp!"[..]));
    }

    #[test]
    fn fragment_header_fields() {
        let mut rest = fragment_header(17, 0, true, 0xdead_beef).to_vec();
        rest.extend_from_slice(b"first");
        let b = packet(FRAGMENT, &rest);
        let p = parse(&b).unwrap();
        assert_eq!(
            p.fragment,
            Some(Ipv6Fragment {
                id: 0xdead_beef,
                offset: 0,
                more: true
            })
        );
        assert_eq!((p.protocol, p.payload), (17, &b"first"[..]));

        let mut rest = fragment_header(17, 1232, false, 5).to_vec();
        rest.extend_from_slice(b"last");
        let b = packet(FRAGMENT, &rest);
        let p = parse(&b).unwrap();
        assert_eq!(p.fragment.map(|f| (f.offset, f.more)), Some((1232, false)));
        assert_eq!(p.payload, b"last");
    }

    #[test]
    fn reassembled_part_may_hold_more_extension_headers() {
        let mut part = vec![17, 0, 0, 0, 0, 0, 0, 0];
        part.extend_from_slice(b"udp");
        assert_eq!(upper_layer(DEST_OPTS, &part), Ok((17, &b"udp"[..])));
        let nested = fragment_header(17, 8, true, 1);
        assert_eq!(
            upper_layer(FRAGMENT, &nested),
            Err(DecodeErrorKind::BadIpHeader)
        );
    }

    #[test]
    fn atomic_fragment_is_a_whole_packet() {
        let mut rest = fragment_header(17, 0, false, 5).to_vec();
        rest.extend_from_slice(b"whole");
        let b = packet(FRAGMENT, &rest);
        let p = parse(&b).unwrap();
        assert_eq!((p.fragment, p.payload), (None, &b"whole"[..]));
    }

    #[test]
    fn endless_extension_chain_is_refused() {
        let mut rest = Vec::new();
        for _ in 0..20 {
            rest.extend_from_slice(&[DEST_OPTS, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(
            parse(&packet(DEST_OPTS, &rest)),
            Err(DecodeErrorKind::UnsupportedIpProtocol)
        );
    }

    #[test]
    fn short_or_lying_lengths() {
        let b = packet(17, b"12345678");
        assert_eq!(parse(&b[..39]), Err(DecodeErrorKind::Truncated));
        assert_eq!(parse(&b[..45]), Err(DecodeErrorKind::Truncated));
        let b = packet(DEST_OPTS, &[17, 200, 0, 0]);
        assert_eq!(parse(&b), Err(DecodeErrorKind::Truncated));
    }
}
