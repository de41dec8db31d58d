//! `one_way_audio` (Art. 88: a phone fault is reported at once): on an answered leg,
//! media flowed in one direction only for more than `rules.one_way_audio.min_ms`. Holds
//! do not count, nor legs whose RTP is not visible at all (HEP carries no RTP).

use super::{secs, RuleId, Violation};
use crate::engine::leg::Party;
use crate::time::CaptureTime;

pub fn check(
    one_way_ms: u64,
    min_ms: u64,
    flowing: Option<Party>,
    at: CaptureTime,
) -> Option<Violation> {
    if one_way_ms <= min_ms {
        return None;
    }
    let who = match flowing {
        Some(Party::Agent) => "only the agent's audio reached the customer",
        Some(Party::Customer) => "only the customer's audio reached the agent",
        None => "audio flowed one way only",
    };
    Some(Violation {
        rule: RuleId::OneWayAudio,
        at,
        detail: format!("{who} for {}", secs(one_way_ms)),
    })
}
