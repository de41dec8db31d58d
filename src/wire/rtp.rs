//! RTP fixed header (RFC 3550 §5.1) and the RTP/RTCP demultiplexing test of RFC 5761 §4.
//!
//! Input is the payload of one UDP datagram (from [`crate::wire::decode`] or a HEP
//! chunk); output is a small `Copy` view of the header fields, read in place without
//! copying the payload. Used by the media engine ([`crate::engine::media`]) once per
//! packet, so parsing is branch-light and never allocates. No input panics: every
//! length is checked before it is used.

/// Length of the RTP fixed header, without CSRCs or extension (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;

/// The validated fields of an RTP header. `payload_len` excludes the CSRC list, the
/// header extension and any padding; [`RtpHeader::payload`] returns the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtpHeader {
    /// Always 2 after a successful [`parse`].
    pub version: u8,
    pub padding: bool,
    pub extension: bool,
    /// M bit. For audio (RFC 3551 §4.1) it marks the first packet of a talk spurt.
    pub marker: bool,
    /// 7-bit payload type.
    pub payload_type: u8,
    pub sequence: u16,
    /// RTP media time, in units of the payload's clock rate.
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc_count: u8,
    /// Bytes of payload, padding removed.
    pub payload_len: u16,
    /// Offset of the payload from the start of the datagram.
    pub payload_offset: u16,
}

impl RtpHeader {
    /// The payload bytes of `buf`, the same datagram this header was parsed from.
    /// Returns an empty slice when `buf` is another, shorter buffer.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = usize::from(self.payload_offset);
        let end = start + usize::from(self.payload_len);
        buf.get(start..end).unwrap_or(&[])
    }
}

/// Why a datagram is not a valid RTP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtpError {
    /// Fewer than 12 bytes.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// The CSRC list runs past the end of the datagram.
    CsrcOverrun,
    /// The header extension runs past the end of the datagram.
    ExtensionOverrun,
    /// P is set but the padding count is 0 or larger than the payload.
    BadPadding,
    /// Payload type 72-76: with the marker bit these are RTCP SR..APP (RFC 3550 A.1,
    /// RFC 5761 §4), so the datagram is RTCP, not RTP.
    RtcpPayloadType,
}

impl RtpError {
    pub fn as_str(self) -> &'static str {
        match self {
            RtpError::TooShort => "rtp datagram shorter than the 12-byte fixed header",
            RtpError::BadVersion => "rtp version is not 2",
            RtpError::CsrcOverrun => "rtp csrc list runs past the datagram",
            RtpError::ExtensionOverrun => "rtp header extension runs past the datagram",
            RtpError::BadPadding => "rtp padding count is zero or larger than the payload",
            RtpError::RtcpPayloadType => "rtp payload type 72-76 collides with rtcp",
        }
    }
}

impl RtpError {
    /// The snake_case label of `callwatch_ingest_errors_total{kind}`.
    pub fn kind(self) -> &'static str {
        match self {
            RtpError::TooShort => "rtp_too_short",
            RtpError::BadVersion => "rtp_bad_version",
            RtpError::CsrcOverrun => "rtp_csrc_overrun",
            RtpError::ExtensionOverrun => "rtp_extension_overrun",
            RtpError::BadPadding => "rtp_bad_padding",
            RtpError::RtcpPayloadType => "rtp_rtcp_payload_type",
        }
    }
}

impl std::fmt::Display for RtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RtpError {}

/// Parses and validates the RTP header at the start of `buf` (RFC 3550 §5.1, A.1).
pub fn parse(buf: &[u8]) -> Result<RtpHeader, RtpError> {
    let Some(fixed) = buf.first_chunk::<FIXED_HEADER_LEN>() else {
        return Err(RtpError::TooShort);
    };
    let b0 = fixed[0];
    let b1 = fixed[1];
    let version = b0 >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion);
    }
    let payload_type = b1 & 0x7f;
    if (72..=76).contains(&payload_type) {
        return Err(RtpError::RtcpPayloadType);
    }
    let padding = b0 & 0x20 != 0;
    let extension = b0 & 0x10 != 0;
    let csrc_count = b0 & 0x0f;

    // Lengths stay within usize comfortably: a datagram is at most 64 KiB.
    let mut offset = FIXED_HEADER_LEN + 4 * usize::from(csrc_count);
    if offset > buf.len() {
        return Err(RtpError::CsrcOverrun);
    }
    if extension {
        let Some(ext) = buf.get(offset..offset + 4) else {
            return Err(RtpError::ExtensionOverrun);
        };
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        offset += 4 + 4 * words;
        if offset > buf.len() {
            return Err(RtpError::ExtensionOverrun);
        }
    }
    let mut end = buf.len();
    if padding {
        // The last byte counts the padding, itself included (RFC 3550 §5.1).
        let count = usize::from(buf[end - 1]);
        if count == 0 || count > end - offset {
            return Err(RtpError::BadPadding);
        }
        end -= count;
    }
    let (Ok(payload_len), Ok(payload_offset)) =
        (u16::try_from(end - offset), u16::try_from(offset))
    else {
        // Only reachable with a buffer larger than any UDP datagram.
        return Err(RtpError::TooShort);
    };
    Ok(RtpHeader {
        version,
        padding,
        extension,
        marker: b1 & 0x80 != 0,
        payload_type,
        sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
        timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
        csrc_count,
        payload_len,
        payload_offset,
    })
}

/// What a UDP payload on a media port looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Classified {
    Rtp,
    Rtcp,
    Other,
}

/// Tells RTP from RTCP on a shared port (RFC 5761 §4): both carry version 2 in the
/// top bits of the first byte; the second byte of RTCP is its packet type, 200 (SR)
/// to 207 (XR), which for RTP would be the marker bit with payload type 72-79. Does
/// not validate the rest of the packet: [`parse`] or [`crate::wire::rtcp`] do that.
pub fn classify(buf: &[u8]) -> Classified {
    match buf {
        [b0, b1, ..] if b0 >> 6 == 2 && (200..=207).contains(b1) => {
            if buf.len() >= 8 {
                Classified::Rtcp
            } else {
                Classified::Other
            }
        }
        [b0, ..] if b0 >> 6 == 2 && buf.len() >= FIXED_HEADER_LEN => Classified::Rtp,
        _ => Classified::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PCMU, marker, seq 0x1234, ts 0xdeadbeef, ssrc 0x01020304, 4 payload bytes.
    const PCMU: [u8; 16] = [
        0x80, 0x80, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0xfd,
        0xfc,
    ];

    #[test]
    fn parses_a_plain_pcmu_header() {
        let h = parse(&PCMU).unwrap();
        assert_eq!(h.version, 2);
        assert!(h.marker);
        assert!(!h.padding && !h.extension);
        assert_eq!(h.payload_type, 0);
        assert_eq!(h.sequence, 0x1234);
        assert_eq!(h.timestamp, 0xdead_beef);
        assert_eq!(h.ssrc, 0x0102_0304);
        assert_eq!(h.csrc_count, 0);
        assert_eq!(h.payload_len, 4);
        assert_eq!(h.payload(&PCMU), &[0xff, 0xfe, 0xfd, 0xfc]);
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut p = vec![0xb1, 101, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9]; // V2 P X CC=1
        p.extend_from_slice(&[0, 0, 0, 7]); // CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        p.extend_from_slice(&[9, 9, 9]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let h = parse(&p).unwrap();
        assert!(h.padding && h.extension);
        assert_eq!(h.csrc_count, 1);
        assert_eq!(h.payload_type, 101);
        assert_eq!(h.payload_offset, 24);
        assert_eq!(h.payload(&p), &[9, 9, 9]);
    }

    #[test]
    fn rejects_malformed_headers_without_panicking() {
        assert_eq!(parse(&[]), Err(RtpError::TooShort));
        assert_eq!(parse(&PCMU[..11]), Err(RtpError::TooShort));
        let mut v1 = PCMU;
        v1[0] = 0x40;
        assert_eq!(parse(&v1), Err(RtpError::BadVersion));
        let mut cc = PCMU;
        cc[0] = 0x82; // two CSRCs, only 4 bytes follow
        assert_eq!(parse(&cc), Err(RtpError::CsrcOverrun));
        let mut ext = PCMU;
        ext[0] = 0x90;
        ext[14] = 0xff; // extension length 0xfffc words
        assert_eq!(parse(&ext), Err(RtpError::ExtensionOverrun));
        let mut ext_short = PCMU[..14].to_vec();
        ext_short[0] = 0x90;
        assert_eq!(parse(&ext_short), Err(RtpError::ExtensionOverrun));
        let mut pad = PCMU;
        pad[0] = 0xa0;
        pad[15] = 5; // 5 bytes of padding in a 4-byte payload
        assert_eq!(parse(&pad), Err(RtpError::BadPadding));
        pad[15] = 0;
        assert_eq!(parse(&pad), Err(RtpError::BadPadding));
        let mut sr = PCMU;
        sr[1] = 200; // marker + PT 72 = RTCP SR
        assert_eq!(parse(&sr), Err(RtpError::RtcpPayloadType));
    }

    #[test]
    fn every_truncation_of_a_valid_packet_is_an_error_or_shorter() {
        let mut p = vec![0xb1, 0x80, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9, 0, 0, 0, 7];
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9, 9, 0, 2]);
        for n in 0..p.len() {
            let _ = parse(&p[..n]);
            let _ = classify(&p[..n]);
        }
    }

    #[test]
    fn classifies_rtp_rtcp_and_other() {
        assert_eq!(classify(&PCMU), Classified::Rtp);
        let rr = [0x81, 201, 0, 7, 0, 0, 0, 1];
        assert_eq!(classify(&rr), Classified::Rtcp);
        let xr = [0x80, 207, 0, 1, 0, 0, 0, 1];
        assert_eq!(classify(&xr), Classified::Rtcp);
        // Marker + PT 72..79 would be byte 200..207: RTCP wins. PT 71 with marker is RTP.
        let mut m71 = PCMU;
        m71[1] = 0x80 | 71;
        assert_eq!(classify(&m71), Classified::Rtp);
        assert_eq!(classify(b"INVITE sip:8001@pbx SIP/2.0"), Classified::Other);
        assert_eq!(classify(&rr[..4]), Classified::Other);
        assert_eq!(classify(&[]), Classified::Other);
        assert_eq!(classify(&PCMU[..11]), Classified::Other);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..96)) {
            if let Ok(h) = parse(&bytes) {
                proptest::prop_assert!(usize::from(h.payload_offset) + usize::from(h.payload_len) <= bytes.len());
                proptest::prop_assert_eq!(h.payload(&bytes).len(), usize::from(h.payload_len));
            }
            let _ = classify(&bytes);
        }
    }
}
