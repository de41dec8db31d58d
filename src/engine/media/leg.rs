//! The media of one agent leg: the RTP streams matched to it through its SDP, their
//! running statistics, and the one-way-audio tracker. The engine finds the leg of a
//! packet (by stream key, else by the SDP address it goes to or comes from) and hands
//! the parsed header here; figures and the media rules are read at the leg's end.

use std::net::{Ipv4Addr, SocketAddr};

use smallvec::SmallVec;

use super::codec::{CodecId, PayloadMap};
use super::mos::{estimate_mos, CodecImpairment};
use super::slots::Slots;
use super::stats::RtpStreamStats;
use crate::engine::leg::{MediaRecord, Party};
use crate::engine::record::OptTime;
use crate::time::CaptureTime;
use crate::wire::rtp::RtpHeader;

/// Streams one leg may carry (SSRC changes, re-INVITEs, early media); more are counted
/// by the engine and ignored.
pub const MAX_STREAMS: usize = 16;

/// A gap in one direction longer than this ends "both directions flowing".
const DIRECTION_SILENCE_US: i64 = 1_000_000;

struct Stream {
    ends: Ends,
    ssrc: u32,
    from: Party,
    stats: RtpStreamStats,
    /// Boxed: most streams never see an RTCP report about them.
    rtcp: Option<Box<RtcpFigures>>,
}

/// A stream's source and destination in 16 bytes (two `SocketAddr`s are 64): IPv4
/// inline, any other boxed.
enum Ends {
    V4 {
        src_ip: u32,
        dst_ip: u32,
        src_port: u16,
        dst_port: u16,
    },
    Other(Box<(SocketAddr, SocketAddr)>),
}

impl Ends {
    fn new(src: SocketAddr, dst: SocketAddr) -> Ends {
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Ends::V4 {
                src_ip: s.ip().to_bits(),
                dst_ip: d.ip().to_bits(),
                src_port: s.port(),
                dst_port: d.port(),
            },
            _ => Ends::Other(Box::new((src, dst))),
        }
    }

    fn get(&self) -> (SocketAddr, SocketAddr) {
        match self {
            Ends::V4 {
                src_ip,
                dst_ip,
                src_port,
                dst_port,
            } => (
                SocketAddr::new(Ipv4Addr::from_bits(*src_ip).into(), *src_port),
                SocketAddr::new(Ipv4Addr::from_bits(*dst_ip).into(), *dst_port),
            ),
            Ends::Other(e) => **e,
        }
    }
}

/// The far end's own view of a stream, from the RTCP receiver report blocks (RFC 3550
/// §6.4) and XR VoIP metrics (RFC 3611 §4.7) that name the stream's SSRC.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RtcpFigures {
    /// Report blocks about this stream.
    pub reports: u32,
    /// Fraction lost of the latest report, in %.
    pub fraction_lost_pct: f64,
    pub max_fraction_lost_pct: f64,
    /// Cumulative packets lost of the latest report (signed: duplicates).
    pub cumulative_lost: i32,
    /// Interarrival jitter of the latest report, in ms at the stream's clock.
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    /// From the latest XR VoIP metrics block, when the far end sends one.
    pub round_trip_ms: Option<u16>,
    pub mos_lq: Option<f64>,
    pub r_factor: Option<u8>,
}

/// Where a stream is in [`StreamStore`].
pub type StreamId = u32;

/// The streams of every leg, in one store apart from the legs' media state, so that
/// an RTP packet finds its stream from the stream table's entry alone (the leg's media
/// slot and the stream are read side by side, not one through the other). Slots are
/// reused ([`Slots`]).
#[derive(Default)]
pub struct StreamStore {
    streams: Slots<Stream>,
}

impl StreamStore {
    fn add(&mut self, s: Stream) -> StreamId {
        self.streams.add(s)
    }

    fn get(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(id)
    }

    fn get_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.streams.get_mut(id)
    }

    fn release(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(id) {
            // Drop what the stream holds now; the slot's bytes are reused.
            s.rtcp = None;
            self.streams.free(id);
        }
    }
}

/// The media state of one leg and the ids of its streams in the [`StreamStore`].
/// Kept in the engine's media slab ([`super::slab`]), not in the leg: an RTP packet
/// reads it straight from the stream table. Every method that reads or writes a
/// stream takes the store.
#[derive(Default)]
pub struct LegMedia {
    state: MediaState,
    /// Last RTP packet of either direction (media timeout).
    last_rtp_at: OptTime,
}

#[derive(Default)]
struct MediaState {
    /// Two inline: a leg usually has one stream per direction.
    streams: SmallVec<[StreamId; 2]>,
    payloads: PayloadMap,
    /// Times in one word each ([`OptTime`]): this is in every leg's media slot.
    last_from: [OptTime; 2],
    /// Start of the current period where only one direction flows.
    one_way_since: OptTime,
    /// First packet of each direction since the answer or the latest hold change.
    first_since_counting: [OptTime; 2],
    one_way_longest_us: i64,
}

fn slot(p: Party) -> usize {
    match p {
        Party::Agent => 0,
        Party::Customer => 1,
    }
}

impl LegMedia {
    /// Records the payload types an SDP of the leg named (`a=rtpmap`).
    pub fn note_rtpmap(&mut self, pt: u8, encoding: &str, clock_rate: u32) {
        let _ = self.state.payloads.insert_rtpmap(pt, encoding, clock_rate);
    }

    fn streams<'a>(&'a self, store: &'a StreamStore) -> impl Iterator<Item = &'a Stream> + 'a {
        self.state.streams.iter().filter_map(|&id| store.get(id))
    }

    /// Opens a new stream; None when the leg already has [`MAX_STREAMS`].
    pub fn open_stream(
        &mut self,
        store: &mut StreamStore,
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        from: Party,
    ) -> Option<StreamId> {
        let m = &mut self.state;
        // A stream known so far from RTCP alone becomes this RTP stream.
        for &id in &m.streams {
            if let Some(s) = store.get_mut(id) {
                if s.ssrc == ssrc && s.stats.figures().packets == 0 {
                    (s.ends, s.from) = (Ends::new(src, dst), from);
                    return Some(id);
                }
            }
        }
        if m.streams.len() >= MAX_STREAMS {
            return None;
        }
        let id = store.add(Stream {
            ends: Ends::new(src, dst),
            ssrc,
            from,
            stats: RtpStreamStats::with_payloads(m.payloads),
            rtcp: None,
        });
        m.streams.push(id);
        Some(id)
    }

    /// A stream known from RTCP alone: a HEP feed carries RTCP but no RTP, so a report
    /// naming an SSRC the leg has no stream for opens one (no packets, the report's
    /// figures), unless the leg sees RTP (then RTP opens its streams).
    pub fn open_reported_stream(
        &mut self,
        store: &mut StreamStore,
        src: SocketAddr,
        dst: SocketAddr,
        ssrc: u32,
        from: Party,
    ) {
        if self.has_rtp() || self.stream_of(store, ssrc).is_some() {
            return;
        }
        let _ = self.open_stream(store, src, dst, ssrc, from);
    }

    /// One RTP packet of the leg's stream `id`. `talking` is true when the leg is
    /// answered and not on hold: only then does one-way flow count.
    pub fn on_packet(
        &mut self,
        store: &mut StreamStore,
        id: StreamId,
        at: CaptureTime,
        hdr: &RtpHeader,
        talking: bool,
    ) {
        let Some(s) = store.get_mut(id) else {
            return;
        };
        s.stats.on_packet(at, hdr);
        let m = &mut self.state;
        let from = slot(s.from);
        m.last_from[from] = OptTime::some(at);
        let first = match m.first_since_counting[from].get() {
            Some(t) => t,
            None => {
                m.first_since_counting[from] = OptTime::some(at);
                at
            }
        };
        self.last_rtp_at = OptTime::some(self.last_rtp_at.get().map_or(at, |t| t.max(at)));
        let other_last = m.last_from[1 - from].get();
        let other_flowing = other_last.is_some_and(|t| (at.0 - t.0) <= DIRECTION_SILENCE_US);
        if !talking || other_flowing {
            m.one_way_since = OptTime::NONE;
            return;
        }
        // The period began when this side was flowing and the other had fallen silent:
        // the later of this side's first packet since counting began (answer or hold
        // change) and the other side's last packet.
        let since = match m.one_way_since.get() {
            Some(t) => t,
            None => {
                let t = other_last.map_or(first, |t| t.max(first));
                m.one_way_since = OptTime::some(t);
                t
            }
        };
        m.one_way_longest_us = m.one_way_longest_us.max(at.0 - since.0);
    }

    /// An RTCP report block (SR/RR) about the stream with `ssrc`: `jitter` in RTP
    /// timestamp units. False when no stream of the leg has that SSRC.
    pub fn on_report_block(
        &mut self,
        store: &mut StreamStore,
        ssrc: u32,
        fraction_lost_pct: f64,
        cumulative_lost: i32,
        jitter: u32,
    ) -> bool {
        let Some(s) = self.stream_of(store, ssrc) else {
            return false;
        };
        let clock = match s.stats.figures().clock_rate {
            0 => 8000,
            c => c,
        };
        let jitter_ms = f64::from(jitter) * 1000.0 / f64::from(clock);
        let r = s.rtcp.get_or_insert_with(Box::default);
        r.reports = r.reports.saturating_add(1);
        r.fraction_lost_pct = fraction_lost_pct;
        r.max_fraction_lost_pct = r.max_fraction_lost_pct.max(fraction_lost_pct);
        r.cumulative_lost = cumulative_lost;
        r.jitter_ms = jitter_ms;
        r.max_jitter_ms = r.max_jitter_ms.max(jitter_ms);
        true
    }

    /// An XR VoIP metrics block about the stream with `ssrc`.
    pub fn on_voip_metrics(
        &mut self,
        store: &mut StreamStore,
        ssrc: u32,
        round_trip_ms: u16,
        mos_lq: Option<f64>,
        r_factor: Option<u8>,
    ) -> bool {
        let Some(s) = self.stream_of(store, ssrc) else {
            return false;
        };
        let r = s.rtcp.get_or_insert_with(Box::default);
        r.round_trip_ms = Some(round_trip_ms).filter(|&v| v != 0);
        r.mos_lq = mos_lq.or(r.mos_lq);
        r.r_factor = r_factor.or(r.r_factor);
        true
    }

    /// The leg was answered, or a hold began or ended, at `at`: one-way periods
    /// restart and count from there.
    pub fn reset_one_way(&mut self) {
        self.state.one_way_since = OptTime::NONE;
        self.state.first_since_counting = [OptTime::NONE; 2];
    }

    /// The latest stream with `ssrc`.
    fn stream_of<'a>(&self, store: &'a mut StreamStore, ssrc: u32) -> Option<&'a mut Stream> {
        let id = self
            .state
            .streams
            .iter()
            .rev()
            .copied()
            .find(|&id| store.get(id).is_some_and(|s| s.ssrc == ssrc))?;
        store.get_mut(id)
    }

    /// When the current one-way period began, if one is going on.
    pub fn one_way_since(&self) -> Option<CaptureTime> {
        self.state.one_way_since.get()
    }

    /// Last RTP packet of either direction (media timeout).
    pub fn last_rtp_at(&self) -> Option<CaptureTime> {
        self.last_rtp_at.get()
    }

    pub fn has_rtp(&self) -> bool {
        self.last_rtp_at.is_some()
    }

    /// The longest period so far where media flowed in one direction only, in ms.
    pub fn one_way_ms(&self) -> u64 {
        let us = self.state.one_way_longest_us;
        (us / 1000).max(0) as u64
    }

    /// The direction that flowed during one-way periods (the other one was silent).
    pub fn flowing_direction(&self) -> Option<Party> {
        match self.state.last_from.map(OptTime::get) {
            [Some(_), None] => Some(Party::Agent),
            [None, Some(_)] => Some(Party::Customer),
            [Some(a), Some(c)] => Some(if a >= c {
                Party::Agent
            } else {
                Party::Customer
            }),
            [None, None] => None,
        }
    }

    /// The figures of every stream, with codec and estimated MOS (`constants` gives
    /// each codec's E-model constants).
    pub fn records(
        &self,
        store: &StreamStore,
        constants: &dyn Fn(CodecId) -> CodecImpairment,
    ) -> Vec<MediaRecord> {
        self.streams(store)
            .map(|s| {
                let f = s.stats.figures();
                let codec = f
                    .payload_type
                    .and_then(|pt| s.stats.payloads().resolve(pt))
                    .map(|p| p.codec);
                let mos = codec
                    .filter(|c| !c.is_auxiliary())
                    .map(|c| estimate_mos(&constants(c), f.loss_pct.max(0.0), f.mean_jitter_ms));
                let (src, dst) = s.ends.get();
                MediaRecord {
                    ssrc: s.ssrc,
                    from: s.from,
                    src,
                    dst,
                    codec: codec.map(|c| codec_name(c).to_string()),
                    packets: f.packets,
                    expected: f.expected,
                    lost: f.lost,
                    loss_pct: f.loss_pct,
                    jitter_ms: f.mean_jitter_ms,
                    max_jitter_ms: f.max_jitter_ms,
                    max_delta_ms: f.max_delta_ms,
                    mos,
                    rtcp: s.rtcp.as_deref().cloned(),
                }
            })
            .collect()
    }

    /// The stream keys, to unregister them when the leg goes.
    pub fn keys<'a>(
        &'a self,
        store: &'a StreamStore,
    ) -> impl Iterator<Item = (SocketAddr, SocketAddr, u32)> + 'a {
        self.streams(store).map(|s| {
            let (src, dst) = s.ends.get();
            (src, dst, s.ssrc)
        })
    }

    /// Gives the leg's streams back to the store (the leg goes).
    pub fn release(&mut self, store: &mut StreamStore) {
        for id in self.state.streams.drain(..) {
            store.release(id);
        }
    }
}

/// The codec as SDP and Wireshark name it (`PCMU`, `PCMA`, `G729`, `opus`...).
pub fn codec_name(c: CodecId) -> &'static str {
    match c {
        CodecId::Pcmu => "PCMU",
        CodecId::Pcma => "PCMA",
        CodecId::G722 => "G722",
        CodecId::G729 => "G729",
        CodecId::Gsm => "GSM",
        CodecId::G723 => "G723",
        CodecId::G728 => "G728",
        CodecId::ComfortNoise => "CN",
        CodecId::TelephoneEvent => "telephone-event",
        CodecId::Opus => "opus",
        CodecId::Amr => "AMR",
        CodecId::AmrWb => "AMR-WB",
        CodecId::Ilbc => "iLBC",
        CodecId::Speex => "speex",
        CodecId::G726 => "G726",
        CodecId::Other => "other",
    }
}
