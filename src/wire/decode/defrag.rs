//! IP fragment reassembly with hard caps (RFC 815 hole descriptors).
//!
//! Input is one fragment at a time (IPv4 per RFC 791 §3.2, IPv6 per RFC 8200 §4.5) with
//! its capture time; output is the reassembled payload once every hole is filled. State
//! is bounded three ways, each with a counter: the number of datagrams in progress,
//! the bytes they hold, and a timeout in capture time counted from the first fragment
//! (as Linux' `ipfrag_time`). Overlapping fragments only fill holes, so the first bytes
//! received win (the safer policy against overlap evasion, RFC 5722 in spirit);
//! identical duplicates are silent, differing overlaps are counted.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use smallvec::SmallVec;

use super::counters::{DecodeCounters, DecodeErrorKind};
use crate::time::CaptureTime;

/// The largest reassembled payload: an IP datagram's total length is 16 bits.
pub(crate) const MAX_DATAGRAM: usize = 65_535;
/// Holes one datagram may have at once; more means a flood of tiny out-of-order
/// fragments, and the datagram is dropped.
const MAX_HOLES: usize = 64;

/// What identifies the fragments of one datagram (RFC 791: source, destination,
/// protocol, identification; RFC 8200: source, destination, identification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
}

/// One fragment: where its data goes in the datagram, and whether more follow.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fragment<'a> {
    pub offset: usize,
    pub more: bool,
    pub data: &'a [u8],
}

/// A range of the datagram not received yet, `[first, end)`; `end` is `usize::MAX`
/// until the last fragment says where the datagram ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hole {
    first: usize,
    end: usize,
}

struct Pending {
    generation: u64,
    started: CaptureTime,
    data: Vec<u8>,
    holes: SmallVec<[Hole; 4]>,
    /// The datagram's length, known once the fragment without "more" arrived.
    end: Option<usize>,
}

/// One datagram in arrival order, for timeouts and eviction; stale when the datagram
/// it names completed or was dropped (its generation no longer matches).
struct Started {
    key: FragKey,
    generation: u64,
}

/// The reassembly table.
pub(crate) struct Defragmenter {
    pending: HashMap<FragKey, Pending>,
    order: VecDeque<Started>,
    held_bytes: usize,
    next_generation: u64,
    max_bytes: usize,
    max_datagrams: usize,
    timeout_us: i64,
}

impl Defragmenter {
    pub(crate) fn new(max_bytes: usize, max_datagrams: usize, timeout_us: i64) -> Self {
        Defragmenter {
            pending: HashMap::new(),
            order: VecDeque::new(),
            held_bytes: 0,
            next_generation: 0,
            max_bytes,
            max_datagrams: max_datagrams.max(1),
            timeout_us: timeout_us.max(0),
        }
    }

    /// Datagrams in progress.
    pub(crate) fn datagrams(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held by datagrams in progress.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    pub(crate) fn expire(&mut self, now: CaptureTime, counters: &mut DecodeCounters) {
        while let Some(front) = self.order.front() {
            let key = front.key;
            if let Some(p) = self.pending.get(&key) {
                if p.generation == front.generation {
                    if now.0.saturating_sub(p.started.0) < self.timeout_us {
                        break;
                    }
                    self.remove(&key);
                    counters.bump(DecodeErrorKind::FragmentTimeout);
                }
            }
            self.order.pop_front();
        }
    }

    /// Adds one fragment; returns the whole payload when it was the last piece missing.
    pub(crate) fn push(
        &mut self,
        at: CaptureTime,
        key: FragKey,
        frag: Fragment<'_>,
        counters: &mut DecodeCounters,
    ) -> Option<Vec<u8>> {
        let start = frag.offset;
        let end = match start.checked_add(frag.data.len()) {
            Some(e) if e <= MAX_DATAGRAM => e,
            _ => {
                self.remove(&key);
                counters.bump(DecodeErrorKind::FragmentTooLarge);
                return None;
            }
        };
        if frag.data.is_empty() && frag.more {
            return None;
        }
        let held_now = self.pending.get(&key).map_or(0, |p| p.data.len());
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.max_datagrams {
                if !self.evict_oldest(None) {
                    break;
                }
                counters.bump(DecodeErrorKind::FragmentEvicted);
            }
        }
        let growth = end.saturating_sub(held_now);
        while self.held_bytes.saturating_add(growth) > self.max_bytes {
            if !self.evict_oldest(Some(&key)) {
                self.remove(&key);
                counters.bump(DecodeErrorKind::FragmentTooLarge);
                return None;
            }
            counters.bump(DecodeErrorKind::FragmentEvicted);
        }

        let p = match self.pending.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let generation = self.next_generation;
                self.next_generation = self.next_generation.wrapping_add(1);
                self.order.push_back(Started { key, generation });
                let mut holes = SmallVec::new();
                holes.push(Hole {
                    first: 0,
                    end: usize::MAX,
                });
                v.insert(Pending {
                    generation,
                    started: at,
                    data: Vec::new(),
                    holes,
                    end: None,
                })
            }
        };

        // The last fragment fixes the datagram's length; anything contradicting it
        // (another end, data past it) makes the whole datagram untrustworthy.
        let consistent = if frag.more {
            p.end.is_none_or(|e| end <= e)
        } else {
            p.end.is_none_or(|e| e == end) && p.data.len() <= end
        };
        if !consistent {
            self.remove(&key);
            counters.bump(DecodeErrorKind::FragmentOverlap);
            return None;
        }
        if !frag.more {
            p.end = Some(end);
        }

        if p.data.len() < end {
            p.data.reserve_exact(end - p.data.len());
            p.data.resize(end, 0);
            self.held_bytes = self.held_bytes.saturating_add(growth);
        }

        let mut covered = 0usize;
        let mut holes: SmallVec<[Hole; 4]> = SmallVec::new();
        for h in p.holes.iter().copied() {
            if end <= h.first || start >= h.end {
                holes.push(h);
                continue;
            }
            let from = start.max(h.first);
            let to = end.min(h.end);
            if let (Some(dst), Some(src)) = (
                p.data.get_mut(from..to),
                frag.data.get(from - start..to - start),
            ) {
                dst.copy_from_slice(src);
            }
            covered += to - from;
            if start > h.first {
                holes.push(Hole {
                    first: h.first,
                    end: start,
                });
            }
            if end < h.end {
                holes.push(Hole {
                    first: end,
                    end: h.end,
                });
            }
        }
        if let Some(e) = p.end {
            holes.retain(|h| h.first < e);
            for h in holes.iter_mut() {
                h.end = h.end.min(e);
            }
        }
        p.holes = holes;

        if covered < frag.data.len() && p.data.get(start..end) != Some(frag.data) {
            counters.bump(DecodeErrorKind::FragmentOverlap);
        }
        if p.holes.len() > MAX_HOLES {
            self.remove(&key);
            counters.bump(DecodeErrorKind::FragmentTooLarge);
            return None;
        }
        if p.end.is_some() && p.holes.is_empty() {
            return self.remove(&key);
        }
        None
    }

    /// Drops the oldest datagram other than `keep`; false when there is none.
    fn evict_oldest(&mut self, keep: Option<&FragKey>) -> bool {
        let mut skipped = None;
        let mut found = false;
        while let Some(s) = self.order.pop_front() {
            let live = self
                .pending
                .get(&s.key)
                .is_some_and(|p| p.generation == s.generation);
            if !live {
                continue;
            }
            if Some(&s.key) == keep {
                skipped = Some(s);
                continue;
            }
            self.remove(&s.key);
            found = true;
            break;
        }
        if let Some(s) = skipped {
            self.order.push_front(s);
        }
        found
    }

    fn remove(&mut self, key: &FragKey) -> Option<Vec<u8>> {
        let p = self.pending.remove(key)?;
        self.held_bytes = self.held_bytes.saturating_sub(p.data.len());
        // Completed and dropped datagrams leave stale records behind; sweep them when
        // they outnumber the live ones so the queue stays bounded by the table's cap.
        if self.order.len() > self.max_datagrams.saturating_mul(2).saturating_add(64) {
            let pending = &self.pending;
            self.order.retain(|s| {
                pending
                    .get(&s.key)
                    .is_some_and(|p| p.generation == s.generation)
            });
        }
        Some(p.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id,
            protocol: 17,
        }
    }

    fn frag(offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment { offset, more, data }
    }

    fn datagram(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn t(s: i64) -> CaptureTime {
        CaptureTime::from_secs_micros(s, 0)
    }

    /// Feeds `pieces` (offset, length) of `whole` in the given order; returns what
    /// came out and the counters.
    fn feed(whole: &[u8], pieces: &[(usize, usize)]) -> (Vec<Vec<u8>>, DecodeCounters) {
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        let mut out = Vec::new();
        for &(off, len) in pieces {
            let more = off + len < whole.len();
            if let Some(v) = d.push(
                t(1),
                key(1),
                frag(off, more, &whole[off..off + len]),
                &mut c,
            ) {
                out.push(v);
            }
        }
        assert_eq!(d.datagrams(), 0, "nothing left behind");
        assert_eq!(d.held_bytes(), 0);
        (out, c)
    }

    #[test]
    fn in_order() {
        let w = datagram(3000);
        let (out, c) = feed(&w, &[(0, 1480), (1480, 1480), (2960, 40)]);
        assert_eq!(out, vec![w]);
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn reverse_order() {
        let w = datagram(3000);
        let (out, c) = feed(&w, &[(2960, 40), (1480, 1480), (0, 1480)]);
        assert_eq!(out, vec![w]);
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn duplicate_fragment_is_silent() {
        let w = datagram(3000);
        let (out, c) = feed(&w, &[(0, 1480), (0, 1480), (2960, 40), (1480, 1480)]);
        assert_eq!(out, vec![w]);
        assert_eq!(c.total(), 0);
    }

    #[test]
    fn overlapping_fragments_fill_only_holes() {
        let w = datagram(3000);
        let (out, c) = feed(&w, &[(0, 1600), (1480, 1480), (2000, 1000)]);
        assert_eq!(out, vec![w], "same bytes in the overlap: no complaint");
        assert_eq!(c.total(), 0);

        // Conflicting overlap: the first bytes win and the conflict is counted.
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        assert!(d
            .push(t(1), key(2), frag(0, true, &[1; 16]), &mut c)
            .is_none());
        assert!(d
            .push(t(1), key(2), frag(8, true, &[2; 16]), &mut c)
            .is_none());
        let out = d
            .push(t(1), key(2), frag(24, false, &[3; 8]), &mut c)
            .unwrap();
        let mut want = vec![1u8; 16];
        want.extend_from_slice(&[2; 8]);
        want.extend_from_slice(&[3; 8]);
        assert_eq!(out, want);
        assert_eq!(c.get(DecodeErrorKind::FragmentOverlap), 1);
    }

    #[test]
    fn contradicting_end_drops_the_datagram() {
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        assert!(d
            .push(t(1), key(3), frag(16, false, &[0; 8]), &mut c)
            .is_none());
        assert!(d
            .push(t(1), key(3), frag(32, true, &[0; 8]), &mut c)
            .is_none());
        assert_eq!(c.get(DecodeErrorKind::FragmentOverlap), 1);
        assert_eq!(d.datagrams(), 0);
    }

    #[test]
    fn missing_fragment_times_out_and_is_counted() {
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        assert!(d
            .push(t(1), key(4), frag(0, true, &[0; 1480]), &mut c)
            .is_none());
        d.expire(t(30), &mut c);
        assert_eq!(d.datagrams(), 1, "29 s is not yet 30 s");
        d.expire(t(31), &mut c);
        assert_eq!(d.datagrams(), 0);
        assert_eq!(d.held_bytes(), 0);
        assert_eq!(c.get(DecodeErrorKind::FragmentTimeout), 1);
        // The late last piece starts a new datagram that never completes either.
        assert!(d
            .push(t(32), key(4), frag(1480, false, &[0; 8]), &mut c)
            .is_none());
    }

    #[test]
    fn datagram_count_cap_evicts_the_oldest() {
        let mut d = Defragmenter::new(1 << 20, 2, 30_000_000);
        let mut c = DecodeCounters::default();
        for id in 0..3 {
            d.push(t(1), key(id), frag(0, true, &[0; 8]), &mut c);
        }
        assert_eq!(d.datagrams(), 2);
        assert_eq!(c.get(DecodeErrorKind::FragmentEvicted), 1);
        // id 0 is gone: its last piece alone does not complete it.
        assert!(d
            .push(t(1), key(0), frag(8, false, &[0; 8]), &mut c)
            .is_none());
        assert!(d
            .push(t(1), key(2), frag(8, false, &[0; 8]), &mut c)
            .is_some());
    }

    #[test]
    fn byte_cap_evicts_others_then_refuses() {
        let mut d = Defragmenter::new(4000, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        d.push(t(1), key(1), frag(0, true, &[0; 2000]), &mut c);
        d.push(t(1), key(2), frag(0, true, &[0; 2000]), &mut c);
        assert_eq!(d.held_bytes(), 4000);
        d.push(t(1), key(3), frag(0, true, &[0; 1000]), &mut c);
        assert_eq!(c.get(DecodeErrorKind::FragmentEvicted), 1);
        assert!(d.held_bytes() <= 4000);
        // One datagram alone above the cap is refused outright.
        d.push(t(1), key(3), frag(1000, true, &[0; 4000]), &mut c);
        assert_eq!(c.get(DecodeErrorKind::FragmentTooLarge), 1);
        assert!(d.held_bytes() <= 4000);
    }

    #[test]
    fn beyond_65535_is_too_large() {
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        assert!(d
            .push(t(1), key(1), frag(65_528, false, &[0; 16]), &mut c)
            .is_none());
        assert_eq!(c.get(DecodeErrorKind::FragmentTooLarge), 1);
        assert_eq!(d.datagrams(), 0);
    }

    #[test]
    fn hole_flood_is_refused() {
        let mut d = Defragmenter::new(1 << 20, 16, 30_000_000);
        let mut c = DecodeCounters::default();
        for i in 0..100 {
            d.push(t(1), key(1), frag(i * 16 + 8, true, &[0; 8]), &mut c);
        }
        assert_eq!(c.get(DecodeErrorKind::FragmentTooLarge), 1);
        assert!(d.datagrams() <= 1);
    }

    #[test]
    fn stale_records_stay_bounded() {
        let mut d = Defragmenter::new(1 << 20, 4, 30_000_000);
        let mut c = DecodeCounters::default();
        for id in 0..10_000 {
            d.push(t(1), key(id), frag(0, true, &[0; 8]), &mut c);
            assert!(d
                .push(t(1), key(id), frag(8, false, &[0; 8]), &mut c)
                .is_some());
        }
        assert!(d.order.len() <= 4 * 2 + 65);
        assert_eq!(c.total(), 0);
    }
}
