//! The engine: turns captured SIP messages into agent legs (SPEC §2), measures them and
//! applies the rules (SPEC §3). Pure: packets arrive with their capture timestamps,
//! deadlines are fired by [`Engine::handle_timeout`] or by the next packet of the same
//! source, and results leave as [`Event`]s through [`Engine::poll_event`].
//!
//! One SIP message is handled in three steps: parse (a malformed message is counted and
//! dropped), find the agent legs it concerns (a new leg for an initial INVITE that has an
//! agent at one end), then, for each leg, drop it when it is a copy of an event already
//! seen, else let it move the leg's state.

use smallvec::SmallVec;
use std::collections::VecDeque;

use foldhash::HashMap;
use std::net::SocketAddr;

use super::agents::{ExtensionSet, Roster};
use super::copies::{fingerprint, Copies};
use super::event::Event;
use super::hold::{HoldChange, HoldTracker};
use super::input::{Captured, PayloadHint, SourceId};
use super::leg::{Direction, EndReason, HangupBy, LegRecord, MediaRecord, Outcome, Party, Survey};
use super::media::leg::{LegMedia, StreamId, StreamStore};
use super::media::slab::{MediaSlab, MediaSlot};
use super::media::{CodecId, CodecImpairment};
use super::multimap::MultiMap;
use super::record::{LegFacts, LegText, OptMs, OptTime, PackedAddr, Text};
use super::registrations::{self, RegState, Registrations};
use super::rules::{self, RuleId, Violation};
use super::stats::EngineStats;
use super::timers::{Deadlines, TimerKind};
use super::transfer::{refer_event_id, sipfrag_status, Transfers};
use crate::config::Validated;
use crate::time::CaptureTime;
use crate::wire::rtp::{self, Classified};
use crate::wire::sdp::Sdp;
use crate::wire::sip::{HeaderName, Method, NameAddr, SipMessage, StartLine};

/// How long an ended leg is kept to absorb late copies and retransmissions (RFC 3261
/// Timer B/F, 64·T1).
const LINGER_MS: u64 = 32_000;
/// How long a CANCEL waits for the INVITE's final response before the CANCEL itself
/// ends the ringing.
const CANCEL_GRACE_MS: u64 = 32_000;
/// How long the first BYE waits for a response (or the other side's crossing BYE)
/// before the leg's end is settled.
const BYE_GRACE_MS: u64 = 4_000;
/// RTP addresses one leg may announce over its re-INVITEs; more are counted and ignored.
const MAX_MEDIA_ADDRS: usize = 8;
/// Open legs one RTP address may belong to at once.
const MAX_OWNERS_PER_ADDR: usize = 4;
/// Non-agent dialogs remembered to name the customer of a B2BUA-linked agent leg.
const MAX_CUSTOMER_DIALOGS: usize = 16_384;

/// The engine's settings, derived once from the validated configuration.
#[derive(Clone, Debug)]
pub struct EngineSettings {
    pub extensions: ExtensionSet,
    pub roster: Roster,
    pub survey_users: Vec<Vec<u8>>,
    pub late_answer_ms: u64,
    pub long_hold_ms: u64,
    pub min_talk_ms: u64,
    pub ring_timeout_ms: u64,
    pub max_leg_ms: u64,
    pub media_timeout_ms: u64,
    pub correlation_header: Option<Vec<u8>>,
    pub min_mos: f64,
    pub max_loss_pct: f64,
    pub one_way_min_ms: u64,
    /// E-model constants that override the defaults, from `rules.audio.codecs`.
    pub codec_constants: Vec<(CodecId, CodecImpairment)>,
    /// `rules.personal_call` when enabled: (allow patterns, queue users).
    pub personal_call: Option<(Vec<String>, Vec<String>)>,
    /// Most agent legs tracked at once; an INVITE beyond it is counted and ignored.
    pub max_legs: usize,
}

impl EngineSettings {
    pub fn from_config(v: &Validated) -> EngineSettings {
        let c = &v.raw;
        EngineSettings {
            extensions: v.extensions.clone(),
            roster: v.roster.clone(),
            survey_users: c
                .rules
                .survey
                .uris
                .iter()
                .map(|u| survey_user(u).into_bytes())
                .collect(),
            late_answer_ms: c.rules.late_answer.threshold_ms,
            long_hold_ms: c.rules.long_hold.threshold_ms,
            min_talk_ms: c.rules.survey.min_talk_ms,
            ring_timeout_ms: c.engine.ring_timeout_ms,
            max_leg_ms: c.engine.max_leg_ms,
            media_timeout_ms: c.engine.media_timeout_ms,
            correlation_header: Some(c.engine.correlation_header.as_bytes().to_vec())
                .filter(|h| !h.is_empty()),
            min_mos: c.rules.audio.min_mos,
            max_loss_pct: c.rules.audio.max_loss_pct,
            one_way_min_ms: c.rules.one_way_audio.min_ms,
            codec_constants: c
                .rules
                .audio
                .codecs
                .iter()
                .map(|(name, k)| {
                    (
                        CodecId::from_encoding_name(name),
                        CodecImpairment {
                            ie: k.ie,
                            bpl: k.bpl,
                            codec_delay_ms: k.delay_ms,
                            assumed: false,
                        },
                    )
                })
                .collect(),
            personal_call: c.rules.personal_call.enabled.then(|| {
                (
                    c.rules.personal_call.allow.clone(),
                    c.rules.personal_call.queue_users.clone(),
                )
            }),
            max_legs: 200_000,
        }
    }
}

/// `sip:96000@pbx` → `96000`; a bare user stays as it is.
fn survey_user(uri: &str) -> String {
    let s = uri.trim();
    let s = s
        .strip_prefix("sips:")
        .or_else(|| s.strip_prefix("sip:"))
        .or_else(|| s.strip_prefix("tel:"))
        .unwrap_or(s);
    s.split(['@', ';']).next().unwrap_or(s).to_string()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegState {
    Ringing,
    Confirmed,
    /// A BYE was seen; waiting briefly for its response or a crossing BYE (glare).
    Terminating,
    Ended,
}

#[derive(Clone, Copy, Debug)]
struct ByeSeen {
    at: CaptureTime,
    by: Party,
    glare: bool,
}

/// The engine's private state of one agent leg, around its public record.
struct Leg {
    /// The record, compactly: its texts hold the Call-ID, both tags, the dialled and
    /// To users ([`Text`]).
    rec: LegFacts,
    state: LegState,
    /// The agent is the called party of the dialog (inbound, or the callee of an internal call).
    agent_is_callee: bool,
    invite_cseq: u32,
    invite_branches: Branches,
    /// Via count of the INVITE copy delivered closest to the phone.
    phone_vias: u32,
    copies: Copies,
    cancel_at: OptTime,
    transfers: Transfers,
    holds: HoldTracker,
    /// The slot of the leg's media (and the facts its RTP needs) in `Engine::media`.
    media: MediaSlot,
    /// The RTP addresses this leg's SDP announced, as their keys in
    /// `Engine::media_addrs` ([`addr_key`]).
    media_addrs: SmallVec<[u64; 2]>,
    /// What most open legs never have: 8 bytes until then.
    cold: Option<Box<LegCold>>,
    last_event_at: CaptureTime,
}

/// What most open legs never have, or a leg has only once it ends, apart.
#[derive(Default)]
struct LegCold {
    bye: Option<ByeSeen>,
    /// The leg's announced RTP addresses that are not IPv4 (their keys are hashes), in
    /// full.
    media_addrs_other: Vec<SocketAddr>,
    violations: Vec<Violation>,
    /// The media figures, set when the leg ends.
    media: Vec<MediaRecord>,
}

impl Leg {
    fn cold_mut(&mut self) -> &mut LegCold {
        self.cold.get_or_insert_with(Box::default)
    }

    fn bye(&self) -> Option<ByeSeen> {
        self.cold.as_ref().and_then(|c| c.bye)
    }

    fn violations(&self) -> &[Violation] {
        self.cold.as_ref().map_or(&[], |c| &c.violations)
    }

    fn media_records(&self) -> &[MediaRecord] {
        self.cold.as_ref().map_or(&[], |c| &c.media)
    }

    fn media_addrs_other(&self) -> &[SocketAddr] {
        self.cold.as_ref().map_or(&[], |c| &c.media_addrs_other)
    }

    fn agent_tag(&self) -> Option<&[u8]> {
        if self.agent_is_callee {
            self.callee_tag()
        } else {
            Some(self.caller_tag())
        }
    }

    /// Which side sent a request, from its From tag.
    fn sender(&self, from_tag: &[u8]) -> Party {
        if self.agent_tag() == Some(from_tag) {
            Party::Agent
        } else {
            Party::Customer
        }
    }

    fn ring_start(&self) -> CaptureTime {
        self.rec.ring_start_at.get().unwrap_or(self.rec.invite_at)
    }

    fn is_inbound(&self) -> bool {
        self.rec.direction == Direction::Inbound
    }

    fn has_raised(&self, rule: RuleId) -> bool {
        self.violations().iter().any(|v| v.rule == rule)
    }

    /// Copies the leg facts its RTP packets read into its media slot: call it whenever
    /// the leg's state or holds change.
    fn sync_media(&self, media: &mut MediaSlab) {
        if let Some(h) = media.get_mut(self.media) {
            h.talking = self.state == LegState::Confirmed && !self.holds.any_open();
            h.ended = self.state == LegState::Ended;
            h.one_way_raised = self.has_raised(RuleId::OneWayAudio);
        }
    }

    /// The leg's event time: never before its previous event (SPEC §1).
    fn event_time(&mut self, at: CaptureTime) -> CaptureTime {
        let t = at.max(self.last_event_at);
        self.last_event_at = t;
        t
    }

    fn matches_dialog(&self, a: &[u8], b: &[u8]) -> bool {
        match self.callee_tag() {
            Some(callee) => {
                (self.caller_tag() == a && callee == b) || (self.caller_tag() == b && callee == a)
            }
            None => false,
        }
    }

    fn caller_tag(&self) -> &[u8] {
        self.rec.caller_tag()
    }

    fn callee_tag(&self) -> Option<&[u8]> {
        self.rec.text.get(Text::CalleeTag)
    }

    /// The public record as known now.
    fn record(&self, roster: &Roster) -> LegRecord {
        self.rec.record(
            roster,
            self.holds.episodes(),
            self.violations(),
            self.media_records(),
        )
    }
}

/// INVITE branches remembered per leg (copies on both sides of proxies, forks).
const MAX_BRANCHES: usize = 4;

/// The Via branches of a leg's INVITE copies, in one allocation: each branch is its
/// length (two bytes, big-endian) then its bytes. A boxed slice (16 bytes in the leg,
/// not a `Vec`'s 24): a branch is added a few times per leg at most.
#[derive(Default)]
struct Branches {
    bytes: Box<[u8]>,
}

impl Branches {
    fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest = &*self.bytes;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let (branch, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
            rest = tail;
            Some(branch)
        })
    }

    fn len(&self) -> usize {
        self.iter().count()
    }

    fn contains(&self, branch: &[u8]) -> bool {
        self.iter().any(|b| b == branch)
    }

    /// Adds a branch (one longer than 65,535 bytes cannot come in a SIP message over
    /// UDP or HEP; it is ignored).
    fn push(&mut self, branch: &[u8]) {
        let Ok(len) = u16::try_from(branch.len()) else {
            return;
        };
        let mut bytes = Vec::with_capacity(self.bytes.len() + 2 + branch.len());
        bytes.extend_from_slice(&self.bytes);
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(branch);
        self.bytes = bytes.into_boxed_slice();
    }
}

/// The message's Via count, saturated to 32 bits.
fn via_count(msg: &SipMessage<'_>) -> u32 {
    u32::try_from(msg.via_count()).unwrap_or(u32::MAX)
}

/// Set in an [`addr_key`] that is a hash.
const ADDR_KEY_HASHED: u64 = 1 << 63;

/// The key of an SDP address in `Engine::media_addrs`: an IPv4 address and port packed
/// exactly (48 bits), any other address a keyed hash of it with the top bit set.
fn addr_key(hasher: &foldhash::fast::RandomState, addr: SocketAddr) -> u64 {
    match addr {
        SocketAddr::V4(a) => u64::from(a.ip().to_bits()) << 16 | u64::from(a.port()),
        SocketAddr::V6(_) => {
            use std::hash::BuildHasher;
            hasher.hash_one(addr) | ADDR_KEY_HASHED
        }
    }
}

/// A leg and the party of it that announced an address, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AddrOwner(u64);

impl AddrOwner {
    fn new(leg: u64, party: Party) -> AddrOwner {
        AddrOwner(leg << 1 | u64::from(party == Party::Customer))
    }

    fn leg(self) -> u64 {
        self.0 >> 1
    }

    fn party(self) -> Party {
        if self.0 & 1 == 1 {
            Party::Customer
        } else {
            Party::Agent
        }
    }
}

/// An RTP stream: source, destination, SSRC. Looked up once per RTP packet, so an
/// IPv4 stream (nearly all of them) is one packed `u128` (address and port of each end,
/// then the SSRC: 32 + 16 + 32 + 16 + 32 bits) that hashes as two words, instead of
/// two `SocketAddr` enums hashed field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum StreamKey {
    V4(u128),
    Other(SocketAddr, SocketAddr, u32),
}

impl StreamKey {
    fn new(src: SocketAddr, dst: SocketAddr, ssrc: u32) -> StreamKey {
        match (src, dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => StreamKey::V4(
                u128::from(s.ip().to_bits()) << 96
                    | u128::from(s.port()) << 80
                    | u128::from(d.ip().to_bits()) << 48
                    | u128::from(d.port()) << 32
                    | u128::from(ssrc),
            ),
            _ => StreamKey::Other(src, dst, ssrc),
        }
    }
}
/// The legs (their media slots, and the stream in the media slab's store) a stream
/// belongs to: two for an internal call.
type StreamOwners = SmallVec<[(MediaSlot, StreamId); 2]>;

/// A leg's media slot and the stream's place in the media slab's store, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct StreamOwner(u64);

impl StreamOwner {
    fn new(slot: MediaSlot, stream: StreamId) -> StreamOwner {
        StreamOwner(u64::from(slot) << 32 | u64::from(stream))
    }

    fn slot(self) -> MediaSlot {
        (self.0 >> 32) as MediaSlot
    }

    fn stream(self) -> StreamId {
        self.0 as StreamId
    }
}

/// The owner of a v4 stream that is in [`StreamTable::shared`] instead.
const SHARED: StreamOwner = StreamOwner(u64::MAX);

/// RTP stream → owners. Nearly every stream is IPv4 with one owner: those are 24-byte
/// entries (a packed key split in two words, one-word owner) in `v4`. A stream with
/// several owners (an internal call) or not IPv4 is in `shared`, and a v4 one there has
/// [`SHARED`] as its owner in `v4`, so a packet looks up one table unless its stream
/// is shared.
#[derive(Default)]
struct StreamTable {
    v4: HashMap<(u64, u64), StreamOwner>,
    shared: HashMap<StreamKey, SmallVec<[StreamOwner; 2]>>,
}

fn split(k: u128) -> (u64, u64) {
    ((k >> 64) as u64, k as u64)
}

impl StreamTable {
    fn get(&self, key: &StreamKey) -> Option<&[StreamOwner]> {
        if let StreamKey::V4(k) = key {
            match self.v4.get(&split(*k)) {
                Some(o) if *o != SHARED => return Some(std::slice::from_ref(o)),
                Some(_) => {}
                None => return None,
            }
        }
        self.shared.get(key).map(|o| o.as_slice())
    }

    fn insert(&mut self, key: StreamKey, owners: &StreamOwners) {
        let owners: SmallVec<[StreamOwner; 2]> = owners
            .iter()
            .map(|&(slot, stream)| StreamOwner::new(slot, stream))
            .collect();
        match key {
            StreamKey::V4(k) if owners.len() == 1 => {
                if self.v4.insert(split(k), owners[0]) == Some(SHARED) {
                    self.shared.remove(&key);
                }
            }
            StreamKey::V4(k) => {
                self.v4.insert(split(k), SHARED);
                self.shared.insert(key, owners);
            }
            StreamKey::Other(..) => {
                self.shared.insert(key, owners);
            }
        }
    }

    /// Takes the leg whose media is in `slot` off the stream; the stream goes when it
    /// has no owner left.
    fn remove_leg(&mut self, key: StreamKey, slot: MediaSlot) {
        if let StreamKey::V4(k) = key {
            match self.v4.get(&split(k)) {
                Some(o) if *o == SHARED => {}
                Some(o) if o.slot() == slot => {
                    self.v4.remove(&split(k));
                    return;
                }
                _ => return,
            }
        }
        if let Some(owners) = self.shared.get_mut(&key) {
            owners.retain(|o| o.slot() != slot);
            if owners.is_empty() {
                self.shared.remove(&key);
                if let StreamKey::V4(k) = key {
                    self.v4.remove(&split(k));
                }
            }
        }
    }
}

/// A leg an RTCP packet concerns, and the media stream its report blocks describe.
struct ReportedStream {
    leg: u64,
    src: SocketAddr,
    dst: SocketAddr,
    /// The party sending that media, when one of the packet's addresses is the leg's.
    from: Option<Party>,
}

impl ReportedStream {
    /// A report about an SSRC the leg has no stream for (a HEP feed has no RTP) opens
    /// one, so the figures are kept.
    fn open_in(&self, media: &mut LegMedia, store: &mut StreamStore, ssrc: u32) {
        if let Some(from) = self.from {
            media.open_reported_stream(store, self.src, self.dst, ssrc, from);
        }
    }
}

/// The detection core. See the module docs.
pub struct Engine {
    settings: EngineSettings,
    /// Boxed: the table runs partly empty, so its slots stay small.
    legs: HashMap<u64, Box<Leg>>,
    /// The legs of each Call-ID, keyed by a hash of the Call-ID (no copy of it): legs
    /// whose Call-IDs collide share an entry, and every lookup checks the leg's own
    /// Call-ID ([`Engine::call_legs`]).
    by_call: MultiMap,
    hasher: foldhash::fast::RandomState,
    next_leg: u64,
    deadlines: Deadlines,
    events: VecDeque<Event>,
    clocks: HashMap<SourceId, CaptureTime>,
    customers: HashMap<Vec<u8>, Option<String>>,
    customer_order: VecDeque<Vec<u8>>,
    /// RTP stream (source, destination, SSRC) → media slot and stream index.
    streams: StreamTable,
    /// Every leg's media, with the leg facts its RTP packets need.
    media: MediaSlab,
    /// Where a party of a leg receives RTP, from its SDP → leg and party
    /// ([`AddrOwner`]), keyed by [`addr_key`]; see [`Engine::addr_owners`].
    media_addrs: MultiMap,
    registrations: Registrations,
    /// Registration expiry deadlines: timer id → (agent, generation).
    reg_timers: HashMap<u64, (String, u64)>,
    stats: EngineStats,
}

impl Engine {
    pub fn new(settings: EngineSettings) -> Engine {
        Engine {
            settings,
            legs: HashMap::default(),
            by_call: MultiMap::default(),
            hasher: foldhash::fast::RandomState::default(),
            next_leg: 1,
            deadlines: Deadlines::default(),
            events: VecDeque::new(),
            clocks: HashMap::default(),
            customers: HashMap::default(),
            customer_order: VecDeque::new(),
            streams: StreamTable::default(),
            media: MediaSlab::default(),
            media_addrs: MultiMap::default(),
            registrations: Registrations::default(),
            reg_timers: HashMap::default(),
            stats: EngineStats::default(),
        }
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// Legs tracked now (ringing, active, or ended and lingering).
    pub fn legs_tracked(&self) -> usize {
        self.legs.len()
    }

    /// Records of the legs not ended yet.
    /// Built on demand: the engine keeps its legs compactly ([`super::record`]).
    pub fn open_legs(&self) -> impl Iterator<Item = LegRecord> + '_ {
        self.legs
            .values()
            .filter(|l| l.state != LegState::Ended)
            .map(|l| l.record(&self.settings.roster))
    }

    /// How many legs are not ended yet (what `open_legs().count()` says, without
    /// building their records).
    pub fn open_leg_count(&self) -> usize {
        self.legs
            .values()
            .filter(|l| l.state != LegState::Ended)
            .count()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether [`Engine::poll_event`] has an event to give.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The next deadline, with the source whose clock it runs on.
    pub fn poll_timeout(&self) -> Option<(SourceId, CaptureTime)> {
        self.deadlines.next()
    }

    /// The next deadline of every source, each on its own clock.
    pub fn poll_timeouts(&self) -> impl Iterator<Item = (SourceId, CaptureTime)> + '_ {
        self.deadlines.next_per_source()
    }

    /// Advances `source`'s clock to `now` and fires its deadlines due by then.
    pub fn handle_timeout(&mut self, source: SourceId, now: CaptureTime) {
        let clock = self.clocks.entry(source).or_insert(now);
        if now > *clock {
            *clock = now;
        }
        let now = *clock;
        while let Some((at, leg, kind)) = self.deadlines.pop_due(source, now) {
            self.fire(leg, kind, at);
        }
    }

    pub fn handle_packet(&mut self, pkt: &Captured<'_>) {
        // Deadlines strictly before this packet fire first: a 2xx at the very instant
        // of a deadline still wins.
        if self.deadlines.any_due_before(pkt.source, pkt.at) {
            self.handle_timeout(pkt.source, CaptureTime(pkt.at.0 - 1));
        }
        let is_sip = match pkt.hint {
            PayloadHint::Sip => true,
            PayloadHint::Rtcp => false,
            // RTP and RTCP (first octet 0x80-0xBF, RFC 3550 version 2) are never SIP:
            // nearly every packet is decided on that octet alone.
            PayloadHint::Unknown => {
                pkt.payload.first().is_some_and(|b| b & 0xc0 != 0x80)
                    && crate::wire::sip::looks_like_sip(pkt.payload)
            }
        };
        if is_sip {
            self.stats.sip_packets += 1;
            self.on_sip(pkt);
        } else {
            self.on_media(pkt);
        }
    }

    /// The input ended (`analyze`): settles legs whose BYE was seen, reports the others
    /// as still open (`capture_end`). No deadline fires.
    pub fn finish(&mut self) {
        let mut ids: Vec<u64> = self.legs.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(leg) = self.legs.get(&id) else {
                continue;
            };
            match leg.state {
                LegState::Ended => {}
                LegState::Terminating => self.settle_bye(id),
                LegState::Ringing | LegState::Confirmed => self.close_at_capture_end(id),
            }
        }
    }

    // ---- SIP ------------------------------------------------------------------

    fn on_sip(&mut self, pkt: &Captured<'_>) {
        let msg = match SipMessage::parse(pkt.payload) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_error(e.as_str());
                return;
            }
        };
        let (Some(call_id), Some(cseq), Some(from), Some(to)) =
            (msg.call_id(), msg.cseq(), msg.from(), msg.to())
        else {
            self.stats.count_error("sip_missing_header");
            return;
        };
        self.stats.sip_messages += 1;
        let from_tag = from.tag().unwrap_or(b"");
        let to_tag = to.tag();
        match msg.start_line() {
            StartLine::Request { method, uri } => match method {
                Method::Invite if to_tag.is_none() => {
                    let uri_user = uri.user_unescaped().map(|u| u.into_owned());
                    self.on_initial_invite(
                        pkt, &msg, call_id, from_tag, cseq.seq, uri_user, &from, &to,
                    )
                }
                Method::Cancel => self.on_cancel(pkt, &msg, call_id, from_tag, cseq.seq),
                Method::Register => self.on_register(pkt, &msg, call_id, cseq.seq, &to),
                Method::Options => {}
                _ => {
                    if let Some(to_tag) = to_tag {
                        self.on_dialog_request(
                            pkt, &msg, *method, call_id, from_tag, to_tag, cseq.seq,
                        )
                    }
                }
            },
            StartLine::Response { code, .. } => self.on_response(
                pkt,
                &msg,
                *code,
                call_id,
                from_tag,
                to_tag,
                cseq.seq,
                cseq.method,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_initial_invite(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        call_id: &[u8],
        from_tag: &[u8],
        cseq: u32,
        ruri_user: Option<Vec<u8>>,
        from: &NameAddr<'_>,
        to: &NameAddr<'_>,
    ) {
        let user = |n: &NameAddr<'_>| n.uri.user_unescaped().map(|u| u.into_owned());
        let to_user = user(to);
        let from_user = user(from);
        let contact_user = msg.contact().and_then(|c| user(&c));
        let ext = &self.settings.extensions;
        let is_agent = |u: &Option<Vec<u8>>| u.as_deref().is_some_and(|u| ext.contains(u));
        let callee_agent = [&ruri_user, &to_user]
            .into_iter()
            .find(|u| is_agent(u))
            .cloned()
            .flatten();
        let caller_agent = [&from_user, &contact_user]
            .into_iter()
            .find(|u| is_agent(u))
            .cloned()
            .flatten();

        let correlation = self.correlation_of(pkt, msg, call_id);
        let customer_of_inbound = msg
            .p_asserted_identity()
            .and_then(|p| user(&p))
            .or_else(|| from_user.clone());

        if callee_agent.is_none() && caller_agent.is_none() {
            // A trunk, IVR or survey dialog: no record, but remember its customer for a
            // B2BUA agent leg that links to it.
            self.remember_customer(
                call_id,
                customer_of_inbound.as_deref().and_then(customer_text),
            );
            return;
        }
        let internal = callee_agent.is_some() && caller_agent.is_some();
        let sides = [(callee_agent.clone(), true), (caller_agent.clone(), false)];
        for (agent, agent_is_callee) in sides {
            let Some(agent) = agent else { continue };
            let agent = String::from_utf8_lossy(&agent).into_owned();
            let existing = self.call_legs(call_id).into_iter().find(|id| {
                self.legs.get(id).is_some_and(|l| {
                    l.caller_tag() == from_tag && l.rec.agent() == agent.as_bytes()
                })
            });
            if let Some(id) = existing {
                self.on_invite_copy(id, pkt, msg, cseq);
                continue;
            }
            if self.legs.len() >= self.settings.max_legs {
                self.stats.legs_dropped_table_full += 1;
                continue;
            }
            let direction = if internal {
                Direction::Internal
            } else if agent_is_callee {
                Direction::Inbound
            } else {
                Direction::Outbound
            };
            let (customer, customer_is_internal) = match direction {
                Direction::Inbound => {
                    let linked = correlation
                        .as_ref()
                        .and_then(|c| self.customers.get(c).cloned());
                    let own = customer_of_inbound.as_deref().and_then(customer_text);
                    (linked.unwrap_or(own), false)
                }
                Direction::Outbound => {
                    let dialled = ruri_user.as_deref().or(to_user.as_deref());
                    let survey = dialled.is_some_and(|d| self.is_survey(d));
                    (dialled.and_then(customer_text), survey)
                }
                Direction::Internal => {
                    let other = if agent_is_callee {
                        &caller_agent
                    } else {
                        &callee_agent
                    };
                    (
                        other
                            .as_deref()
                            .map(|o| String::from_utf8_lossy(o).into_owned()),
                        true,
                    )
                }
            };
            let rec = LegFacts {
                text: LegText::new([
                    Some(call_id),
                    Some(from_tag),
                    Some(agent.as_bytes()),
                    None,
                    customer.as_deref().map(str::as_bytes),
                    correlation.as_deref(),
                    ruri_user.as_deref(),
                    to_user.as_deref(),
                ]),
                invite_at: pkt.at,
                ring_start_at: OptTime::NONE,
                answered_at: OptTime::NONE,
                ended_at: OptTime::NONE,
                ring_ms: OptMs::NONE,
                hold_ms: 0,
                phone: PackedAddr::new(Some(if agent_is_callee { pkt.dst } else { pkt.src })),
                source: pkt.source,
                direction,
                customer_is_internal,
                glare: false,
                outcome: None,
                hangup_by: HangupBy::None,
                survey: Survey::NotRequired,
                end_reason: None,
            };
            let id = self.next_leg;
            self.next_leg += 1;
            let mut leg = Leg {
                rec,
                state: LegState::Ringing,
                agent_is_callee,
                invite_cseq: cseq,
                invite_branches: Branches::default(),
                phone_vias: via_count(msg),
                copies: Copies::default(),
                cancel_at: OptTime::NONE,
                transfers: Transfers::default(),
                holds: HoldTracker::default(),
                media: self.media.insert(id, pkt.source),
                media_addrs: SmallVec::new(),
                cold: None,
                last_event_at: pkt.at,
            };
            leg.copies
                .first_time(fingerprint(&[from_tag, &cseq.to_be_bytes(), b"INVITE"]));
            if let Some(b) = msg.top_via().and_then(|v| v.branch) {
                leg.invite_branches.push(b);
            }
            self.stats.legs_created += 1;
            let src = pkt.source;
            let at = pkt.at;
            self.legs.insert(id, Box::new(leg));
            let call_key = self.call_key(call_id);
            self.by_call.push(call_key, id);
            let offerer = if agent_is_callee {
                Party::Customer
            } else {
                Party::Agent
            };
            self.note_sdp(id, offerer, msg);
            if direction == Direction::Inbound {
                let due = rules::late_answer::deadline(at, self.settings.late_answer_ms);
                self.deadlines.schedule(src, due, id, TimerKind::LateAnswer);
            }
            self.deadlines.schedule(
                src,
                at.plus_millis(self.settings.ring_timeout_ms),
                id,
                TimerKind::RingTimeout,
            );
            self.deadlines.schedule(
                src,
                at.plus_millis(self.settings.max_leg_ms),
                id,
                TimerKind::MaxLeg,
            );
            self.emit_leg(id, at, |at, leg| Event::LegRinging { at, leg });
        }
    }

    /// Another copy of the leg's INVITE (other side of a proxy, retransmission) or the
    /// INVITE sent again with credentials after a 401/407.
    fn on_invite_copy(&mut self, id: u64, pkt: &Captured<'_>, msg: &SipMessage<'_>, cseq: u32) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if let Some(b) = msg.top_via().and_then(|v| v.branch) {
            if leg.invite_branches.len() < MAX_BRANCHES && !leg.invite_branches.contains(b) {
                leg.invite_branches.push(b);
            }
        }
        let vias = via_count(msg);
        if leg.agent_is_callee && vias > leg.phone_vias {
            // The copy with more Vias travelled further: closer to the phone.
            leg.phone_vias = vias;
            leg.rec.phone = PackedAddr::new(Some(pkt.dst));
        } else if !leg.agent_is_callee && vias < leg.phone_vias {
            leg.phone_vias = vias;
            leg.rec.phone = PackedAddr::new(Some(pkt.src));
        }
        if cseq > leg.invite_cseq && leg.state == LegState::Ringing {
            leg.invite_cseq = cseq;
        }
        let fp = fingerprint(&[leg.caller_tag(), &cseq.to_be_bytes(), b"INVITE"]);
        let _ = leg.copies.first_time(fp);
    }

    fn on_cancel(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        call_id: &[u8],
        from_tag: &[u8],
        cseq: u32,
    ) {
        let branch = msg.top_via().and_then(|v| v.branch);
        let ruri_user = match msg.start_line() {
            StartLine::Request { uri, .. } => uri.user_unescaped().map(|u| u.into_owned()),
            _ => None,
        };
        let candidates: SmallVec<[u64; 2]> = self
            .call_legs(call_id)
            .into_iter()
            .filter(|id| {
                self.legs
                    .get(id)
                    .is_some_and(|l| l.caller_tag() == from_tag && l.invite_cseq == cseq)
            })
            .collect();
        let strong: SmallVec<[u64; 2]> = candidates
            .iter()
            .copied()
            .filter(|id| {
                self.legs.get(id).is_some_and(|l| {
                    branch.is_some_and(|b| l.invite_branches.contains(b))
                        || ruri_user.as_deref() == Some(l.rec.agent())
                })
            })
            .collect();
        let chosen = if !strong.is_empty() {
            strong
        } else if candidates.len() == 1 {
            candidates
        } else {
            return;
        };
        for id in chosen {
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            if !leg
                .copies
                .first_time(fingerprint(&[from_tag, &cseq.to_be_bytes(), b"CANCEL"]))
            {
                continue;
            }
            if leg.state != LegState::Ringing || leg.cancel_at.is_some() {
                continue;
            }
            let at = leg.event_time(pkt.at);
            leg.cancel_at = OptTime::some(at);
            let src = leg.rec.source;
            self.deadlines.schedule(
                src,
                at.plus_millis(CANCEL_GRACE_MS),
                id,
                TimerKind::CancelGrace,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_dialog_request(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        method: Method<'_>,
        call_id: &[u8],
        from_tag: &[u8],
        to_tag: &[u8],
        cseq: u32,
    ) {
        let ids: SmallVec<[u64; 2]> = self
            .call_legs(call_id)
            .into_iter()
            .filter(|id| {
                self.legs
                    .get(id)
                    .is_some_and(|l| l.matches_dialog(from_tag, to_tag))
            })
            .collect();
        for id in ids {
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            if !leg.copies.first_time(fingerprint(&[
                from_tag,
                &cseq.to_be_bytes(),
                method.as_bytes(),
            ])) {
                continue;
            }
            if leg.state == LegState::Ended {
                continue;
            }
            let at = leg.event_time(pkt.at);
            let by = leg.sender(from_tag);
            match method {
                Method::Bye => self.on_bye(id, at, by),
                Method::Invite | Method::Update => {
                    // Holding is a state of a call in progress: an early-dialog UPDATE
                    // (RFC 3311) changes media, not who is waiting.
                    if leg.state == LegState::Confirmed {
                        if let Some(hold) = offer_holds(msg) {
                            leg.holds.on_offer(by, cseq, hold, at);
                        }
                    }
                    self.note_sdp(id, by, msg);
                }
                Method::Ack => self.note_sdp(id, by, msg),
                Method::Refer if by == Party::Agent => {
                    let target = self.refer_target(msg);
                    let to_survey = target.as_deref().is_some_and(|t| self.is_survey(t));
                    if let Some(leg) = self.legs.get_mut(&id) {
                        leg.transfers
                            .on_refer(cseq, target.unwrap_or_default(), to_survey, at);
                    }
                }
                Method::Notify if by == Party::Customer => {
                    let event = msg.header(HeaderName::Event).and_then(refer_event_id);
                    if let (Some(id_param), Some(status)) = (event, sipfrag_status(msg.body())) {
                        leg.transfers.on_notify(id_param, status);
                    }
                }
                _ => {}
            }
        }
    }

    /// The user a REFER sends the customer to: for an attended transfer (Refer-To with
    /// Replaces) the dialled user of the consultation dialog being replaced, else the
    /// Refer-To user.
    fn refer_target(&self, msg: &SipMessage<'_>) -> Option<Vec<u8>> {
        let refer_to = msg.refer_to()?;
        if let Some(replaces) = refer_to
            .uri
            .header(b"Replaces")
            .and_then(|r| crate::wire::sip::Replaces::parse(&r).map(|r| r.call_id.into_owned()))
        {
            let consultation = self
                .call_legs(&replaces)
                .into_iter()
                .filter_map(|id| self.legs.get(&id))
                .find_map(|l| l.rec.text.get(Text::Dialled).map(<[u8]>::to_vec));
            if consultation.is_some() {
                return consultation;
            }
        }
        refer_to.uri.user_unescaped().map(|u| u.into_owned())
    }

    #[allow(clippy::too_many_arguments)]
    fn on_response(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        code: u16,
        call_id: &[u8],
        from_tag: &[u8],
        to_tag: Option<&[u8]>,
        cseq: u32,
        method: Method<'_>,
    ) {
        if method == Method::Register {
            return self.on_register_response(pkt, msg, code, call_id, cseq);
        }
        let mut initial: SmallVec<[u64; 2]> = SmallVec::new();
        let mut in_dialog: SmallVec<[u64; 2]> = SmallVec::new();
        let mut weak: SmallVec<[u64; 2]> = SmallVec::new();
        let branch = msg.top_via().and_then(|v| v.branch);
        let contact_user = msg
            .contact()
            .and_then(|c| c.uri.user_unescaped().map(|u| u.into_owned()));
        for id in self.call_legs(call_id) {
            let Some(leg) = self.legs.get(&id) else {
                continue;
            };
            let to_initial =
                method == Method::Invite && leg.caller_tag() == from_tag && cseq == leg.invite_cseq;
            if to_initial && (leg.state == LegState::Ringing || leg.callee_tag() == to_tag) {
                let strong = (to_tag.is_some() && leg.callee_tag() == to_tag)
                    || branch.is_some_and(|b| leg.invite_branches.contains(b))
                    || contact_user.as_deref() == Some(leg.rec.agent())
                    || leg.rec.phone.is(pkt.src);
                if strong {
                    initial.push(id);
                } else if leg.callee_tag().is_none() {
                    weak.push(id);
                }
            } else if to_tag.is_some_and(|t| leg.matches_dialog(from_tag, t)) {
                in_dialog.push(id);
            }
        }
        if initial.is_empty() && weak.len() == 1 {
            initial = weak;
        }
        for id in initial {
            self.on_invite_response(id, pkt, msg, code, from_tag, to_tag, cseq);
        }
        for id in in_dialog {
            let Some(leg) = self.legs.get_mut(&id) else {
                continue;
            };
            let fp = fingerprint(&[
                from_tag,
                &cseq.to_be_bytes(),
                method.as_bytes(),
                &code.to_be_bytes(),
            ]);
            if !leg.copies.first_time(fp) || code < 200 || leg.state == LegState::Ended {
                continue;
            }
            // The request's sender is the side whose tag is in From.
            let requester = leg.sender(from_tag);
            let _ = leg.event_time(pkt.at);
            match method {
                Method::Invite | Method::Update => {
                    let change = leg.holds.on_answer(requester, cseq, code);
                    if (200..300).contains(&code) {
                        self.note_sdp(id, requester.other(), msg);
                    }
                    if let Some(change) = change {
                        self.on_hold_change(id, change);
                    }
                }
                Method::Refer => leg.transfers.on_refer_response(cseq, code),
                Method::Bye if leg.state == LegState::Terminating => self.settle_bye(id),
                _ => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_invite_response(
        &mut self,
        id: u64,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        code: u16,
        from_tag: &[u8],
        to_tag: Option<&[u8]>,
        cseq: u32,
    ) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let fp = fingerprint(&[
            from_tag,
            &cseq.to_be_bytes(),
            b"INVITE",
            &code.to_be_bytes(),
        ]);
        if !leg.copies.first_time(fp) || code == 100 {
            return;
        }
        if leg.state != LegState::Ringing {
            return;
        }
        let at = leg.event_time(pkt.at);
        let from_phone = leg.rec.phone.is(pkt.src);
        if let Some(t) = to_tag {
            if leg.callee_tag().is_none() || (200..300).contains(&code) {
                leg.rec.text.set(Text::CalleeTag, Some(t));
            }
        }
        let answerer = if leg.agent_is_callee {
            Party::Agent
        } else {
            Party::Customer
        };
        if code < 300 {
            self.note_sdp(id, answerer, msg);
        }
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        match code {
            180 | 183 if leg.rec.ring_start_at.is_none() => {
                // The late-answer and ring-timeout deadlines now count from here: the
                // ones queued at the INVITE (earlier) move them on when they fire
                // ([`Engine::fire`]), so no second pair is queued.
                leg.rec.ring_start_at = OptTime::some(at);
            }
            200..=299 => self.on_answered(id, at),
            401 | 407 => {}
            300..=699 => {
                let inbound_side = leg.agent_is_callee;
                let outcome = match code {
                    487 => Outcome::Cancelled,
                    _ if inbound_side && from_phone => Outcome::Rejected,
                    486 | 600 | 603 if !inbound_side => Outcome::Rejected,
                    _ => Outcome::Failed,
                };
                let reason = if code == 487 {
                    EndReason::Cancel
                } else {
                    EndReason::Rejected
                };
                self.end_unanswered(id, at, outcome, reason);
            }
            _ => {}
        }
    }

    fn on_answered(&mut self, id: u64, at: CaptureTime) {
        let late_ms = self.settings.late_answer_ms;
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let ring_start = leg.ring_start();
        let ring_ms = at.millis_since(ring_start);
        leg.rec.answered_at = OptTime::some(at);
        leg.rec.ring_ms = OptMs::some(ring_ms);
        leg.rec.outcome = Some(Outcome::Answered);
        leg.state = LegState::Confirmed;
        if let Some(h) = self.media.get_mut(leg.media) {
            h.media.reset_one_way();
        }
        leg.sync_media(&mut self.media);
        self.stats.legs_answered += 1;
        if leg.is_inbound() && !leg.has_raised(RuleId::LateAnswer) {
            if let Some(v) = rules::late_answer::check(ring_start, ring_ms, late_ms) {
                self.raise(id, v);
            }
        }
        self.emit_leg(id, at, |at, leg| Event::LegAnswered { at, leg });
    }

    fn on_bye(&mut self, id: u64, at: CaptureTime, by: Party) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        match leg.state {
            LegState::Confirmed => {
                leg.transfers.on_bye();
                leg.cold_mut().bye = Some(ByeSeen {
                    at,
                    by,
                    glare: false,
                });
                leg.state = LegState::Terminating;
                leg.sync_media(&mut self.media);
                let src = leg.rec.source;
                self.deadlines
                    .schedule(src, at.plus_millis(BYE_GRACE_MS), id, TimerKind::ByeGrace);
            }
            LegState::Terminating => {
                if let Some(b) = leg.cold.as_mut().and_then(|c| c.bye.as_mut()) {
                    if b.by != by {
                        b.glare = true;
                    }
                }
            }
            LegState::Ringing => {
                // A caller may end an early dialog with BYE (RFC 3261 §15): not answered.
                self.end_unanswered(id, at, Outcome::Cancelled, EndReason::Cancel);
            }
            LegState::Ended => {}
        }
    }

    fn on_hold_change(&mut self, id: u64, change: HoldChange) {
        let threshold = self.settings.long_hold_ms;
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if let Some(h) = self.media.get_mut(leg.media) {
            h.media.reset_one_way();
        }
        leg.sync_media(&mut self.media);
        match change {
            HoldChange::Started(by) => {
                let start = leg
                    .holds
                    .episodes()
                    .iter()
                    .rev()
                    .find(|h| h.by == by)
                    .map(|h| h.start_at);
                if let (Party::Agent, Some(start)) = (by, start) {
                    let src = leg.rec.source;
                    self.deadlines.schedule(
                        src,
                        rules::long_hold::deadline(start, threshold),
                        id,
                        TimerKind::LongHold,
                    );
                }
                let at = start.unwrap_or_default();
                self.emit_leg(id, at, |at, leg| Event::LegHeld { at, leg });
            }
            HoldChange::Ended(by) => {
                let ep = leg
                    .holds
                    .episodes()
                    .iter()
                    .rev()
                    .find(|h| h.by == by)
                    .cloned();
                if let (Party::Agent, Some(ep)) = (by, &ep) {
                    let end = ep.end_at.unwrap_or(ep.start_at);
                    if !leg.has_raised(RuleId::LongHold) {
                        if let Some(v) = rules::long_hold::check(ep.start_at, ep.ms(end), threshold)
                        {
                            self.raise(id, v);
                        }
                    }
                }
                let at = ep.and_then(|e| e.end_at).unwrap_or_default();
                self.emit_leg(id, at, |at, leg| Event::LegResumed { at, leg });
            }
        }
    }

    // ---- registrations -----------------------------------------------------------------

    /// A REGISTER for an agent's extension (the To user is the address of record).
    fn on_register(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        call_id: &[u8],
        cseq: u32,
        to: &NameAddr<'_>,
    ) {
        let Some(user) = to.uri.user_unescaped() else {
            return;
        };
        if !self.settings.extensions.contains(&user) {
            return;
        }
        let agent = String::from_utf8_lossy(&user).into_owned();
        let requested = registrations::expires_of(
            msg.contact().and_then(|c| c.param(b"expires")),
            msg.header(HeaderName::Expires),
        );
        self.registrations
            .on_request(call_id, cseq, agent, requested, pkt.at, pkt.src);
    }

    fn on_register_response(
        &mut self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        code: u16,
        call_id: &[u8],
        cseq: u32,
    ) {
        let granted = registrations::expires_of(
            msg.contact().and_then(|c| c.param(b"expires")),
            msg.header(HeaderName::Expires),
        );
        let Some((change, gen)) = self
            .registrations
            .on_response(call_id, cseq, code, granted, pkt.at)
        else {
            return;
        };
        if let RegState::Registered { until } = change.state {
            let id = self.next_leg;
            self.next_leg += 1;
            self.reg_timers.insert(id, (change.agent.clone(), gen));
            self.deadlines
                .schedule(pkt.source, until, id, TimerKind::RegistrationExpiry);
        }
        self.events.push_back(Event::AgentRegistration(change));
    }

    /// The registration state of every agent phone seen registering.
    pub fn registrations(&self) -> impl Iterator<Item = (&str, RegState)> {
        self.registrations.all()
    }

    // ---- media ---------------------------------------------------------------------

    /// Records where `party` of the leg receives RTP and the payload types it named.
    fn note_sdp(&mut self, id: u64, party: Party, msg: &SipMessage<'_>) {
        let Some(body) = msg.sdp() else { return };
        let Ok(sdp) = Sdp::parse(body) else {
            self.stats.count_error("sdp_malformed");
            return;
        };
        let Some(audio) = sdp.audio() else { return };
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if let Some(h) = self.media.get_mut(leg.media) {
            for m in &audio.rtpmap {
                if let Ok(name) = std::str::from_utf8(m.encoding) {
                    h.media.note_rtpmap(m.payload_type, name, m.clock_rate);
                }
            }
        }
        let Some(ip) = audio.effective_connection(&sdp) else {
            return;
        };
        if audio.port == 0 || ip.is_unspecified() {
            return;
        }
        let addr = SocketAddr::new(ip, audio.port);
        let key = addr_key(&self.hasher, addr);
        let known = if key & ADDR_KEY_HASHED == 0 {
            leg.media_addrs.contains(&key)
        } else {
            leg.media_addrs_other().contains(&addr)
        };
        if !known {
            if leg.media_addrs.len() >= MAX_MEDIA_ADDRS {
                self.stats.count_error("sdp_too_many_addresses");
                return;
            }
            leg.media_addrs.push(key);
            if key & ADDR_KEY_HASHED != 0 {
                leg.cold_mut().media_addrs_other.push(addr);
            }
        }
        // An address is shared by the legs of an internal call (both agents announce
        // to each other) and may be reused by a later call once the earlier leg ended.
        let legs = &self.legs;
        self.media_addrs.update(key, |owners| {
            owners.retain(|o| {
                let o = AddrOwner(*o);
                o.leg() != id
                    && legs
                        .get(&o.leg())
                        .is_some_and(|l| l.state != LegState::Ended)
            });
            // Open legs sharing one address are an internal call (two) or a switch
            // that reuses a port; past a few, the newest announcer wins so the list
            // stays short.
            if owners.len() >= MAX_OWNERS_PER_ADDR {
                owners.remove(0);
            }
            owners.push(AddrOwner::new(id, party).0);
        });
    }

    /// The legs (and their party) whose SDP announced `addr`. A key that is a hash
    /// (not IPv4) may be shared by another address: those owners are left out by
    /// checking the leg's own addresses.
    fn addr_owners(&self, addr: SocketAddr) -> SmallVec<[(u64, Party); 2]> {
        let key = addr_key(&self.hasher, addr);
        let exact = key & ADDR_KEY_HASHED == 0;
        self.media_addrs
            .get(key)
            .iter()
            .map(|&o| (AddrOwner(o).leg(), AddrOwner(o).party()))
            .filter(|(id, _)| {
                exact
                    || self
                        .legs
                        .get(id)
                        .is_some_and(|l| l.media_addrs_other().contains(&addr))
            })
            .collect()
    }

    fn on_media(&mut self, pkt: &Captured<'_>) {
        match rtp::classify(pkt.payload) {
            Classified::Rtp => {}
            Classified::Rtcp => return self.on_rtcp(pkt),
            Classified::Other => {
                self.stats.other_packets += 1;
                return;
            }
        }
        let hdr = match rtp::parse(pkt.payload) {
            Ok(h) => h,
            Err(e) => {
                self.stats.count_error(e.kind());
                return;
            }
        };
        self.stats.rtp_packets += 1;
        let key = StreamKey::new(pkt.src, pkt.dst, hdr.ssrc);
        let taken = match self.streams.get(&key) {
            None => false,
            // Nearly every stream has one owner: no copy of the owner list.
            Some(&[o]) => self.on_leg_rtp(o.slot(), o.stream(), pkt.at, &hdr),
            Some(owners) => {
                let owners: SmallVec<[StreamOwner; 4]> = SmallVec::from_slice(owners);
                let mut taken = false;
                for o in owners {
                    taken |= self.on_leg_rtp(o.slot(), o.stream(), pkt.at, &hdr);
                }
                taken
            }
        };
        if taken {
            return;
        }
        // Unknown, or every owner has ended (lingering): the key belongs to a new call.
        let owners = self.open_streams(pkt, key, hdr.ssrc);
        if owners.is_empty() {
            self.stats.rtp_unmatched += 1;
        }
        for (slot, stream) in owners {
            self.on_leg_rtp(slot, stream, pkt.at, &hdr);
        }
    }

    /// RTCP (RFC 3550 §6.4, RFC 3611): report blocks and XR VoIP metrics attach to the
    /// stream whose SSRC they name, in the legs whose SDP address the packet goes to or
    /// comes from (the RTP port, or the port below for RTCP on port + 1).
    fn on_rtcp(&mut self, pkt: &Captured<'_>) {
        self.stats.rtcp_packets += 1;
        // Each leg the packet concerns, with the stream its report blocks describe: the
        // media the packet's sender receives, so it flows from the packet's destination
        // party (its RTP address, the port below for RTCP on port + 1) to its source.
        let mut legs: SmallVec<[ReportedStream; 2]> = SmallVec::new();
        for (is_dst, addr) in [(true, pkt.dst), (false, pkt.src)] {
            for a in [
                addr,
                SocketAddr::new(addr.ip(), addr.port().wrapping_sub(1)),
            ] {
                for (id, party) in self.addr_owners(a) {
                    let i = match legs.iter().position(|l| l.leg == id) {
                        Some(i) => i,
                        None => {
                            legs.push(ReportedStream {
                                leg: id,
                                src: pkt.dst,
                                dst: pkt.src,
                                from: None,
                            });
                            legs.len() - 1
                        }
                    };
                    let l = &mut legs[i];
                    if is_dst && l.from.is_none() {
                        (l.src, l.from) = (a, Some(party));
                    } else if !is_dst && l.dst == pkt.src {
                        l.dst = a;
                        l.from = l.from.or(Some(party.other()));
                    }
                }
            }
        }
        if legs.is_empty() {
            self.stats.rtp_unmatched += 1;
            return;
        }
        for packet in crate::wire::rtcp::walk(pkt.payload) {
            let packet = match packet {
                Ok(p) => p,
                Err(e) => {
                    self.stats.count_error(e.kind());
                    return;
                }
            };
            use crate::wire::rtcp::{RtcpPacket, XrBlock};
            let blocks = match packet {
                RtcpPacket::SenderReport(sr) => Some(sr.reports),
                RtcpPacket::ReceiverReport(rr) => Some(rr.reports),
                RtcpPacket::ExtendedReport(xr) => {
                    for block in xr.blocks.flatten() {
                        if let XrBlock::VoipMetrics(m) = block {
                            for l in &legs {
                                if let Some((media, store)) = self.leg_media(l.leg) {
                                    l.open_in(media, store, m.ssrc);
                                    media.on_voip_metrics(
                                        store,
                                        m.ssrc,
                                        m.round_trip_delay_ms,
                                        m.mos_lq(),
                                        m.r_factor(),
                                    );
                                }
                            }
                        }
                    }
                    None
                }
                _ => None,
            };
            for b in blocks.into_iter().flatten() {
                for l in &legs {
                    if let Some((media, store)) = self.leg_media(l.leg) {
                        l.open_in(media, store, b.ssrc);
                        media.on_report_block(
                            store,
                            b.ssrc,
                            b.fraction_lost_pct(),
                            b.cumulative_lost,
                            b.jitter,
                        );
                    }
                }
            }
        }
    }

    /// The media of leg `id`, and the store of the streams.
    fn leg_media(&mut self, id: u64) -> Option<(&mut LegMedia, &mut StreamStore)> {
        let slot = self.legs.get(&id)?.media;
        self.media
            .with_streams(slot)
            .map(|(h, store)| (&mut h.media, store))
    }

    /// A stream not seen before: it goes to the legs whose SDP announced its
    /// destination (it flows towards that party), else its source (symmetric RTP).
    /// An internal call's stream belongs to both agents' legs.
    fn open_streams(&mut self, pkt: &Captured<'_>, key: StreamKey, ssrc: u32) -> StreamOwners {
        let mut parties: SmallVec<[(u64, Party); 2]> = self
            .addr_owners(pkt.dst)
            .into_iter()
            .map(|(id, to)| (id, to.other()))
            .collect();
        if parties.is_empty() {
            parties = self.addr_owners(pkt.src);
        }
        let mut owners = StreamOwners::new();
        for (id, from) in parties {
            let Some(leg) = self.legs.get(&id) else {
                continue;
            };
            if leg.state == LegState::Ended {
                continue;
            }
            let slot = leg.media;
            let Some((h, store)) = self.media.with_streams(slot) else {
                continue;
            };
            match h.media.open_stream(store, pkt.src, pkt.dst, ssrc, from) {
                Some(stream) => owners.push((slot, stream)),
                None => self.stats.count_error("rtp_too_many_streams"),
            }
        }
        if !owners.is_empty() {
            self.streams.insert(key, &owners);
        }
        owners
    }

    /// One RTP packet of a leg's stream (the leg's media slot and the stream in the
    /// slab's store); false when the leg has ended (the packet is not its). Reads and
    /// writes the media slab only, never the `Leg`.
    fn on_leg_rtp(
        &mut self,
        slot: MediaSlot,
        stream: StreamId,
        at: CaptureTime,
        hdr: &rtp::RtpHeader,
    ) -> bool {
        let one_way_min = self.settings.one_way_min_ms;
        let media_timeout = self.settings.media_timeout_ms;
        let Some((h, store)) = self.media.with_streams(slot) else {
            return false;
        };
        if h.ended {
            return false;
        }
        let id = h.leg;
        h.media.on_packet(store, stream, at, hdr, h.talking);
        if h.talking && !h.media_timer {
            h.media_timer = true;
            self.deadlines.schedule(
                h.source,
                at.plus_millis(media_timeout),
                id,
                TimerKind::MediaTimeout,
            );
        }
        if h.media.one_way_ms() > one_way_min && !h.one_way_raised {
            let flowing = h.media.flowing_direction();
            let became_true = h
                .media
                .one_way_since()
                .map_or(at, |s| s.plus_millis(one_way_min).min(at));
            if let Some(v) =
                rules::one_way_audio::check(h.media.one_way_ms(), one_way_min, flowing, became_true)
            {
                h.one_way_raised = true;
                self.raise(id, v);
            }
        }
        true
    }

    // ---- endings -----------------------------------------------------------------

    fn end_unanswered(&mut self, id: u64, at: CaptureTime, outcome: Outcome, reason: EndReason) {
        let late_ms = self.settings.late_answer_ms;
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let ring_start = leg.ring_start();
        let ring_ms = at.millis_since(ring_start);
        leg.rec.ring_ms = OptMs::some(ring_ms);
        leg.rec.outcome = Some(outcome);
        if leg.is_inbound() && !leg.has_raised(RuleId::LateAnswer) {
            if let Some(v) = rules::late_answer::check(ring_start, ring_ms, late_ms) {
                self.raise(id, v);
            }
        }
        self.end_leg(id, Some(at), reason, HangupBy::None);
    }

    /// The first BYE's end is settled: answered, timed out waiting, or the capture ended.
    fn settle_bye(&mut self, id: u64) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let Some(bye) = leg.bye() else { return };
        if leg.state != LegState::Terminating {
            return;
        }
        leg.rec.glare = bye.glare;
        let hangup_by = match bye.by {
            Party::Agent => HangupBy::Agent,
            Party::Customer => HangupBy::Customer,
        };
        let handed_over = leg.transfers.handed_over();
        let reason = if handed_over {
            EndReason::Transfer
        } else {
            EndReason::Bye
        };
        let facts = rules::agent_hangup_first::Facts {
            inbound: leg.is_inbound(),
            answered: leg.rec.answered_at.is_some(),
            agent_sent_first_bye: bye.by == Party::Agent,
            glare: bye.glare,
            transferred_before: handed_over,
        };
        if let Some(v) = rules::agent_hangup_first::check(&facts, bye.at) {
            self.raise(id, v);
        }
        self.end_leg(id, Some(bye.at), reason, hangup_by);
    }

    fn close_at_capture_end(&mut self, id: u64) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.state == LegState::Ringing {
            if let Some(cancel) = leg.cancel_at.get() {
                leg.rec.outcome = Some(Outcome::Cancelled);
                leg.rec.ring_ms = OptMs::some(cancel.millis_since(leg.ring_start()));
            }
        }
        let last = leg.last_event_at;
        leg.holds.close_all(last);
        self.end_leg(id, None, EndReason::CaptureEnd, HangupBy::None);
    }

    fn end_leg(
        &mut self,
        id: u64,
        at: Option<CaptureTime>,
        reason: EndReason,
        hangup_by: HangupBy,
    ) {
        let min_talk = self.settings.min_talk_ms;
        let long_hold_ms = self.settings.long_hold_ms;
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.state == LegState::Ended {
            return;
        }
        let end = at.unwrap_or(leg.last_event_at);
        leg.holds.close_all(end);
        leg.rec.hold_ms = leg.holds.agent_hold_ms(end);
        leg.rec.ended_at = at.map_or(OptTime::NONE, OptTime::some);
        leg.rec.end_reason = Some(reason);
        leg.rec.hangup_by = hangup_by;
        let answered = leg.rec.answered_at.is_some();
        let inbound = leg.is_inbound();
        leg.rec.survey = if reason == EndReason::Timeout {
            leg.transfers.survey(inbound, answered, HangupBy::None)
        } else {
            leg.transfers.survey(inbound, answered, hangup_by)
        };
        leg.state = LegState::Ended;
        leg.sync_media(&mut self.media);
        let mut raise = Vec::new();
        if !leg.has_raised(RuleId::LongHold) {
            if let Some(h) = leg
                .holds
                .episodes()
                .iter()
                .find(|h| h.by == Party::Agent && h.ms(end) > long_hold_ms)
            {
                raise.extend(rules::long_hold::check(h.start_at, h.ms(end), long_hold_ms));
            }
        }
        if reason != EndReason::Timeout && hangup_by == HangupBy::Agent {
            let talk = leg
                .rec
                .answered_at
                .get()
                .map(|a| end.millis_since(a))
                .unwrap_or(0);
            raise.extend(rules::survey_missing::check(
                inbound,
                answered,
                true,
                leg.rec.survey,
                talk,
                min_talk,
                end,
            ));
        }
        if let (Some((allow, queues)), Some(answered_at)) =
            (&self.settings.personal_call, leg.rec.answered_at.get())
        {
            let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            let v = match leg.rec.direction {
                Direction::Outbound => leg.rec.text.get(Text::Dialled).and_then(|d| {
                    rules::personal_call::check_outbound(&lossy(d), allow, answered_at)
                }),
                Direction::Inbound => rules::personal_call::check_inbound(
                    leg.rec.text.get(Text::ToUser).map(lossy).as_deref(),
                    queues,
                    answered_at,
                    end.millis_since(answered_at),
                ),
                Direction::Internal => None,
            };
            raise.extend(v);
        }
        let codecs = &self.settings.codec_constants;
        let store = self.media.streams();
        let media = self.media.get(leg.media).map(|h| &h.media);
        let records = media.map_or_else(Vec::new, |m| {
            m.records(store, &|c| {
                codecs
                    .iter()
                    .find(|(id, _)| *id == c)
                    .map_or_else(|| CodecImpairment::for_codec(c), |(_, k)| *k)
            })
        });
        if !records.is_empty() {
            leg.cold_mut().media = records;
        }
        if answered && media.is_some_and(|m| m.has_rtp()) {
            let (min_mos, max_loss) = (self.settings.min_mos, self.settings.max_loss_pct);
            raise.extend(rules::poor_audio::check(
                leg.media_records(),
                min_mos,
                max_loss,
                end,
            ));
        }
        let src = leg.rec.source;
        for v in raise {
            self.raise(id, v);
        }
        self.stats.legs_ended += 1;
        self.deadlines
            .schedule(src, end.plus_millis(LINGER_MS), id, TimerKind::Linger);
        self.emit_leg(id, end, |at, leg| Event::LegEnded { at, leg });
    }

    fn remove_leg(&mut self, id: u64) {
        let Some(leg) = self.legs.remove(&id) else {
            return;
        };
        if let Some(h) = self.media.get(leg.media) {
            for (src, dst, ssrc) in h.media.keys(self.media.streams()) {
                self.streams
                    .remove_leg(StreamKey::new(src, dst, ssrc), leg.media);
            }
        }
        self.media.remove(leg.media);
        for &key in &leg.media_addrs {
            self.media_addrs
                .update(key, |owners| owners.retain(|o| AddrOwner(*o).leg() != id));
        }
        let call_key = self.call_key(leg.rec.call_id());
        self.by_call.remove(call_key, id);
    }

    // ---- deadlines -----------------------------------------------------------------

    fn fire(&mut self, id: u64, kind: TimerKind, due: CaptureTime) {
        if kind == TimerKind::RegistrationExpiry {
            if let Some((agent, gen)) = self.reg_timers.remove(&id) {
                if let Some(change) = self.registrations.on_expiry(&agent, gen, due) {
                    self.events.push_back(Event::AgentRegistration(change));
                }
            }
            return;
        }
        let s = (
            self.settings.late_answer_ms,
            self.settings.ring_timeout_ms,
            self.settings.long_hold_ms,
        );
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        let ringing = leg.state == LegState::Ringing;
        match kind {
            TimerKind::RegistrationExpiry => {}
            TimerKind::Linger => {
                if leg.state == LegState::Ended {
                    self.remove_leg(id);
                }
            }
            _ if leg.state == LegState::Ended => {}
            TimerKind::LateAnswer => {
                let start = leg.ring_start();
                let deadline = rules::late_answer::deadline(start, s.0);
                if ringing
                    && leg.is_inbound()
                    && !leg.has_raised(RuleId::LateAnswer)
                    && leg.cancel_at.is_none()
                {
                    if due >= deadline {
                        self.raise(id, rules::late_answer::still_ringing(start, s.0));
                    } else {
                        // Queued at the INVITE; ringing began later (180/183).
                        let src = leg.rec.source;
                        self.deadlines
                            .schedule(src, deadline, id, TimerKind::LateAnswer);
                    }
                }
            }
            TimerKind::RingTimeout => {
                let start = leg.ring_start();
                let end = start.plus_millis(s.1);
                if ringing && leg.cancel_at.is_none() {
                    if due >= end {
                        self.end_unanswered(id, end, Outcome::Failed, EndReason::Timeout);
                    } else {
                        // Queued at the INVITE; ringing began later (180/183).
                        let src = leg.rec.source;
                        self.deadlines
                            .schedule(src, end, id, TimerKind::RingTimeout);
                    }
                }
            }
            TimerKind::CancelGrace => {
                if let (true, Some(cancel)) = (ringing, leg.cancel_at.get()) {
                    self.end_unanswered(id, cancel, Outcome::Cancelled, EndReason::Cancel);
                }
            }
            TimerKind::ByeGrace => self.settle_bye(id),
            TimerKind::LongHold => {
                if let Some(h) = leg.holds.open_agent_hold().cloned() {
                    if !leg.has_raised(RuleId::LongHold)
                        && due >= rules::long_hold::deadline(h.start_at, s.2)
                    {
                        self.raise(id, rules::long_hold::still_held(h.start_at, s.2));
                    }
                }
            }
            TimerKind::MediaTimeout => {
                let slot = self.media.get_mut(leg.media);
                let last_rtp = slot.as_ref().and_then(|h| h.media.last_rtp_at());
                if let Some(h) = slot {
                    h.media_timer = false;
                }
                let timeout = self.settings.media_timeout_ms;
                // Time without RTP counts off hold only: from the last packet or the
                // end of the latest hold, whichever is later.
                let resumed = leg.holds.episodes().iter().filter_map(|h| h.end_at).max();
                let last = last_rtp.max(resumed).unwrap_or(due);
                if leg.state != LegState::Confirmed {
                    return;
                }
                let next = if leg.holds.any_open() {
                    // The media timeout does not run during a hold.
                    Some(due.plus_millis(timeout))
                } else if last.plus_millis(timeout) > due {
                    Some(last.plus_millis(timeout))
                } else {
                    None
                };
                match next {
                    Some(at) => {
                        if let Some(h) = self.media.get_mut(leg.media) {
                            h.media_timer = true;
                        }
                        let src = leg.rec.source;
                        self.deadlines
                            .schedule(src, at, id, TimerKind::MediaTimeout);
                    }
                    None => self.end_leg(id, Some(due), EndReason::Timeout, HangupBy::None),
                }
            }
            TimerKind::MaxLeg => {
                if leg.rec.ring_ms.get().is_none() {
                    leg.rec.ring_ms = OptMs::some(due.millis_since(leg.ring_start()));
                }
                if ringing {
                    leg.rec.outcome = Some(Outcome::Failed);
                }
                self.end_leg(id, Some(due), EndReason::Timeout, HangupBy::None);
            }
        }
    }

    // ---- helpers ---------------------------------------------------------------------

    fn raise(&mut self, id: u64, v: Violation) {
        let Some(leg) = self.legs.get_mut(&id) else {
            return;
        };
        if leg.has_raised(v.rule) {
            return;
        }
        leg.cold_mut().violations.push(v.clone());
        self.stats.count_violation(v.rule);
        let at = v.at;
        let rec = Box::new(leg.record(&self.settings.roster));
        self.events.push_back(Event::ViolationRaised {
            at,
            violation: v,
            leg: rec,
        });
    }

    fn emit_leg(
        &mut self,
        id: u64,
        at: CaptureTime,
        make: impl FnOnce(CaptureTime, Box<LegRecord>) -> Event,
    ) {
        if let Some(leg) = self.legs.get(&id) {
            self.events
                .push_back(make(at, Box::new(leg.record(&self.settings.roster))));
        }
    }

    /// The legs of `call_id`, oldest first.
    fn call_legs(&self, call_id: &[u8]) -> SmallVec<[u64; 2]> {
        self.by_call
            .get(self.call_key(call_id))
            .iter()
            .copied()
            .filter(|id| {
                self.legs
                    .get(id)
                    .is_some_and(|l| l.rec.call_id() == call_id)
            })
            .collect()
    }

    fn call_key(&self, call_id: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(call_id)
    }

    fn is_survey(&self, user: &[u8]) -> bool {
        self.settings
            .survey_users
            .iter()
            .any(|s| s.as_slice() == user)
    }

    fn correlation_of(
        &self,
        pkt: &Captured<'_>,
        msg: &SipMessage<'_>,
        call_id: &[u8],
    ) -> Option<Vec<u8>> {
        let from_header = self
            .settings
            .correlation_header
            .as_deref()
            .and_then(|h| msg.header_by_name(h));
        from_header
            .or(pkt.correlation_id)
            .filter(|c| !c.is_empty() && *c != call_id)
            .map(<[u8]>::to_vec)
    }

    fn remember_customer(&mut self, call_id: &[u8], customer: Option<String>) {
        if self.customers.contains_key(call_id) {
            return;
        }
        if self.customer_order.len() >= MAX_CUSTOMER_DIALOGS {
            if let Some(old) = self.customer_order.pop_front() {
                self.customers.remove(&old);
            }
        }
        self.customers.insert(call_id.to_vec(), customer);
        self.customer_order.push_back(call_id.to_vec());
    }
}

/// Whether the audio offer of a re-INVITE/UPDATE puts the media on hold; None when the
/// request carries no usable audio offer (RFC 3264 §8.4).
fn offer_holds(msg: &SipMessage<'_>) -> Option<bool> {
    let body = msg.sdp()?;
    let sdp = Sdp::parse(body).ok()?;
    let audio = sdp.audio()?;
    if audio.port == 0 {
        return None;
    }
    Some(audio.is_hold(&sdp))
}

/// The customer's number as text, or None when anonymous.
fn customer_text(user: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(user).trim().to_string();
    if s.is_empty() || s.eq_ignore_ascii_case("anonymous") || s.eq_ignore_ascii_case("restricted") {
        None
    } else {
        Some(s)
    }
}
