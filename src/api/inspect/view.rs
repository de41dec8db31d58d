//! Stored legs as the inspectors' API shows them: the analyze record's fields (SPEC §5,
//! times in `time.zone`), with the verdicts, the timeline and the SIP ladder; and the
//! masking that keeps customers' numbers and names out of every response except the
//! audited full view (Art. 97, 98).

use chrono::TimeZone;
use serde_json::{json, Value};

use crate::engine::rules::RuleId;
use crate::report::{mask_digit_runs, mask_number};
use crate::store::query::{Review, StoredLeg};
use crate::store::SipRow;

/// RFC 3339 with milliseconds in `zone`.
pub fn time(zone: chrono_tz::Tz, us: i64) -> String {
    let utc = chrono::DateTime::from_timestamp_micros(us).unwrap_or_default();
    zone.from_utc_datetime(&utc.naive_utc())
        .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
}

/// Header names (full and compact) whose display names name a person.
const PARTY_HEADERS: &[&str] = &[
    "from",
    "f",
    "to",
    "t",
    "contact",
    "m",
    "p-asserted-identity",
    "p-preferred-identity",
    "remote-party-id",
    "diversion",
    "referred-by",
    "b",
];

/// Hides the display names of the party headers (`"张三" <sip:...>` → `"***" <sip:...>`).
fn mask_display_names(line: &str) -> String {
    let Some((name, value)) = line.split_once(':') else {
        return line.to_string();
    };
    if !PARTY_HEADERS.contains(&name.trim().to_ascii_lowercase().as_str()) {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    out.push_str(name);
    out.push(':');
    // Each comma-free element: what stands before '<' is a display name.
    let mut rest = value;
    while let Some(lt) = rest.find('<') {
        let (head, tail) = rest.split_at(lt);
        let trimmed = head.trim();
        let sep = head.rfind(',').map_or(0, |i| i + 1);
        out.push_str(&head[..sep]);
        if trimmed.is_empty() || head[sep..].trim().is_empty() {
            out.push_str(&head[sep..]);
        } else {
            out.push_str(" \"***\" ");
        }
        match tail.find('>') {
            Some(gt) => {
                out.push_str(&tail[..=gt]);
                rest = &tail[gt + 1..];
            }
            None => {
                out.push_str(tail);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// SIP bytes as text: UTF-8, else GB18030 (Chinese PBXs send GBK display names).
pub fn sip_text(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(raw).0.into_owned(),
    }
}

/// SIP text with numbers and display names masked.
pub fn mask_sip(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|l| mask_digit_runs(&mask_display_names(l)))
        .collect()
}

/// The current verdict summary of a leg: `pending` when any violation has none,
/// else `confirmed`, `dismissed` or `mixed`.
pub fn review_state(leg: &StoredLeg) -> &'static str {
    let n = leg.leg.violations.len();
    if n == 0 {
        return "none";
    }
    let reviewed: Vec<&Review> = leg
        .leg
        .violations
        .iter()
        .filter_map(|v| leg.reviews.iter().find(|r| r.rule == v.rule))
        .collect();
    if reviewed.len() < n {
        "pending"
    } else if reviewed.iter().all(|r| r.verdict == "confirmed") {
        "confirmed"
    } else if reviewed.iter().all(|r| r.verdict == "dismissed") {
        "dismissed"
    } else {
        "mixed"
    }
}

/// How a leg is shown: masked unless `full`.
pub struct LegView {
    pub zone: chrono_tz::Tz,
    pub full: bool,
}

impl LegView {
    fn text(&self, s: &str) -> String {
        if self.full {
            s.to_string()
        } else {
            mask_digit_runs(s)
        }
    }

    fn customer(&self, leg: &StoredLeg) -> Option<String> {
        let c = leg.leg.customer.as_deref()?;
        Some(if self.full || leg.leg.customer_is_internal {
            c.to_string()
        } else {
            mask_number(c)
        })
    }

    /// The analyze record's fields plus verdicts (the list item).
    pub fn summary(&self, leg: &StoredLeg) -> Value {
        let l = &leg.leg;
        let t = |us: Option<i64>| us.map(|u| time(self.zone, u));
        let violations: Vec<Value> = l
            .violations
            .iter()
            .map(|v| {
                let r = leg.reviews.iter().find(|r| r.rule == v.rule);
                json!({
                    "rule": v.rule,
                    "article": RuleId::from_str(&v.rule).map(|r| r.article()),
                    "at": time(self.zone, v.at),
                    "detail": self.text(&v.detail),
                    "verdict": r.map(|r| r.verdict.as_str()),
                    "reason": r.map(|r| r.reason.as_str()),
                    "points": r.map(|r| r.points),
                    "reviewer": r.map(|r| r.reviewer.as_str()),
                    "reviewed_at": r.map(|r| time(self.zone, r.at)),
                })
            })
            .collect();
        let holds: Vec<Value> = l
            .holds
            .iter()
            .map(|h| {
                json!({
                    "start_at": time(self.zone, h.start_at),
                    "ms": h.end_at.map_or(0, |e| (e - h.start_at).max(0) / 1000),
                    "by": h.by,
                })
            })
            .collect();
        json!({
            "leg_id": l.leg_id,
            "call_id": self.text(&l.call_id),
            "linked_call_id": l.linked_call_id.as_deref().map(|c| self.text(c)),
            "agent": l.agent,
            "agent_id": l.agent_id,
            "agent_name": l.agent_name,
            "team": l.team,
            "direction": l.direction,
            "customer": self.customer(leg),
            "invite_at": time(self.zone, l.invite_at),
            "ring_start_at": t(l.ring_start_at),
            "answered_at": t(l.answered_at),
            "ended_at": t(l.ended_at),
            "ring_ms": l.ring_ms,
            "outcome": l.outcome,
            "hangup_by": l.hangup_by,
            "survey": l.survey,
            "glare": l.glare,
            "hold_ms": l.hold_ms,
            "holds": holds,
            "media": l.media.clone().unwrap_or_else(|| json!([])),
            "end_reason": l.end_reason,
            "violations": violations,
            "review": review_state(leg),
            "purged": leg.purged_at.is_some(),
            "node": l.node,
        })
    }

    /// Ring, talk and hold phases and the moments in between, in time order.
    pub fn timeline(&self, leg: &StoredLeg) -> Value {
        let l = &leg.leg;
        let mut events: Vec<(i64, Value)> = Vec::new();
        let mut ev = |at: i64, kind: &str, detail: Value| {
            events.push((
                at,
                json!({"at": time(self.zone, at), "offset_ms": (at - l.invite_at) / 1000,
                       "kind": kind, "detail": detail}),
            ))
        };
        ev(l.invite_at, "invite", Value::Null);
        if let Some(t) = l.ring_start_at {
            ev(t, "ringing", Value::Null);
        }
        if let Some(t) = l.answered_at {
            ev(t, "answered", Value::Null);
        }
        for h in &l.holds {
            ev(h.start_at, "hold", json!({"by": h.by}));
            if let Some(e) = h.end_at {
                ev(e, "resume", json!({"by": h.by}));
            }
        }
        for v in &l.violations {
            ev(
                v.at,
                "violation",
                json!({"rule": v.rule, "detail": self.text(&v.detail)}),
            );
        }
        if let Some(t) = l.ended_at {
            ev(
                t,
                "ended",
                json!({"end_reason": l.end_reason, "hangup_by": l.hangup_by}),
            );
        }
        events.sort_by_key(|(at, _)| *at);
        let end = l.ended_at.unwrap_or(l.invite_at);
        let ms = |a: i64, b: i64| (b - a).max(0) / 1000;
        let mut phases = Vec::new();
        let ring_from = l.ring_start_at.unwrap_or(l.invite_at);
        match l.answered_at {
            Some(a) => {
                phases.push(
                    json!({"kind": "ring", "from_ms": ms(l.invite_at, ring_from),
                                   "to_ms": ms(l.invite_at, a)}),
                );
                phases.push(json!({"kind": "talk", "from_ms": ms(l.invite_at, a),
                                   "to_ms": ms(l.invite_at, end)}));
            }
            None => phases.push(
                json!({"kind": "ring", "from_ms": ms(l.invite_at, ring_from),
                                       "to_ms": ms(l.invite_at, end)}),
            ),
        }
        for h in &l.holds {
            phases.push(json!({"kind": "hold", "by": h.by,
                               "from_ms": ms(l.invite_at, h.start_at),
                               "to_ms": ms(l.invite_at, h.end_at.unwrap_or(end))}));
        }
        json!({
            "duration_ms": ms(l.invite_at, end),
            "phases": phases,
            "events": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
        })
    }

    /// The SIP ladder: endpoints (left to right in order of appearance) and messages.
    pub fn ladder(&self, msgs: &[SipRow], invite_at: i64) -> Value {
        let mut hosts: Vec<String> = Vec::new();
        for m in msgs {
            for h in [&m.src, &m.dst] {
                if !hosts.contains(h) {
                    hosts.push(h.clone());
                }
            }
        }
        let items: Vec<Value> = msgs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let text = sip_text(&m.raw);
                let (first, text) = if self.full {
                    (m.first_line.clone(), text)
                } else {
                    (mask_sip(&m.first_line), mask_sip(&text))
                };
                json!({
                    "seq": i,
                    "at": time(self.zone, m.at),
                    "offset_ms": (m.at - invite_at) / 1000,
                    "src": m.src,
                    "dst": m.dst,
                    "transport": m.transport,
                    "first_line": first,
                    "text": text,
                })
            })
            .collect();
        json!({"hosts": hosts, "messages": items})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_display_names_leave_masked() {
        let sip = "INVITE sip:13812345678@10.1.9.1 SIP/2.0\r\n\
                   From: \"张三\" <sip:13812345678@10.1.0.10>;tag=1\r\n\
                   To: <sip:8001@10.1.9.1>\r\n\
                   P-Asserted-Identity: Zhang San <sip:+8613812345678@x>\r\n\
                   Call-ID: 13812345678-1@x\r\n\r\n";
        let m = mask_sip(sip);
        assert!(!m.contains("13812345678"), "{m}");
        assert!(!m.contains("张三") && !m.contains("Zhang San"), "{m}");
        assert!(m.contains("138****5678"));
        assert!(
            m.contains("To: <sip:8001@10.1.9.1>"),
            "extensions stay: {m}"
        );
        assert_eq!(mask_digit_runs("rang 13.0 s"), "rang 13.0 s");
    }

    #[test]
    fn gbk_sip_text_is_read() {
        let (gbk, _, _) = encoding_rs::GBK.encode("From: \"客户\" <sip:1@x>");
        assert_eq!(sip_text(&gbk), "From: \"客户\" <sip:1@x>");
    }
}
