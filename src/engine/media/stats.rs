//! Per-stream RTP statistics that reproduce Wireshark 4.0's `tshark -z rtp,streams`.
//!
//! One [`RtpStreamStats`] per stream (source and destination address and port plus
//! SSRC; the caller keys and caps the table). It is fed each RTP header of the stream
//! with its capture time, in capture order, and keeps O(1) state: no allocation per
//! packet, no clock, no I/O. [`RtpStreamStats::figures`] returns packets, expected,
//! lost, loss %, delta and jitter figures equal to what Wireshark 4.0 prints for the
//! same packets; `docs/media-quality.md` gives each formula and where Wireshark departs
//! from RFC 3550 (we follow Wireshark: the specification requires the same numbers).
//!
//! The algorithm is Wireshark 4.0's `rtppacket_analyse` (`ui/tap-rtp-analysis.c`) and
//! `rtpstream_info_calculate` (`ui/tap-rtp-common.c`), restated:
//!
//! - a packet is *in time* when its RTP timestamp is not more than 2^31 before the
//!   stream's first timestamp (modulo 2^32); only in-time packets move the reference
//!   time and take part in sequence-wrap counting;
//! - `expected = last_seq + 65536 * cycles - first_seq + 1` in 32-bit unsigned
//!   arithmetic, with the *first* and *last seen* sequence numbers (not min and max);
//!   `lost = expected - packets` (signed: duplicates make it smaller);
//! - jitter in ms with the RFC 3550 filter `J += (|D| - J) / 16`, where `D` compares the
//!   arrival gap with the timestamp gap to the previous in-time packet, converted at
//!   `clock_rate / 1000` (integer division) ticks per ms;
//! - min/mean/max delta and jitter only over "regular" packets: not the first, no marker
//!   bit, not comfort noise nor following comfort noise, in time; the means divide by
//!   the number of packets seen before, regular or not.

use super::codec::PayloadMap;
use crate::time::CaptureTime;
use crate::wire::rtp::RtpHeader;

/// RTP timestamps more than this far behind the first one are "in the past"
/// (Wireshark 4.0: half the 32-bit timestamp space).
const HALF_TS_SPACE: u32 = 0x8000_0000;

/// Comfort noise payload types (RFC 3389, and the pre-RFC 3551 number 19).
fn is_comfort_noise(pt: u8) -> bool {
    pt == 13 || pt == 19
}

/// The exact reciprocal of `per_ms` ticks per ms when it is a power of two (8 for
/// 8 kHz, 16 for 16 kHz: most clocks), else 0. `ticks * exact_reciprocal(per_ms)` is
/// then bit for bit `ticks / per_ms` (Wireshark's division) without the division's
/// latency.
fn exact_reciprocal(per_ms: u32) -> f64 {
    if per_ms.is_power_of_two() && per_ms.trailing_zeros() < 1023 {
        // 2^-k: the exponent field of 1.0 lowered by k.
        f64::from_bits(1.0f64.to_bits() - (u64::from(per_ms.trailing_zeros()) << 52))
    } else {
        0.0
    }
}

/// `ticks / per_ms` in f64, as Wireshark divides; `reciprocal` is
/// [`exact_reciprocal`]`(per_ms)`. `per_ms` is above 0 (clocks below 1000 Hz never
/// get here).
fn ticks_to_ms(ticks: u32, per_ms: u32, reciprocal: f64) -> f64 {
    if reciprocal != 0.0 {
        f64::from(ticks) * reciprocal
    } else {
        f64::from(ticks) / f64::from(per_ms)
    }
}

/// The figures of one stream, as Wireshark 4.0's `-z rtp,streams` prints them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamFigures {
    /// Every packet of the stream, duplicates included (Wireshark "Pkts").
    pub packets: u64,
    /// Packets the sequence numbers say were sent (Wireshark's rule, see module doc).
    pub expected: i64,
    /// `expected - packets`; negative when duplicates outnumber losses.
    pub lost: i64,
    /// `lost * 100 / expected`, 0 when nothing was expected.
    pub loss_pct: f64,
    /// Smallest gap between consecutive regular packets; `None` before any.
    pub min_delta_ms: Option<f64>,
    pub mean_delta_ms: f64,
    /// Largest gap before a regular packet (silence before a marker packet excluded).
    pub max_delta_ms: f64,
    pub min_jitter_ms: Option<f64>,
    /// Wireshark's "Mean Jitter": mean of the running jitter estimate.
    pub mean_jitter_ms: f64,
    pub max_jitter_ms: f64,
    pub first_at: Option<CaptureTime>,
    pub last_at: Option<CaptureTime>,
    /// The stream's codec payload type: the first one that is neither comfort noise
    /// nor a named event, else the first one seen.
    pub payload_type: Option<u8>,
    /// The last non-zero clock rate used for jitter (0: jitter never computed).
    pub clock_rate: u32,
    /// Packets out of sequence: gaps, late packets and duplicates (Wireshark's
    /// `sequence` counter).
    pub sequence_errors: u32,
    /// Wireshark's "Problems?" column: any wrong sequence or timestamp.
    pub problems: bool,
}

/// Running statistics of one RTP stream. About 150 bytes plus the payload map.
#[derive(Clone, Debug)]
pub struct RtpStreamStats {
    payloads: PayloadMap,
    /// Packets seen (Wireshark `total_nr`).
    packets: u64,
    first_at: CaptureTime,
    last_at: CaptureTime,
    first_seq: u16,
    last_seq: u16,
    seq_cycles: u32,
    /// Set after a wrap was counted, cleared once the sequence passes `first_seq` again.
    under: bool,
    /// Last sequence number accepted as in order (Wireshark `seq_num`).
    in_order_seq: u16,
    sequence_errors: u32,
    first_ts: u32,
    /// Arrival (ms since `first_at`) of the last in-time packet (Wireshark `time`).
    ref_time_ms: f64,
    /// Timestamp of the last jitter-clocked packet, in ms since the first timestamp.
    last_nominal_ms: f64,
    jitter_ms: f64,
    delta_ms: f64,
    /// Valid when `has_min_delta` (an `Option<f64>` is 16 bytes; the flag fits in
    /// padding).
    min_delta_ms: f64,
    has_min_delta: bool,
    mean_delta_ms: f64,
    max_delta_ms: f64,
    /// Valid when `has_min_jitter`.
    min_jitter_ms: f64,
    has_min_jitter: bool,
    mean_jitter_ms: f64,
    max_jitter_ms: f64,
    /// Payload type of the previous packet.
    prev_pt: u8,
    first_pt: u8,
    codec_pt: Option<u8>,
    clock_rate: u32,
    /// The payload type whose analysis clock was looked up last (0xff: none; types are
    /// 7-bit), that clock, and [`exact_reciprocal`] of its ticks per ms: a stream keeps
    /// one type, and the payload map never changes.
    clock_pt: u8,
    pt_clock: u32,
    ms_per_tick: f64,
    problems: bool,
}

impl RtpStreamStats {
    /// Statistics for a stream whose dynamic payload types run at `clock_rate`. Static
    /// types (below 96) always use the RFC 3551 clock, as Wireshark does: a sender
    /// stepping its timestamps at another rate shows as jitter. Use
    /// [`RtpStreamStats::with_payloads`] when SDP named telephone-event or several
    /// dynamic types.
    pub fn new(clock_rate: u32) -> Self {
        Self::with_payloads(PayloadMap::with_fallback_clock(clock_rate))
    }

    /// Statistics for a stream whose payload types are described by `payloads`.
    pub fn with_payloads(payloads: PayloadMap) -> Self {
        RtpStreamStats {
            payloads,
            packets: 0,
            first_at: CaptureTime(0),
            last_at: CaptureTime(0),
            first_seq: 0,
            last_seq: 0,
            seq_cycles: 0,
            under: false,
            in_order_seq: 0,
            sequence_errors: 0,
            first_ts: 0,
            ref_time_ms: 0.0,
            last_nominal_ms: 0.0,
            jitter_ms: 0.0,
            delta_ms: 0.0,
            min_delta_ms: 0.0,
            has_min_delta: false,
            mean_delta_ms: 0.0,
            max_delta_ms: 0.0,
            min_jitter_ms: 0.0,
            has_min_jitter: false,
            mean_jitter_ms: 0.0,
            max_jitter_ms: 0.0,
            prev_pt: 0,
            first_pt: 0,
            codec_pt: None,
            clock_rate: 0,
            clock_pt: 0xff,
            pt_clock: 0,
            ms_per_tick: 0.0,
            problems: false,
        }
    }

    /// The payload map this stream resolves clocks with.
    pub fn payloads(&self) -> &PayloadMap {
        &self.payloads
    }

    /// Packets seen so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Capture time of the last packet, if any.
    pub fn last_at(&self) -> Option<CaptureTime> {
        (self.packets > 0).then_some(self.last_at)
    }

    /// Accounts one packet of this stream, captured at `at`. Packets must come in
    /// capture order; a capture time earlier than the previous one (a merged, unsorted
    /// file) gives a negative delta, exactly as in Wireshark.
    pub fn on_packet(&mut self, at: CaptureTime, hdr: &RtpHeader) {
        let pt = hdr.payload_type;
        let seq = hdr.sequence;
        let ts = hdr.timestamp;
        if self.codec_pt.is_none() && !self.is_auxiliary(pt) {
            self.codec_pt = Some(pt);
        }
        if self.packets == 0 {
            self.packets = 1;
            self.first_at = at;
            self.last_at = at;
            self.first_seq = seq;
            self.last_seq = seq;
            self.in_order_seq = seq;
            self.first_ts = ts;
            self.prev_pt = pt;
            self.first_pt = pt;
            return;
        }
        self.last_at = at;
        let now_ms = (at - self.first_at).as_millis_f64();

        // In time: not more than half the timestamp space behind the first timestamp.
        let since_first = ts.wrapping_sub(self.first_ts);
        let in_time = if ts >= self.first_ts {
            since_first < HALF_TS_SPACE
        } else {
            since_first <= HALF_TS_SPACE
        };

        // Sequence cycles, counted Wireshark 4.0's way: the first time a sequence number
        // below the first one shows up (or 0 right after 65535) starts a new cycle.
        if in_time && !self.under && (seq < self.first_seq || (seq == 0 && self.last_seq == 65535))
        {
            self.seq_cycles = self.seq_cycles.wrapping_add(1);
            self.under = true;
        } else if in_time && self.under && seq > self.first_seq {
            self.under = false;
        }

        // Sequence errors (drive only the "problems" flag).
        let prev = i32::from(self.in_order_seq);
        let cur = i32::from(seq);
        let mut wrong_seq = false;
        if in_time && (prev + 1 == cur || (prev == 65535 && cur == 0)) {
            self.in_order_seq = seq;
        } else if in_time && (prev + 1 < cur || prev - cur > 0xff00) {
            self.in_order_seq = seq;
            wrong_seq = true;
        } else if prev + 1 > cur {
            wrong_seq = true;
        }
        if wrong_seq {
            self.sequence_errors = self.sequence_errors.saturating_add(1);
        }

        let comfort_noise = is_comfort_noise(pt);
        let follows_comfort_noise = is_comfort_noise(self.prev_pt);
        self.prev_pt = pt;

        if pt != self.clock_pt {
            self.clock_pt = pt;
            self.pt_clock = self.payloads.analysis_clock(pt);
            self.ms_per_tick = exact_reciprocal(self.pt_clock / 1000);
        }
        let clock = self.pt_clock;
        let mut jitter_now = 0.0;
        if in_time {
            if clock != 0 {
                self.clock_rate = clock;
                let nominal_ms = ticks_to_ms(since_first, clock / 1000, self.ms_per_tick);
                let expected_ms = self.ref_time_ms + (nominal_ms - self.last_nominal_ms);
                let diff = (now_ms - expected_ms).abs();
                jitter_now = (15.0 * self.jitter_ms + diff) / 16.0;
                self.jitter_ms = jitter_now;
                self.last_nominal_ms = nominal_ms;
            }
            self.delta_ms = now_ms - self.ref_time_ms;
        }

        let regular = in_time && !hdr.marker && !comfort_noise && !follows_comfort_noise;
        if regular {
            // Means divide by the packets seen before this one, regular or not.
            let n = self.packets as f64;
            self.max_delta_ms = self.max_delta_ms.max(self.delta_ms);
            self.min_delta_ms = if self.has_min_delta {
                self.min_delta_ms.min(self.delta_ms)
            } else {
                self.delta_ms
            };
            self.has_min_delta = true;
            self.mean_delta_ms = (self.mean_delta_ms * (n - 1.0) + self.delta_ms) / n;
            if clock != 0 {
                self.max_jitter_ms = self.max_jitter_ms.max(self.jitter_ms);
                self.min_jitter_ms = if self.has_min_jitter {
                    self.min_jitter_ms.min(self.jitter_ms)
                } else {
                    self.jitter_ms
                };
                self.has_min_jitter = true;
                self.mean_jitter_ms = (self.mean_jitter_ms * (n - 1.0) + jitter_now) / n;
            }
        }

        if wrong_seq || !in_time {
            self.problems = true;
        }
        if in_time {
            self.ref_time_ms = now_ms;
        }
        self.last_seq = seq;
        self.packets += 1;
    }

    fn is_auxiliary(&self, pt: u8) -> bool {
        self.payloads
            .resolve(pt)
            .is_some_and(|info| info.codec.is_auxiliary())
    }

    /// The figures so far. Cheap: call it whenever a report is due.
    pub fn figures(&self) -> StreamFigures {
        if self.packets == 0 {
            return StreamFigures {
                packets: 0,
                expected: 0,
                lost: 0,
                loss_pct: 0.0,
                min_delta_ms: None,
                mean_delta_ms: 0.0,
                max_delta_ms: 0.0,
                min_jitter_ms: None,
                mean_jitter_ms: 0.0,
                max_jitter_ms: 0.0,
                first_at: None,
                last_at: None,
                payload_type: None,
                clock_rate: 0,
                sequence_errors: 0,
                problems: false,
            };
        }
        // Wireshark computes these in 32-bit unsigned (expected) and signed (lost)
        // integers; reproduce the wrap so that even a pathological stream (its last
        // packet a late one from before the first) prints the same numbers.
        let expected = u32::from(self.last_seq)
            .wrapping_add(self.seq_cycles.wrapping_mul(0x1_0000))
            .wrapping_sub(u32::from(self.first_seq))
            .wrapping_add(1);
        let lost = expected.wrapping_sub(self.packets as u32) as i32;
        let loss_pct = if expected == 0 {
            0.0
        } else {
            f64::from(lost.wrapping_mul(100)) / f64::from(expected)
        };
        StreamFigures {
            packets: self.packets,
            expected: i64::from(expected),
            lost: i64::from(lost),
            loss_pct,
            min_delta_ms: self.has_min_delta.then_some(self.min_delta_ms),
            mean_delta_ms: self.mean_delta_ms,
            max_delta_ms: self.max_delta_ms,
            min_jitter_ms: self.has_min_jitter.then_some(self.min_jitter_ms),
            mean_jitter_ms: self.mean_jitter_ms,
            max_jitter_ms: self.max_jitter_ms,
            first_at: Some(self.first_at),
            last_at: Some(self.last_at),
            payload_type: Some(self.codec_pt.unwrap_or(self.first_pt)),
            clock_rate: self.clock_rate,
            sequence_errors: self.sequence_errors,
            problems: self.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(seq: u16, ts: u32, pt: u8, marker: bool) -> RtpHeader {
        RtpHeader {
            version: 2,
            padding: false,
            extension: false,
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 0xaaaa_0001,
            csrc_count: 0,
            payload_len: 160,
            payload_offset: 12,
        }
    }

    /// Feeds `(arrival µs, seq, ts, pt, marker)` in order.
    fn run(stats: &mut RtpStreamStats, packets: &[(i64, u16, u32, u8, bool)]) -> StreamFigures {
        for &(at, seq, ts, pt, m) in packets {
            stats.on_packet(CaptureTime(at), &hdr(seq, ts, pt, m));
        }
        stats.figures()
    }

    /// A steady PCMU stream: `n` packets from `seq0`, 20 ms and 160 ticks apart.
    fn steady(n: u32, seq0: u16) -> Vec<(i64, u16, u32, u8, bool)> {
        (0..n)
            .map(|i| {
                (
                    i64::from(i) * 20_000,
                    seq0.wrapping_add(i as u16),
                    160 * i,
                    0,
                    i == 0,
                )
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 0.0005
    }

    #[test]
    fn ticks_to_ms_is_the_division_bit_for_bit() {
        for per_ms in [1, 2, 8, 16, 32, 44, 48, 90, 1 << 20] {
            for ticks in [
                0,
                1,
                7,
                160,
                161,
                12_345,
                0x7fff_ffff,
                0x8000_0001,
                u32::MAX,
            ] {
                let want = f64::from(ticks) / f64::from(per_ms);
                let got = ticks_to_ms(ticks, per_ms, exact_reciprocal(per_ms));
                assert_eq!(got.to_bits(), want.to_bits());
            }
        }
    }

    #[test]
    fn steady_stream_has_no_loss_and_no_jitter() {
        let f = run(&mut RtpStreamStats::new(8000), &steady(100, 1000));
        assert_eq!((f.packets, f.expected, f.lost), (100, 100, 0));
        assert_eq!(f.loss_pct, 0.0);
        assert!(close(f.max_delta_ms, 20.0) && close(f.mean_delta_ms, 20.0));
        assert_eq!(f.min_delta_ms, Some(20.0));
        assert_eq!((f.max_jitter_ms, f.mean_jitter_ms), (0.0, 0.0));
        assert_eq!(f.payload_type, Some(0));
        assert_eq!(f.clock_rate, 8000);
        assert!(!f.problems);
        assert_eq!(f.first_at, Some(CaptureTime(0)));
        assert_eq!(f.last_at, Some(CaptureTime(99 * 20_000)));
    }

    #[test]
    fn sequence_wrap_at_65535_is_not_loss() {
        let f = run(&mut RtpStreamStats::new(8000), &steady(100, 65_500));
        assert_eq!((f.packets, f.expected, f.lost), (100, 100, 0));
        assert!(!f.problems);
        // Two wraps: 65500 + 140000 packets crosses 0 twice.
        let f = run(&mut RtpStreamStats::new(8000), &steady(140_000, 65_500));
        assert_eq!((f.packets, f.expected, f.lost), (140_000, 140_000, 0));
    }

    #[test]
    fn wrap_from_a_stream_starting_at_zero() {
        // Start at 0: no sequence number is ever below the first, so the wrap is caught
        // by the "0 right after 65535" rule.
        let f = run(&mut RtpStreamStats::new(8000), &steady(65_540, 0));
        assert_eq!((f.packets, f.expected, f.lost), (65_540, 65_540, 0));
    }

    #[test]
    fn duplicates_make_lost_negative() {
        let mut p = steady(50, 10);
        let dup = p[20];
        p.insert(21, (dup.0 + 1000, dup.1, dup.2, 0, false));
        p.insert(30, (p[29].0 + 1000, p[29].1, p[29].2, 0, false));
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.expected, f.lost), (52, 50, -2));
        assert!(close(f.loss_pct, -4.0));
        assert_eq!(f.min_delta_ms, Some(1.0));
        assert!(f.problems);
        assert_eq!(f.sequence_errors, 2);
    }

    #[test]
    fn loss_counts_and_the_gap_is_the_max_delta() {
        let mut p = steady(100, 500);
        p.retain(|&(_, seq, ..)| !(540..545).contains(&seq));
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.expected, f.lost), (95, 100, 5));
        assert!(close(f.loss_pct, 5.0));
        assert!(close(f.max_delta_ms, 120.0));
        // A hole in arrivals matched by a hole in timestamps is not jitter.
        assert_eq!(f.max_jitter_ms, 0.0);
        assert_eq!(f.sequence_errors, 1);
    }

    #[test]
    fn reordered_pair_counts_once_each_and_flags_problems() {
        let mut p = steady(40, 7);
        let (a, b) = (p[10], p[11]);
        p[10] = (a.0, b.1, b.2, 0, false);
        p[11] = (b.0, a.1, a.2, 0, false);
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.expected, f.lost), (40, 40, 0));
        assert!(f.problems);
        // Seq 11 arrives first, 20 ms early by its timestamp: |D| = 20, J = 1.25 ms.
        // Seq 10 next: its timestamp is 20 ms *before* seq 11's, yet it arrives 20 ms
        // later: |D| = 40, J = (15*1.25 + 40)/16 = 3.671875. Seq 12 is 40 ms of
        // timestamp after seq 10 but arrives 20 ms after it: |D| = 20,
        // J = (15*3.671875 + 20)/16 = 4.692383.
        assert!(close(f.max_jitter_ms, 4.692383), "{}", f.max_jitter_ms);
    }

    #[test]
    fn last_packet_late_changes_expected_as_in_wireshark_4_0() {
        // 4.0 uses the last packet *seen*, not the highest: a late final packet lowers
        // expected and the same capture shows 1 "lost" that RFC 3550 would not.
        let mut p = steady(20, 100);
        let last = p.remove(18);
        p.push((p[18].0 + 5000, last.1, last.2, 0, false));
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.expected, f.lost), (20, 19, -1));
    }

    #[test]
    fn marker_after_silence_is_excluded_from_max_delta() {
        // 50 packets, then 2 s of silence suppression: timestamps jump with the gap,
        // and the first packet of the new talk spurt has the marker bit.
        let mut p = steady(50, 1);
        for i in 0..50u32 {
            let at = 1_000_000 + 2_000_000 + i64::from(i) * 20_000;
            let ts = 160 * (50 + 100 + i);
            p.push((at, 51 + i as u16, ts, 0, i == 0));
        }
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.expected, f.lost), (100, 100, 0));
        assert!(close(f.max_delta_ms, 20.0), "{}", f.max_delta_ms);
        assert!(f.max_jitter_ms < 0.001);
        // The same gap without the marker bit is a 2020 ms delta.
        let mut q = p.clone();
        q[50].4 = false;
        let g = run(&mut RtpStreamStats::new(8000), &q);
        assert!(close(g.max_delta_ms, 2020.0));
    }

    #[test]
    fn clock_rate_mismatch_shows_as_20_ms_jitter() {
        // PT 0 is 8000 Hz, but the sender steps 320 per 20 ms (a 16 kHz clock):
        // every packet is expected 40 ms after the previous one and arrives after 20,
        // so |D| = 20 ms and J converges on 20 ms (standards.md §6.6: mean 19.8).
        let p: Vec<_> = (0..1500u32)
            .map(|i| (i64::from(i) * 20_000, i as u16, 320 * i, 0, i == 0))
            .collect();
        let f = run(&mut RtpStreamStats::new(16000), &p);
        assert!(f.max_jitter_ms > 19.99 && f.max_jitter_ms <= 20.0);
        assert!(f.mean_jitter_ms > 19.5 && f.mean_jitter_ms < 20.0);
        // The same stream on a dynamic type declared at 16000 Hz is clean.
        let mut map = PayloadMap::new();
        map.insert_rtpmap(96, "L16", 16000);
        let q: Vec<_> = p.iter().map(|&(a, s, t, _, m)| (a, s, t, 96, m)).collect();
        let g = run(&mut RtpStreamStats::with_payloads(map), &q);
        assert_eq!(g.max_jitter_ms, 0.0);
    }

    #[test]
    fn telephone_event_packets_skip_jitter_but_count() {
        let mut map = PayloadMap::new();
        map.insert_rtpmap(101, "telephone-event", 8000);
        let mut p = steady(20, 1);
        // A 140 ms DTMF digit: 5 event packets + 2 repeated end packets, all with the
        // event's start timestamp (RFC 4733 §2.5.1.2).
        let ts0 = 160 * 20;
        for k in 0..7u32 {
            p.push((
                400_000 + i64::from(k) * 20_000,
                21 + k as u16,
                ts0,
                101,
                k == 0,
            ));
        }
        let mut with_events = RtpStreamStats::with_payloads(map);
        let f = run(&mut with_events, &p);
        assert_eq!((f.packets, f.expected, f.lost), (27, 27, 0));
        assert_eq!(f.payload_type, Some(0));
        // Events carry no clock: their frozen timestamp is not jitter...
        assert_eq!(f.max_jitter_ms, 0.0);
        assert!(close(f.max_delta_ms, 20.0));
        // ...which it would be if 101 were taken for audio at 8000 Hz:
        // J = 20 (1 - (15/16)^6) = 6.42 ms after six frozen packets.
        let g = run(&mut RtpStreamStats::new(8000), &p);
        assert!(close(
            g.max_jitter_ms,
            20.0 * (1.0 - (15.0f64 / 16.0).powi(6))
        ));

        // Audio resumes where the event ended (ts0 + 7 * 160 at 540 ms). Wireshark 4.0
        // moved its reference *time* with the events but its reference *timestamp*
        // stayed on the last audio packet (380 ms): expected 520 + (540 - 380) = 680 ms,
        // arrived 540, |D| = 140, J = 140/16 = 8.75 ms. We reproduce that artefact.
        let resume: Vec<_> = (0..20u32)
            .map(|i| {
                (
                    540_000 + i64::from(i) * 20_000,
                    28 + i as u16,
                    ts0 + 160 * (7 + i),
                    0,
                    false,
                )
            })
            .collect();
        let f = run(&mut with_events, &resume);
        assert_eq!((f.packets, f.expected, f.lost), (47, 47, 0));
        assert!(close(f.max_jitter_ms, 8.75), "{}", f.max_jitter_ms);
    }

    #[test]
    fn comfort_noise_is_excluded_from_extremes() {
        let mut p = steady(20, 1);
        // One CN packet, then 400 ms of nothing, then audio again (no marker).
        p.push((400_000, 21, 160 * 20, 13, false));
        for i in 0..10u32 {
            let at = 800_000 + i64::from(i) * 20_000;
            p.push((at, 22 + i as u16, 160 * (40 + i), 0, false));
        }
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!((f.packets, f.lost), (31, 0));
        // The 400 ms gap follows a CN packet, so it is not a delta extreme.
        assert!(close(f.max_delta_ms, 20.0));
    }

    #[test]
    fn opus_runs_at_48_khz() {
        let mut map = PayloadMap::new();
        map.insert_rtpmap(111, "opus", 48000);
        let p: Vec<_> = (0..100u32)
            .map(|i| {
                (
                    i64::from(i) * 20_000 + if i == 50 { 4000 } else { 0 },
                    i as u16,
                    960 * i,
                    111,
                    false,
                )
            })
            .collect();
        let f = run(&mut RtpStreamStats::with_payloads(map), &p);
        assert_eq!(f.clock_rate, 48000);
        // 4 ms late: J = 4/16 = 0.25 ms, then 4 ms early: J = (15*0.25 + 4)/16 = 0.484375.
        assert!(close(f.max_jitter_ms, 0.484375));
    }

    #[test]
    fn rtp_timestamp_wrap_is_not_jitter() {
        let base = u32::MAX - 160 * 10;
        let p: Vec<_> = (0..40u32)
            .map(|i| {
                (
                    i64::from(i) * 20_000,
                    i as u16,
                    base.wrapping_add(160 * i),
                    8,
                    false,
                )
            })
            .collect();
        let f = run(&mut RtpStreamStats::new(8000), &p);
        assert_eq!(f.max_jitter_ms, 0.0);
        assert!(!f.problems);
    }

    #[test]
    fn packet_from_before_the_first_timestamp_is_out_of_time() {
        // The first two packets arrive swapped: the second one's timestamp is before
        // the first seen, so it neither moves the reference nor counts a wrap.
        let mut p = steady(30, 200);
        let (a, b) = (p[0], p[1]);
        p[0] = (a.0, b.1, b.2, 0, false);
        p[1] = (b.0, a.1, a.2, 0, true);
        let f = run(&mut RtpStreamStats::new(8000), &p);
        // Expected runs from the first seen (201) to the last (229): 29, with 30 packets.
        assert_eq!((f.packets, f.expected, f.lost), (30, 29, -1));
        assert!(f.problems);
    }

    #[test]
    fn state_is_small_and_fixed() {
        // O(1) per stream: no heap, a few hundred bytes including the payload map.
        assert!(std::mem::size_of::<RtpStreamStats>() <= 256);
    }

    #[test]
    fn empty_stream_has_zero_figures() {
        let f = RtpStreamStats::new(8000).figures();
        assert_eq!((f.packets, f.expected, f.lost), (0, 0, 0));
        assert_eq!(f.first_at, None);
        assert_eq!(f.payload_type, None);
    }

    /// standards.md §6.6: the golden case measured with tshark 4.0.17.
    #[test]
    fn golden_edge_case_matches_tshark_4_0_17() {
        let mut sched: Vec<(i64, u16, u32, u8, bool)> = Vec::new();
        let base = 100_000; // µs after the INVITE
        for i in 0..200u32 {
            let seq = (65_500 + i) as u16;
            if (65_510..=65_512).contains(&seq) {
                continue;
            }
            let mut at = base + i64::from(i) * 20_000;
            if seq == 50 {
                at += 30_000;
            }
            if seq >= 100 && 65_500 + i > 65_535 {
                at += 100_000;
            }
            sched.push((at, seq, 160 * i, 0, i == 0 || seq == 100));
        }
        let k = sched.iter().position(|s| s.1 == 20).unwrap();
        let (a, b) = (sched[k], sched[k + 1]);
        sched[k] = (a.0, b.1, b.2, 0, b.4);
        sched[k + 1] = (b.0, a.1, a.2, 0, a.4);
        let k = sched.iter().position(|s| s.1 == 5).unwrap();
        let d = sched[k];
        sched.insert(k + 1, (d.0 + 1000, d.1, d.2, 0, d.4));
        sched.sort_by_key(|s| s.0);

        let f = run(&mut RtpStreamStats::new(8000), &sched);
        assert_eq!((f.packets, f.expected, f.lost), (198, 200, 2));
        assert!(close(f.loss_pct, 1.0));
        assert!(close(f.min_delta_ms.unwrap(), 1.0));
        assert!(close(f.mean_delta_ms, 20.205), "{}", f.mean_delta_ms);
        assert!(close(f.max_delta_ms, 80.0));
        assert!(close(f.min_jitter_ms.unwrap(), 0.0));
        assert!(close(f.mean_jitter_ms, 1.193), "{}", f.mean_jitter_ms);
        assert!(close(f.max_jitter_ms, 6.042), "{}", f.max_jitter_ms);
        assert!(f.problems);
    }
}
