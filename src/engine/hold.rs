//! Hold episodes (RFC 3264 §8.4, RFC 6337 §5; SPEC §3 "holds"): an episode starts at the
//! first copy of a re-INVITE or UPDATE whose audio offer puts the media on hold and that
//! gets a 2xx, and ends at the next accepted offer from the same side that sends again,
//! or at the end of the leg. A refused offer (491, 488...) changes nothing.

use super::leg::{Hold, Party};
use crate::time::CaptureTime;

#[derive(Clone, Copy, Debug)]
struct Offer {
    cseq: u32,
    by: Party,
    hold: bool,
    at: CaptureTime,
}

/// What an accepted offer did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HoldChange {
    Started(Party),
    Ended(Party),
}

/// The offers and episodes of one leg. Boxed (8 bytes in the leg): most legs never
/// see a re-INVITE or UPDATE offer.
#[derive(Clone, Debug, Default)]
pub struct HoldTracker {
    state: Option<Box<Tracked>>,
}

#[derive(Clone, Debug, Default)]
struct Tracked {
    pending: Vec<Offer>,
    episodes: Vec<Hold>,
}

const MAX_PENDING: usize = 4;
const MAX_EPISODES: usize = 64;

impl HoldTracker {
    pub fn on_offer(&mut self, by: Party, cseq: u32, hold: bool, at: CaptureTime) {
        let t = self.state.get_or_insert_with(Box::default);
        if t.pending.len() == MAX_PENDING {
            t.pending.remove(0);
        }
        t.pending.push(Offer { cseq, by, hold, at });
    }

    /// A final response to the request with `cseq` sent by `by`.
    pub fn on_answer(&mut self, by: Party, cseq: u32, status: u16) -> Option<HoldChange> {
        let t = self.state.as_deref_mut()?;
        let i = t
            .pending
            .iter()
            .position(|o| o.cseq == cseq && o.by == by)?;
        let offer = t.pending.remove(i);
        if !(200..300).contains(&status) {
            return None;
        }
        let open = self.open_index(offer.by);
        let t = self.state.as_deref_mut()?;
        match (offer.hold, open) {
            (true, None) if t.episodes.len() < MAX_EPISODES => {
                t.episodes.push(Hold {
                    start_at: offer.at,
                    end_at: None,
                    by: offer.by,
                });
                Some(HoldChange::Started(offer.by))
            }
            (false, Some(i)) => {
                t.episodes[i].end_at = Some(offer.at.max(t.episodes[i].start_at));
                Some(HoldChange::Ended(offer.by))
            }
            _ => None,
        }
    }

    fn open_index(&self, by: Party) -> Option<usize> {
        self.episodes()
            .iter()
            .position(|h| h.by == by && h.end_at.is_none())
    }

    /// The agent's episode going on now, if any.
    pub fn open_agent_hold(&self) -> Option<&Hold> {
        self.open_index(Party::Agent).map(|i| &self.episodes()[i])
    }

    pub fn any_open(&self) -> bool {
        self.episodes().iter().any(|h| h.end_at.is_none())
    }

    pub fn close_all(&mut self, at: CaptureTime) {
        let Some(t) = self.state.as_deref_mut() else {
            return;
        };
        for h in &mut t.episodes {
            if h.end_at.is_none() {
                h.end_at = Some(at.max(h.start_at));
            }
        }
    }

    pub fn episodes(&self) -> &[Hold] {
        self.state.as_deref().map_or(&[], |t| &t.episodes)
    }

    /// Total time the agent's side kept the customer on hold (what Art. 67 is about).
    pub fn agent_hold_ms(&self, now: CaptureTime) -> u64 {
        self.episodes()
            .iter()
            .filter(|h| h.by == Party::Agent)
            .map(|h| h.ms(now))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_then_resume_and_refused_offers() {
        let mut h = HoldTracker::default();
        h.on_offer(Party::Agent, 2, true, CaptureTime::from_millis(1000));
        assert_eq!(h.on_answer(Party::Agent, 2, 491), None);
        assert!(h.open_agent_hold().is_none());
        h.on_offer(Party::Agent, 3, true, CaptureTime::from_millis(2000));
        assert_eq!(
            h.on_answer(Party::Agent, 3, 200),
            Some(HoldChange::Started(Party::Agent))
        );
        // A session refresh that keeps holding is not a second episode.
        h.on_offer(Party::Agent, 4, true, CaptureTime::from_millis(3000));
        assert_eq!(h.on_answer(Party::Agent, 4, 200), None);
        h.on_offer(Party::Agent, 5, false, CaptureTime::from_millis(27_000));
        assert_eq!(
            h.on_answer(Party::Agent, 5, 200),
            Some(HoldChange::Ended(Party::Agent))
        );
        assert_eq!(h.agent_hold_ms(CaptureTime::from_millis(99_000)), 25_000);
        // The customer's side holds too, independently.
        h.on_offer(Party::Customer, 9, true, CaptureTime::from_millis(30_000));
        h.on_answer(Party::Customer, 9, 200);
        h.close_all(CaptureTime::from_millis(31_000));
        assert_eq!(h.episodes().len(), 2);
        assert_eq!(h.agent_hold_ms(CaptureTime::from_millis(99_000)), 25_000);
    }
}
