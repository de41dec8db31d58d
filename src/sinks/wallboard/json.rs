//! The JSON text of the wallboard's frames, written straight into one `String` per frame.
//!
//! Each frame is rendered once per event and shared by the replay buffer and every
//! client. Building a `serde_json::Value` first cost most of the hub's time per event
//! (a map node and a string per field, then the text); chrono's strftime parsed its
//! format string for every time. These writers produce the same bytes as that path did:
//! object keys in byte order (serde_json's `Value` map is a `BTreeMap`), strings
//! escaped as serde_json escapes them, numbers as serde_json prints them, times as
//! [`Renderer::time`] writes them (RFC 3339, milliseconds, the zone's offset). The
//! tests compare both on every kind of input.

use std::fmt::Write as _;

use chrono::{Offset, TimeZone};

use crate::report::Renderer;
use crate::time::CaptureTime;

/// An object being written: `{`, then `"key":value` pairs separated by commas, `}`.
/// Keys are written as given (callers pass them in byte order, and plain: no escapes).
pub struct Obj<'a> {
    pub out: &'a mut String,
    first: bool,
}

impl<'a> Obj<'a> {
    pub fn new(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, first: true }
    }

    /// Writes `"k":` and leaves the value to the caller.
    pub fn key(&mut self, k: &str) -> &mut String {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
        self.out
    }

    pub fn str(&mut self, k: &str, v: &str) {
        string(self.key(k), v);
    }

    pub fn opt_str(&mut self, k: &str, v: Option<&str>) {
        match v {
            Some(v) => self.str(k, v),
            None => self.key(k).push_str("null"),
        }
    }

    pub fn u64(&mut self, k: &str, v: u64) {
        let out = self.key(k);
        let _ = write!(out, "{v}");
    }

    pub fn opt_u64(&mut self, k: &str, v: Option<u64>) {
        match v {
            Some(v) => self.u64(k, v),
            None => self.key(k).push_str("null"),
        }
    }

    pub fn i64(&mut self, k: &str, v: i64) {
        let out = self.key(k);
        let _ = write!(out, "{v}");
    }

    pub fn f64(&mut self, k: &str, v: f64) {
        float(self.key(k), v);
    }

    pub fn opt_f64(&mut self, k: &str, v: Option<f64>) {
        match v {
            Some(v) => self.f64(k, v),
            None => self.key(k).push_str("null"),
        }
    }

    pub fn bool(&mut self, k: &str, v: bool) {
        self.key(k).push_str(if v { "true" } else { "false" });
    }

    pub fn time(&mut self, k: &str, r: &Renderer, t: CaptureTime) {
        time(self.key(k), r, t);
    }

    pub fn opt_time(&mut self, k: &str, r: &Renderer, t: Option<CaptureTime>) {
        match t {
            Some(t) => self.time(k, r, t),
            None => self.key(k).push_str("null"),
        }
    }

    /// Writes `"k":` followed by `raw`, JSON text already.
    pub fn raw(&mut self, k: &str, raw: &str) {
        self.key(k).push_str(raw);
    }

    pub fn end(self) {
        self.out.push('}');
    }
}

/// A JSON string, escaped as serde_json escapes it: `"` and `\`, the short forms
/// `\b \t \n \f \r`, other control characters as `\u00xx`; nothing else.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &str = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            0x0c => "\\f",
            b'\r' => "\\r",
            0..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte: a character boundary.
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(c >> 4)]));
            out.push(char::from(HEX[usize::from(c & 0xf)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A number as serde_json prints an `f64` (shortest round trip; `null` when not finite).
pub fn float(out: &mut String, v: f64) {
    match serde_json::Number::from_f64(v) {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

/// Rounds as the analyze record does (`report`): to `digits` decimals.
pub fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn digits(out: &mut String, n: u32, width: usize) {
    let mut buf = [b'0'; 4];
    let mut n = n;
    for i in (0..width).rev() {
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    for &d in &buf[..width] {
        out.push(char::from(d));
    }
}

/// (year, month, day) of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A quoted time exactly as [`Renderer::time`] writes it (`2026-11-27T13:10:00.123+08:00`),
/// without strftime; times it does not cover here (years outside 1-9999, offsets with
/// seconds) go through [`Renderer::time`].
pub fn time(out: &mut String, r: &Renderer, t: CaptureTime) {
    out.push('"');
    if !fast_time(out, r, t) {
        out.push_str(&r.time(t));
    }
    out.push('"');
}

fn fast_time(out: &mut String, r: &Renderer, t: CaptureTime) -> bool {
    let Some(utc) = chrono::DateTime::from_timestamp_micros(t.0) else {
        return false;
    };
    let off = r
        .zone
        .offset_from_utc_datetime(&utc.naive_utc())
        .fix()
        .local_minus_utc();
    if off % 60 != 0 {
        return false;
    }
    let local = t.0 + i64::from(off) * 1_000_000;
    let secs = local.div_euclid(1_000_000);
    let millis = (local.rem_euclid(1_000_000) / 1_000) as u32;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    if !(1..=9_999).contains(&y) {
        return false;
    }
    let sod = secs.rem_euclid(86_400) as u32;
    digits(out, y as u32, 4);
    out.push('-');
    digits(out, m, 2);
    out.push('-');
    digits(out, d, 2);
    out.push('T');
    digits(out, sod / 3_600, 2);
    out.push(':');
    digits(out, sod / 60 % 60, 2);
    out.push(':');
    digits(out, sod % 60, 2);
    out.push('.');
    digits(out, millis, 3);
    out.push(if off < 0 { '-' } else { '+' });
    let off = off.unsigned_abs() / 60;
    digits(out, off / 60, 2);
    out.push(':');
    digits(out, off % 60, 2);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde_str(s: &str) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut all = String::new();
        for c in 0u32..0x100 {
            all.push(char::from_u32(c).unwrap());
        }
        all.push_str("李娜 \u{2028} \u{1F600} \"q\" \\b");
        for s in [all.as_str(), "", "plain", "\u{7f}", "a\"", "\n"] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, serde_str(s), "{s:?}");
        }
    }

    #[test]
    fn floats_print_as_serde_json_prints_them() {
        for v in [
            0.0,
            -0.0,
            1.0,
            3.5,
            4.41,
            0.1 + 0.2,
            1e21,
            1e-7,
            123456.789,
            f64::NAN,
            f64::INFINITY,
            -f64::INFINITY,
            f64::MAX,
        ] {
            let mut out = String::new();
            float(&mut out, v);
            assert_eq!(out, serde_json::to_value(v).unwrap().to_string(), "{v}");
        }
    }

    #[test]
    fn times_match_the_renderer_in_every_zone() {
        let zones = [
            chrono_tz::Asia::Shanghai,
            chrono_tz::UTC,
            chrono_tz::America::New_York,
            chrono_tz::Asia::Kolkata,
            chrono_tz::Asia::Kathmandu,
            chrono_tz::America::St_Johns,
            chrono_tz::Pacific::Chatham,
            chrono_tz::Europe::Amsterdam,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut samples: Vec<i64> = vec![
            0,
            -1,
            -1_000,
            999,
            1_800_000_000_000_000,
            1_800_000_000_999_999,
            // DST changes in New York and Amsterdam, a leap day, year ends.
            1_710_054_000_000_000,
            1_730_613_599_999_999,
            1_730_613_600_000_000,
            951_782_400_000_000,
            1_735_689_599_999_000,
            253_402_300_799_000_000,
            253_402_300_800_000_000,
            -62_135_596_800_000_000,
            -62_135_596_800_000_001,
            -5_000_000_000_000_000,
            i64::MAX,
            i64::MIN,
        ];
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Anywhere from 1900 to 2100, any microsecond.
            samples.push((x % 6_311_390_400_000_000) as i64 - 2_208_988_800_000_000);
        }
        for zone in zones {
            let r = Renderer {
                zone,
                show_numbers: false,
            };
            for &t in &samples {
                let mut out = String::new();
                time(&mut out, &r, CaptureTime(t));
                assert_eq!(out, format!("\"{}\"", r.time(CaptureTime(t))), "{zone} {t}");
            }
        }
    }
}
