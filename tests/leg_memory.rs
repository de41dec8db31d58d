//! Memory per open leg (issue 4): heap bytes the engine holds with 5,000 open legs,
//! half of them ringing and half answered with RTP flowing both ways (two media
//! streams each), counted by a counting allocator. Deterministic: it asserts on bytes,
//! never on time.
//!
//! What is counted: everything the engine allocates while it takes the packets and
//! keeps after the events are drained (leg records, dialog and stream tables, copy
//! fingerprints, deadlines, media statistics). What is not: the SIP text of open calls,
//! which the store sink keeps in its own bounded budget outside the engine (SPEC §7),
//! and the packets themselves (built before counting starts).
//!
//! `cargo test --release --test leg_memory -- --nocapture` prints the figures.

mod common;

use std::alloc::System;
use std::net::{IpAddr, SocketAddr};

use callwatch::config::Config;
use callwatch::engine::{Captured, Engine, EngineSettings, PayloadHint, SourceId};
use callwatch::loadgen::CallSpec;
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;
use common::call_spec::spread_call;
use common::heap_count::net_bytes;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LEGS: usize = 5_000;
/// RTP packets per direction of each answered leg.
const RTP_PER_DIRECTION: u16 = 10;
/// The target of issue 4: under 2 KiB per open leg, for the whole daemon; the engine's
/// share is printed against it.
const TARGET_BYTES_PER_LEG: f64 = 2048.0;
/// What is asserted: no regression past today's figure plus a small margin. 1,024 bytes
/// at commit time (682 ringing, 1,366 answered with two streams; 3 allocations per
/// leg): the leg kept compactly with its texts in one allocation and its public record
/// built at each event, what few open legs have (BYE, violations, IPv6 addresses, the
/// media figures of its end) in one box, 16-byte deadlines, one-word index entries for
/// a Call-ID or an RTP address with one leg, packed stream addresses and times (1,810
/// bytes before).
const MAX_BYTES_PER_LEG: f64 = 1_070.0;

struct Pkt {
    at: CaptureTime,
    src: SocketAddr,
    dst: SocketAddr,
    hint: PayloadHint,
    payload: Vec<u8>,
}

fn spec(i: usize) -> CallSpec {
    spread_call(i, format!("mem-{i}@10.1.0.10"))
}

/// The media address announced in an SDP body.
fn media_addr(sip: &[u8], ip: IpAddr) -> SocketAddr {
    let text = String::from_utf8_lossy(sip);
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .and_then(|p| p.parse().ok())
        .expect("SDP with an audio line");
    SocketAddr::new(ip, port)
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

fn feed(engine: &mut Engine, pkts: &[Pkt]) {
    for p in pkts {
        engine.handle_packet(&Captured {
            at: p.at,
            source: SourceId(1),
            src: p.src,
            dst: p.dst,
            transport: Transport::Udp,
            hint: p.hint,
            payload: &p.payload,
            correlation_id: None,
        });
        while engine.poll_event().is_some() {}
    }
}

#[test]
fn heap_bytes_per_open_leg_with_5000_open_legs() {
    let cfg = Config::default().validate(None).unwrap();
    let t0 = 1_800_000_000_000_000i64;
    let at = |us: i64| CaptureTime(t0 + us);
    let sip = |at, src, dst, payload| Pkt {
        at,
        src,
        dst,
        hint: PayloadHint::Sip,
        payload,
    };
    // Every packet is built before counting starts.
    let mut ringing = Vec::new();
    let mut answering = Vec::new();
    let mut media = Vec::new();
    for i in 0..LEGS {
        let c = spec(i);
        let t = i as i64 * 100;
        let invite = c.invite();
        let switch_media = media_addr(&invite, c.switch.ip());
        ringing.push(sip(at(t), c.switch, c.phone, invite));
        let trying = c.invite_response(100, "Trying");
        ringing.push(sip(at(t + 10), c.phone, c.switch, trying));
        let ring = c.invite_response(180, "Ringing");
        ringing.push(sip(at(t + 20), c.phone, c.switch, ring));
        if i % 2 == 1 {
            continue;
        }
        let ok = c.invite_response(200, "OK");
        let phone_media = media_addr(&ok, c.phone.ip());
        answering.push(sip(at(1_000_000 + t), c.phone, c.switch, ok));
        answering.push(sip(at(1_000_000 + t + 10), c.switch, c.phone, c.ack("ack")));
        for n in 0..RTP_PER_DIRECTION {
            let tt = 2_000_000 + i64::from(n) * 20_000 + t / 10;
            for (src, dst, ssrc) in [
                (switch_media, phone_media, 0x1000_0000 + i as u32),
                (phone_media, switch_media, 0x2000_0000 + i as u32),
            ] {
                media.push(Pkt {
                    at: at(tt),
                    src,
                    dst,
                    hint: PayloadHint::Unknown,
                    payload: rtp(n, ssrc),
                });
            }
        }
    }
    media.sort_by_key(|p| p.at);

    let mut engine = Engine::new(EngineSettings::from_config(&cfg));
    let region = Region::new(GLOBAL);
    feed(&mut engine, &ringing);
    let after_ringing = net_bytes(&region);
    let allocs_ringing = region.change().allocations;
    feed(&mut engine, &answering);
    feed(&mut engine, &media);
    let total = net_bytes(&region);
    let allocs = region.change();

    let open = engine.open_legs().count();
    assert_eq!(open, LEGS, "every leg is open");
    assert_eq!(engine.stats().legs_answered, (LEGS / 2) as u64);
    assert_eq!(engine.stats().rtp_packets, media.len() as u64);
    assert_eq!(engine.stats().rtp_unmatched, 0);

    let per_leg = total as f64 / LEGS as f64;
    let per_ringing = after_ringing as f64 / LEGS as f64;
    let per_answered = (total - after_ringing) as f64 / (LEGS / 2) as f64 + per_ringing;
    println!(
        "leg_memory: {LEGS} open legs hold {total} heap bytes: {per_leg:.0} B per leg \
         ({per_ringing:.0} B ringing, {per_answered:.0} B answered with 2 media streams); \
         {} allocations live ({} made while ringing); target < {TARGET_BYTES_PER_LEG} B: {}",
        allocs.allocations as i64 - allocs.deallocations as i64,
        allocs_ringing,
        if per_leg < TARGET_BYTES_PER_LEG {
            "met"
        } else {
            "NOT met"
        },
    );
    assert!(
        per_leg < MAX_BYTES_PER_LEG,
        "{per_leg:.0} heap bytes per open leg, target < {MAX_BYTES_PER_LEG}"
    );
    // The answered legs did hold their two streams (the record shows them at the end).
    engine.finish();
    let mut with_media = 0;
    while let Some(ev) = engine.poll_event() {
        if let callwatch::engine::Event::LegEnded { leg, .. } = ev {
            if leg.media.len() == 2
                && leg
                    .media
                    .iter()
                    .all(|m| m.packets == u64::from(RTP_PER_DIRECTION))
            {
                with_media += 1;
            }
        }
    }
    assert_eq!(with_media, LEGS / 2, "answered legs have their two streams");
}
