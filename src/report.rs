//! Rendering leg records for people and programs: the JSON line of `callwatch analyze`
//! (SPEC §5, field names are a contract), the human table, and the masking of customer
//! numbers. Capture times become RFC 3339 times with milliseconds in the configured zone
//! here, at the edge, never inside the engine.

use chrono::TimeZone;
use serde::Serialize;

use crate::engine::leg::{Hold, LegRecord, MediaRecord};
use crate::engine::rules::Violation;
use crate::time::CaptureTime;

/// Masks a customer number (SPEC §5): 11 characters or more keep their first 3 and last
/// 4, shorter ones their last 4; every hidden character is shown as `*`.
pub fn mask_number(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    let n = chars.len();
    let (keep_head, keep_tail) = if n >= 11 { (3, 4) } else { (0, 4.min(n)) };
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_head || i >= n - keep_tail {
                *c
            } else {
                '*'
            }
        })
        .collect()
}

/// Appends `text` with every run of 7 or more digits masked as [`mask_number`] masks a
/// customer. Call-IDs, SIP text and details may carry the caller's number (some switches
/// build Call-IDs from it).
pub fn mask_digit_runs_into(out: &mut String, text: &str) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i > start {
            // Digits are ASCII: these are character boundaries.
            let run = &text[start..i];
            if run.len() >= 7 {
                out.push_str(&mask_number(run));
            } else {
                out.push_str(run);
            }
            continue;
        }
        let next = text[i..]
            .find(|c: char| c.is_ascii_digit())
            .map_or(b.len(), |n| i + n);
        out.push_str(&text[i..next]);
        i = next;
    }
}

/// `text` with every run of 7 or more digits masked ([`mask_digit_runs_into`]).
pub fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    mask_digit_runs_into(&mut out, text);
    out
}

/// Renders records in one time zone, masking customers unless told otherwise.
#[derive(Clone, Debug)]
pub struct Renderer {
    pub zone: chrono_tz::Tz,
    pub show_numbers: bool,
}

#[derive(Serialize)]
struct HoldJson {
    start_at: String,
    ms: u64,
    by: &'static str,
}

#[derive(Serialize)]
struct MediaJson {
    ssrc: String,
    from: &'static str,
    src: String,
    dst: String,
    codec: Option<String>,
    packets: u64,
    expected: i64,
    lost: i64,
    loss_pct: f64,
    jitter_ms: f64,
    max_jitter_ms: f64,
    max_delta_ms: f64,
    mos: Option<f64>,
    rtcp: Option<RtcpJson>,
}

/// The far end's RTCP view of a stream (an extension of SPEC §5's media entry).
#[derive(Serialize)]
struct RtcpJson {
    reports: u32,
    fraction_lost_pct: f64,
    max_fraction_lost_pct: f64,
    cumulative_lost: i32,
    jitter_ms: f64,
    max_jitter_ms: f64,
    round_trip_ms: Option<u16>,
    mos_lq: Option<f64>,
    r_factor: Option<u8>,
}

#[derive(Serialize)]
struct ViolationJson {
    rule: &'static str,
    at: String,
    detail: String,
}

/// The analyze JSON object, fields in the order of SPEC §5.
#[derive(Serialize)]
struct LegJson {
    leg_id: String,
    call_id: String,
    linked_call_id: Option<String>,
    agent: String,
    agent_id: String,
    agent_name: Option<String>,
    team: Option<String>,
    direction: &'static str,
    customer: Option<String>,
    invite_at: String,
    ring_start_at: Option<String>,
    answered_at: Option<String>,
    ended_at: Option<String>,
    ring_ms: Option<u64>,
    outcome: Option<&'static str>,
    hangup_by: &'static str,
    survey: &'static str,
    glare: bool,
    hold_ms: u64,
    holds: Vec<HoldJson>,
    media: Vec<MediaJson>,
    end_reason: Option<&'static str>,
    violations: Vec<ViolationJson>,
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

impl Renderer {
    /// RFC 3339 with milliseconds and the zone's offset.
    pub fn time(&self, t: CaptureTime) -> String {
        let utc = chrono::DateTime::from_timestamp_micros(t.0).unwrap_or_default();
        self.zone
            .from_utc_datetime(&utc.naive_utc())
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string()
    }

    /// The customer as it may be shown: masked unless `show_numbers`; extensions and
    /// survey users are never masked.
    pub fn customer(&self, rec: &LegRecord) -> Option<String> {
        let c = rec.customer.as_deref()?;
        Some(if self.show_numbers || rec.customer_is_internal {
            c.to_string()
        } else {
            mask_number(c)
        })
    }

    fn hold(&self, h: &Hold, now: CaptureTime) -> HoldJson {
        HoldJson {
            start_at: self.time(h.start_at),
            ms: h.ms(now),
            by: h.by.as_str(),
        }
    }

    fn media(&self, m: &MediaRecord) -> MediaJson {
        MediaJson {
            ssrc: format!("0x{:08x}", m.ssrc),
            from: m.from.as_str(),
            src: m.src.to_string(),
            dst: m.dst.to_string(),
            codec: m.codec.clone(),
            packets: m.packets,
            expected: m.expected,
            lost: m.lost,
            loss_pct: round(m.loss_pct, 2),
            jitter_ms: round(m.jitter_ms, 2),
            max_jitter_ms: round(m.max_jitter_ms, 2),
            max_delta_ms: round(m.max_delta_ms, 2),
            mos: m.mos.map(|x| round(x, 2)),
            rtcp: m.rtcp.as_ref().map(|r| RtcpJson {
                reports: r.reports,
                fraction_lost_pct: round(r.fraction_lost_pct, 2),
                max_fraction_lost_pct: round(r.max_fraction_lost_pct, 2),
                cumulative_lost: r.cumulative_lost,
                jitter_ms: round(r.jitter_ms, 2),
                max_jitter_ms: round(r.max_jitter_ms, 2),
                round_trip_ms: r.round_trip_ms,
                mos_lq: r.mos_lq.map(|x| round(x, 2)),
                r_factor: r.r_factor,
            }),
        }
    }

    fn violation(&self, v: &Violation) -> ViolationJson {
        ViolationJson {
            rule: v.rule.as_str(),
            at: self.time(v.at),
            detail: v.detail.clone(),
        }
    }

    /// The record as the JSON value of SPEC §5.
    pub fn json(&self, rec: &LegRecord) -> serde_json::Value {
        serde_json::to_value(self.leg_json(rec)).unwrap_or(serde_json::Value::Null)
    }

    /// One JSON line (no trailing newline), fields in the order of SPEC §5.
    pub fn json_line(&self, rec: &LegRecord) -> String {
        serde_json::to_string(&self.leg_json(rec)).unwrap_or_default()
    }

    fn leg_json(&self, rec: &LegRecord) -> LegJson {
        let now = rec.ended_at.unwrap_or(rec.invite_at);
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        LegJson {
            leg_id: rec.leg_id.clone(),
            call_id: lossy(&rec.call_id),
            linked_call_id: rec.linked_call_id.as_deref().map(lossy),
            agent: rec.agent.clone(),
            agent_id: rec.agent_id.clone(),
            agent_name: rec.agent_name.clone(),
            team: rec.team.clone(),
            direction: rec.direction.as_str(),
            customer: self.customer(rec),
            invite_at: self.time(rec.invite_at),
            ring_start_at: rec.ring_start_at.map(|t| self.time(t)),
            answered_at: rec.answered_at.map(|t| self.time(t)),
            ended_at: rec.ended_at.map(|t| self.time(t)),
            ring_ms: rec.ring_ms,
            outcome: rec.outcome.map(|o| o.as_str()),
            hangup_by: rec.hangup_by.as_str(),
            survey: rec.survey.as_str(),
            glare: rec.glare,
            hold_ms: rec.hold_ms,
            holds: rec
                .holds
                .iter()
                .map(|h| self.hold(h, h.end_at.unwrap_or(now)))
                .collect(),
            media: rec.media.iter().map(|m| self.media(m)).collect(),
            end_reason: rec.end_reason.map(|e| e.as_str()),
            violations: rec.violations.iter().map(|v| self.violation(v)).collect(),
        }
    }

    pub fn table_header(&self) -> String {
        format!(
            "{:<23} {:<6} {:<8} {:<15} {:>6} {:<9} {:<8} {:<12} {:>6} {:>5} {:>6}  {}",
            "INVITE",
            "AGENT",
            "DIR",
            "CUSTOMER",
            "RING s",
            "OUTCOME",
            "HANGUP",
            "SURVEY",
            "HOLD s",
            "MOS",
            "LOSS%",
            "VIOLATIONS"
        )
    }

    pub fn table_row(&self, rec: &LegRecord) -> String {
        let secs =
            |ms: Option<u64>| ms.map_or("-".to_string(), |m| format!("{:.1}", m as f64 / 1000.0));
        let worst_mos = rec
            .media
            .iter()
            .filter_map(|m| m.mos)
            .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.min(m))));
        let worst_loss = rec
            .media
            .iter()
            .map(|m| m.loss_pct)
            .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.max(m))));
        let violations: Vec<&str> = rec.violations.iter().map(|v| v.rule.as_str()).collect();
        let invite = self.time(rec.invite_at);
        format!(
            "{:<23} {:<6} {:<8} {:<15} {:>6} {:<9} {:<8} {:<12} {:>6} {:>5} {:>6}  {}",
            invite.get(..23).unwrap_or(&invite),
            rec.agent,
            rec.direction.as_str(),
            self.customer(rec).unwrap_or_else(|| "-".into()),
            secs(rec.ring_ms),
            rec.outcome.map_or("-", |o| o.as_str()),
            rec.hangup_by.as_str(),
            rec.survey.as_str(),
            secs(Some(rec.hold_ms)),
            worst_mos.map_or("-".into(), |m| format!("{m:.2}")),
            worst_loss.map_or("-".into(), |l| format!("{l:.1}")),
            if violations.is_empty() {
                "-".to_string()
            } else {
                violations.join(",")
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain way: characters one by one, a run of digits flushed at each non-digit.
    fn mask_digit_runs_reference(text: &str) -> String {
        let mut out = String::new();
        let mut digits = String::new();
        for c in text.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            if digits.len() >= 7 {
                out.push_str(&mask_number(&digits));
            } else {
                out.push_str(&digits);
            }
            digits.clear();
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn digit_runs_of_seven_or_more_are_masked_and_nothing_else_changes() {
        assert_eq!(
            mask_digit_runs("13812345678-1@10.0.0.1"),
            "138****5678-1@10.0.0.1"
        );
        assert_eq!(mask_digit_runs("1234567"), "***4567");
        assert_eq!(mask_digit_runs("abc123456"), "abc123456");
        assert_eq!(mask_digit_runs("rang 13.0 s"), "rang 13.0 s");
        for s in [
            "",
            "a84b4c76e66710@pc33.atlanta.example.com",
            "李13812345678娜9",
            "00000000000000000000000000000001@10.1.0.10",
            "+8613812345678;tag=99",
        ] {
            assert_eq!(mask_digit_runs(s), mask_digit_runs_reference(s), "{s:?}");
        }
    }

    #[test]
    fn masking_keeps_head_and_tail_by_length() {
        assert_eq!(mask_number("13812345678"), "138****5678");
        assert_eq!(mask_number("+8613812345678"), "+86*******5678");
        assert_eq!(mask_number("12345678"), "****5678");
        assert_eq!(mask_number("5678"), "5678");
        assert_eq!(mask_number("78"), "78");
    }

    #[test]
    fn times_carry_the_zone_offset_and_milliseconds() {
        let r = Renderer {
            zone: chrono_tz::Asia::Shanghai,
            show_numbers: false,
        };
        // 2026-11-26T01:15:02.120Z
        let t = CaptureTime(1_795_655_702_120_000);
        assert_eq!(r.time(t), "2026-11-26T09:15:02.120+08:00");
    }
}
