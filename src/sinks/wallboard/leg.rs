//! The wallboard's view of a leg: what its frames and the snapshot show of the engine's
//! record (SPEC §6: the analyze fields known so far, masked, and the running timers),
//! kept compactly for every open leg on the board (issue 4, memory per open leg).
//!
//! A [`LegView`] is built once per leg event from the [`LegRecord`] with the customer
//! and the Call-IDs already masked (the board never holds an unmasked number), the
//! agent's identity shared with the agent's other legs ([`Ident`]), times as capture
//! microseconds, and the lists an open leg seldom has (holds, media, violations, a
//! linked Call-ID) as JSON text in a box of their own. [`LegView::write_json`] writes the
//! `leg` object of a frame with the same bytes as `Renderer::json` rendered through
//! `serde_json::Value` (keys in byte order), which the tests check.

use std::sync::Arc;

use super::json::{round, Obj};
use crate::engine::leg::{
    Direction, EndReason, HangupBy, Hold, LegRecord, MediaRecord, Outcome, Party, Survey,
};
use crate::engine::rules::Violation;
use crate::report::{mask_digit_runs_into, Renderer};
use crate::time::CaptureTime;

/// What an open leg contributes to its agent's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegKind {
    Ringing,
    Talking,
    Held,
}

impl LegKind {
    pub fn of(rec: &LegRecord) -> LegKind {
        match (rec.answered_at.is_some(), on_hold(rec)) {
            (true, false) => LegKind::Talking,
            (true, true) => LegKind::Held,
            (false, _) => LegKind::Ringing,
        }
    }
}

/// Whether the agent has the leg on hold now (an open episode put by the agent).
pub fn on_hold(rec: &LegRecord) -> bool {
    rec.holds
        .iter()
        .any(|h| h.end_at.is_none() && h.by == Party::Agent)
}

/// Who a leg's agent is, as its record says: shared by the agent's legs.
#[derive(Debug, PartialEq, Eq)]
pub struct Ident {
    pub agent: Box<str>,
    pub agent_id: Box<str>,
    pub name: Option<Box<str>>,
    pub team: Option<Box<str>>,
}

impl Ident {
    pub fn of(rec: &LegRecord) -> Ident {
        Ident {
            agent: rec.agent.as_str().into(),
            agent_id: rec.agent_id.as_str().into(),
            name: rec.agent_name.as_deref().map(Into::into),
            team: rec.team.as_deref().map(Into::into),
        }
    }

    /// Whether the record names this agent alike.
    pub fn matches(&self, rec: &LegRecord) -> bool {
        *self.agent == *rec.agent
            && *self.agent_id == *rec.agent_id
            && self.name.as_deref() == rec.agent_name.as_deref()
            && self.team.as_deref() == rec.team.as_deref()
    }
}

/// A capture time that may be absent, in 8 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct OptTime(i64);

impl OptTime {
    const NONE: OptTime = OptTime(i64::MIN);

    fn new(t: Option<CaptureTime>) -> OptTime {
        // i64::MIN microseconds is 292,000 years before 1970: never a capture time.
        t.map_or(OptTime::NONE, |t| OptTime(t.0))
    }

    fn get(self) -> Option<CaptureTime> {
        (self != OptTime::NONE).then_some(CaptureTime(self.0))
    }
}

/// What few open legs have, as JSON text (the arrays only when not empty).
#[derive(Debug, Default)]
struct Rare {
    linked_call_id: Option<Box<str>>,
    holds: Option<Box<str>>,
    media: Option<Box<str>>,
    violations: Option<Box<str>>,
}

/// A leg as the wallboard shows it. About 100 bytes plus the masked Call-ID and
/// customer, where the record is about 500 plus its strings and lists.
#[derive(Debug)]
pub struct LegView {
    pub ident: Arc<Ident>,
    /// The masked Call-ID, then the masked customer.
    text: Box<str>,
    call_len: u32,
    has_customer: bool,
    direction: Direction,
    outcome: Option<Outcome>,
    hangup_by: HangupBy,
    survey: Survey,
    end_reason: Option<EndReason>,
    glare: bool,
    pub kind: LegKind,
    pub invite_at: CaptureTime,
    ring_start_at: OptTime,
    answered_at: OptTime,
    ended_at: OptTime,
    /// Start of the latest open hold episode while the agent holds the leg.
    hold_since: OptTime,
    /// `ring_ms`, u64::MAX for none.
    ring_ms: u64,
    hold_ms: u64,
    rare: Option<Box<Rare>>,
}

/// The running timers of a leg as of a moment (SPEC §6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timers {
    pub ring_elapsed_ms: Option<u64>,
    pub talk_elapsed_ms: Option<u64>,
    pub hold_elapsed_ms: Option<u64>,
}

fn masked_call_id(id: &[u8]) -> String {
    let mut out = String::with_capacity(id.len());
    mask_digit_runs_into(&mut out, &String::from_utf8_lossy(id));
    out
}

impl LegView {
    /// The view of `rec`, masked as `r` masks (the wallboard's renderer never shows
    /// numbers); `ident` is the agent's identity when already known.
    pub fn new(r: &Renderer, rec: &LegRecord, ident: Arc<Ident>) -> LegView {
        let customer = r.customer(rec);
        let mut text =
            String::with_capacity(rec.call_id.len() + customer.as_deref().map_or(0, str::len));
        mask_digit_runs_into(&mut text, &String::from_utf8_lossy(&rec.call_id));
        let call_len = text.len() as u32;
        if let Some(c) = &customer {
            text.push_str(c);
        }
        // The analyze record's hold durations run to the end, or to the INVITE while open.
        let now = rec.ended_at.unwrap_or(rec.invite_at);
        let rare = (rec.linked_call_id.is_some()
            || !rec.holds.is_empty()
            || !rec.media.is_empty()
            || !rec.violations.is_empty())
        .then(|| {
            Box::new(Rare {
                linked_call_id: rec
                    .linked_call_id
                    .as_deref()
                    .map(|l| masked_call_id(l).into()),
                holds: array(&rec.holds, |out, h| write_hold(out, r, h, now)),
                media: array(&rec.media, write_media),
                violations: array(&rec.violations, |out, v| write_violation(out, r, v)),
            })
        });
        let hold_since = if on_hold(rec) {
            rec.holds
                .iter()
                .rev()
                .find(|h| h.end_at.is_none())
                .map(|h| h.start_at)
        } else {
            None
        };
        LegView {
            ident,
            text: text.into_boxed_str(),
            call_len,
            has_customer: customer.is_some(),
            direction: rec.direction,
            outcome: rec.outcome,
            hangup_by: rec.hangup_by,
            survey: rec.survey,
            end_reason: rec.end_reason,
            glare: rec.glare,
            kind: LegKind::of(rec),
            invite_at: rec.invite_at,
            ring_start_at: OptTime::new(rec.ring_start_at),
            answered_at: OptTime::new(rec.answered_at),
            ended_at: OptTime::new(rec.ended_at),
            hold_since: OptTime::new(hold_since),
            ring_ms: rec.ring_ms.unwrap_or(u64::MAX),
            hold_ms: rec.hold_ms,
            rare,
        }
    }

    pub fn call_id(&self) -> &str {
        &self.text[..self.call_len as usize]
    }

    pub fn customer(&self) -> Option<&str> {
        self.has_customer
            .then(|| &self.text[self.call_len as usize..])
    }

    pub fn answered(&self) -> bool {
        self.answered_at.get().is_some()
    }

    /// The running timers as of `now`: `ring_elapsed_ms` while it rings,
    /// `talk_elapsed_ms` once answered, `hold_elapsed_ms` while the agent holds it.
    pub fn timers(&self, now: CaptureTime) -> Timers {
        let mut t = Timers::default();
        if self.ended_at.get().is_some() {
            return t;
        }
        match self.answered_at.get() {
            None => {
                let start = self.ring_start_at.get().unwrap_or(self.invite_at);
                t.ring_elapsed_ms = Some(now.millis_since(start));
            }
            Some(ans) => {
                t.talk_elapsed_ms = Some(now.millis_since(ans));
                t.hold_elapsed_ms = self.hold_since.get().map(|h| now.millis_since(h));
            }
        }
        t
    }

    /// The `leg` object: the analyze fields known so far, masked.
    pub fn write_json(&self, out: &mut String, r: &Renderer, leg_id: &str) {
        let rare = self.rare.as_deref();
        let list = |f: fn(&Rare) -> &Option<Box<str>>| rare.and_then(|x| f(x).as_deref());
        let mut o = Obj::new(out);
        o.str("agent", &self.ident.agent);
        o.str("agent_id", &self.ident.agent_id);
        o.opt_str("agent_name", self.ident.name.as_deref());
        o.opt_time("answered_at", r, self.answered_at.get());
        o.str("call_id", self.call_id());
        o.opt_str("customer", self.customer());
        o.str("direction", self.direction.as_str());
        o.opt_str("end_reason", self.end_reason.map(EndReason::as_str));
        o.opt_time("ended_at", r, self.ended_at.get());
        o.bool("glare", self.glare);
        o.str("hangup_by", self.hangup_by.as_str());
        o.u64("hold_ms", self.hold_ms);
        o.raw("holds", list(|x| &x.holds).unwrap_or("[]"));
        o.time("invite_at", r, self.invite_at);
        o.str("leg_id", leg_id);
        o.opt_str("linked_call_id", list(|x| &x.linked_call_id));
        o.raw("media", list(|x| &x.media).unwrap_or("[]"));
        o.opt_str("outcome", self.outcome.map(Outcome::as_str));
        o.opt_u64(
            "ring_ms",
            (self.ring_ms != u64::MAX).then_some(self.ring_ms),
        );
        o.opt_time("ring_start_at", r, self.ring_start_at.get());
        o.str("survey", self.survey.as_str());
        o.opt_str("team", self.ident.team.as_deref());
        o.raw("violations", list(|x| &x.violations).unwrap_or("[]"));
        o.end();
    }
}

/// A JSON array of `items`, None when there are none.
fn array<T>(items: &[T], mut each: impl FnMut(&mut String, &T)) -> Option<Box<str>> {
    if items.is_empty() {
        return None;
    }
    let mut out = String::from("[");
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        each(&mut out, x);
    }
    out.push(']');
    Some(out.into_boxed_str())
}

fn write_hold(out: &mut String, r: &Renderer, h: &Hold, now: CaptureTime) {
    let mut o = Obj::new(out);
    o.str("by", h.by.as_str());
    o.u64("ms", h.ms(h.end_at.unwrap_or(now)));
    o.time("start_at", r, h.start_at);
    o.end();
}

fn write_media(out: &mut String, m: &MediaRecord) {
    let mut o = Obj::new(out);
    o.opt_str("codec", m.codec.as_deref());
    o.str("dst", &m.dst.to_string());
    o.i64("expected", m.expected);
    o.str("from", m.from.as_str());
    o.f64("jitter_ms", round(m.jitter_ms, 2));
    o.f64("loss_pct", round(m.loss_pct, 2));
    o.i64("lost", m.lost);
    o.f64("max_delta_ms", round(m.max_delta_ms, 2));
    o.f64("max_jitter_ms", round(m.max_jitter_ms, 2));
    o.opt_f64("mos", m.mos.map(|x| round(x, 2)));
    o.u64("packets", m.packets);
    match &m.rtcp {
        None => o.raw("rtcp", "null"),
        Some(x) => {
            let mut r = Obj::new(o.key("rtcp"));
            r.i64("cumulative_lost", i64::from(x.cumulative_lost));
            r.f64("fraction_lost_pct", round(x.fraction_lost_pct, 2));
            r.f64("jitter_ms", round(x.jitter_ms, 2));
            r.f64("max_fraction_lost_pct", round(x.max_fraction_lost_pct, 2));
            r.f64("max_jitter_ms", round(x.max_jitter_ms, 2));
            r.opt_f64("mos_lq", x.mos_lq.map(|v| round(v, 2)));
            r.opt_u64("r_factor", x.r_factor.map(u64::from));
            r.u64("reports", u64::from(x.reports));
            r.opt_u64("round_trip_ms", x.round_trip_ms.map(u64::from));
            r.end();
        }
    }
    o.str("src", &m.src.to_string());
    o.str("ssrc", &format!("0x{:08x}", m.ssrc));
    o.end();
}

fn write_violation(out: &mut String, r: &Renderer, v: &Violation) {
    let mut o = Obj::new(out);
    o.time("at", r, v.at);
    o.str("detail", &v.detail);
    o.str("rule", v.rule.as_str());
    o.end();
}

/// Writes a frame's timers among its keys: call with the keys before `leg` written.
pub fn write_leg_entry(
    o: &mut Obj<'_>,
    r: &Renderer,
    leg_id: &str,
    view: &LegView,
    timers: Timers,
    between: impl FnOnce(&mut Obj<'_>),
) {
    // Keys in byte order: hold_elapsed_ms, leg, ring_elapsed_ms, (seq), talk_elapsed_ms.
    if let Some(h) = timers.hold_elapsed_ms {
        o.u64("hold_elapsed_ms", h);
    }
    view.write_json(o.key("leg"), r, leg_id);
    if let Some(ring) = timers.ring_elapsed_ms {
        o.u64("ring_elapsed_ms", ring);
    }
    between(o);
    if let Some(t) = timers.talk_elapsed_ms {
        o.u64("talk_elapsed_ms", t);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::engine::media::leg::RtcpFigures;
    use crate::engine::rules::RuleId;
    use crate::engine::SourceId;

    pub fn full_record() -> LegRecord {
        let t = CaptureTime::from_secs_micros(1_800_000_000, 123_456);
        LegRecord {
            leg_id: "00f1e2d3c4b5a697".into(),
            call_id: b"13812345678-77@10.0.0.1 \"q\"\n\xff".to_vec(),
            linked_call_id: Some(b"cust-15011112222@sw".to_vec()),
            agent: "8001".into(),
            agent_id: "A0001".into(),
            agent_name: Some("李娜".into()),
            team: Some("Inbound-1".into()),
            direction: Direction::Inbound,
            customer: Some("13812345678".into()),
            customer_is_internal: false,
            invite_at: t,
            ring_start_at: Some(t.plus_millis(50)),
            answered_at: Some(t.plus_millis(2_050)),
            ended_at: None,
            ring_ms: Some(2_000),
            outcome: Some(Outcome::Answered),
            hangup_by: HangupBy::None,
            survey: Survey::Missing,
            glare: true,
            hold_ms: 1_234,
            holds: vec![
                Hold {
                    start_at: t.plus_millis(3_000),
                    end_at: Some(t.plus_millis(4_234)),
                    by: Party::Agent,
                },
                Hold {
                    start_at: t.plus_millis(9_000),
                    end_at: None,
                    by: Party::Agent,
                },
            ],
            media: vec![
                MediaRecord {
                    ssrc: 0x1234_abcd,
                    from: Party::Customer,
                    src: "10.0.0.1:4000".parse().unwrap(),
                    dst: "[2001:db8::1]:5000".parse().unwrap(),
                    codec: Some("PCMA".into()),
                    packets: 1_500,
                    expected: 1_510,
                    lost: -3,
                    loss_pct: 0.662_251,
                    jitter_ms: 1.234_567,
                    max_jitter_ms: 9.0,
                    max_delta_ms: 40.004,
                    mos: Some(4.114),
                    rtcp: Some(RtcpFigures {
                        reports: 7,
                        fraction_lost_pct: 0.39,
                        max_fraction_lost_pct: 1.171_875,
                        cumulative_lost: -2,
                        jitter_ms: 0.5,
                        max_jitter_ms: 2.125,
                        round_trip_ms: Some(31),
                        mos_lq: None,
                        r_factor: Some(88),
                    }),
                },
                MediaRecord {
                    ssrc: 7,
                    from: Party::Agent,
                    src: "10.0.0.2:4002".parse().unwrap(),
                    dst: "10.0.0.1:4000".parse().unwrap(),
                    codec: None,
                    packets: 0,
                    expected: 0,
                    lost: 0,
                    loss_pct: f64::NAN,
                    jitter_ms: 0.0,
                    max_jitter_ms: 0.0,
                    max_delta_ms: 0.0,
                    mos: None,
                    rtcp: None,
                },
            ],
            end_reason: None,
            violations: vec![Violation {
                rule: RuleId::LongHold,
                at: t.plus_millis(70_000),
                detail: "held 61.0 s \u{1}".into(),
            }],
            phone: None,
            source: SourceId(0),
        }
    }

    fn renderer() -> Renderer {
        Renderer {
            zone: chrono_tz::Asia::Shanghai,
            show_numbers: false,
        }
    }

    fn both(rec: &LegRecord) -> (String, String) {
        let r = renderer();
        let want = super::super::leg_json(&r, rec).to_string();
        let view = LegView::new(&r, rec, Arc::new(Ident::of(rec)));
        let mut got = String::new();
        view.write_json(&mut got, &r, &rec.leg_id);
        (got, want)
    }

    #[test]
    fn the_leg_object_is_the_masked_analyze_record_byte_for_byte() {
        let mut rec = full_record();
        let (got, want) = both(&rec);
        assert_eq!(got, want);
        assert!(!got.contains("13812345678") && !got.contains("15011112222"));
        // Ended, with everything else absent or empty.
        rec.ended_at = Some(rec.invite_at.plus_millis(80_000));
        rec.end_reason = Some(EndReason::Bye);
        rec.hangup_by = HangupBy::Agent;
        assert_eq!(both(&rec).0, both(&rec).1);
        let mut bare = full_record();
        bare.linked_call_id = None;
        bare.agent_name = None;
        bare.team = None;
        bare.customer = None;
        bare.ring_start_at = None;
        bare.answered_at = None;
        bare.ring_ms = None;
        bare.outcome = None;
        bare.holds.clear();
        bare.media.clear();
        bare.violations.clear();
        let (got, want) = both(&bare);
        assert_eq!(got, want);
        // An internal customer is shown whole.
        bare.customer = Some("8002".into());
        bare.customer_is_internal = true;
        bare.direction = Direction::Internal;
        assert_eq!(both(&bare).0, both(&bare).1);
    }

    #[test]
    fn timers_run_from_ring_answer_and_the_agents_hold() {
        let r = renderer();
        let rec = full_record();
        let now = rec.invite_at.plus_millis(10_000);
        let view = LegView::new(&r, &rec, Arc::new(Ident::of(&rec)));
        assert_eq!(view.kind, LegKind::Held);
        assert_eq!(
            view.timers(now),
            Timers {
                ring_elapsed_ms: None,
                talk_elapsed_ms: Some(7_950),
                hold_elapsed_ms: Some(1_000),
            }
        );
        let mut ringing = full_record();
        ringing.answered_at = None;
        ringing.holds.clear();
        let view = LegView::new(&r, &ringing, Arc::new(Ident::of(&ringing)));
        assert_eq!(view.timers(now).ring_elapsed_ms, Some(9_950));
        assert_eq!(view.kind, LegKind::Ringing);
    }
}
