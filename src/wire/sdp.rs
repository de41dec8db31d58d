//! SDP (RFC 4566, RFC 8866) as far as a passive observer needs it: connection
//! addresses, media ports and payload types, `rtpmap`, `rtcp`/`rtcp-mux`, and the
//! direction attributes that signal hold (RFC 3264 §8.4, RFC 6337 §5).
//!
//! Input is the SDP body handed out by [`crate::wire::sip::SipMessage::sdp`]; output is
//! an [`Sdp`] that borrows it. The engine uses it to expect RTP flows (address, port,
//! payload types and clock rates) and to detect hold and resume. CRLF and LF-only line
//! ends are both accepted; attributes the observer does not use are skipped. No input
//! panics; the number of media sections is capped.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

use std::net::IpAddr;

use smallvec::SmallVec;

/// Most `m=` sections accepted ([`SdpError::TooManyMedia`]).
pub const MAX_MEDIA: usize = 64;

/// Media direction attribute (RFC 4566 §6; RFC 3264 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name (`a=sendrecv` ...) to a direction.
    pub fn from_attribute(name: &[u8]) -> Option<Direction> {
        match name {
            b"sendrecv" => Some(Direction::SendRecv),
            b"sendonly" => Some(Direction::SendOnly),
            b"recvonly" => Some(Direction::RecvOnly),
            b"inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// A session description: session-level connection and direction, and its media.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdp<'a> {
    /// Session-level `c=` (`None` when absent or not an IP literal, e.g. a host name).
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute.
    pub direction: Option<Direction>,
    pub media: SmallVec<[Media<'a>; 2]>,
}

/// One `m=` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media<'a> {
    /// `audio`, `video`, `image`, `application`, ...
    pub kind: &'a [u8],
    /// 0 means the stream is rejected or disabled (RFC 3264 §6).
    pub port: u16,
    /// `RTP/AVP`, `RTP/SAVP`, `UDP/TLS/RTP/SAVPF`, `udptl`, ...
    pub proto: &'a [u8],
    /// Numeric payload types (0..=127) in order; non-numeric formats (`t38`) are left out.
    pub formats: SmallVec<[u8; 8]>,
    /// Media-level `c=`.
    pub connection: Option<IpAddr>,
    /// Media-level direction attribute.
    pub direction: Option<Direction>,
    pub rtpmap: SmallVec<[RtpMap<'a>; 4]>,
    /// `a=rtcp:<port>` (RFC 3605); otherwise RTCP is on `port + 1`.
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP shares the RTP port.
    pub rtcp_mux: bool,
}

/// `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RtpMap<'a> {
    pub payload_type: u8,
    pub encoding: &'a [u8],
    pub clock_rate: u32,
}

/// Why a body is not a usable SDP. Small and `Copy`, counted by [`SdpError::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SdpError {
    /// No bytes, or only whitespace.
    Empty,
    /// The first line is not `v=`.
    NotSdp,
    /// A line is not `<letter>=<value>`.
    BadLine,
    /// An `m=` line without media, port and proto, or with a port that is not 0..=65535.
    BadMedia,
    /// More than [`MAX_MEDIA`] `m=` sections.
    TooManyMedia,
}

impl SdpError {
    /// Snake-case kind, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SdpError::Empty => "sdp_empty",
            SdpError::NotSdp => "sdp_not_sdp",
            SdpError::BadLine => "sdp_bad_line",
            SdpError::BadMedia => "sdp_bad_media",
            SdpError::TooManyMedia => "sdp_too_many_media",
        }
    }
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SdpError {}

impl<'a> Sdp<'a> {
    /// Parses a session description.
    pub fn parse(b: &'a [u8]) -> Result<Sdp<'a>, SdpError> {
        let mut sdp = Sdp {
            connection: None,
            direction: None,
            media: SmallVec::new(),
        };
        let mut seen_version = false;
        for line in b.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(|c| c.is_ascii_whitespace()) {
                continue;
            }
            let (kind, value) = match line {
                [kind, b'=', value @ ..] if kind.is_ascii_alphabetic() => (*kind, value),
                _ => {
                    return Err(if seen_version {
                        SdpError::BadLine
                    } else {
                        SdpError::NotSdp
                    })
                }
            };
            if !seen_version {
                if kind != b'v' {
                    return Err(SdpError::NotSdp);
                }
                seen_version = true;
                continue;
            }
            match kind {
                b'm' => {
                    if sdp.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooManyMedia);
                    }
                    sdp.media.push(parse_media_line(value)?);
                }
                b'c' => {
                    let addr = parse_connection(value);
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = addr,
                        None => sdp.connection = addr,
                    }
                }
                b'a' => sdp.attribute(value),
                _ => {}
            }
        }
        if seen_version {
            Ok(sdp)
        } else {
            Err(SdpError::Empty)
        }
    }

    fn attribute(&mut self, value: &'a [u8]) {
        let (name, arg) = match value.iter().position(|&c| c == b':') {
            Some(i) => (value.get(..i).unwrap_or_default(), value.get(i + 1..)),
            None => (value, None),
        };
        if let Some(d) = Direction::from_attribute(name) {
            match self.media.last_mut() {
                Some(m) => m.direction = Some(d),
                None => self.direction = Some(d),
            }
            return;
        }
        // The rest is media-level only.
        let Some(m) = self.media.last_mut() else {
            return;
        };
        match (name, arg) {
            (b"rtpmap", Some(arg)) => {
                if let Some(r) = parse_rtpmap(arg) {
                    m.rtpmap.push(r);
                }
            }
            (b"rtcp", Some(arg)) => {
                m.rtcp_port = arg
                    .split(|c| c.is_ascii_whitespace())
                    .next()
                    .and_then(parse_u16);
            }
            (b"rtcp-mux", _) => m.rtcp_mux = true,
            _ => {}
        }
    }

    /// The first `audio` section with a non-zero port, else the first `audio` section.
    pub fn audio(&self) -> Option<&Media<'a>> {
        let mut audio = self.media.iter().filter(|m| m.kind == b"audio");
        let first = audio.clone().next();
        audio.find(|m| m.port != 0).or(first)
    }
}

impl Media<'_> {
    /// Media-level direction, else session-level, else `sendrecv` (RFC 4566 §6).
    pub fn effective_direction(&self, session: &Sdp<'_>) -> Direction {
        self.direction
            .or(session.direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// Media-level connection address, else session-level.
    pub fn effective_connection(&self, session: &Sdp<'_>) -> Option<IpAddr> {
        self.connection.or(session.connection)
    }

    /// True when this SDP puts the stream on hold: `sendonly` or `inactive` (RFC 3264
    /// §8.4), or the RFC 2543 style connection address 0.0.0.0 (or `::`).
    pub fn is_hold(&self, session: &Sdp<'_>) -> bool {
        matches!(
            self.effective_direction(session),
            Direction::SendOnly | Direction::Inactive
        ) || self
            .effective_connection(session)
            .is_some_and(|a| a.is_unspecified())
    }

    /// The rtpmap of a payload type, if the SDP has one.
    pub fn rtpmap_for(&self, payload_type: u8) -> Option<&RtpMap<'_>> {
        self.rtpmap.iter().find(|r| r.payload_type == payload_type)
    }
}

fn fields(b: &[u8]) -> impl Iterator<Item = &[u8]> {
    b.split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |n, &c| {
        if c.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u32::from(c - b'0'))
        } else {
            None
        }
    })
}

fn parse_u16(b: &[u8]) -> Option<u16> {
    parse_u32(b).and_then(|n| u16::try_from(n).ok())
}

/// `m=<media> <port>[/<number of ports>] <proto> <fmt> ...`
fn parse_media_line(value: &[u8]) -> Result<Media<'_>, SdpError> {
    let mut f = fields(value);
    let kind = f.next().ok_or(SdpError::BadMedia)?;
    let port_field = f.next().ok_or(SdpError::BadMedia)?;
    let port_only = port_field.split(|&c| c == b'/').next().unwrap_or_default();
    let port = parse_u16(port_only).ok_or(SdpError::BadMedia)?;
    let proto = f.next().ok_or(SdpError::BadMedia)?;
    let formats = f
        .filter_map(|fmt| parse_u32(fmt).filter(|&pt| pt <= 127))
        .filter_map(|pt| u8::try_from(pt).ok())
        .collect();
    Ok(Media {
        kind,
        port,
        proto,
        formats,
        connection: None,
        direction: None,
        rtpmap: SmallVec::new(),
        rtcp_port: None,
        rtcp_mux: false,
    })
}

/// `c=IN IP4 <addr>[/ttl[/n]]`; `None` for anything that is not an IP literal.
fn parse_connection(value: &[u8]) -> Option<IpAddr> {
    let mut f = fields(value);
    if !f.next()?.eq_ignore_ascii_case(b"IN") {
        return None;
    }
    let _addrtype = f.next()?;
    let addr = f.next()?;
    let addr = addr.split(|&c| c == b'/').next()?;
    std::str::from_utf8(addr).ok()?.parse().ok()
}

/// `<pt> <encoding>/<clock>[/<channels>]`; `None` when malformed (RFC 4475's
/// `a=rtpmap:31 LPC` has no clock rate: the static table of RFC 3551 applies).
fn parse_rtpmap(arg: &[u8]) -> Option<RtpMap<'_>> {
    let mut f = fields(arg);
    let payload_type = parse_u32(f.next()?).filter(|&pt| pt <= 127)?;
    let mut enc = f.next()?.split(|&c| c == b'/');
    let encoding = enc.next().filter(|e| !e.is_empty())?;
    let clock_rate = parse_u32(enc.next()?).filter(|&r| r > 0)?;
    Some(RtpMap {
        payload_type: u8::try_from(payload_type).ok()?,
        encoding,
        clock_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const OFFER: &[u8] = b"v=0\r\n\
o=- 3912 3913 IN IP4 10.1.2.3\r\n\
s=-\r\n\
c=IN IP4 10.1.2.3\r\n\
t=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n\
m=video 0 RTP/AVP 96\r\n";

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn typical_offer() {
        let sdp = Sdp::parse(OFFER).unwrap();
        assert_eq!(sdp.connection, ip("10.1.2.3"));
        assert_eq!(sdp.direction, None);
        assert_eq!(sdp.media.len(), 2);
        let a = sdp.audio().unwrap();
        assert_eq!(a.kind, b"audio");
        assert_eq!(a.port, 40000);
        assert_eq!(a.proto, b"RTP/AVP");
        assert_eq!(a.formats.as_slice(), &[8, 0, 18, 101]);
        assert_eq!(a.rtpmap.len(), 4);
        assert_eq!(
            a.rtpmap_for(101),
            Some(&RtpMap {
                payload_type: 101,
                encoding: b"telephone-event",
                clock_rate: 8000
            })
        );
        assert_eq!(a.direction, Some(Direction::SendRecv));
        assert_eq!(a.effective_connection(&sdp), ip("10.1.2.3"));
        assert_eq!(a.effective_direction(&sdp), Direction::SendRecv);
        assert!(!a.is_hold(&sdp));
        assert!(!a.rtcp_mux);
        assert_eq!(a.rtcp_port, None);
        assert!(!a.heap_allocated_for_test());
        assert_eq!(sdp.media[1].port, 0);
    }

    impl Media<'_> {
        fn heap_allocated_for_test(&self) -> bool {
            self.formats.spilled() || self.rtpmap.spilled()
        }
    }

    #[test]
    fn lf_only_and_rfc4475_body() {
        // The SDP of RFC 4475 wsinv, LF line ends, rtpmap without a clock rate.
        let body = b"v=0\no=mhandley 29739 7272939 IN IP4 192.0.2.3\ns=-\nc=IN IP4 192.0.2.4\nt=0 0\nm=audio 49217 RTP/AVP 0 12\nm=video 3227 RTP/AVP 31\na=rtpmap:31 LPC\n";
        let sdp = Sdp::parse(body).unwrap();
        assert_eq!(sdp.connection, ip("192.0.2.4"));
        assert_eq!(sdp.media.len(), 2);
        assert_eq!(sdp.audio().unwrap().formats.as_slice(), &[0, 12]);
        assert_eq!(sdp.media[1].formats.as_slice(), &[31]);
        assert!(sdp.media[1].rtpmap.is_empty());
    }

    #[test]
    fn hold_forms() {
        let hold = |s: &[u8]| {
            let sdp = Sdp::parse(s).unwrap();
            let held = sdp.audio().unwrap().is_hold(&sdp);
            held
        };
        assert!(hold(
            b"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=sendonly\n"
        ));
        assert!(hold(
            b"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=inactive\n"
        ));
        assert!(hold(
            b"v=0\nc=IN IP4 10.0.0.1\na=sendonly\nm=audio 4000 RTP/AVP 0\n"
        ));
        assert!(hold(b"v=0\nc=IN IP4 0.0.0.0\nm=audio 4000 RTP/AVP 0\n"));
        assert!(hold(b"v=0\nm=audio 4000 RTP/AVP 0\nc=IN IP6 ::\n"));
        assert!(!hold(
            b"v=0\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\na=recvonly\n"
        ));
        // Media level overrides session level.
        assert!(!hold(
            b"v=0\nc=IN IP4 10.0.0.1\na=sendonly\nm=audio 4000 RTP/AVP 0\na=sendrecv\n"
        ));
        assert!(!hold(
            b"v=0\nc=IN IP4 0.0.0.0\nm=audio 4000 RTP/AVP 0\nc=IN IP4 10.0.0.2\n"
        ));
    }

    #[test]
    fn connections_and_rtcp() {
        let sdp = Sdp::parse(
            b"v=0\r\nc=IN IP4 224.2.1.1/127/3\r\nm=audio 5004/2 RTP/AVP 0\r\nc=IN IP6 2001:db8::1\r\na=rtcp:5009 IN IP4 10.0.0.9\r\na=rtcp-mux\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4 pbx.example.com\r\n",
        )
        .unwrap();
        assert_eq!(sdp.connection, ip("224.2.1.1"));
        let a = &sdp.media[0];
        assert_eq!(a.port, 5004);
        assert_eq!(a.connection, ip("2001:db8::1"));
        assert_eq!(a.rtcp_port, Some(5009));
        assert!(a.rtcp_mux);
        assert_eq!(sdp.media[1].connection, None);
        assert_eq!(sdp.media[1].effective_connection(&sdp), ip("224.2.1.1"));
    }

    #[test]
    fn audio_prefers_an_enabled_stream() {
        let sdp = Sdp::parse(b"v=0\nm=audio 0 RTP/AVP 0\nm=audio 7000 RTP/AVP 8\n").unwrap();
        assert_eq!(sdp.audio().unwrap().port, 7000);
        let sdp = Sdp::parse(b"v=0\nm=audio 0 RTP/AVP 0\n").unwrap();
        assert_eq!(sdp.audio().unwrap().port, 0);
        let sdp = Sdp::parse(b"v=0\nm=image 9000 udptl t38\n").unwrap();
        assert!(sdp.audio().is_none());
        assert!(sdp.media[0].formats.is_empty());
    }

    #[test]
    fn malformed_attributes_are_skipped() {
        let sdp = Sdp::parse(b"v=0\nm=audio 4000 RTP/AVP 0 300 x\na=rtpmap:300 X/8000\na=rtpmap:0 PCMU/0\na=rtpmap:0 /8000\na=rtpmap:x\na=rtcp:99999\na=rtpmap\n").unwrap();
        let a = &sdp.media[0];
        assert_eq!(a.formats.as_slice(), &[0]);
        assert!(a.rtpmap.is_empty());
        assert_eq!(a.rtcp_port, None);
    }

    #[test]
    fn every_error_kind() {
        let too_many = {
            let mut v = b"v=0\n".to_vec();
            for _ in 0..=MAX_MEDIA {
                v.extend_from_slice(b"m=audio 0 RTP/AVP 0\n");
            }
            v
        };
        let cases: Vec<(&[u8], SdpError, &str)> = vec![
            (b"", SdpError::Empty, "sdp_empty"),
            (b"\r\n \r\n", SdpError::Empty, "sdp_empty"),
            (
                b"o=- 1 1 IN IP4 1.2.3.4\nv=0\n",
                SdpError::NotSdp,
                "sdp_not_sdp",
            ),
            (b"<audio/>", SdpError::NotSdp, "sdp_not_sdp"),
            (
                b"v=0\nm =video 3227 RTP/AVP 31\n",
                SdpError::BadLine,
                "sdp_bad_line",
            ),
            (b"v=0\nm=audio\n", SdpError::BadMedia, "sdp_bad_media"),
            (
                b"v=0\nm=audio 70000 RTP/AVP 0\n",
                SdpError::BadMedia,
                "sdp_bad_media",
            ),
            (
                b"v=0\nm=audio x RTP/AVP 0\n",
                SdpError::BadMedia,
                "sdp_bad_media",
            ),
            (&too_many, SdpError::TooManyMedia, "sdp_too_many_media"),
        ];
        for (input, kind, label) in cases {
            assert_eq!(
                Sdp::parse(input).err(),
                Some(kind),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(kind.as_str(), label);
            assert_eq!(kind.to_string(), label);
        }
    }

    #[test]
    fn direction_names_round_trip() {
        for d in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ] {
            assert_eq!(Direction::from_attribute(d.as_str().as_bytes()), Some(d));
        }
        assert_eq!(Direction::from_attribute(b"SENDONLY"), None);
    }

    fn exercise(sdp: &Sdp<'_>) {
        for m in &sdp.media {
            let _ = (
                m.effective_direction(sdp),
                m.effective_connection(sdp),
                m.is_hold(sdp),
            );
            let _ = m.rtpmap_for(0);
        }
        let _ = sdp.audio();
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            if let Ok(sdp) = Sdp::parse(&bytes) {
                exercise(&sdp);
            }
        }

        #[test]
        fn never_panics_on_mutated_offers(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), prop_oneof![
                Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'/'), Just(b':'), Just(b'='),
                Just(b'0'), Just(b'9'), any::<u8>()
            ]), 1..8)
        ) {
            let mut v = OFFER.to_vec();
            for (pos, op, byte) in edits {
                let i = pos % v.len().max(1);
                match op % 3 {
                    0 if !v.is_empty() => v[i] = byte,
                    1 => v.insert(i.min(v.len()), byte),
                    _ if !v.is_empty() => { v.remove(i); }
                    _ => {}
                }
            }
            let parsed = Sdp::parse(&v);
            if let Ok(sdp) = parsed {
                exercise(&sdp);
            }
        }

        #[test]
        fn media_lines_round_trip(port in any::<u16>(), pts in proptest::collection::vec(0u8..128, 0..12)) {
            let fmts: Vec<String> = pts.iter().map(|p| p.to_string()).collect();
            let text = format!("v=0\r\nm=audio {port} RTP/AVP {}\r\n", fmts.join(" "));
            let sdp = Sdp::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(sdp.media[0].port, port);
            prop_assert_eq!(sdp.media[0].formats.as_slice(), pts.as_slice());
        }
    }
}
