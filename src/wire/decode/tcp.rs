//! TCP segment headers (RFC 9293 §3.1): ports, sequence numbers, flags, payload.
//!
//! Input is a whole IP payload; output is the fields [`super::tcp_flows`] needs to put
//! the segment's bytes in stream order. Options are skipped and the checksum is not
//! checked (see [`super::ipv4`] for why).

use super::bytes::{be16, be32, u8_at};
use super::counters::DecodeErrorKind;

/// A parsed TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: Flags,
    pub payload: &'a [u8],
}

/// The control bits a reassembler cares about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Flags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub ack: bool,
}

const MIN_HEADER: usize = 20;

/// Parses the TCP header at the start of `b`.
pub(crate) fn parse(b: &[u8]) -> Result<TcpSegment<'_>, DecodeErrorKind> {
    let src_port = be16(b, 0).ok_or(DecodeErrorKind::Truncated)?;
    let dst_port = be16(b, 2).ok_or(DecodeErrorKind::Truncated)?;
    let seq = be32(b, 4).ok_or(DecodeErrorKind::Truncated)?;
    let ack = be32(b, 8).ok_or(DecodeErrorKind::Truncated)?;
    let offset = usize::from(u8_at(b, 12).ok_or(DecodeErrorKind::Truncated)? >> 4) * 4;
    let bits = u8_at(b, 13).ok_or(DecodeErrorKind::Truncated)?;
    if offset < MIN_HEADER {
        return Err(DecodeErrorKind::BadTcp);
    }
    let payload = b.get(offset..).ok_or(DecodeErrorKind::Truncated)?;
    Ok(TcpSegment {
        src_port,
        dst_port,
        seq,
        ack,
        flags: Flags {
            fin: bits & 0x01 != 0,
            syn: bits & 0x02 != 0,
            rst: bits & 0x04 != 0,
            ack: bits & 0x10 != 0,
        },
        payload,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TCP header from port 5060 to 40000 with `flags` (FIN 1, SYN 2, RST 4, ACK 16)
    /// and 4 bytes of options, followed by `payload`.
    pub(crate) fn segment(seq: u32, ack: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x13, 0xc4, 0x9c, 0x40];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ack.to_be_bytes());
        v.extend_from_slice(&[6 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        v.extend_from_slice(&[1, 1, 1, 1]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn fields_and_payload_after_options() {
        let b = segment(1000, 77, 0x18, b"INVITE");
        let s = parse(&b).unwrap();
        assert_eq!(
            (s.src_port, s.dst_port, s.seq, s.ack),
            (5060, 40000, 1000, 77)
        );
        assert_eq!(
            s.flags,
            Flags {
                ack: true,
                ..Flags::default()
            }
        );
        assert_eq!(s.payload, b"INVITE");
        let b = segment(1, 0, 0x07, b"");
        let s = parse(&b).unwrap();
        assert!(s.flags.syn && s.flags.fin && s.flags.rst && !s.flags.ack);
    }

    #[test]
    fn bad_offsets() {
        let mut b = segment(1, 0, 0x10, b"x");
        b[12] = 4 << 4;
        assert_eq!(parse(&b), Err(DecodeErrorKind::BadTcp));
        b[12] = 15 << 4;
        assert_eq!(parse(&b), Err(DecodeErrorKind::Truncated));
        assert_eq!(parse(&b[..13]), Err(DecodeErrorKind::Truncated));
    }
}
