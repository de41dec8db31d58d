//! `agent_hangup_first` (Art. 74): on an answered inbound leg the agent's side sent the
//! first BYE, and the customer had not been handed over (a successful transfer, to the
//! survey or elsewhere) first. Glare (both BYEs crossing) and timeouts never raise it.

use super::{RuleId, Violation};
use crate::time::CaptureTime;

pub struct Facts {
    pub inbound: bool,
    pub answered: bool,
    pub agent_sent_first_bye: bool,
    pub glare: bool,
    pub transferred_before: bool,
}

pub fn check(f: &Facts, bye_at: CaptureTime) -> Option<Violation> {
    if f.inbound && f.answered && f.agent_sent_first_bye && !f.glare && !f.transferred_before {
        Some(Violation {
            rule: RuleId::AgentHangupFirst,
            at: bye_at,
            detail: "agent hung up before the customer".into(),
        })
    } else {
        None
    }
}
