//! Transfers by REFER (RFC 3515) and what they mean for the survey rule (SPEC §3,
//! standards.md §2.5): each REFER the agent sends is an attempt; the last one decides.
//! An attempt succeeds on a NOTIFY whose sipfrag is 2xx, or on a BYE from either side
//! after the REFER was accepted (2xx) and before any final NOTIFY; it fails on a final
//! non-2xx to the REFER (other than a 401/407 challenge) or a sipfrag 3xx-6xx.

use super::leg::{HangupBy, Survey};
use crate::time::CaptureTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptState {
    Pending,
    Accepted,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug)]
pub struct Attempt {
    pub cseq: u32,
    pub target: Vec<u8>,
    pub to_survey: bool,
    pub state: AttemptState,
    pub at: CaptureTime,
}

/// The attempts of one leg, oldest first (bounded). Boxed (8 bytes in the leg): most
/// legs never transfer.
#[derive(Clone, Debug, Default)]
pub struct Transfers {
    // Boxed on purpose: 8 bytes in every leg where a `Vec` is 24.
    #[allow(clippy::box_collection)]
    attempts: Option<Box<Vec<Attempt>>>,
}

const MAX_ATTEMPTS: usize = 16;

impl Transfers {
    fn attempts(&self) -> &[Attempt] {
        self.attempts.as_deref().map_or(&[], Vec::as_slice)
    }

    fn attempts_mut(&mut self) -> &mut [Attempt] {
        self.attempts
            .as_deref_mut()
            .map_or(&mut [], Vec::as_mut_slice)
    }

    pub fn on_refer(&mut self, cseq: u32, target: Vec<u8>, to_survey: bool, at: CaptureTime) {
        let attempts = self.attempts.get_or_insert_with(Box::default);
        if attempts.len() == MAX_ATTEMPTS {
            attempts.remove(0);
        }
        attempts.push(Attempt {
            cseq,
            target,
            to_survey,
            state: AttemptState::Pending,
            at,
        });
    }

    pub fn on_refer_response(&mut self, cseq: u32, status: u16) {
        if status < 200 {
            return;
        }
        if status == 401 || status == 407 {
            // Challenged: the REFER will come again with credentials and a new CSeq.
            if let Some(attempts) = self.attempts.as_deref_mut() {
                attempts.retain(|a| a.cseq != cseq);
            }
            return;
        }
        if let Some(a) = self
            .attempts_mut()
            .iter_mut()
            .rev()
            .find(|a| a.cseq == cseq)
        {
            if a.state == AttemptState::Pending {
                a.state = if (200..300).contains(&status) {
                    AttemptState::Accepted
                } else {
                    AttemptState::Failed
                };
            }
        }
    }

    /// A NOTIFY of the refer event package: `id` from `Event: refer;id=N`, `status` the
    /// sipfrag's status code.
    pub fn on_notify(&mut self, id: Option<u32>, status: u16) {
        if status < 200 {
            return;
        }
        let attempt = match id {
            Some(id) => self.attempts_mut().iter_mut().rev().find(|a| a.cseq == id),
            None => self.attempts_mut().last_mut(),
        };
        if let Some(a) = attempt {
            if matches!(a.state, AttemptState::Pending | AttemptState::Accepted) {
                a.state = if (200..300).contains(&status) {
                    AttemptState::Succeeded
                } else {
                    AttemptState::Failed
                };
            }
        }
    }

    /// A BYE from either side: an accepted attempt with no final NOTIFY yet succeeded.
    pub fn on_bye(&mut self) {
        for a in self.attempts_mut() {
            if a.state == AttemptState::Accepted {
                a.state = AttemptState::Succeeded;
            }
        }
    }

    pub fn last(&self) -> Option<&Attempt> {
        self.attempts().last()
    }

    /// True when the customer was handed over (to the survey or elsewhere).
    pub fn handed_over(&self) -> bool {
        self.last()
            .is_some_and(|a| matches!(a.state, AttemptState::Succeeded))
    }

    /// The survey field of an ended leg.
    pub fn survey(&self, inbound: bool, answered: bool, hangup_by: HangupBy) -> Survey {
        if !inbound || !answered {
            return Survey::NotRequired;
        }
        match self.last() {
            Some(a) if a.to_survey => match a.state {
                AttemptState::Succeeded | AttemptState::Accepted => Survey::Transferred,
                AttemptState::Failed | AttemptState::Pending => Survey::Failed,
            },
            Some(a) if matches!(a.state, AttemptState::Succeeded | AttemptState::Accepted) => {
                Survey::NotRequired
            }
            _ if hangup_by == HangupBy::Agent => Survey::Missing,
            _ => Survey::NotRequired,
        }
    }
}

/// The status code of a `message/sipfrag` body (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let rest = body.trim_ascii_start().strip_prefix(b"SIP/2.0 ")?;
    let digits = rest.get(..3)?;
    if !digits.iter().all(u8::is_ascii_digit) || rest.get(3).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |a, d| a * 10 + u16::from(d - b'0'));
    (100..700).contains(&code).then_some(code)
}

/// The `id` parameter of an `Event: refer;id=N` header; `Some(None)` for a refer event
/// without id, `None` for another event package.
pub fn refer_event_id(event: &[u8]) -> Option<Option<u32>> {
    let mut parts = event.split(|&b| b == b';');
    let package = parts.next()?.trim_ascii();
    if !package.eq_ignore_ascii_case(b"refer") {
        return None;
    }
    for p in parts {
        let p = p.trim_ascii();
        if let Some(v) = p.strip_prefix(b"id=").or_else(|| p.strip_prefix(b"ID=")) {
            let v = std::str::from_utf8(v.trim_ascii()).ok()?;
            return Some(v.parse().ok());
        }
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_refer_decides_and_a_bye_after_202_counts_as_success() {
        let mut t = Transfers::default();
        t.on_refer(5, b"96000".to_vec(), true, CaptureTime(1));
        t.on_refer_response(5, 202);
        t.on_notify(Some(5), 503);
        assert_eq!(t.survey(true, true, HangupBy::Agent), Survey::Failed);
        t.on_refer(6, b"96000".to_vec(), true, CaptureTime(2));
        t.on_refer_response(6, 202);
        t.on_bye();
        assert!(t.handed_over());
        assert_eq!(t.survey(true, true, HangupBy::Agent), Survey::Transferred);
    }

    #[test]
    fn challenge_is_not_a_refusal() {
        let mut t = Transfers::default();
        t.on_refer(1, b"96000".to_vec(), true, CaptureTime(1));
        t.on_refer_response(1, 407);
        assert!(t.last().is_none());
        assert_eq!(t.survey(true, true, HangupBy::Agent), Survey::Missing);
        assert_eq!(
            t.survey(true, true, HangupBy::Customer),
            Survey::NotRequired
        );
    }

    #[test]
    fn transfer_elsewhere_is_not_required() {
        let mut t = Transfers::default();
        t.on_refer(1, b"8002".to_vec(), false, CaptureTime(1));
        t.on_refer_response(1, 202);
        t.on_notify(None, 200);
        assert_eq!(t.survey(true, true, HangupBy::Agent), Survey::NotRequired);
        assert!(t.handed_over());
    }

    #[test]
    fn sipfrag_and_event_parsing() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(
            sipfrag_status(b"SIP/2.0 503 Service Unavailable"),
            Some(503)
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 2000 X"), None);
        assert_eq!(sipfrag_status(b"garbage"), None);
        assert_eq!(refer_event_id(b"refer;id=93"), Some(Some(93)));
        assert_eq!(refer_event_id(b"refer"), Some(None));
        assert_eq!(refer_event_id(b"presence"), None);
    }
}
