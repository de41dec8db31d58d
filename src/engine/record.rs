//! What the engine keeps of an open leg's record, compactly, and the public
//! [`LegRecord`] built from it whenever an event carries the leg.
//!
//! Issue 4 counts memory per open leg. The public record is made for readers (owned
//! strings, `Option`s of 16 bytes, the roster's names copied into every leg); the
//! engine keeps instead: the leg's texts (Call-ID, tags, agent, customer, dialled and
//! To user) in one allocation, times as one word each, the phone's address packed, and
//! nothing it can derive when it builds the record (leg id, the roster's agent id,
//! name and team, the hold episodes, which the hold tracker has). The record built is
//! field for field the one the engine kept before (SPEC §5; `analyze` output unchanged).

use std::net::{Ipv4Addr, SocketAddr};

use super::agents::Roster;
use super::copies::fingerprint;
use super::input::SourceId;
use super::leg::{Direction, EndReason, HangupBy, Hold, LegRecord, MediaRecord, Outcome, Survey};
use super::rules::Violation;
use crate::time::CaptureTime;

/// An optional capture time in one word: `i64::MIN` (never a capture time: pcap and HEP
/// times are unsigned seconds since 1970) means none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptTime(i64);

impl Default for OptTime {
    fn default() -> OptTime {
        OptTime::NONE
    }
}

impl OptTime {
    pub const NONE: OptTime = OptTime(i64::MIN);

    pub fn some(at: CaptureTime) -> OptTime {
        OptTime(at.0)
    }

    pub fn get(self) -> Option<CaptureTime> {
        (self.0 != i64::MIN).then_some(CaptureTime(self.0))
    }

    pub fn is_some(self) -> bool {
        self.0 != i64::MIN
    }

    pub fn is_none(self) -> bool {
        self.0 == i64::MIN
    }
}

/// An optional millisecond count in one word (`u64::MAX`, 584 million years, is none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptMs(u64);

impl OptMs {
    pub const NONE: OptMs = OptMs(u64::MAX);

    pub fn some(ms: u64) -> OptMs {
        OptMs(ms.min(u64::MAX - 1))
    }

    pub fn get(self) -> Option<u64> {
        (self.0 != u64::MAX).then_some(self.0)
    }
}

/// An optional address in 16 bytes (a `SocketAddr` is 32): IPv4 inline, any other
/// boxed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackedAddr {
    None,
    V4(u32, u16),
    Other(Box<SocketAddr>),
}

impl PackedAddr {
    pub fn new(addr: Option<SocketAddr>) -> PackedAddr {
        match addr {
            None => PackedAddr::None,
            Some(SocketAddr::V4(a)) => PackedAddr::V4(a.ip().to_bits(), a.port()),
            Some(a) => PackedAddr::Other(Box::new(a)),
        }
    }

    pub fn get(&self) -> Option<SocketAddr> {
        match self {
            PackedAddr::None => None,
            PackedAddr::V4(ip, port) => {
                Some(SocketAddr::new(Ipv4Addr::from_bits(*ip).into(), *port))
            }
            PackedAddr::Other(a) => Some(**a),
        }
    }

    /// Whether this is `addr` (false when none).
    pub fn is(&self, addr: SocketAddr) -> bool {
        match (self, addr) {
            (PackedAddr::V4(ip, port), SocketAddr::V4(a)) => {
                *ip == a.ip().to_bits() && *port == a.port()
            }
            (PackedAddr::Other(a), addr) => **a == addr,
            _ => false,
        }
    }
}

/// The texts of one leg, in [`LegText`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Text {
    CallId = 0,
    /// The caller's From tag.
    CallerTag,
    /// The agent's extension (UTF-8).
    Agent,
    /// The callee's To tag, once a response carried one.
    CalleeTag,
    /// The customer number (UTF-8, unmasked).
    Customer,
    /// The Call-ID of the linked B2BUA dialog.
    LinkedCallId,
    /// The dialled user (Request-URI user of the first INVITE copy).
    Dialled,
    /// The To user of the initial INVITE.
    ToUser,
}

const TEXTS: usize = 8;

/// Length prefix of an absent text.
const ABSENT: u32 = u32::MAX;

/// A leg's texts in one allocation: each is a 4-byte length (big-endian; `u32::MAX`
/// when absent) then its bytes, in [`Text`] order. Set once at the leg's start; the
/// callee tag, which comes later, rebuilds it.
#[derive(Clone, Debug, Default)]
pub struct LegText {
    bytes: Box<[u8]>,
}

impl LegText {
    /// The texts, indexed by [`Text`].
    pub fn new(texts: [Option<&[u8]>; TEXTS]) -> LegText {
        let len = texts.iter().map(|t| 4 + t.map_or(0, <[u8]>::len)).sum();
        let mut bytes = Vec::with_capacity(len);
        for t in texts {
            match t {
                // Longer than 4 GiB cannot come in one SIP message.
                Some(t) if t.len() < ABSENT as usize => {
                    bytes.extend_from_slice(&(t.len() as u32).to_be_bytes());
                    bytes.extend_from_slice(t);
                }
                _ => bytes.extend_from_slice(&ABSENT.to_be_bytes()),
            }
        }
        LegText {
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The texts in [`Text`] order, each read once from its length prefix.
    fn iter(&self) -> impl Iterator<Item = Option<&[u8]>> {
        let mut rest = &*self.bytes;
        std::iter::from_fn(move || {
            let (len, tail) = rest.split_first_chunk::<4>()?;
            let len = u32::from_be_bytes(*len);
            if len == ABSENT {
                rest = tail;
                return Some(None);
            }
            let (text, tail) = tail.split_at_checked(len as usize)?;
            rest = tail;
            Some(Some(text))
        })
    }

    fn all(&self) -> [Option<&[u8]>; TEXTS] {
        let mut out = [None; TEXTS];
        for (slot, text) in out.iter_mut().zip(self.iter()) {
            *slot = text;
        }
        out
    }

    pub fn get(&self, which: Text) -> Option<&[u8]> {
        self.iter().nth(which as usize).flatten()
    }

    /// A text that is always there (Call-ID, caller tag, agent): empty if not.
    pub fn req(&self, which: Text) -> &[u8] {
        self.get(which).unwrap_or(b"")
    }

    /// Replaces one text.
    pub fn set(&mut self, which: Text, value: Option<&[u8]>) {
        let mut all = self.all();
        all[which as usize] = value;
        *self = LegText::new(all);
    }

    fn string(&self, which: Text) -> Option<String> {
        self.get(which)
            .map(|t| String::from_utf8_lossy(t).into_owned())
    }
}

/// The engine's record of an open leg; [`LegFacts::record`] builds the public one.
#[derive(Debug)]
pub struct LegFacts {
    pub text: LegText,
    pub invite_at: CaptureTime,
    pub ring_start_at: OptTime,
    pub answered_at: OptTime,
    pub ended_at: OptTime,
    pub ring_ms: OptMs,
    pub hold_ms: u64,
    /// The phone's SIP address as seen on the wire.
    pub phone: PackedAddr,
    pub source: SourceId,
    pub direction: Direction,
    pub customer_is_internal: bool,
    pub glare: bool,
    pub outcome: Option<Outcome>,
    pub hangup_by: HangupBy,
    pub survey: Survey,
    pub end_reason: Option<EndReason>,
}

impl LegFacts {
    pub fn call_id(&self) -> &[u8] {
        self.text.req(Text::CallId)
    }

    pub fn caller_tag(&self) -> &[u8] {
        self.text.req(Text::CallerTag)
    }

    pub fn agent(&self) -> &[u8] {
        self.text.req(Text::Agent)
    }

    /// The public record as known now: `roster` names the agent; the leg's hold
    /// episodes, violations and media figures (set at its end) are kept elsewhere.
    pub fn record(
        &self,
        roster: &Roster,
        holds: &[Hold],
        violations: &[Violation],
        media: &[MediaRecord],
    ) -> LegRecord {
        let [call_id, caller_tag, agent, ..] = self.text.all();
        let (call_id, caller_tag, agent) = (
            call_id.unwrap_or(b""),
            caller_tag.unwrap_or(b""),
            agent.unwrap_or(b""),
        );
        let agent = String::from_utf8_lossy(agent).into_owned();
        let info = roster.lookup(&agent);
        LegRecord {
            leg_id: leg_id(call_id, caller_tag, &agent),
            call_id: call_id.to_vec(),
            linked_call_id: self.text.get(Text::LinkedCallId).map(<[u8]>::to_vec),
            agent_id: info
                .map(|i| i.agent_id.clone())
                .unwrap_or_else(|| agent.clone()),
            agent_name: info.and_then(|i| i.name.clone()),
            team: info.and_then(|i| i.team.clone()),
            agent,
            direction: self.direction,
            customer: self.text.string(Text::Customer),
            customer_is_internal: self.customer_is_internal,
            invite_at: self.invite_at,
            ring_start_at: self.ring_start_at.get(),
            answered_at: self.answered_at.get(),
            ended_at: self.ended_at.get(),
            ring_ms: self.ring_ms.get(),
            outcome: self.outcome,
            hangup_by: self.hangup_by,
            survey: self.survey,
            glare: self.glare,
            hold_ms: self.hold_ms,
            holds: holds.to_vec(),
            media: media.to_vec(),
            end_reason: self.end_reason,
            violations: violations.to_vec(),
            phone: self.phone.get(),
            source: self.source,
        }
    }
}

/// A leg id that every capture node derives alike: FNV-1a of Call-ID, the caller's From
/// tag and the agent.
pub fn leg_id(call_id: &[u8], from_tag: &[u8], agent: &str) -> String {
    format!(
        "{:016x}",
        fingerprint(&[call_id, from_tag, agent.as_bytes()])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_absent_and_empty_apart() {
        let mut t = LegText::new([
            Some(b"call@h"),
            Some(b""),
            Some(b"8001"),
            None,
            Some(b"13800138000"),
            None,
            Some(b"96000"),
            Some(b"q"),
        ]);
        assert_eq!(t.get(Text::CallId), Some(&b"call@h"[..]));
        assert_eq!(t.get(Text::CallerTag), Some(&b""[..]));
        assert_eq!(t.get(Text::CalleeTag), None);
        assert_eq!(t.get(Text::LinkedCallId), None);
        assert_eq!(t.get(Text::ToUser), Some(&b"q"[..]));
        t.set(Text::CalleeTag, Some(b"tag-b"));
        assert_eq!(t.get(Text::CalleeTag), Some(&b"tag-b"[..]));
        assert_eq!(t.get(Text::Customer), Some(&b"13800138000"[..]));
        assert_eq!(t.get(Text::Dialled), Some(&b"96000"[..]));
        assert_eq!(t.req(Text::Agent), b"8001");
    }

    #[test]
    fn packed_times_and_addresses() {
        assert_eq!(OptTime::NONE.get(), None);
        assert_eq!(OptTime::some(CaptureTime(-5)).get(), Some(CaptureTime(-5)));
        assert_eq!(OptMs::some(0).get(), Some(0));
        assert_eq!(OptMs::NONE.get(), None);
        let v4: SocketAddr = "10.0.0.1:5060".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5062".parse().unwrap();
        for a in [v4, v6] {
            let p = PackedAddr::new(Some(a));
            assert_eq!(p.get(), Some(a));
            assert!(p.is(a));
        }
        assert!(!PackedAddr::new(Some(v4)).is(v6));
        assert!(!PackedAddr::None.is(v4));
        assert_eq!(std::mem::size_of::<PackedAddr>(), 16);
    }
}
