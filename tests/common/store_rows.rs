//! Rows for the store and API tests to write: answered legs of known agents at known
//! times, flagged by the rules a test names, with the SIP messages of a small call.

use callwatch::store::{HoldRow, LegRow, LegWrite, SipRow, ViolationRow};

/// 2026-11-26T09:00:00+08:00 in capture microseconds.
pub const T0: i64 = 1_795_654_800_000_000;
pub const SEC: i64 = 1_000_000;

/// An answered inbound leg of `agent` invited at `T0 + at_s` seconds, breaking `rules`.
pub fn leg(id: &str, agent: &str, at_s: i64, rules: &[&str]) -> LegRow {
    let invite = T0 + at_s * SEC;
    LegRow {
        leg_id: id.into(),
        call_id: format!("call-{id}"),
        linked_call_id: None,
        agent: agent.into(),
        agent_id: format!("A{agent}"),
        agent_name: Some(format!("李娜{agent}")),
        team: Some("一组".into()),
        direction: "inbound".into(),
        customer: Some("13812345678".into()),
        customer_is_internal: false,
        invite_at: invite,
        ring_start_at: Some(invite + 100_000),
        answered_at: Some(invite + 4 * SEC),
        ended_at: Some(invite + 60 * SEC),
        ring_ms: Some(3_900),
        outcome: Some("answered".into()),
        hangup_by: "customer".into(),
        survey: "not_required".into(),
        glare: false,
        hold_ms: 5_000,
        end_reason: Some("bye".into()),
        holds: vec![HoldRow {
            start_at: invite + 20 * SEC,
            end_at: Some(invite + 25 * SEC),
            by: "agent".into(),
        }],
        media: if rules.is_empty() {
            None
        } else {
            Some(
                serde_json::json!([{"ssrc": "0x01020304", "from": "customer",
                "src": "10.1.2.3:20000", "dst": "10.1.9.20:30000", "codec": "PCMU",
                "packets": 1500, "expected": 1500, "lost": 0, "loss_pct": 0.0,
                "jitter_ms": 0.8, "max_jitter_ms": 2.1, "max_delta_ms": 21.3, "mos": 4.4,
                "rtcp": null}]),
            )
        },
        violations: rules
            .iter()
            .map(|r| ViolationRow {
                rule: r.to_string(),
                at: invite + 10 * SEC,
                detail: format!("{r} detail"),
            })
            .collect(),
        node: "node-a".into(),
    }
}

/// The SIP messages of a small answered call.
pub fn sip(call_id: &str, at: i64) -> Vec<SipRow> {
    let msg = |first: &str, dt: i64, from_phone: bool| {
        let raw = format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.1.0.10:5060;branch=z9hG4bK{dt}\r\n\
             From: \"客户\" <sip:13812345678@10.1.0.10>;tag=c1\r\nTo: <sip:8001@10.1.9.1>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let (src, dst) = if from_phone {
            ("10.1.9.1:5060", "10.1.0.10:5060")
        } else {
            ("10.1.0.10:5060", "10.1.9.1:5060")
        };
        SipRow {
            at: at + dt * 1000,
            src: src.into(),
            dst: dst.into(),
            transport: "udp".into(),
            first_line: first.into(),
            raw: raw.into_bytes(),
        }
    };
    vec![
        msg("INVITE sip:8001@10.1.9.1 SIP/2.0", 0, false),
        msg("SIP/2.0 180 Ringing", 100, true),
        msg("SIP/2.0 200 OK", 4000, true),
        msg("ACK sip:8001@10.1.9.1 SIP/2.0", 4010, false),
        msg("BYE sip:8001@10.1.9.1 SIP/2.0", 60000, false),
        msg("SIP/2.0 200 OK", 60010, true),
    ]
}

pub fn write(leg: LegRow) -> LegWrite {
    let sip = leg.flagged().then(|| sip(&leg.call_id, leg.invite_at));
    LegWrite { leg, sip }
}
