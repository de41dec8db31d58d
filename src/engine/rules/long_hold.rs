//! `long_hold` (Art. 67): one hold episode put by the agent's side longer than
//! `rules.long_hold.threshold_ms`, inbound or outbound; raised live when it passes, with
//! `at` = hold start + threshold. Holds put by the switch's side never raise it.

use super::{secs, RuleId, Violation};
use crate::time::CaptureTime;

pub fn deadline(start: CaptureTime, threshold_ms: u64) -> CaptureTime {
    CaptureTime(start.plus_millis(threshold_ms).0 + 1)
}

/// The violation of an agent hold still going on at its deadline (raised live).
pub fn still_held(start: CaptureTime, threshold_ms: u64) -> Violation {
    Violation {
        rule: RuleId::LongHold,
        at: start.plus_millis(threshold_ms),
        detail: format!("on hold for more than {}", secs(threshold_ms)),
    }
}

/// Checks an episode that lasted `held_ms` in all.
pub fn check(start: CaptureTime, held_ms: u64, threshold_ms: u64) -> Option<Violation> {
    (held_ms > threshold_ms).then(|| Violation {
        rule: RuleId::LongHold,
        at: start.plus_millis(threshold_ms),
        detail: format!("held {}", secs(held_ms)),
    })
}
