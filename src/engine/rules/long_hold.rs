//! `long_hold` (Art. 67): one hold episode put by the agent's side longer than
//! `rules.long_hold.threshold_ms`, inbound or outbound; raised live when it passes, with
//! `at` = hold start + threshold. Holds put by the switch's side never raise it.

use super::{secs, RuleId, Violation};
use crate::time::CaptureTime;

pub fn deadline(start: CaptureTime, threshold_ms: u64) -> CaptureTime {
    CaptureTime(start.plus_millis(threshold_ms).0 + 1)
}

/// `held_ms` is the episode's length so far (live) or in full (ended).
pub fn check(
    start: CaptureTime,
    held_ms: u64,
    threshold_ms: u64,
    ongoing: bool,
) -> Option<Violation> {
    if held_ms <= threshold_ms {
        return None;
    }
    let detail = if ongoing {
        format!("on hold for more than {}", secs(threshold_ms))
    } else {
        format!("held {}", secs(held_ms))
    };
    Some(Violation {
        rule: RuleId::LongHold,
        at: start.plus_millis(threshold_ms),
        detail,
    })
}
