//! The agent leg record: what callwatch reports for one agent in one SIP dialog (SPEC
//! §2, §3, §5). The engine fills it as the leg progresses; [`crate::report`] renders it
//! (times in the configured zone, customer numbers masked).

use std::net::SocketAddr;

use super::rules::Violation;
use crate::time::CaptureTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The agent's phone is the called party (UAS).
    Inbound,
    /// The agent's phone places the call.
    Outbound,
    /// Both ends are agents.
    Internal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Answered,
    Cancelled,
    Rejected,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HangupBy {
    Agent,
    Customer,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Survey {
    Transferred,
    Failed,
    Missing,
    NotRequired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndReason {
    Bye,
    Cancel,
    Rejected,
    Timeout,
    Transfer,
    CaptureEnd,
}

/// Which side of the leg did something: the agent's phone or the switch (customer) side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    Agent,
    Customer,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
            Direction::Internal => "internal",
        }
    }
}
impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
            Outcome::Failed => "failed",
        }
    }
}
impl HangupBy {
    pub fn as_str(self) -> &'static str {
        match self {
            HangupBy::Agent => "agent",
            HangupBy::Customer => "customer",
            HangupBy::None => "none",
        }
    }
}
impl Survey {
    pub fn as_str(self) -> &'static str {
        match self {
            Survey::Transferred => "transferred",
            Survey::Failed => "failed",
            Survey::Missing => "missing",
            Survey::NotRequired => "not_required",
        }
    }
}
impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Bye => "bye",
            EndReason::Cancel => "cancel",
            EndReason::Rejected => "rejected",
            EndReason::Timeout => "timeout",
            EndReason::Transfer => "transfer",
            EndReason::CaptureEnd => "capture_end",
        }
    }
}
impl Party {
    pub fn other(self) -> Party {
        match self {
            Party::Agent => Party::Customer,
            Party::Customer => Party::Agent,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Party::Agent => "agent",
            Party::Customer => "customer",
        }
    }
}

/// One hold episode (RFC 3264 §8.4).
#[derive(Clone, Debug, PartialEq)]
pub struct Hold {
    pub start_at: CaptureTime,
    /// None while the episode goes on.
    pub end_at: Option<CaptureTime>,
    pub by: Party,
}

impl Hold {
    pub fn ms(&self, now: CaptureTime) -> u64 {
        self.end_at.unwrap_or(now).millis_since(self.start_at)
    }
}

/// Figures of one RTP stream of the leg (filled by the media path).
#[derive(Clone, Debug, PartialEq)]
pub struct MediaRecord {
    pub ssrc: u32,
    pub from: Party,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub codec: Option<String>,
    pub packets: u64,
    pub expected: i64,
    pub lost: i64,
    pub loss_pct: f64,
    pub jitter_ms: f64,
    pub max_jitter_ms: f64,
    pub max_delta_ms: f64,
    pub mos: Option<f64>,
    /// The far end's RTCP view of this stream, when it sends reports.
    pub rtcp: Option<super::media::leg::RtcpFigures>,
}

/// The record of an agent leg, as known so far (while live) or in full (ended).
#[derive(Clone, Debug, PartialEq)]
pub struct LegRecord {
    /// Stable across capture nodes: derived from Call-ID, the caller's From tag and the agent.
    pub leg_id: String,
    pub call_id: Vec<u8>,
    pub linked_call_id: Option<Vec<u8>>,
    /// The agent's extension.
    pub agent: String,
    pub agent_id: String,
    pub agent_name: Option<String>,
    pub team: Option<String>,
    pub direction: Direction,
    /// Unmasked; [`crate::report`] masks it.
    pub customer: Option<String>,
    /// True when `customer` is an extension or a survey user (never masked).
    pub customer_is_internal: bool,
    pub invite_at: CaptureTime,
    pub ring_start_at: Option<CaptureTime>,
    pub answered_at: Option<CaptureTime>,
    pub ended_at: Option<CaptureTime>,
    pub ring_ms: Option<u64>,
    pub outcome: Option<Outcome>,
    pub hangup_by: HangupBy,
    pub survey: Survey,
    pub glare: bool,
    pub hold_ms: u64,
    pub holds: Vec<Hold>,
    pub media: Vec<MediaRecord>,
    pub end_reason: Option<EndReason>,
    pub violations: Vec<Violation>,
    /// The phone's SIP address as seen on the wire.
    pub phone: Option<SocketAddr>,
    /// Capture source that saw the leg's first message.
    pub source: super::input::SourceId,
}

#[cfg(test)]
impl LegRecord {
    /// The sinks' unit tests start from this: an inbound leg of `agent` invited at
    /// `invite_at` on Call-ID `call`, nothing known of it yet (leg id `{call}-{agent}`).
    pub fn invited_for_tests(call: &str, agent: &str, invite_at: CaptureTime) -> LegRecord {
        LegRecord {
            leg_id: format!("{call}-{agent}"),
            call_id: call.as_bytes().to_vec(),
            linked_call_id: None,
            agent: agent.into(),
            agent_id: agent.into(),
            agent_name: None,
            team: None,
            direction: Direction::Inbound,
            customer: None,
            customer_is_internal: false,
            invite_at,
            ring_start_at: None,
            answered_at: None,
            ended_at: None,
            ring_ms: None,
            outcome: None,
            hangup_by: HangupBy::None,
            survey: Survey::NotRequired,
            glare: false,
            hold_ms: 0,
            holds: Vec::new(),
            media: Vec::new(),
            end_reason: None,
            violations: Vec::new(),
            phone: None,
            source: super::input::SourceId(0),
        }
    }
}
