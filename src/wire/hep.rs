//! HEP, the capture encapsulation of HOMER/sipcapture (Kamailio `siptrace`, OpenSIPS,
//! FreeSWITCH, Asterisk `res_hep`, heplify): version 3 (chunked, standards.md §8.1-8.3)
//! and the legacy fixed headers of versions 1 and 2 (§8.4). A zero-copy view of one HEP
//! packet; TCP streams are re-framed with [`frame_len`]. Never panics on any input.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a HEP packet was refused. `as_str` is the `kind` label of
/// `callwatch_ingest_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepError {
    /// Not "HEP3", nor a version 1/2 header.
    NotHep,
    /// The packet is shorter than its header or its total length says.
    Truncated,
    /// The total length disagrees with the datagram, or a chunk length is impossible.
    BadLength,
    /// A fixed-size chunk has the wrong size.
    BadChunk,
    /// The packet carries no addresses or ports.
    MissingAddress,
}

impl HepError {
    pub fn as_str(self) -> &'static str {
        match self {
            HepError::NotHep => "hep_not_hep",
            HepError::Truncated => "hep_truncated",
            HepError::BadLength => "hep_bad_length",
            HepError::BadChunk => "hep_bad_chunk",
            HepError::MissingAddress => "hep_missing_address",
        }
    }
}

/// The payload types of chunk 0x000b that callwatch uses (§8.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HepProto {
    Sip,
    Rtcp,
    /// RTCP as a JSON report (HEP type 5 from newer agents; first byte `{`).
    RtcpJson,
    Other(u8),
}

/// One decoded HEP packet, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HepPacket<'a> {
    pub version: u8,
    pub ip_proto: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Capture time from the agent: seconds and microseconds. (0, 0) means "use the
    /// receive time" (heplify-server's rule).
    pub ts_sec: u32,
    pub ts_usec: u32,
    pub proto: HepProto,
    pub capture_id: u32,
    pub auth_key: Option<&'a [u8]>,
    pub correlation_id: Option<&'a [u8]>,
    pub node_name: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// True when the payload was sent gzip-compressed (chunk 0x0010): callwatch does not
    /// inflate it and counts the packet as unsupported.
    pub compressed: bool,
}

impl<'a> HepPacket<'a> {
    /// Parses one whole HEP packet (a UDP datagram, or a frame cut by [`frame_len`]).
    pub fn parse(buf: &'a [u8]) -> Result<HepPacket<'a>, HepError> {
        match buf {
            [b'H', b'E', b'P', b'3', ..] => parse_v3(buf),
            [1 | 2, ..] => parse_v1v2(buf),
            _ => Err(HepError::NotHep),
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([s[0], s[1]]))
}

fn fixed<const N: usize>(v: &[u8]) -> Result<[u8; N], HepError> {
    v.try_into().map_err(|_| HepError::BadChunk)
}

fn parse_v3(buf: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let total = be16(buf, 4).ok_or(HepError::Truncated)? as usize;
    if total < 6 {
        return Err(HepError::BadLength);
    }
    if buf.len() < total {
        return Err(HepError::Truncated);
    }
    if buf.len() > total {
        return Err(HepError::BadLength);
    }
    let mut p = HepPacket {
        version: 3,
        ip_proto: 17,
        src: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        dst: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        ts_sec: 0,
        ts_usec: 0,
        proto: HepProto::Other(0),
        capture_id: 0,
        auth_key: None,
        correlation_id: None,
        node_name: None,
        payload: &[],
        compressed: false,
    };
    let (mut src_ip, mut dst_ip): (Option<IpAddr>, Option<IpAddr>) = (None, None);
    let (mut src_port, mut dst_port) = (None, None);
    let mut at = 6usize;
    while at < total {
        let vendor = be16(buf, at).ok_or(HepError::Truncated)?;
        let kind = be16(buf, at + 2).ok_or(HepError::Truncated)?;
        let len = be16(buf, at + 4).ok_or(HepError::Truncated)? as usize;
        let end = at.checked_add(len).ok_or(HepError::BadLength)?;
        if len < 6 || end > total {
            return Err(HepError::BadLength);
        }
        let v = &buf[at + 6..end];
        at = end;
        if vendor != 0 {
            continue;
        }
        match kind {
            0x0002 => p.ip_proto = fixed::<1>(v)?[0],
            0x0003 => src_ip = Some(IpAddr::V4(Ipv4Addr::from(fixed::<4>(v)?))),
            0x0004 => dst_ip = Some(IpAddr::V4(Ipv4Addr::from(fixed::<4>(v)?))),
            0x0005 => src_ip = Some(IpAddr::V6(Ipv6Addr::from(fixed::<16>(v)?))),
            0x0006 => dst_ip = Some(IpAddr::V6(Ipv6Addr::from(fixed::<16>(v)?))),
            0x0007 => src_port = Some(u16::from_be_bytes(fixed::<2>(v)?)),
            0x0008 => dst_port = Some(u16::from_be_bytes(fixed::<2>(v)?)),
            0x0009 => p.ts_sec = u32::from_be_bytes(fixed::<4>(v)?),
            0x000a => p.ts_usec = u32::from_be_bytes(fixed::<4>(v)?),
            0x000b => {
                p.proto = match fixed::<1>(v)?[0] {
                    1 => HepProto::Sip,
                    5 => HepProto::Rtcp,
                    other => HepProto::Other(other),
                }
            }
            0x000c => {
                p.capture_id = match v.len() {
                    2 => u32::from(u16::from_be_bytes(fixed::<2>(v)?)),
                    4 => u32::from_be_bytes(fixed::<4>(v)?),
                    _ => return Err(HepError::BadChunk),
                }
            }
            0x000e => p.auth_key = Some(v),
            0x000f => p.payload = v,
            0x0010 => {
                p.payload = v;
                p.compressed = true;
            }
            0x0011 => p.correlation_id = Some(v),
            0x0013 => p.node_name = Some(v),
            _ => {}
        }
    }
    if p.proto == HepProto::Rtcp && p.payload.first() == Some(&b'{') {
        p.proto = HepProto::RtcpJson;
    }
    if p.ts_usec > 999_999 {
        return Err(HepError::BadChunk);
    }
    match (src_ip, dst_ip, src_port, dst_port) {
        (Some(s), Some(d), Some(sp), Some(dp)) => {
            p.src = SocketAddr::new(s, sp);
            p.dst = SocketAddr::new(d, dp);
            Ok(p)
        }
        _ => Err(HepError::MissingAddress),
    }
}

/// HEP v1/v2: `version, header length, family, protocol, sport, dport, addresses`, then
/// v2's `tv_sec, tv_usec, capture id (+2 padding)`; the rest is the SIP payload.
fn parse_v1v2(buf: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let version = buf[0];
    let hdr_len = *buf.get(1).ok_or(HepError::Truncated)? as usize;
    let family = *buf.get(2).ok_or(HepError::Truncated)?;
    let ip_proto = *buf.get(3).ok_or(HepError::Truncated)?;
    let sport = be16(buf, 4).ok_or(HepError::Truncated)?;
    let dport = be16(buf, 6).ok_or(HepError::Truncated)?;
    let (src, dst, mut at) = match family {
        2 => {
            let s: [u8; 4] = buf
                .get(8..12)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?;
            let d: [u8; 4] = buf
                .get(12..16)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?;
            (IpAddr::V4(s.into()), IpAddr::V4(d.into()), 16usize)
        }
        10 => {
            let s: [u8; 16] = buf
                .get(8..24)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?;
            let d: [u8; 16] = buf
                .get(24..40)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?;
            (IpAddr::V6(s.into()), IpAddr::V6(d.into()), 40usize)
        }
        _ => return Err(HepError::NotHep),
    };
    let (mut ts_sec, mut ts_usec, mut capture_id) = (0, 0, 0);
    if version == 2 {
        ts_sec = u32::from_le_bytes(
            buf.get(at..at + 4)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?,
        );
        ts_usec = u32::from_le_bytes(
            buf.get(at + 4..at + 8)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?,
        );
        capture_id = u32::from(u16::from_le_bytes(
            buf.get(at + 8..at + 10)
                .ok_or(HepError::Truncated)?
                .try_into()
                .map_err(|_| HepError::Truncated)?,
        ));
        at += 12;
    }
    if buf.len() < at {
        return Err(HepError::Truncated);
    }
    // The header length byte must agree with the family (it counts the fixed part).
    if hdr_len != 0 && hdr_len > at {
        return Err(HepError::BadLength);
    }
    if ts_usec > 999_999 {
        return Err(HepError::BadChunk);
    }
    Ok(HepPacket {
        version,
        ip_proto,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        ts_sec,
        ts_usec,
        proto: HepProto::Sip,
        capture_id,
        auth_key: None,
        correlation_id: None,
        node_name: None,
        payload: buf.get(at..).unwrap_or_default(),
        compressed: false,
    })
}

/// TCP re-framing: how many bytes the HEP v3 packet at the start of `buf` takes.
/// `Ok(None)` when more bytes are needed, `Err` when the stream is not HEP v3 (the
/// collector then looks for the next "HEP3" or closes the connection).
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, HepError> {
    let n = buf.len().min(4);
    if buf[..n] != b"HEP3"[..n] {
        return Err(HepError::NotHep);
    }
    match be16(buf, 4) {
        None => Ok(None),
        Some(total) if total < 6 => Err(HepError::BadLength),
        Some(total) => Ok((buf.len() >= total as usize).then_some(total as usize)),
    }
}

/// Builds a HEP v3 packet (for `loadgen`, tests and fixtures).
pub struct HepBuilder {
    buf: Vec<u8>,
}

impl HepBuilder {
    pub fn new() -> HepBuilder {
        HepBuilder {
            buf: b"HEP3\0\0".to_vec(),
        }
    }

    pub fn chunk(mut self, kind: u16, value: &[u8]) -> HepBuilder {
        let len = u16::try_from(value.len() + 6).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.buf.extend_from_slice(&kind.to_be_bytes());
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(value);
        self
    }

    /// The usual chunk set: addresses, ports, time, protocol type, capture id, payload.
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        src: SocketAddr,
        dst: SocketAddr,
        ts_sec: u32,
        ts_usec: u32,
        proto: u8,
        capture_id: u32,
        payload: &[u8],
    ) -> HepBuilder {
        let mut b = HepBuilder::new();
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                b = b
                    .chunk(0x0001, &[2])
                    .chunk(0x0003, &s.octets())
                    .chunk(0x0004, &d.octets());
            }
            (s, d) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                    IpAddr::V6(a) => a.octets(),
                };
                b = b
                    .chunk(0x0001, &[10])
                    .chunk(0x0005, &v6(s))
                    .chunk(0x0006, &v6(d));
            }
        }
        b.chunk(0x0002, &[17])
            .chunk(0x0007, &src.port().to_be_bytes())
            .chunk(0x0008, &dst.port().to_be_bytes())
            .chunk(0x0009, &ts_sec.to_be_bytes())
            .chunk(0x000a, &ts_usec.to_be_bytes())
            .chunk(0x000b, &[proto])
            .chunk(0x000c, &capture_id.to_be_bytes())
            .chunk(0x000f, payload)
    }

    pub fn build(mut self) -> Vec<u8> {
        let len = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
        self.buf[4..6].copy_from_slice(&len.to_be_bytes());
        self.buf
    }
}

impl Default for HepBuilder {
    fn default() -> Self {
        HepBuilder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        HepBuilder::packet(
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.1.1:5062".parse().unwrap(),
            1_800_000_000,
            120_000,
            1,
            2001,
            b"INVITE sip:8001@x SIP/2.0\r\n\r\n",
        )
        .chunk(0x000e, b"s3cret")
        .chunk(0x0011, b"corr-1")
        .chunk(0x4242, b"unknown chunks are skipped")
        .build()
    }

    #[test]
    fn parses_a_v3_packet_with_every_chunk_callwatch_uses() {
        let b = sample();
        let p = HepPacket::parse(&b).unwrap();
        assert_eq!(p.version, 3);
        assert_eq!(p.src, "10.0.0.1:5060".parse().unwrap());
        assert_eq!(p.dst, "10.0.1.1:5062".parse().unwrap());
        assert_eq!((p.ts_sec, p.ts_usec), (1_800_000_000, 120_000));
        assert_eq!(p.proto, HepProto::Sip);
        assert_eq!(p.capture_id, 2001);
        assert_eq!(p.auth_key, Some(&b"s3cret"[..]));
        assert_eq!(p.correlation_id, Some(&b"corr-1"[..]));
        assert!(p.payload.starts_with(b"INVITE"));
        assert_eq!(frame_len(&b), Ok(Some(b.len())));
    }

    #[test]
    fn ipv6_addresses() {
        let b = HepBuilder::packet(
            "[2001:db8::1]:5060".parse().unwrap(),
            "[2001:db8::2]:5060".parse().unwrap(),
            1,
            2,
            1,
            0,
            b"x",
        )
        .build();
        let p = HepPacket::parse(&b).unwrap();
        assert_eq!(p.src.ip(), "2001:db8::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let b = sample();
        for n in 0..b.len() {
            assert!(HepPacket::parse(&b[..n]).is_err(), "len {n}");
            if n >= 6 {
                assert_eq!(frame_len(&b[..n]), Ok(None));
            }
        }
    }

    #[test]
    fn bad_lengths_and_fixed_sizes_are_refused() {
        let mut b = sample();
        b[4] = 0xff; // total length beyond the datagram
        assert_eq!(HepPacket::parse(&b), Err(HepError::Truncated));
        let mut b = sample();
        b.push(0); // a byte after the total length
        assert_eq!(HepPacket::parse(&b), Err(HepError::BadLength));
        let b = HepBuilder::new().chunk(0x0003, &[1, 2, 3]).build();
        assert_eq!(HepPacket::parse(&b), Err(HepError::BadChunk));
        let b = HepBuilder::new().chunk(0x000f, b"no addresses").build();
        assert_eq!(HepPacket::parse(&b), Err(HepError::MissingAddress));
        assert_eq!(HepPacket::parse(b"GET / HTTP/1.1"), Err(HepError::NotHep));
        assert_eq!(frame_len(b"GET / HTTP"), Err(HepError::NotHep));
    }

    #[test]
    fn hep_v2_fixed_header() {
        let mut b = vec![2u8, 28, 2, 17];
        b.extend_from_slice(&5060u16.to_be_bytes());
        b.extend_from_slice(&5062u16.to_be_bytes());
        b.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
        b.extend_from_slice(&1_800_000_000u32.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&7u16.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let p = HepPacket::parse(&b).unwrap();
        assert_eq!(p.version, 2);
        assert_eq!(p.ts_sec, 1_800_000_000);
        assert_eq!(p.capture_id, 7);
        assert!(p.payload.starts_with(b"OPTIONS"));
        for n in 0..28 {
            assert!(HepPacket::parse(&b[..n]).is_err(), "len {n}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = HepPacket::parse(&data);
            let _ = frame_len(&data);
            let mut v = b"HEP3".to_vec();
            v.extend_from_slice(&data);
            let _ = HepPacket::parse(&v);
        }
    }
}
