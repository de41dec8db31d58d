//! The deadline queue: "call me at T" per leg, one min-heap per capture source (each
//! source has its own clock, SPEC §1). Entries are never removed early: when one fires
//! the engine re-checks the leg's state, so a stale deadline does nothing.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use foldhash::HashMap;

use super::input::SourceId;
use crate::time::CaptureTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    LateAnswer,
    RingTimeout,
    CancelGrace,
    ByeGrace,
    LongHold,
    MaxLeg,
    MediaTimeout,
    Linger,
    /// An agent phone's registration runs out (the id is the agent's registration
    /// generation key, not a leg).
    RegistrationExpiry,
}

/// One deadline: when, which leg, what for.
type Entry = (CaptureTime, u64, TimerKind);

#[derive(Default)]
pub struct Deadlines {
    heaps: HashMap<SourceId, BinaryHeap<Reverse<Entry>>>,
    len: usize,
}

impl Deadlines {
    pub fn schedule(&mut self, source: SourceId, at: CaptureTime, leg: u64, kind: TimerKind) {
        self.heaps
            .entry(source)
            .or_default()
            .push(Reverse((at, leg, kind)));
        self.len += 1;
    }

    /// The earliest deadline of `source`.
    pub fn next_for(&self, source: SourceId) -> Option<CaptureTime> {
        self.heaps.get(&source)?.peek().map(|Reverse((t, _, _))| *t)
    }

    /// The earliest deadline of any source, with its source.
    pub fn next(&self) -> Option<(SourceId, CaptureTime)> {
        self.heaps
            .iter()
            .filter_map(|(s, h)| h.peek().map(|Reverse((t, _, _))| (*s, *t)))
            .min_by_key(|(s, t)| (*t, *s))
    }

    /// The earliest deadline of each source (sources' clocks may disagree, so the
    /// earliest in capture time is not always the first due in wall time).
    pub fn next_per_source(&self) -> impl Iterator<Item = (SourceId, CaptureTime)> + '_ {
        self.heaps
            .iter()
            .filter_map(|(s, h)| h.peek().map(|Reverse((t, _, _))| (*s, *t)))
    }

    /// Pops one deadline of `source` due at or before `now`.
    pub fn pop_due(&mut self, source: SourceId, now: CaptureTime) -> Option<Entry> {
        let heap = self.heaps.get_mut(&source)?;
        match heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => {
                self.len -= 1;
                heap.pop().map(|Reverse(e)| e)
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_fires_on_its_own_clock() {
        let mut d = Deadlines::default();
        let (a, b) = (SourceId(1), SourceId(2));
        d.schedule(a, CaptureTime(100), 1, TimerKind::LateAnswer);
        d.schedule(b, CaptureTime(50), 2, TimerKind::LateAnswer);
        assert_eq!(d.next(), Some((b, CaptureTime(50))));
        assert!(d.pop_due(a, CaptureTime(99)).is_none());
        assert_eq!(d.pop_due(a, CaptureTime(100)).map(|e| e.1), Some(1));
        assert_eq!(d.len(), 1);
        assert_eq!(d.next_for(b), Some(CaptureTime(50)));
    }
}
