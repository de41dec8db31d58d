//! A time zone in which the wall clock now reads about noon. The daily figures (today's
//! service level, today's counts) start afresh at the centre's midnight (`time.zone`), so
//! a test whose capture times are the wall clock, run in this zone, never sees them reset
//! half-way (with the default Asia/Shanghai, a run at 15:59 UTC would).

use std::time::{SystemTime, UNIX_EPOCH};

/// An `Etc/GMT±N` zone whose local time is between 12:00 and 12:59 now. IANA's signs are
/// inverted: `Etc/GMT-8` is UTC+8.
pub fn zone_near_noon() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let utc_hour = ((secs / 3600) % 24) as i64;
    // UTC+offset reads 12 h: offset in -11..=12, all of which Etc/GMT names.
    let offset = 12 - utc_hour;
    match offset {
        0 => "Etc/GMT".into(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}
