//! Time domains. The engine runs on capture time only: the timestamps that a capture
//! file, a HEP agent or a live interface put on each packet. Wall-clock time never enters
//! `wire` or `engine`; conversion to a calendar time in the configured zone happens at
//! the edges ([`crate::report`]).

use std::fmt;
use std::ops::{Add, Sub};

/// A capture timestamp: microseconds since the Unix epoch, as carried by pcap records
/// and HEP chunks 0x0009/0x000a.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureTime(pub i64);

/// A span of capture time in microseconds (may be negative when two sources disagree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

impl CaptureTime {
    pub const fn from_secs_micros(secs: i64, micros: i64) -> Self {
        CaptureTime(secs.saturating_mul(1_000_000).saturating_add(micros))
    }

    pub const fn from_millis(ms: i64) -> Self {
        CaptureTime(ms.saturating_mul(1000))
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Whole milliseconds elapsed from `earlier` to `self` (floor), never negative.
    pub fn millis_since(self, earlier: CaptureTime) -> u64 {
        let d = self.0.saturating_sub(earlier.0);
        if d <= 0 {
            0
        } else {
            (d / 1000) as u64
        }
    }

    pub fn plus_millis(self, ms: u64) -> CaptureTime {
        CaptureTime(self.0.saturating_add((ms as i64).saturating_mul(1000)))
    }
}

impl Micros {
    pub const fn from_millis(ms: i64) -> Self {
        Micros(ms.saturating_mul(1000))
    }
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl Add<Micros> for CaptureTime {
    type Output = CaptureTime;
    fn add(self, rhs: Micros) -> CaptureTime {
        CaptureTime(self.0.saturating_add(rhs.0))
    }
}

impl Sub for CaptureTime {
    type Output = Micros;
    fn sub(self, rhs: CaptureTime) -> Micros {
        Micros(self.0.saturating_sub(rhs.0))
    }
}

impl fmt::Display for CaptureTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:06}",
            self.0.div_euclid(1_000_000),
            self.0.rem_euclid(1_000_000)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_since_floors_and_never_goes_negative() {
        let a = CaptureTime::from_secs_micros(10, 500);
        let b = CaptureTime::from_secs_micros(12, 1_499);
        assert_eq!(b.millis_since(a), 2000);
        assert_eq!(a.millis_since(b), 0);
        assert_eq!(a.plus_millis(1).0, a.0 + 1000);
    }
}
