//! What the engine tells the world: past-tense facts, drained with `poll_event`. Each
//! carries the leg as known at that moment.

use super::leg::LegRecord;
use super::registrations::RegChange;
use super::rules::Violation;
use crate::time::CaptureTime;

#[derive(Clone, Debug)]
pub enum Event {
    LegRinging {
        at: CaptureTime,
        leg: Box<LegRecord>,
    },
    LegAnswered {
        at: CaptureTime,
        leg: Box<LegRecord>,
    },
    LegHeld {
        at: CaptureTime,
        leg: Box<LegRecord>,
    },
    LegResumed {
        at: CaptureTime,
        leg: Box<LegRecord>,
    },
    ViolationRaised {
        at: CaptureTime,
        violation: Violation,
        leg: Box<LegRecord>,
    },
    LegEnded {
        at: CaptureTime,
        leg: Box<LegRecord>,
    },
    /// An agent's phone registered, unregistered, or let its registration expire.
    AgentRegistration(RegChange),
}

impl Event {
    pub fn at(&self) -> CaptureTime {
        match self {
            Event::LegRinging { at, .. }
            | Event::LegAnswered { at, .. }
            | Event::LegHeld { at, .. }
            | Event::LegResumed { at, .. }
            | Event::ViolationRaised { at, .. }
            | Event::LegEnded { at, .. } => *at,
            Event::AgentRegistration(c) => c.at,
        }
    }

    /// The leg the event is about; None for agent events.
    pub fn leg(&self) -> Option<&LegRecord> {
        match self {
            Event::LegRinging { leg, .. }
            | Event::LegAnswered { leg, .. }
            | Event::LegHeld { leg, .. }
            | Event::LegResumed { leg, .. }
            | Event::ViolationRaised { leg, .. }
            | Event::LegEnded { leg, .. } => Some(leg),
            Event::AgentRegistration(_) => None,
        }
    }
}
