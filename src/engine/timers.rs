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

impl TimerKind {
    const ALL: [TimerKind; 9] = [
        TimerKind::LateAnswer,
        TimerKind::RingTimeout,
        TimerKind::CancelGrace,
        TimerKind::ByeGrace,
        TimerKind::LongHold,
        TimerKind::MaxLeg,
        TimerKind::MediaTimeout,
        TimerKind::Linger,
        TimerKind::RegistrationExpiry,
    ];
}

/// Bits of a [`Packed`] entry's second word that hold the [`TimerKind`].
const KIND_BITS: u32 = 4;

/// One deadline in 16 bytes instead of 24: the time, then the leg id and the kind in
/// one word (`leg << 4 | kind`). Ordered as `(time, leg, kind)` is, so the heap pops in
/// the same order. Leg ids are a counter (far below 2^60).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Packed(CaptureTime, u64);

impl Packed {
    fn new(at: CaptureTime, leg: u64, kind: TimerKind) -> Packed {
        debug_assert!(leg < 1 << (64 - KIND_BITS));
        Packed(at, leg << KIND_BITS | kind as u64)
    }

    fn at(self) -> CaptureTime {
        self.0
    }

    fn entry(self) -> Entry {
        let kind = TimerKind::ALL[(self.1 & ((1 << KIND_BITS) - 1)) as usize];
        (self.0, self.1 >> KIND_BITS, kind)
    }
}

/// Entries added at least when a heap is full; else it grows by an eighth, so that its
/// spare room stays small next to the open legs' deadlines (a doubling heap may hold
/// nearly as much room as deadlines).
const MIN_GROWTH: usize = 64;

#[derive(Default)]
pub struct Deadlines {
    heaps: HashMap<SourceId, BinaryHeap<Reverse<Packed>>>,
    len: usize,
    /// At or before every deadline queued (`None` when none is): a packet earlier than
    /// this needs no look at the heaps. Lowered on schedule, raised again only when a
    /// look finds nothing due ([`Deadlines::any_due_before`]).
    floor: Option<CaptureTime>,
}

impl Deadlines {
    pub fn schedule(&mut self, source: SourceId, at: CaptureTime, leg: u64, kind: TimerKind) {
        let heap = self.heaps.entry(source).or_default();
        if heap.len() == heap.capacity() {
            heap.reserve_exact((heap.len() / 8).max(MIN_GROWTH));
        }
        heap.push(Reverse(Packed::new(at, leg, kind)));
        self.len += 1;
        self.floor = Some(self.floor.map_or(at, |f| f.min(at)));
    }

    /// True when `source` has a deadline strictly before `t` (the check the engine
    /// makes before every packet). Usually answered from the floor alone; when the
    /// floor is passed but nothing of `source` is due, the floor is recomputed, so a
    /// fired or far deadline costs one look, not one per packet.
    pub fn any_due_before(&mut self, source: SourceId, t: CaptureTime) -> bool {
        match self.floor {
            Some(f) if f < t => {}
            _ => return false,
        }
        if self.next_for(source).is_some_and(|n| n < t) {
            return true;
        }
        self.floor = self
            .heaps
            .values()
            .filter_map(|h| h.peek().map(|Reverse(p)| p.at()))
            .min();
        false
    }

    /// The earliest deadline of `source`.
    pub fn next_for(&self, source: SourceId) -> Option<CaptureTime> {
        self.heaps.get(&source)?.peek().map(|Reverse(p)| p.at())
    }

    /// The earliest deadline of any source, with its source.
    pub fn next(&self) -> Option<(SourceId, CaptureTime)> {
        self.heaps
            .iter()
            .filter_map(|(s, h)| h.peek().map(|Reverse(p)| (*s, p.at())))
            .min_by_key(|(s, t)| (*t, *s))
    }

    /// The earliest deadline of each source (sources' clocks may disagree, so the
    /// earliest in capture time is not always the first due in wall time).
    pub fn next_per_source(&self) -> impl Iterator<Item = (SourceId, CaptureTime)> + '_ {
        self.heaps
            .iter()
            .filter_map(|(s, h)| h.peek().map(|Reverse(p)| (*s, p.at())))
    }

    /// Pops one deadline of `source` due at or before `now`.
    pub fn pop_due(&mut self, source: SourceId, now: CaptureTime) -> Option<Entry> {
        let heap = self.heaps.get_mut(&source)?;
        match heap.peek() {
            Some(Reverse(p)) if p.at() <= now => {
                self.len -= 1;
                heap.pop().map(|Reverse(p)| p.entry())
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

    #[test]
    fn the_floor_never_hides_a_due_deadline() {
        let mut d = Deadlines::default();
        let (a, b) = (SourceId(1), SourceId(2));
        assert!(!d.any_due_before(a, CaptureTime(1_000)));
        d.schedule(a, CaptureTime(100), 1, TimerKind::LateAnswer);
        d.schedule(b, CaptureTime(50), 2, TimerKind::LateAnswer);
        assert!(!d.any_due_before(a, CaptureTime(50)));
        // b's deadline is before 60 but a's is not: a look, nothing due for a.
        assert!(!d.any_due_before(a, CaptureTime(60)));
        assert!(d.any_due_before(b, CaptureTime(60)));
        assert!(d.any_due_before(a, CaptureTime(101)));
        assert!(d.pop_due(a, CaptureTime(101)).is_some());
        assert!(!d.any_due_before(a, CaptureTime(10_000)));
        assert!(d.any_due_before(b, CaptureTime(51)));
        assert!(d.pop_due(b, CaptureTime(51)).is_some());
        assert!(!d.any_due_before(b, CaptureTime(10_000)));
        // Scheduling below a raised floor lowers it again.
        d.schedule(a, CaptureTime(5), 3, TimerKind::Linger);
        assert!(d.any_due_before(a, CaptureTime(6)));
        assert!(!d.any_due_before(a, CaptureTime(5)));
    }

    #[test]
    fn packed_entries_keep_leg_kind_and_order() {
        let mut d = Deadlines::default();
        let s = SourceId(1);
        for (i, kind) in TimerKind::ALL.iter().enumerate().rev() {
            d.schedule(s, CaptureTime(7), 1 << 40, *kind);
            d.schedule(s, CaptureTime(7), i as u64, *kind);
        }
        let mut popped = Vec::new();
        while let Some(e) = d.pop_due(s, CaptureTime(7)) {
            popped.push(e);
        }
        let mut want: Vec<Entry> = TimerKind::ALL
            .iter()
            .enumerate()
            .flat_map(|(i, k)| {
                [
                    (CaptureTime(7), i as u64, *k),
                    (CaptureTime(7), 1 << 40, *k),
                ]
            })
            .collect();
        want.sort();
        assert_eq!(popped, want);
    }
}
