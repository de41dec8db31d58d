//! UDP headers (RFC 768): ports and the payload the length field delimits.
//!
//! Input is a whole IP payload (reassembled if it was fragmented); output is the two
//! ports and the datagram payload, which [`super::Decoder`] emits as is.

use super::bytes::be16;
use super::counters::DecodeErrorKind;

/// A parsed UDP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct UdpDatagram<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub payload: &'a [u8],
}

const HEADER: usize = 8;

/// Parses the UDP header at the start of `b`.
///
/// A length field above the bytes present is [`DecodeErrorKind::Truncated`]: the
/// datagram was cut by the snaplen (or the IP length was unusable), and a partial SIP
/// message or RTP packet is worse than none. A length of 0 (IPv6 jumbogram, RFC 2675)
/// means "to the end of the IP payload".
pub(crate) fn parse(b: &[u8]) -> Result<UdpDatagram<'_>, DecodeErrorKind> {
    let src_port = be16(b, 0).ok_or(DecodeErrorKind::Truncated)?;
    let dst_port = be16(b, 2).ok_or(DecodeErrorKind::Truncated)?;
    let len = usize::from(be16(b, 4).ok_or(DecodeErrorKind::Truncated)?);
    let end = match len {
        0 => b.len(),
        l if l < HEADER => return Err(DecodeErrorKind::BadUdp),
        l => l,
    };
    let payload = b.get(HEADER..end).ok_or(DecodeErrorKind::Truncated)?;
    Ok(UdpDatagram {
        src_port,
        dst_port,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(len: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x13, 0xc4, 0x13, 0xc5];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn ports_and_payload() {
        let b = udp(12, b"abcd");
        let d = parse(&b).unwrap();
        assert_eq!(
            (d.src_port, d.dst_port, d.payload),
            (5060, 5061, &b"abcd"[..])
        );
    }

    #[test]
    fn length_field_bounds_the_payload() {
        let b = udp(10, b"abcd");
        assert_eq!(parse(&b).unwrap().payload, b"ab");
        let b = udp(0, b"abcd");
        assert_eq!(parse(&b).unwrap().payload, b"abcd");
    }

    #[test]
    fn length_past_capture_is_truncated_and_short_length_bad() {
        assert_eq!(parse(&udp(100, b"abcd")), Err(DecodeErrorKind::Truncated));
        assert_eq!(parse(&udp(7, b"abcd")), Err(DecodeErrorKind::BadUdp));
        assert_eq!(parse(&[0, 1, 2]), Err(DecodeErrorKind::Truncated));
    }
}
