//! Engine scenarios on simulated time: SIP messages built here, fed with explicit capture
//! timestamps, checked against the leg records and events the engine produces. Each
//! test is one story of SPEC §3, named as a sentence.

mod common;

use callwatch::engine::leg::{Direction, EndReason, HangupBy, Outcome, Survey};
use callwatch::engine::rules::RuleId;
use callwatch::engine::{Event, LegRecord};
use callwatch::time::CaptureTime;
use common::*;

fn rules_of(l: &LegRecord) -> Vec<RuleId> {
    let mut r: Vec<RuleId> = l.violations.iter().map(|v| v.rule).collect();
    r.sort();
    r
}

/// An answered inbound call: INVITE at 0, 180 at 100 ms, 200 at `answer_ms`.
fn answered(run: &mut Run, d: &Dialog, answer_ms: i64) {
    run.at(0, PBX, PHONE1, d.invite())
        .at(20, PHONE1, PBX, d.response(100, 1, "INVITE", "inv", ""))
        .at(100, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(
            answer_ms,
            PHONE1,
            PBX,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(
            answer_ms + 10,
            PBX,
            PHONE1,
            d.request("ACK", 1, false, "ack", ""),
        );
}

#[test]
fn answered_in_4s_then_customer_hangs_up() {
    let d = inbound("c1", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 4100);
    run.at(60_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .at(60_010, PHONE1, PBX, d.response(200, 2, "BYE", "bye", ""));
    let l = run.only_leg();
    assert_eq!(l.agent, "8001");
    assert_eq!(l.direction, Direction::Inbound);
    assert_eq!(l.ring_ms, Some(4000));
    assert_eq!(l.outcome, Some(Outcome::Answered));
    assert_eq!(l.hangup_by, HangupBy::Customer);
    assert_eq!(l.survey, Survey::NotRequired);
    assert_eq!(l.end_reason, Some(EndReason::Bye));
    assert_eq!(l.customer.as_deref(), Some("13812345678"));
    assert!(l.violations.is_empty());
}

#[test]
fn late_answer_is_raised_live_while_the_phone_still_rings() {
    let d = inbound("c2", "13812345678", "8001");
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d.invite()).at(
        100,
        PHONE1,
        PBX,
        d.response(180, 1, "INVITE", "inv", ""),
    );
    run.tick(10_100);
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e, Event::ViolationRaised { .. })),
        "not before the threshold"
    );
    run.tick(10_101);
    let v = run
        .events
        .iter()
        .find_map(|e| match e {
            Event::ViolationRaised { violation, .. } => Some(violation.clone()),
            _ => None,
        })
        .expect("late_answer raised before any answer");
    assert_eq!(v.rule, RuleId::LateAnswer);
    assert_eq!(v.at, CaptureTime::from_millis(1_800_000_000_000 + 10_100));
    run.at(
        13_100,
        PHONE1,
        PBX,
        d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
    )
    .at(30_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
    .finish();
    let l = run.only_leg();
    assert_eq!(l.ring_ms, Some(13_000));
    assert_eq!(rules_of(l), vec![RuleId::LateAnswer]);
}

#[test]
fn answer_at_exactly_the_threshold_is_on_time() {
    let d = inbound("c3", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 10_100);
    run.at(20_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .finish();
    assert_eq!(run.only_leg().ring_ms, Some(10_000));
    assert!(run.only_leg().violations.is_empty());
}

#[test]
fn agent_hangs_up_first_without_transfer() {
    let d = inbound("c4", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 3000);
    run.at(40_000, PHONE1, PBX, d.request("BYE", 1, true, "abye", ""))
        .at(
            40_010,
            PBX,
            PHONE1,
            d.callee_response(200, 1, "BYE", "abye"),
        );
    let l = run.only_leg();
    assert_eq!(l.hangup_by, HangupBy::Agent);
    assert_eq!(l.survey, Survey::Missing);
    assert_eq!(
        rules_of(l),
        vec![RuleId::AgentHangupFirst, RuleId::SurveyMissing]
    );
}

#[test]
fn blind_transfer_to_the_survey_then_agent_leaves() {
    let d = inbound("c5", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 3000);
    let refer = String::from_utf8(d.request("REFER", 2, true, "ref", ""))
        .unwrap()
        .replace(
            "Content-Length: 0",
            "Refer-To: <sip:96000@pbx>\r\nReferred-By: <sip:8001@pbx>\r\nContent-Length: 0",
        );
    let notify = |n: u32, frag: &str| {
        let body = format!("SIP/2.0 {frag}\r\n");
        String::from_utf8(d.request("NOTIFY", n, false, &format!("n{n}"), "")).unwrap().replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Event: refer\r\nSubscription-State: active\r\nContent-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
        )
    };
    run.at(50_000, PHONE1, PBX, refer.into_bytes())
        .at(
            50_010,
            PBX,
            PHONE1,
            d.callee_response(202, 2, "REFER", "ref"),
        )
        .at(50_020, PBX, PHONE1, notify(2, "100 Trying").into_bytes())
        .at(51_000, PBX, PHONE1, notify(3, "200 OK").into_bytes())
        .at(51_100, PHONE1, PBX, d.request("BYE", 3, true, "abye", ""))
        .at(
            51_110,
            PBX,
            PHONE1,
            d.callee_response(200, 3, "BYE", "abye"),
        );
    let l = run.only_leg();
    assert_eq!(l.survey, Survey::Transferred);
    assert_eq!(l.end_reason, Some(EndReason::Transfer));
    assert!(l.violations.is_empty(), "{:?}", l.violations);
}

#[test]
fn survey_refer_failed_by_notify_503_then_agent_hangs_up() {
    let d = inbound("c6", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 3000);
    let refer = String::from_utf8(d.request("REFER", 2, true, "ref", ""))
        .unwrap()
        .replace(
            "Content-Length: 0",
            "Refer-To: <sip:96000@pbx>\r\nContent-Length: 0",
        );
    let body = "SIP/2.0 503 Service Unavailable\r\n";
    let notify = String::from_utf8(d.request("NOTIFY", 2, false, "n2", "")).unwrap().replace(
        "Content-Length: 0\r\n\r\n",
        &format!("Event: refer\r\nSubscription-State: terminated\r\nContent-Type: message/sipfrag\r\nContent-Length: {}\r\n\r\n{body}", body.len()),
    );
    run.at(50_000, PHONE1, PBX, refer.into_bytes())
        .at(
            50_010,
            PBX,
            PHONE1,
            d.callee_response(202, 2, "REFER", "ref"),
        )
        .at(52_000, PBX, PHONE1, notify.into_bytes())
        .at(53_000, PHONE1, PBX, d.request("BYE", 3, true, "abye", ""))
        .finish();
    let l = run.only_leg();
    assert_eq!(l.survey, Survey::Failed);
    assert_eq!(
        rules_of(l),
        vec![RuleId::AgentHangupFirst, RuleId::SurveyMissing]
    );
}

#[test]
fn caller_cancels_after_5s_without_violation() {
    let d = inbound("c7", "13812345678", "8001");
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d.invite())
        .at(100, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(5100, PBX, PHONE1, d.cancel())
        .at(5110, PHONE1, PBX, d.response(200, 1, "CANCEL", "inv", ""))
        .at(5120, PHONE1, PBX, d.response(487, 1, "INVITE", "inv", ""));
    let l = run.only_leg();
    assert_eq!(l.outcome, Some(Outcome::Cancelled));
    assert_eq!(l.end_reason, Some(EndReason::Cancel));
    assert_eq!(l.ring_ms, Some(5020));
    assert!(l.violations.is_empty());
}

#[test]
fn agent_rings_15s_and_the_caller_cancels() {
    let d = inbound("c8", "13812345678", "8001");
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d.invite())
        .at(100, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(15_100, PBX, PHONE1, d.cancel())
        .at(15_120, PHONE1, PBX, d.response(487, 1, "INVITE", "inv", ""));
    let l = run.only_leg();
    assert_eq!(l.outcome, Some(Outcome::Cancelled));
    assert_eq!(rules_of(l), vec![RuleId::LateAnswer]);
}

#[test]
fn agent_rejects_with_486_after_11s() {
    let d = inbound("c9", "13812345678", "8001");
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d.invite())
        .at(100, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(11_100, PHONE1, PBX, d.response(486, 1, "INVITE", "inv", ""));
    let l = run.only_leg();
    assert_eq!(l.outcome, Some(Outcome::Rejected));
    assert_eq!(l.end_reason, Some(EndReason::Rejected));
    assert_eq!(rules_of(l), vec![RuleId::LateAnswer]);
}

#[test]
fn early_media_183_starts_the_ring() {
    let d = inbound("c10", "13812345678", "8001");
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d.invite())
        .at(
            500,
            PHONE1,
            PBX,
            d.response(183, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(1500, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(
            6500,
            PHONE1,
            PBX,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(9000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .finish();
    assert_eq!(run.only_leg().ring_ms, Some(6000));
}

#[test]
fn outbound_call_has_no_ring_rule() {
    let d = outbound("o1", "8001", "13812345678");
    let mut run = Run::new(engine());
    run.at(0, PHONE1, PBX, d.invite())
        .at(200, PBX, PHONE1, d.response(180, 1, "INVITE", "inv", ""))
        .at(
            20_200,
            PBX,
            PHONE1,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(30_000, PHONE1, PBX, d.request("BYE", 2, false, "bye", ""))
        .finish();
    let l = run.only_leg();
    assert_eq!(l.direction, Direction::Outbound);
    assert_eq!(l.ring_ms, Some(20_000));
    assert_eq!(l.hangup_by, HangupBy::Agent);
    assert_eq!(l.customer.as_deref(), Some("13812345678"));
    assert!(l.violations.is_empty(), "{:?}", l.violations);
}

#[test]
fn long_hold_is_raised_when_it_passes_the_threshold() {
    let d = inbound("c11", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 2000);
    run.at(
        10_000,
        PHONE1,
        PBX,
        d.request("INVITE", 2, true, "hold", SDP_SENDONLY),
    )
    .at(
        10_050,
        PBX,
        PHONE1,
        d.callee_response(200, 2, "INVITE", "hold"),
    );
    run.tick(70_000);
    assert!(!run
        .events
        .iter()
        .any(|e| matches!(e, Event::ViolationRaised { .. })));
    run.tick(70_001);
    assert!(run.events.iter().any(|e| matches!(e, Event::ViolationRaised { violation, .. } if violation.rule == RuleId::LongHold)));
    run.at(
        75_000,
        PHONE1,
        PBX,
        d.request("INVITE", 3, true, "resume", SDP_SENDRECV),
    )
    .at(
        75_050,
        PBX,
        PHONE1,
        d.callee_response(200, 3, "INVITE", "resume"),
    )
    .at(90_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
    .finish();
    let l = run.only_leg();
    assert_eq!(l.hold_ms, 65_000);
    assert_eq!(l.holds.len(), 1);
    assert_eq!(rules_of(l), vec![RuleId::LongHold]);
}

#[test]
fn a_refused_hold_offer_is_no_hold() {
    let d = inbound("c12", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 2000);
    run.at(
        10_000,
        PHONE1,
        PBX,
        d.request("INVITE", 2, true, "hold", SDP_SENDONLY),
    )
    .at(
        10_050,
        PBX,
        PHONE1,
        d.callee_response(491, 2, "INVITE", "hold"),
    )
    .at(90_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
    .finish();
    let l = run.only_leg();
    assert_eq!(l.hold_ms, 0);
    assert!(l.violations.is_empty());
}

#[test]
fn forked_call_rings_two_agents() {
    let mut d1 = inbound("f1", "13812345678", "8001");
    d1.ruri = "8001".into();
    let mut d2 = inbound("f1", "13812345678", "8002");
    d2.ruri = "8002".into();
    // Same Call-ID and From tag, different agents and branches.
    let inv2 = String::from_utf8(d2.invite())
        .unwrap()
        .replace("z9hG4bKinv", "z9hG4bKinv2")
        .into_bytes();
    let cancel1 = String::from_utf8(d1.cancel())
        .unwrap()
        .replace(
            "Content-Length: 0",
            "Reason: SIP;cause=200;text=\"Call completed elsewhere\"\r\nContent-Length: 0",
        )
        .into_bytes();
    let mut run = Run::new(engine());
    run.at(0, PBX, PHONE1, d1.invite())
        .at(1, PBX, PHONE2, inv2)
        .at(100, PHONE1, PBX, d1.response(180, 1, "INVITE", "inv", ""))
        .at(
            110,
            PHONE2,
            PBX,
            String::from_utf8(d2.response(180, 1, "INVITE", "inv", ""))
                .unwrap()
                .replace("z9hG4bKinv", "z9hG4bKinv2")
                .into_bytes(),
        )
        .at(
            3110,
            PHONE2,
            PBX,
            String::from_utf8(d2.response(200, 1, "INVITE", "inv", SDP_SENDRECV))
                .unwrap()
                .replace("z9hG4bKinv", "z9hG4bKinv2")
                .into_bytes(),
        )
        .at(3120, PBX, PHONE1, cancel1)
        .at(3130, PHONE1, PBX, d1.response(487, 1, "INVITE", "inv", ""))
        .at(60_000, PBX, PHONE2, d2.request("BYE", 2, false, "bye", ""))
        .finish();
    assert_eq!(run.ended.len(), 2, "{:#?}", run.ended);
    let l1 = run.ended.iter().find(|l| l.agent == "8001").unwrap();
    let l2 = run.ended.iter().find(|l| l.agent == "8002").unwrap();
    assert_eq!(l1.call_id, l2.call_id);
    assert_ne!(l1.leg_id, l2.leg_id);
    assert_eq!(l1.outcome, Some(Outcome::Cancelled));
    assert_eq!(l2.outcome, Some(Outcome::Answered));
    assert_eq!(l2.ring_ms, Some(3000));
}

/// The copy of a message on the phone's side of a proxy: one more Via on top.
fn via_prepend(m: Vec<u8>, branch: &str) -> Vec<u8> {
    let s = String::from_utf8(m).unwrap();
    let i = s.find("\r\n").unwrap() + 2;
    format!(
        "{}Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch}\r\n{}",
        &s[..i],
        &s[i..]
    )
    .into_bytes()
}

#[test]
fn retransmissions_and_proxy_copies_count_once() {
    let d = inbound("r1", "13812345678", "8001");
    let mut run = Run::new(engine());
    // The same INVITE seen on both sides of a proxy and retransmitted.
    run.at(0, "10.9.9.9:5060", PBX, d.invite())
        .at(5, PBX, PHONE1, via_prepend(d.invite(), "px1"))
        .at(505, PBX, PHONE1, via_prepend(d.invite(), "px1"))
        .at(
            600,
            PHONE1,
            PBX,
            via_prepend(d.response(180, 1, "INVITE", "inv", ""), "px1"),
        )
        .at(
            605,
            PBX,
            "10.9.9.9:5060",
            d.response(180, 1, "INVITE", "inv", ""),
        )
        .at(
            4600,
            PHONE1,
            PBX,
            via_prepend(d.response(200, 1, "INVITE", "inv", SDP_SENDRECV), "px1"),
        )
        .at(
            4605,
            PBX,
            "10.9.9.9:5060",
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(
            5100,
            PHONE1,
            PBX,
            via_prepend(d.response(200, 1, "INVITE", "inv", SDP_SENDRECV), "px1"),
        )
        .at(9000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .at(9500, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .finish();
    let l = run.only_leg();
    assert_eq!(l.invite_at, CaptureTime::from_millis(1_800_000_000_000));
    assert_eq!(l.ring_ms, Some(4000));
    assert_eq!(
        l.ended_at,
        Some(CaptureTime::from_millis(1_800_000_009_000))
    );
    assert_eq!(l.phone, Some(addr(PHONE1)));
}

#[test]
fn b2bua_legs_are_linked_by_the_correlation_header() {
    let customer_leg = outbound("cust-leg-1", "13812345678", "4000");
    let agent_leg = inbound("agent-leg-1", "4000", "8001").with_header("X-Call-ID: cust-leg-1");
    let mut run = Run::new(engine_with(|c| {
        c.engine.correlation_header = "X-Call-ID".into()
    }));
    run.at(0, "10.9.9.9:5060", PBX, customer_leg.invite())
        .at(10, PBX, PHONE1, agent_leg.invite())
        .at(
            2000,
            PHONE1,
            PBX,
            agent_leg.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .at(
            9000,
            PBX,
            PHONE1,
            agent_leg.request("BYE", 2, false, "bye", ""),
        )
        .finish();
    let l = run.only_leg();
    assert_eq!(l.linked_call_id.as_deref(), Some(&b"cust-leg-1"[..]));
    assert_eq!(l.customer.as_deref(), Some("13812345678"));
}

#[test]
fn glare_does_not_blame_the_agent() {
    let d = inbound("g1", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 2000);
    run.at(30_000, PHONE1, PBX, d.request("BYE", 1, true, "abye", ""))
        .at(30_005, PBX, PHONE1, d.request("BYE", 2, false, "cbye", ""))
        .at(
            30_020,
            PBX,
            PHONE1,
            d.callee_response(200, 1, "BYE", "abye"),
        )
        .finish();
    let l = run.only_leg();
    assert!(l.glare);
    assert_eq!(l.hangup_by, HangupBy::Agent);
    assert!(!rules_of(l).contains(&RuleId::AgentHangupFirst));
}

#[test]
fn unanswered_leg_times_out_as_failed() {
    let d = inbound("t1", "13812345678", "8001");
    let mut run = Run::new(engine_with(|c| c.engine.ring_timeout_ms = 30_000));
    run.at(0, PBX, PHONE1, d.invite()).at(
        100,
        PHONE1,
        PBX,
        d.response(180, 1, "INVITE", "inv", ""),
    );
    run.tick(30_100);
    let l = run.only_leg();
    assert_eq!(l.outcome, Some(Outcome::Failed));
    assert_eq!(l.end_reason, Some(EndReason::Timeout));
    assert_eq!(l.ring_ms, Some(30_000));
    assert_eq!(rules_of(l), vec![RuleId::LateAnswer]);
}

#[test]
fn open_legs_are_reported_at_capture_end_without_firing_deadlines() {
    let d = inbound("e1", "13812345678", "8001");
    let mut run = Run::new(engine());
    answered(&mut run, &d, 2000);
    run.finish();
    let l = run.only_leg();
    assert_eq!(l.ended_at, None);
    assert_eq!(l.end_reason, Some(EndReason::CaptureEnd));
    assert_eq!(l.outcome, Some(Outcome::Answered));
}

#[test]
fn dialogs_without_an_agent_and_register_traffic_give_no_record() {
    let d = inbound("n1", "13812345678", "4000");
    let mut run = Run::new(engine());
    run.at(0, PBX, "10.9.9.9:5060", d.invite())
        .at(
            1000,
            "10.9.9.9:5060",
            PBX,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        )
        .finish();
    assert!(run.ended.is_empty());
}

#[test]
fn malformed_sip_is_counted_and_skipped() {
    let mut run = Run::new(engine());
    run.at(
        0,
        PBX,
        PHONE1,
        b"INVITE sip:8001@x SIP/2.0\r\nVia: garbage\r\n\r\n".to_vec(),
    )
    .at(1, PBX, PHONE1, b"SIP/2.0 99999 Bad\r\n\r\n".to_vec())
    .finish();
    assert!(run.ended.is_empty());
    let errors: u64 = run.engine.stats().errors.values().sum();
    assert!(errors >= 2, "{:?}", run.engine.stats().errors);
}

#[test]
fn internal_call_gives_a_record_per_agent() {
    let d = Dialog {
        ruri: "8002".into(),
        ..inbound("i1", "8001", "8002")
    };
    let mut run = Run::new(engine());
    answered(&mut run, &d, 3000);
    run.at(20_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .finish();
    assert_eq!(run.ended.len(), 2);
    assert!(run.ended.iter().all(|l| l.direction == Direction::Internal));
    assert!(run.ended.iter().all(|l| l.violations.is_empty()));
    let callee = run.ended.iter().find(|l| l.agent == "8002").unwrap();
    assert_eq!(callee.customer.as_deref(), Some("8001"));
    assert!(callee.customer_is_internal);
}

fn rtp_packet(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xffu8; 160]);
    p
}

/// An RTCP receiver report by `reporter` about `about`.
fn rtcp_rr(reporter: u32, about: u32, fraction: u8, cumulative: i32, jitter: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&reporter.to_be_bytes());
    p.extend_from_slice(&about.to_be_bytes());
    p.push(fraction);
    p.extend_from_slice(&cumulative.to_be_bytes()[1..]);
    p.extend_from_slice(&[0, 0, 0, 50]);
    p.extend_from_slice(&jitter.to_be_bytes());
    p.extend_from_slice(&[0u8; 8]);
    p
}

#[test]
fn rtcp_receiver_reports_attach_the_far_ends_view_to_the_stream() {
    let d = inbound("m1", "13812345678", "8001");
    let mut run = Run::new(engine());
    // The customer's SDP offers 10.0.1.1:30000 in the test factory; the phone answers
    // with the same body, so customer media goes to the agent's announced address.
    let customer_media = "10.0.0.9:40000";
    let offer = String::from_utf8(d.invite())
        .unwrap()
        .replace("c=IN IP4 10.0.1.1", "c=IN IP4 10.0.0.9")
        .replace("m=audio 30000", "m=audio 40000")
        .into_bytes();
    run.at(0, PBX, PHONE1, offer)
        .at(100, PHONE1, PBX, d.response(180, 1, "INVITE", "inv", ""))
        .at(
            2000,
            PHONE1,
            PBX,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        );
    for i in 0..100u16 {
        let t = 2100 + i64::from(i) * 20;
        run.at(
            t,
            customer_media,
            "10.0.1.1:30000",
            rtp_packet(i, u32::from(i) * 160, 0xC0FFEE),
        );
    }
    // The phone reports from its RTCP port (RTP + 1) about the customer's stream.
    run.at(
        4200,
        "10.0.1.1:30001",
        "10.0.0.9:40001",
        rtcp_rr(0xA6E7, 0xC0FFEE, 64, 3, 160),
    )
    .at(9000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
    .finish();
    let l = run.only_leg();
    assert_eq!(l.media.len(), 1, "{:?}", l.media);
    let m = &l.media[0];
    assert_eq!(m.packets, 100);
    assert_eq!(m.from, callwatch::engine::leg::Party::Customer);
    let r = m.rtcp.as_ref().expect("the receiver report is attached");
    assert_eq!(r.reports, 1);
    assert_eq!(r.cumulative_lost, 3);
    assert!((r.fraction_lost_pct - 25.0).abs() < 1e-9);
    assert!((r.jitter_ms - 20.0).abs() < 1e-9);
}

#[test]
fn personal_calls_are_flagged_only_when_enabled() {
    let enable = |c: &mut callwatch::config::Config| {
        c.rules.personal_call.enabled = true;
        c.rules.personal_call.allow = vec!["400*".into(), "95566".into()];
        c.rules.personal_call.queue_users = vec!["95566".into()];
    };
    // An agent calls a mobile number outside the business allow-list.
    let d = outbound("pc1", "8001", "13812345678");
    let story = |run: &mut Run| {
        run.at(0, PHONE1, PBX, d.invite())
            .at(
                3000,
                PBX,
                PHONE1,
                d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
            )
            .at(60_000, PHONE1, PBX, d.request("BYE", 2, false, "bye", ""))
            .finish();
    };
    let mut run = Run::new(engine_with(enable));
    story(&mut run);
    assert_eq!(rules_of(run.only_leg()), vec![RuleId::PersonalCall]);
    let mut run = Run::new(engine());
    story(&mut run);
    assert!(run.only_leg().violations.is_empty(), "off by default");

    // A customer dials the agent's direct line (not the 95566 queue) and talks 200 s.
    let d = inbound("pc2", "13912345678", "8001");
    let mut run = Run::new(engine_with(enable));
    answered(&mut run, &d, 2000);
    run.at(202_000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
        .finish();
    let l = run.only_leg();
    assert_eq!(rules_of(l), vec![RuleId::PersonalCall]);
    assert_eq!(
        l.violations[0].at,
        CaptureTime::from_millis(1_800_000_000_000 + 182_000)
    );
}

fn register(call_id: &str, cseq: u32, agent: &str, expires: u32) -> Vec<u8> {
    format!(
        "REGISTER sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.1.1:5060;branch=z9hG4bKr{cseq}\r\nFrom: <sip:{agent}@pbx>;tag=r1\r\nTo: <sip:{agent}@pbx>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{agent}@10.0.1.1:5060>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn register_ok(call_id: &str, cseq: u32, agent: &str, expires: u32) -> Vec<u8> {
    format!(
        "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.1.1:5060;branch=z9hG4bKr{cseq}\r\nFrom: <sip:{agent}@pbx>;tag=r1\r\nTo: <sip:{agent}@pbx>;tag=reg\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{agent}@10.0.1.1:5060>;expires={expires}\r\nContent-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

fn registrations(run: &Run) -> Vec<(String, &'static str, i64)> {
    run.events
        .iter()
        .filter_map(|e| match e {
            Event::AgentRegistration(c) => Some((
                c.agent.clone(),
                c.state.as_str(),
                (c.at.0 / 1000) - 1_800_000_000_000,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn a_phone_that_stops_refreshing_its_registration_goes_offline_at_expiry() {
    let mut run = Run::new(engine());
    run.at(0, PHONE1, PBX, register("reg-8001", 1, "8001", 3600))
        .at(10, PBX, PHONE1, register_ok("reg-8001", 1, "8001", 60))
        // A refresh at 50 s pushes the expiry to 110 s; the 60 s deadline is stale.
        .at(50_000, PHONE1, PBX, register("reg-8001", 2, "8001", 60))
        .at(50_010, PBX, PHONE1, register_ok("reg-8001", 2, "8001", 60));
    run.tick(109_000);
    assert_eq!(
        registrations(&run),
        vec![
            ("8001".into(), "registered", 10),
            ("8001".into(), "registered", 50_010)
        ]
    );
    run.tick(111_000);
    assert_eq!(
        registrations(&run).last().unwrap(),
        &("8001".to_string(), "expired", 110_010)
    );
    // A register for a non-agent user is not tracked.
    run.at(120_000, PHONE1, PBX, register("reg-x", 1, "4000", 60))
        .at(120_010, PBX, PHONE1, register_ok("reg-x", 1, "4000", 60));
    assert_eq!(registrations(&run).len(), 3);
}

#[test]
fn unregistering_with_expires_zero_is_reported_at_once() {
    let mut run = Run::new(engine());
    run.at(0, PHONE1, PBX, register("reg-8002", 1, "8002", 600))
        .at(10, PBX, PHONE1, register_ok("reg-8002", 1, "8002", 600))
        .at(5000, PHONE1, PBX, register("reg-8002", 2, "8002", 0))
        .at(
            5010,
            PBX,
            PHONE1,
            String::from_utf8(register_ok("reg-8002", 2, "8002", 0))
                .unwrap()
                .into_bytes(),
        );
    assert_eq!(
        registrations(&run).last().unwrap(),
        &("8002".to_string(), "unregistered", 5010)
    );
    run.tick(700_000);
    assert_eq!(
        registrations(&run).len(),
        2,
        "no expiry after an unregister"
    );
}

#[test]
fn codec_constants_from_config_change_the_mos() {
    let story = |engine: callwatch::engine::Engine| {
        let d = inbound("mos1", "13812345678", "8001");
        let mut run = Run::new(engine);
        run.at(0, PBX, PHONE1, d.invite()).at(
            2000,
            PHONE1,
            PBX,
            d.response(200, 1, "INVITE", "inv", SDP_SENDRECV),
        );
        for i in 0..200u16 {
            let t = 2100 + i64::from(i) * 20;
            run.at(
                t,
                "10.0.0.9:40000",
                "10.0.1.1:30000",
                rtp_packet(i, u32::from(i) * 160, 7),
            );
        }
        run.at(9000, PBX, PHONE1, d.request("BYE", 2, false, "bye", ""))
            .finish();
        run.only_leg().clone()
    };
    let clean = story(engine());
    let mos = clean.media[0].mos.unwrap();
    assert!((4.3..4.5).contains(&mos), "clean G.711: {mos}");
    assert!(clean.violations.is_empty());
    let harsh = story(engine_with(|c| {
        c.rules.audio.codecs.insert(
            "PCMU".into(),
            callwatch::config::CodecConstants {
                ie: 30.0,
                bpl: 10.0,
                delay_ms: 20.0,
            },
        );
    }));
    let mos = harsh.media[0].mos.unwrap();
    assert!(mos < 3.6, "Ie 30 from the config: {mos}");
    assert_eq!(rules_of(&harsh), vec![RuleId::PoorAudio]);
}
