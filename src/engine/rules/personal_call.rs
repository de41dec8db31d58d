//! `personal_call` (Art. 105.4, off unless `rules.personal_call.enabled`): an answered
//! outbound leg from an agent to a number outside the `rules.personal_call.allow`
//! patterns, or an answered direct inbound leg (the dialled user is not one of
//! `rules.personal_call.queue_users`) that talked longer than 180 s.
//!
//! Patterns are digits with `x` for any one digit and a trailing `*` for any rest:
//! `95566` (exact), `400*` (prefix), `8xxx` (four-digit internal numbers).

use super::{secs, RuleId, Violation};
use crate::time::CaptureTime;

/// A direct call may last this long before it counts as personal (Art. 105.4: 3 minutes).
pub const DIRECT_CALL_LIMIT_MS: u64 = 180_000;

pub fn matches(pattern: &str, number: &str) -> bool {
    let (body, prefix) = match pattern.strip_suffix('*') {
        Some(b) => (b, true),
        None => (pattern, false),
    };
    let (p, n) = (body.as_bytes(), number.as_bytes());
    if n.len() < p.len() || (!prefix && n.len() != p.len()) {
        return false;
    }
    p.iter().zip(n).all(|(&pc, &nc)| {
        if pc == b'x' || pc == b'X' {
            nc.is_ascii_digit()
        } else {
            pc == nc
        }
    })
}

/// An outbound call: `dialled` is the number the agent called.
pub fn check_outbound(dialled: &str, allow: &[String], at: CaptureTime) -> Option<Violation> {
    if allow.iter().any(|p| matches(p, dialled)) {
        return None;
    }
    Some(Violation {
        rule: RuleId::PersonalCall,
        at,
        detail: "outbound call to a number outside the business allow-list".into(),
    })
}

/// An inbound call: `dialled` is the user the customer called (the To user).
pub fn check_inbound(
    dialled: Option<&str>,
    queue_users: &[String],
    answered_at: CaptureTime,
    talk_ms: u64,
) -> Option<Violation> {
    let via_queue = dialled.is_some_and(|d| queue_users.iter().any(|q| q == d));
    if via_queue || talk_ms <= DIRECT_CALL_LIMIT_MS {
        return None;
    }
    Some(Violation {
        rule: RuleId::PersonalCall,
        at: answered_at.plus_millis(DIRECT_CALL_LIMIT_MS),
        detail: format!("direct call, not through a queue, talked {}", secs(talk_ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("95566", "95566"));
        assert!(!matches("95566", "955660"));
        assert!(matches("400*", "4008208820"));
        assert!(!matches("400*", "40"));
        assert!(matches("8xxx", "8001"));
        assert!(!matches("8xxx", "80a1"));
        assert!(matches("*", "13812345678"));
    }

    #[test]
    fn direct_calls_over_three_minutes_through_no_queue() {
        let t = CaptureTime::from_millis(0);
        let queues = vec!["95566".to_string()];
        assert!(check_inbound(Some("95566"), &queues, t, 600_000).is_none());
        assert!(check_inbound(Some("8001"), &queues, t, 180_000).is_none());
        let v = check_inbound(Some("8001"), &queues, t, 200_000).unwrap();
        assert_eq!(v.at, CaptureTime::from_millis(180_000));
        assert!(check_outbound("13812345678", &["400*".into()], t).is_some());
        assert!(check_outbound("4008208820", &["400*".into()], t).is_none());
    }
}
