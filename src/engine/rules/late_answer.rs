//! `late_answer` (Art. 60, three rings / 10 s): an inbound leg that rang longer than
//! `rules.late_answer.threshold_ms`, answered or not. Raised live the moment the
//! threshold passes with the phone still ringing; `at` = ring start + threshold.

use super::{secs, RuleId, Violation};
use crate::time::CaptureTime;

/// The instant after which a leg still ringing is late (strictly more than the
/// threshold: a 2xx at exactly the threshold is on time).
pub fn deadline(ring_start: CaptureTime, threshold_ms: u64) -> CaptureTime {
    CaptureTime(ring_start.plus_millis(threshold_ms).0 + 1)
}

/// The violation of a leg still ringing at its deadline (raised live).
pub fn still_ringing(ring_start: CaptureTime, threshold_ms: u64) -> Violation {
    Violation {
        rule: RuleId::LateAnswer,
        at: ring_start.plus_millis(threshold_ms),
        detail: format!("still ringing after {}", secs(threshold_ms)),
    }
}

/// Checks a leg whose ringing lasted `ring_ms` in all.
pub fn check(ring_start: CaptureTime, ring_ms: u64, threshold_ms: u64) -> Option<Violation> {
    (ring_ms > threshold_ms).then(|| Violation {
        rule: RuleId::LateAnswer,
        at: ring_start.plus_millis(threshold_ms),
        detail: format!("rang {}", secs(ring_ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_threshold_is_on_time() {
        let t0 = CaptureTime::from_millis(1_000);
        assert!(check(t0, 10_000, 10_000).is_none());
        let v = check(t0, 13_000, 10_000).unwrap();
        assert_eq!(v.at, CaptureTime::from_millis(11_000));
        assert_eq!(v.detail, "rang 13.0 s");
        assert!(deadline(t0, 10_000) > CaptureTime::from_millis(11_000));
        assert_eq!(
            still_ringing(t0, 10_000).detail,
            "still ringing after 10.0 s"
        );
    }
}
