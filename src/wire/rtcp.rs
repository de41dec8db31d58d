//! RTCP compound packets (RFC 3550 §6.4-6.6) and RTCP XR VoIP metrics (RFC 3611 §4.7).
//!
//! Input is one UDP datagram (or the RTCP payload of a HEP packet, type 5) holding a
//! compound packet; [`walk`] yields its packets one by one as borrowed views, and the
//! media engine reads the endpoints' own loss, jitter and round-trip figures from the
//! report blocks and XR VoIP metrics. Nothing is copied or allocated. Every length comes
//! from the wire and is checked before use; a malformed packet ends the walk with an
//! [`RtcpError`], never a panic.

/// Length of the RTCP common header (V, P, count, PT, length).
const HEADER_LEN: usize = 4;
/// Length of one SR/RR report block (RFC 3550 §6.4.1).
pub const REPORT_BLOCK_LEN: usize = 24;
/// RTCP packet types (RFC 3550 §12.1, RFC 4585, RFC 3611).
pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;
pub const PT_APP: u8 = 204;
pub const PT_XR: u8 = 207;
/// XR block type of VoIP metrics (RFC 3611 §4.7).
pub const XR_BT_VOIP_METRICS: u8 = 7;
/// Length in bytes of an XR VoIP metrics block, header included (block length 8).
const VOIP_METRICS_LEN: usize = 36;

/// Why a compound packet could not be walked further.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtcpError {
    /// Fewer than 4 bytes left where a packet header should be.
    TooShort,
    /// Version field is not 2.
    BadVersion,
    /// The header's length field runs past the end of the datagram.
    LengthOverrun,
    /// The report count (or source count) does not fit in the packet.
    CountOverrun,
    /// P is set but the padding count is 0 or larger than the packet body.
    BadPadding,
    /// An XR block's length runs past the end of its packet.
    XrBlockOverrun,
    /// An XR VoIP metrics block whose length is not 8 words.
    XrBadVoipMetricsLength,
}

impl RtcpError {
    pub fn as_str(self) -> &'static str {
        match self {
            RtcpError::TooShort => "rtcp packet shorter than its 4-byte header",
            RtcpError::BadVersion => "rtcp version is not 2",
            RtcpError::LengthOverrun => "rtcp length field runs past the datagram",
            RtcpError::CountOverrun => "rtcp report or source count does not fit the packet",
            RtcpError::BadPadding => "rtcp padding count is zero or larger than the packet",
            RtcpError::XrBlockOverrun => "rtcp xr block runs past its packet",
            RtcpError::XrBadVoipMetricsLength => "rtcp xr voip metrics block length is not 8",
        }
    }
}

impl RtcpError {
    /// The snake_case label of `callwatch_ingest_errors_total{kind}`.
    pub fn kind(self) -> &'static str {
        match self {
            RtcpError::TooShort => "rtcp_too_short",
            RtcpError::BadVersion => "rtcp_bad_version",
            RtcpError::LengthOverrun => "rtcp_length_overrun",
            RtcpError::CountOverrun => "rtcp_count_overrun",
            RtcpError::BadPadding => "rtcp_bad_padding",
            RtcpError::XrBlockOverrun => "rtcp_xr_block_overrun",
            RtcpError::XrBadVoipMetricsLength => "rtcp_xr_bad_voip_metrics_length",
        }
    }
}

impl std::fmt::Display for RtcpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for RtcpError {}

/// One reception report block of an SR or RR (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received (cycles << 16 | max seq).
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR from `ssrc` (0: none yet).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    fn read(b: &[u8; REPORT_BLOCK_LEN]) -> ReportBlock {
        let raw_lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit two's-complement value.
        let cumulative_lost = ((raw_lost << 8) as i32) >> 8;
        ReportBlock {
            ssrc: be32(&b[0..4]),
            fraction_lost: b[4],
            cumulative_lost,
            highest_seq: be32(&b[8..12]),
            jitter: be32(&b[12..16]),
            lsr: be32(&b[16..20]),
            dlsr: be32(&b[20..24]),
        }
    }

    /// Fraction lost as a percentage.
    pub fn fraction_lost_pct(&self) -> f64 {
        f64::from(self.fraction_lost) * 100.0 / 256.0
    }

    /// Round-trip time in 1/65536 s for an RR/SR that arrived at `arrival_ntp_middle`
    /// (RFC 3550 §6.4.1: A - LSR - DLSR), or `None` when the block has no LSR or the
    /// result would be negative (clocks disagree).
    pub fn round_trip(&self, arrival_ntp_middle: u32) -> Option<u32> {
        if self.lsr == 0 {
            return None;
        }
        let rtt = arrival_ntp_middle
            .wrapping_sub(self.lsr)
            .wrapping_sub(self.dlsr);
        // A difference above 2^31 means "negative" in this modular arithmetic.
        (rtt < 0x8000_0000).then_some(rtt)
    }
}

/// The report blocks of an SR or RR, read on demand.
#[derive(Clone, Copy, Debug)]
pub struct ReportBlocks<'a> {
    rest: &'a [u8],
}

impl Iterator for ReportBlocks<'_> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let (block, rest) = self.rest.split_first_chunk::<REPORT_BLOCK_LEN>()?;
        self.rest = rest;
        Some(ReportBlock::read(block))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.rest.len() / REPORT_BLOCK_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for ReportBlocks<'_> {}

/// A sender report (PT 200).
#[derive(Clone, Copy, Debug)]
pub struct SenderReport<'a> {
    pub ssrc: u32,
    /// 64-bit NTP timestamp of the report.
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
    pub reports: ReportBlocks<'a>,
}

impl SenderReport<'_> {
    /// Middle 32 bits of the NTP timestamp: what receivers echo as LSR.
    pub fn ntp_middle(&self) -> u32 {
        (self.ntp >> 16) as u32
    }
}

/// A receiver report (PT 201).
#[derive(Clone, Copy, Debug)]
pub struct ReceiverReport<'a> {
    pub ssrc: u32,
    pub reports: ReportBlocks<'a>,
}

/// A goodbye (PT 203): the sources leaving, and an optional reason text.
#[derive(Clone, Copy, Debug)]
pub struct Bye<'a> {
    ssrcs: &'a [u8],
    /// Raw reason bytes (RFC 3550 says UTF-8; not checked here).
    pub reason: Option<&'a [u8]>,
}

impl<'a> Bye<'a> {
    pub fn ssrcs(&self) -> impl Iterator<Item = u32> + 'a {
        self.ssrcs.chunks_exact(4).map(be32)
    }
    pub fn source_count(&self) -> usize {
        self.ssrcs.len() / 4
    }
}

/// RTCP XR VoIP metrics (RFC 3611 §4.7). Rates are in 1/256; 127 in `r_factor`,
/// `ext_r_factor`, `mos_lq`, `mos_cq` means "unavailable".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoipMetrics {
    pub ssrc: u32,
    pub loss_rate: u8,
    pub discard_rate: u8,
    pub burst_density: u8,
    pub gap_density: u8,
    /// Mean burst duration in ms.
    pub burst_duration_ms: u16,
    /// Mean gap duration in ms.
    pub gap_duration_ms: u16,
    pub round_trip_delay_ms: u16,
    pub end_system_delay_ms: u16,
    /// dBm, signed; 127 = unavailable.
    pub signal_level: i8,
    /// dBm, signed; 127 = unavailable.
    pub noise_level: i8,
    /// Residual echo return loss in dB; 127 = unavailable.
    pub rerl: u8,
    pub gmin: u8,
    pub r_factor: u8,
    pub ext_r_factor: u8,
    /// MOS x10 (10..=50); 127 = unavailable.
    pub mos_lq: u8,
    /// MOS x10 (10..=50); 127 = unavailable.
    pub mos_cq: u8,
    pub rx_config: u8,
    pub jb_nominal_ms: u16,
    pub jb_maximum_ms: u16,
    pub jb_abs_max_ms: u16,
}

/// Marks an unavailable XR metric (RFC 3611 §4.7.5, §4.7.7).
pub const XR_UNAVAILABLE: u8 = 127;

impl VoipMetrics {
    fn read(b: &[u8; VOIP_METRICS_LEN]) -> VoipMetrics {
        VoipMetrics {
            ssrc: be32(&b[4..8]),
            loss_rate: b[8],
            discard_rate: b[9],
            burst_density: b[10],
            gap_density: b[11],
            burst_duration_ms: be16(&b[12..14]),
            gap_duration_ms: be16(&b[14..16]),
            round_trip_delay_ms: be16(&b[16..18]),
            end_system_delay_ms: be16(&b[18..20]),
            signal_level: b[20] as i8,
            noise_level: b[21] as i8,
            rerl: b[22],
            gmin: b[23],
            r_factor: b[24],
            ext_r_factor: b[25],
            mos_lq: b[26],
            mos_cq: b[27],
            rx_config: b[28],
            jb_nominal_ms: be16(&b[30..32]),
            jb_maximum_ms: be16(&b[32..34]),
            jb_abs_max_ms: be16(&b[34..36]),
        }
    }

    /// Loss rate as a percentage.
    pub fn loss_pct(&self) -> f64 {
        f64::from(self.loss_rate) * 100.0 / 256.0
    }

    /// Listening-quality MOS, when the endpoint reported one.
    pub fn mos_lq(&self) -> Option<f64> {
        (self.mos_lq != XR_UNAVAILABLE).then(|| f64::from(self.mos_lq) / 10.0)
    }

    /// Conversational-quality MOS, when the endpoint reported one.
    pub fn mos_cq(&self) -> Option<f64> {
        (self.mos_cq != XR_UNAVAILABLE).then(|| f64::from(self.mos_cq) / 10.0)
    }

    /// R factor, when the endpoint reported one.
    pub fn r_factor(&self) -> Option<u8> {
        (self.r_factor != XR_UNAVAILABLE).then_some(self.r_factor)
    }
}

/// One block of an XR packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XrBlock<'a> {
    VoipMetrics(VoipMetrics),
    /// Any other block type, skipped by length.
    Other {
        block_type: u8,
        body: &'a [u8],
    },
}

/// The blocks of an XR packet (RFC 3611 §3), read on demand.
#[derive(Clone, Copy, Debug)]
pub struct XrBlocks<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for XrBlocks<'a> {
    type Item = Result<XrBlock<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        let header = self.rest.first_chunk::<4>()?;
        let block_type = header[0];
        let words = usize::from(be16(&header[2..4]));
        let len = 4 + 4 * words;
        let Some(block) = self.rest.get(..len) else {
            self.rest = &[];
            return Some(Err(RtcpError::XrBlockOverrun));
        };
        self.rest = &self.rest[len..];
        if block_type == XR_BT_VOIP_METRICS {
            let Some(fixed) = block
                .first_chunk::<VOIP_METRICS_LEN>()
                .filter(|_| words == 8)
            else {
                self.rest = &[];
                return Some(Err(RtcpError::XrBadVoipMetricsLength));
            };
            return Some(Ok(XrBlock::VoipMetrics(VoipMetrics::read(fixed))));
        }
        Some(Ok(XrBlock::Other {
            block_type,
            body: &block[4..],
        }))
    }
}

/// An extended report (PT 207).
#[derive(Clone, Copy, Debug)]
pub struct ExtendedReport<'a> {
    pub ssrc: u32,
    pub blocks: XrBlocks<'a>,
}

/// One packet of a compound RTCP datagram.
#[derive(Clone, Copy, Debug)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport<'a>),
    ReceiverReport(ReceiverReport<'a>),
    /// Source descriptions (CNAME...): not needed by the engine, skipped.
    SourceDescription {
        chunk_count: u8,
    },
    Bye(Bye<'a>),
    ExtendedReport(ExtendedReport<'a>),
    /// APP, feedback (RTPFB/PSFB) and unknown types, skipped by length.
    Other {
        packet_type: u8,
        count: u8,
        body: &'a [u8],
    },
}

/// Walks the packets of a compound RTCP datagram.
pub fn walk(buf: &[u8]) -> RtcpWalker<'_> {
    RtcpWalker { rest: buf }
}

/// Iterator over a compound packet; yields an error once, then stops.
#[derive(Clone, Debug)]
pub struct RtcpWalker<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RtcpWalker<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let result = self.next_packet();
        if result.is_err() {
            self.rest = &[];
        }
        Some(result)
    }
}

impl<'a> RtcpWalker<'a> {
    fn next_packet(&mut self) -> Result<RtcpPacket<'a>, RtcpError> {
        let header = self
            .rest
            .first_chunk::<HEADER_LEN>()
            .ok_or(RtcpError::TooShort)?;
        if header[0] >> 6 != 2 {
            return Err(RtcpError::BadVersion);
        }
        let padding = header[0] & 0x20 != 0;
        let count = header[0] & 0x1f;
        let packet_type = header[1];
        let len = 4 * (usize::from(be16(&header[2..4])) + 1);
        let packet = self.rest.get(..len).ok_or(RtcpError::LengthOverrun)?;
        self.rest = &self.rest[len..];
        let mut body = &packet[HEADER_LEN..];
        if padding {
            // Only the last packet of a compound may pad; its last byte is the count.
            let pad = usize::from(*body.last().ok_or(RtcpError::BadPadding)?);
            if pad == 0 || pad > body.len() {
                return Err(RtcpError::BadPadding);
            }
            body = &body[..body.len() - pad];
        }
        match packet_type {
            PT_SR => {
                let fixed = body.first_chunk::<24>().ok_or(RtcpError::CountOverrun)?;
                let reports = report_blocks(&body[24..], count)?;
                Ok(RtcpPacket::SenderReport(SenderReport {
                    ssrc: be32(&fixed[0..4]),
                    ntp: (u64::from(be32(&fixed[4..8])) << 32) | u64::from(be32(&fixed[8..12])),
                    rtp_timestamp: be32(&fixed[12..16]),
                    packet_count: be32(&fixed[16..20]),
                    octet_count: be32(&fixed[20..24]),
                    reports,
                }))
            }
            PT_RR => {
                let fixed = body.first_chunk::<4>().ok_or(RtcpError::CountOverrun)?;
                let reports = report_blocks(&body[4..], count)?;
                Ok(RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: be32(fixed),
                    reports,
                }))
            }
            PT_SDES => Ok(RtcpPacket::SourceDescription { chunk_count: count }),
            PT_BYE => {
                let n = 4 * usize::from(count);
                let ssrcs = body.get(..n).ok_or(RtcpError::CountOverrun)?;
                let reason = match body.get(n) {
                    Some(&text_len) => Some(
                        body.get(n + 1..n + 1 + usize::from(text_len))
                            .ok_or(RtcpError::CountOverrun)?,
                    ),
                    None => None,
                };
                Ok(RtcpPacket::Bye(Bye { ssrcs, reason }))
            }
            PT_XR => {
                let fixed = body.first_chunk::<4>().ok_or(RtcpError::CountOverrun)?;
                Ok(RtcpPacket::ExtendedReport(ExtendedReport {
                    ssrc: be32(fixed),
                    blocks: XrBlocks { rest: &body[4..] },
                }))
            }
            _ => Ok(RtcpPacket::Other {
                packet_type,
                count,
                body,
            }),
        }
    }
}

fn report_blocks(rest: &[u8], count: u8) -> Result<ReportBlocks<'_>, RtcpError> {
    let n = REPORT_BLOCK_LEN * usize::from(count);
    // Profile-specific extensions may follow the blocks (RFC 3550 §6.4.1); ignore them.
    let blocks = rest.get(..n).ok_or(RtcpError::CountOverrun)?;
    Ok(ReportBlocks { rest: blocks })
}

fn be16(b: &[u8]) -> u16 {
    match b {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

fn be32(b: &[u8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr_with_one_block(lost: [u8; 3]) -> Vec<u8> {
        let mut p = vec![0x81, PT_RR, 0, 7, 0xaa, 0xbb, 0xcc, 0xdd];
        p.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]); // SSRC_1
        p.push(64); // fraction lost 64/256 = 25 %
        p.extend_from_slice(&lost);
        p.extend_from_slice(&[0, 1, 0x00, 0x10]); // ext highest seq: 1 cycle, seq 16
        p.extend_from_slice(&[0, 0, 0, 80]); // jitter 80 ts units
        p.extend_from_slice(&[0x12, 0x34, 0x56, 0x78]); // LSR
        p.extend_from_slice(&[0, 1, 0, 0]); // DLSR 1 s
        p
    }

    fn sdes_cname() -> Vec<u8> {
        // SDES, 1 chunk: SSRC, CNAME "ab", end, padded to a word.
        vec![
            0x81, PT_SDES, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd, 1, 2, b'a', b'b',
        ]
    }

    #[test]
    fn walks_rr_sdes_bye_compound() {
        let mut p = rr_with_one_block([0, 0, 5]);
        p.extend(sdes_cname());
        p.extend_from_slice(&[0x81, PT_BYE, 0, 2, 0xaa, 0xbb, 0xcc, 0xdd, 2, b'o', b'k', 0]);
        let packets: Vec<_> = walk(&p).collect();
        assert_eq!(packets.len(), 3);
        let Ok(RtcpPacket::ReceiverReport(rr)) = packets[0] else {
            panic!("not an RR: {:?}", packets[0]);
        };
        assert_eq!(rr.ssrc, 0xaabb_ccdd);
        let blocks: Vec<_> = rr.reports.collect();
        assert_eq!(blocks.len(), 1);
        let b = blocks[0];
        assert_eq!(b.ssrc, 0x1122_3344);
        assert_eq!(b.fraction_lost, 64);
        assert!((b.fraction_lost_pct() - 25.0).abs() < 1e-9);
        assert_eq!(b.cumulative_lost, 5);
        assert_eq!(b.highest_seq, 0x0001_0010);
        assert_eq!(b.jitter, 80);
        assert_eq!(b.lsr, 0x1234_5678);
        assert_eq!(b.dlsr, 0x0001_0000);
        // Arrived 1.5 s after the SR: RTT = 1.5 s - 1 s DLSR = 0.5 s = 32768/65536.
        assert_eq!(b.round_trip(0x1234_5678 + 0x0001_8000), Some(0x8000));
        assert_eq!(b.round_trip(0x1234_5678), None);
        assert!(matches!(
            packets[1],
            Ok(RtcpPacket::SourceDescription { chunk_count: 1 })
        ));
        let Ok(RtcpPacket::Bye(bye)) = packets[2] else {
            panic!("not a BYE");
        };
        assert_eq!(bye.ssrcs().collect::<Vec<_>>(), vec![0xaabb_ccdd]);
        assert_eq!(bye.reason, Some(&b"ok"[..]));
    }

    #[test]
    fn cumulative_lost_is_24_bit_signed() {
        let p = rr_with_one_block([0xff, 0xff, 0xfe]);
        let Some(Ok(RtcpPacket::ReceiverReport(mut rr))) = walk(&p).next() else {
            panic!("not an RR");
        };
        assert_eq!(rr.reports.next().unwrap().cumulative_lost, -2);
        let p = rr_with_one_block([0x7f, 0xff, 0xff]);
        let Some(Ok(RtcpPacket::ReceiverReport(mut rr))) = walk(&p).next() else {
            panic!("not an RR");
        };
        assert_eq!(rr.reports.next().unwrap().cumulative_lost, 0x7f_ffff);
    }

    #[test]
    fn reads_a_sender_report_without_blocks() {
        let mut p = vec![0x80, PT_SR, 0, 6, 0, 0, 0, 9];
        p.extend_from_slice(&[0xe8, 0, 0, 1, 0x80, 0, 0, 0]); // NTP
        p.extend_from_slice(&[0, 0, 1, 0]); // RTP ts 256
        p.extend_from_slice(&[0, 0, 0, 50, 0, 0, 0x1f, 0x40]); // 50 pkts, 8000 octets
        let Some(Ok(RtcpPacket::SenderReport(sr))) = walk(&p).next() else {
            panic!("not an SR");
        };
        assert_eq!(sr.ssrc, 9);
        assert_eq!(sr.ntp, 0xe800_0001_8000_0000);
        assert_eq!(sr.ntp_middle(), 0x0001_8000);
        assert_eq!(sr.rtp_timestamp, 256);
        assert_eq!(sr.packet_count, 50);
        assert_eq!(sr.octet_count, 8000);
        assert_eq!(sr.reports.count(), 0);
    }

    fn xr_voip_metrics() -> Vec<u8> {
        let mut p = vec![0x80, PT_XR, 0, 10, 0, 0, 0, 1]; // header + sender SSRC
        p.extend_from_slice(&[XR_BT_VOIP_METRICS, 0, 0, 8]);
        p.extend_from_slice(&[0, 0, 0, 2]); // source SSRC
        p.extend_from_slice(&[13, 3, 40, 2]); // loss 13/256, discard, burst, gap density
        p.extend_from_slice(&[0, 60, 0x01, 0xf4]); // burst 60 ms, gap 500 ms
        p.extend_from_slice(&[0, 80, 0, 45]); // RTT 80 ms, end system 45 ms
        p.extend_from_slice(&[0xec, 0xb0, 127, 16]); // signal -20 dBm, noise -80 dBm
        p.extend_from_slice(&[88, 127, 41, 40]); // R 88, ext R n/a, MOS-LQ 4.1, CQ 4.0
        p.extend_from_slice(&[0x10, 0, 0, 40]); // rx config, JB nominal 40
        p.extend_from_slice(&[0, 80, 0, 200]); // JB max 80, abs max 200
        p
    }

    #[test]
    fn reads_xr_voip_metrics() {
        let p = xr_voip_metrics();
        let Some(Ok(RtcpPacket::ExtendedReport(xr))) = walk(&p).next() else {
            panic!("not an XR");
        };
        assert_eq!(xr.ssrc, 1);
        let blocks: Vec<_> = xr.blocks.collect();
        assert_eq!(blocks.len(), 1);
        let Ok(XrBlock::VoipMetrics(m)) = blocks[0] else {
            panic!("not voip metrics");
        };
        assert_eq!(m.ssrc, 2);
        assert_eq!(m.loss_rate, 13);
        assert!((m.loss_pct() - 5.078125).abs() < 1e-9);
        assert_eq!(m.discard_rate, 3);
        assert_eq!((m.burst_density, m.gap_density), (40, 2));
        assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (60, 500));
        assert_eq!((m.round_trip_delay_ms, m.end_system_delay_ms), (80, 45));
        assert_eq!((m.signal_level, m.noise_level), (-20, -80));
        assert_eq!((m.rerl, m.gmin), (127, 16));
        assert_eq!(m.r_factor(), Some(88));
        assert_eq!(m.ext_r_factor, XR_UNAVAILABLE);
        assert_eq!(m.mos_lq(), Some(4.1));
        assert_eq!(m.mos_cq(), Some(4.0));
        assert_eq!(m.rx_config, 0x10);
        assert_eq!(
            (m.jb_nominal_ms, m.jb_maximum_ms, m.jb_abs_max_ms),
            (40, 80, 200)
        );
    }

    #[test]
    fn skips_unknown_xr_blocks_and_flags_bad_ones() {
        let mut p = vec![0x80, PT_XR, 0, 3, 0, 0, 0, 1];
        p.extend_from_slice(&[4, 0, 0, 1, 1, 2, 3, 4]); // BT 4 (receiver ref time), 1 word
        let Some(Ok(RtcpPacket::ExtendedReport(xr))) = walk(&p).next() else {
            panic!("not an XR");
        };
        let blocks: Vec<_> = xr.blocks.collect();
        assert_eq!(
            blocks,
            vec![Ok(XrBlock::Other {
                block_type: 4,
                body: &[1, 2, 3, 4][..]
            })]
        );
        let mut bad = vec![0x80, PT_XR, 0, 3, 0, 0, 0, 1];
        bad.extend_from_slice(&[XR_BT_VOIP_METRICS, 0, 0, 1, 0, 0, 0, 0]);
        let Some(Ok(RtcpPacket::ExtendedReport(xr))) = walk(&bad).next() else {
            panic!("not an XR");
        };
        assert_eq!(
            xr.blocks.collect::<Vec<_>>(),
            vec![Err(RtcpError::XrBadVoipMetricsLength)]
        );
        let mut over = vec![0x80, PT_XR, 0, 2, 0, 0, 0, 1];
        over.extend_from_slice(&[4, 0, 0, 9]);
        let Some(Ok(RtcpPacket::ExtendedReport(xr))) = walk(&over).next() else {
            panic!("not an XR");
        };
        assert_eq!(
            xr.blocks.collect::<Vec<_>>(),
            vec![Err(RtcpError::XrBlockOverrun)]
        );
    }

    #[test]
    fn malformed_compounds_end_with_one_error() {
        let rr = rr_with_one_block([0, 0, 1]);
        // Length field larger than the datagram.
        let mut long = rr.clone();
        long[3] = 9;
        assert_eq!(walk(&long).collect::<Vec<_>>().len(), 1);
        assert!(matches!(
            walk(&long).next(),
            Some(Err(RtcpError::LengthOverrun))
        ));
        // Report count larger than the packet.
        let mut count = rr.clone();
        count[0] = 0x82;
        assert!(matches!(
            walk(&count).next(),
            Some(Err(RtcpError::CountOverrun))
        ));
        // Version 1.
        let mut v1 = rr.clone();
        v1[0] = 0x41;
        assert!(matches!(walk(&v1).next(), Some(Err(RtcpError::BadVersion))));
        // A good packet followed by 3 stray bytes: one packet, then an error.
        let mut tail = rr.clone();
        tail.extend_from_slice(&[0x80, 201, 0]);
        let items: Vec<_> = walk(&tail).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(RtcpError::TooShort)));
        // Padding larger than the body.
        let pad = [0xa0, PT_RR, 0, 1, 0, 0, 0, 9];
        assert!(matches!(
            walk(&pad).next(),
            Some(Err(RtcpError::BadPadding))
        ));
        // BYE whose reason length runs past the packet.
        let bye = [0x81, PT_BYE, 0, 2, 0, 0, 0, 1, 9, b'x', 0, 0];
        assert!(matches!(
            walk(&bye).next(),
            Some(Err(RtcpError::CountOverrun))
        ));
    }

    #[test]
    fn no_truncation_or_byte_flip_panics() {
        let mut p = rr_with_one_block([0, 0, 1]);
        p.extend(sdes_cname());
        p.extend(xr_voip_metrics());
        for n in 0..=p.len() {
            for item in walk(&p[..n]) {
                if let Ok(RtcpPacket::ExtendedReport(xr)) = item {
                    xr.blocks.for_each(drop);
                }
            }
        }
        for i in 0..p.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut q = p.clone();
                q[i] = v;
                for item in walk(&q) {
                    match item {
                        Ok(RtcpPacket::ExtendedReport(xr)) => xr.blocks.for_each(drop),
                        Ok(RtcpPacket::ReceiverReport(rr)) => rr.reports.for_each(drop),
                        Ok(RtcpPacket::Bye(b)) => b.ssrcs().for_each(drop),
                        _ => {}
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160)) {
            let mut errors = 0;
            for item in walk(&bytes) {
                match item {
                    Ok(RtcpPacket::ExtendedReport(xr)) => xr.blocks.for_each(drop),
                    Ok(RtcpPacket::ReceiverReport(rr)) => rr.reports.for_each(drop),
                    Ok(RtcpPacket::SenderReport(sr)) => sr.reports.for_each(drop),
                    Ok(RtcpPacket::Bye(b)) => b.ssrcs().for_each(drop),
                    Ok(_) => {}
                    Err(_) => errors += 1,
                }
            }
            proptest::prop_assert!(errors <= 1);
        }
    }
}
