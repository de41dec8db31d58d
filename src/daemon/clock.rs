//! Event time while live (SPEC §1): each capture source keeps its own clock, its latest
//! capture timestamp plus the wall time elapsed since that packet was received, never
//! going backwards. The engine task uses it twice: to tell the engine what time it is on
//! a source when a deadline may be due, and to turn the engine's next deadline (a
//! capture time on some source's clock) into a wall-clock instant to sleep until.
//!
//! A clock runs [`SourceClocks::grace`] behind "latest + elapsed": a packet captured just
//! before a deadline but still in flight (network latency, UDP reordering) then arrives
//! before the deadline fires, so a 200 OK captured at 9.9 s is never beaten by a
//! `late_answer` raised at 10.0 s on the collector's side. It never runs behind the
//! latest timestamp itself. Wall time is `tokio::time::Instant`, so tests can pause it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::SourceId;
use crate::time::CaptureTime;

#[derive(Clone, Copy, Debug)]
struct Clock {
    /// The latest capture timestamp seen from the source.
    latest: CaptureTime,
    /// When the packet carrying `latest` was received.
    received: Instant,
    /// The last time reported: the clock never goes back below it.
    floor: CaptureTime,
}

impl Clock {
    fn now(&mut self, grace: i64, wall: Instant) -> CaptureTime {
        let elapsed = micros(wall.saturating_duration_since(self.received));
        let run = CaptureTime(self.latest.0.saturating_add(elapsed.saturating_sub(grace)));
        let t = run.max(self.latest).max(self.floor);
        self.floor = t;
        t
    }
}

/// The clocks of every capture source seen, capped at `max_sources`.
#[derive(Debug)]
pub struct SourceClocks {
    clocks: HashMap<SourceId, Clock>,
    grace: Duration,
    max_sources: usize,
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl SourceClocks {
    pub fn new(grace: Duration, max_sources: usize) -> SourceClocks {
        SourceClocks {
            clocks: HashMap::new(),
            grace,
            max_sources,
        }
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    pub fn len(&self) -> usize {
        self.clocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clocks.is_empty()
    }

    pub fn sources(&self) -> impl Iterator<Item = SourceId> + '_ {
        self.clocks.keys().copied()
    }

    /// A packet stamped `at` was received from `source` at `received`. False when the
    /// source is new and the table is full: the caller drops the packet and counts it.
    pub fn observe(&mut self, source: SourceId, at: CaptureTime, received: Instant) -> bool {
        let full = self.clocks.len() >= self.max_sources;
        match self.clocks.get_mut(&source) {
            Some(c) => {
                if at > c.latest {
                    c.latest = at;
                    c.received = received;
                }
                true
            }
            None if full => false,
            None => {
                self.clocks.insert(
                    source,
                    Clock {
                        latest: at,
                        received,
                        floor: at,
                    },
                );
                true
            }
        }
    }

    /// The source's time at wall instant `wall`; None for a source never seen.
    pub fn now(&mut self, source: SourceId, wall: Instant) -> Option<CaptureTime> {
        let grace = micros(self.grace);
        self.clocks.get_mut(&source).map(|c| c.now(grace, wall))
    }

    /// The latest "now" of any source (for the day boundary of daily figures).
    pub fn latest_now(&mut self, wall: Instant) -> Option<CaptureTime> {
        let grace = micros(self.grace);
        self.clocks.values_mut().map(|c| c.now(grace, wall)).max()
    }

    /// The wall instant at which `source`'s clock reaches `t` (now or in the past when
    /// it already has); None for a source never seen.
    pub fn wall_at(&self, source: SourceId, t: CaptureTime) -> Option<Instant> {
        let c = self.clocks.get(&source)?;
        let ahead = t.0.saturating_sub(c.latest.0);
        if ahead <= 0 || t <= c.floor {
            return Some(c.received);
        }
        let wait = Duration::from_micros(ahead as u64).saturating_add(self.grace);
        // A deadline years away (a bad agent clock): sleep a day, then look again.
        let wait = wait.min(Duration::from_secs(86_400));
        Some(c.received + wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_millis(200);

    #[test]
    fn clock_runs_with_wall_time_minus_grace_and_never_back() {
        let t0 = Instant::now();
        let mut c = SourceClocks::new(GRACE, 8);
        let s = SourceId(7);
        assert!(c.observe(s, CaptureTime(1_000_000), t0));
        assert_eq!(c.now(s, t0), Some(CaptureTime(1_000_000)));
        // Within the grace the clock waits at the latest timestamp.
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(100)),
            Some(CaptureTime(1_000_000))
        );
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(1_200)),
            Some(CaptureTime(2_000_000))
        );
        // An older packet (reordered) moves nothing; a fresh packet whose stamp is
        // behind the running clock does not move it back.
        c.observe(s, CaptureTime(500_000), t0 + Duration::from_millis(1_300));
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(1_300)),
            Some(CaptureTime(2_100_000))
        );
        c.observe(s, CaptureTime(1_900_000), t0 + Duration::from_millis(1_400));
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(1_400)),
            Some(CaptureTime(2_100_000))
        );
        // It waits until wall time catches up with it, then runs again.
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(1_800)),
            Some(CaptureTime(2_100_000))
        );
        assert_eq!(
            c.now(s, t0 + Duration::from_millis(2_000)),
            Some(CaptureTime(2_300_000))
        );
    }

    #[test]
    fn deadlines_convert_to_wall_instants_on_their_own_source() {
        let t0 = Instant::now();
        let mut c = SourceClocks::new(GRACE, 8);
        let (a, b) = (SourceId(1), SourceId(2));
        c.observe(a, CaptureTime(10_000_000), t0);
        // b's agent clock is an hour behind: its deadlines still run on its own time.
        c.observe(b, CaptureTime(10_000_000 - 3_600_000_000), t0);
        let due = c.wall_at(a, CaptureTime(20_000_000)).unwrap();
        assert_eq!(due, t0 + Duration::from_secs(10) + GRACE);
        assert_eq!(c.now(a, due), Some(CaptureTime(20_000_000)));
        let due_b = c.wall_at(b, CaptureTime(-3_580_000_000)).unwrap();
        assert_eq!(due_b, t0 + Duration::from_secs(10) + GRACE);
        assert_eq!(c.wall_at(a, CaptureTime(5)), Some(t0));
        assert_eq!(c.wall_at(SourceId(9), CaptureTime(5)), None);
    }

    #[test]
    fn the_source_table_is_capped() {
        let t0 = Instant::now();
        let mut c = SourceClocks::new(GRACE, 2);
        assert!(c.observe(SourceId(1), CaptureTime(1), t0));
        assert!(c.observe(SourceId(2), CaptureTime(1), t0));
        assert!(!c.observe(SourceId(3), CaptureTime(1), t0));
        assert!(c.observe(SourceId(1), CaptureTime(2), t0));
        assert_eq!(c.len(), 2);
    }
}
