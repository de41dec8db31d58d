//! Property tests of the engine's invariants: random interleavings of SIP messages from
//! a handful of dialogs (valid, out of order, duplicated, or garbage), fed at increasing
//! capture times. Whatever arrives, no leg goes back from ended to ringing, each leg
//! ends once, event times of a leg never go backwards, each rule is raised at most once
//! per leg, and the leg table never exceeds its cap.

mod common;

use std::collections::HashMap;

use callwatch::engine::leg::Outcome;
use callwatch::engine::{Captured, Engine, Event, PayloadHint, SourceId};
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;
use common::*;
use proptest::prelude::*;

/// One step of a random story: which dialog, which message, how long after the last.
#[derive(Clone, Debug)]
struct Step {
    dialog: usize,
    kind: u8,
    gap_ms: u16,
}

fn message(d: &Dialog, kind: u8) -> Vec<u8> {
    match kind % 16 {
        0 => d.invite(),
        1 => d.response(180, 1, "INVITE", "inv", ""),
        2 => d.response(183, 1, "INVITE", "inv", SDP_SENDRECV),
        3 => d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        4 => d.response(486, 1, "INVITE", "inv", ""),
        5 => d.response(487, 1, "INVITE", "inv", ""),
        6 => d.cancel(),
        7 => d.request("BYE", 2, false, "bye", ""),
        8 => d.request("BYE", 1, true, "abye", ""),
        9 => d.callee_response(200, 1, "BYE", "abye"),
        10 => d.request("INVITE", 2, true, "hold", SDP_SENDONLY),
        11 => d.callee_response(200, 2, "INVITE", "hold"),
        12 => d.request("INVITE", 3, true, "resume", SDP_SENDRECV),
        13 => d.callee_response(200, 3, "INVITE", "resume"),
        14 => d.request("ACK", 1, false, "ack", ""),
        _ => b"SIP/2.0 200\r\nVia: x\r\n\r\n\x00\xff garbage".to_vec(),
    }
}

fn dialogs() -> Vec<Dialog> {
    vec![
        inbound("p1", "13812345678", "8001"),
        inbound("p2", "13912345678", "8002"),
        inbound("p3", "13712345678", "8003"),
        outbound("p4", "8004", "13612345678"),
        inbound("p5", "13512345678", "4000"), // no agent: never a leg
        inbound("p6", "8005", "8006"),        // internal: two legs
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        (0usize..6, any::<u8>(), 0u16..4000).prop_map(|(dialog, kind, gap_ms)| Step {
            dialog,
            kind,
            gap_ms,
        }),
        1..120,
    )
}

/// Feeds the steps and checks every invariant after each packet.
fn run_and_check(steps: &[Step], max_legs: usize) {
    let mut engine: Engine = engine_with(|_| {});
    engine = {
        let mut s = engine.settings().clone();
        s.max_legs = max_legs;
        Engine::new(s)
    };
    let ds = dialogs();
    let mut t = 1_800_000_000_000i64;
    // leg id → when it ended. Once an ended leg has lingered (32 s, RFC 3261 Timer B)
    // and been forgotten, the same ids may start a new leg: only a fresh ringing may
    // follow, never a step back of the old one.
    let mut ended: HashMap<String, CaptureTime> = HashMap::new();
    let mut last_at: HashMap<String, CaptureTime> = HashMap::new();
    for step in steps {
        t += i64::from(step.gap_ms);
        let d = &ds[step.dialog];
        let bytes = message(d, step.kind);
        let (src, dst) = if step.kind % 2 == 0 {
            (PBX, PHONE1)
        } else {
            (PHONE1, PBX)
        };
        engine.handle_packet(&Captured {
            at: CaptureTime::from_millis(t),
            source: SourceId(0),
            src: addr(src),
            dst: addr(dst),
            transport: Transport::Udp,
            hint: PayloadHint::Unknown,
            payload: &bytes,
            correlation_id: None,
        });
        assert!(engine.legs_tracked() <= max_legs, "table over its cap");
        while let Some(ev) = engine.poll_event() {
            let Some(leg) = ev.leg() else { continue };
            if let Some(end) = ended.get(&leg.leg_id).copied() {
                let fresh = matches!(ev, Event::LegRinging { .. })
                    && leg.invite_at >= end.plus_millis(32_000);
                assert!(fresh, "event after the leg ended: {ev:?}");
                ended.remove(&leg.leg_id);
                last_at.remove(&leg.leg_id);
            }
            if let Some(prev) = last_at.get(&leg.leg_id) {
                if !matches!(ev, Event::ViolationRaised { .. }) {
                    assert!(ev.at() >= *prev, "leg time went backwards: {ev:?}");
                }
            }
            if !matches!(ev, Event::ViolationRaised { .. }) {
                last_at.insert(leg.leg_id.clone(), ev.at());
            }
            let mut rules: Vec<_> = leg.violations.iter().map(|v| v.rule).collect();
            rules.sort();
            rules.dedup();
            assert_eq!(rules.len(), leg.violations.len(), "a rule raised twice");
            if let Event::LegEnded { at, leg } = &ev {
                ended.insert(leg.leg_id.clone(), *at);
                if leg.outcome == Some(Outcome::Answered) {
                    assert!(leg.answered_at.is_some());
                }
                if let Some(a) = leg.answered_at {
                    assert!(a >= leg.invite_at);
                }
                assert!(leg.end_reason.is_some());
                assert!(leg.agent != "4000", "a dialog without an agent gave a leg");
            }
        }
    }
    engine.finish();
    while let Some(ev) = engine.poll_event() {
        assert!(
            !ev.leg().is_some_and(|l| ended.contains_key(&l.leg_id)),
            "event after end at finish"
        );
        if let Event::LegEnded { at, leg } = ev {
            ended.insert(leg.leg_id.clone(), at);
        }
    }
    assert_eq!(engine.open_legs().count(), 0, "finish leaves no open leg");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_stories_keep_every_invariant(steps in steps()) {
        run_and_check(&steps, 1000);
    }

    #[test]
    fn the_leg_table_never_exceeds_a_small_cap(steps in steps()) {
        run_and_check(&steps, 2);
    }
}

#[test]
fn a_flood_of_new_calls_is_capped_and_counted() {
    let mut s = engine().settings().clone();
    s.max_legs = 10;
    let mut run = Run::new(Engine::new(s));
    for i in 0..50 {
        let d = inbound(&format!("flood{i}"), "13812345678", "8001");
        run.at(i, PBX, PHONE1, d.invite());
    }
    assert_eq!(run.engine.legs_tracked(), 10);
    assert_eq!(run.engine.stats().legs_dropped_table_full, 40);
}
