//! Memory per open leg outside the engine (issue 4): heap bytes the wallboard hub and
//! the store sink's SIP buffer hold for 5,000 open legs, half of them ringing and half
//! answered, counted by a counting allocator. Deterministic: it asserts on bytes, never
//! on time.
//!
//! The legs come from the engine (realistic records: roster names and teams, masked
//! customers, long Call-IDs); the engine runs before counting starts, and its events
//! and the packets are replayed to each sink on its own while counting:
//!
//! - the wallboard hub (`WallboardSink`, the board of open legs and agents, the
//!   figures), with its replay buffer off, so that what is counted grows with the legs;
//!   the replay buffer is bounded by `HubOptions::replay_frames`/`replay_bytes` whatever
//!   the number of legs, and is printed apart, filled as 5,000 legs fill it;
//! - the store sink's SIP buffer (`sinks::store::sip::SipBuffer`) driven as the store
//!   sink drives it (every packet, `leg_open` on every leg event), split into the SIP
//!   text itself (the bytes of the messages, which SPEC §7 puts outside the per-leg
//!   figure, under its own budget) and the per-call bookkeeping around it.
//!
//! `cargo test --release --test sink_memory -- --nocapture` prints the figures.

mod common;

use std::alloc::System;
use std::net::SocketAddr;

use callwatch::config::Config;
use callwatch::engine::{Captured, Engine, EngineSettings, Event, PayloadHint, SourceId};
use callwatch::loadgen::CallSpec;
use callwatch::sinks::metrics::Metrics;
use callwatch::sinks::store::sip::{SipBuffer, MAX_MESSAGE_BYTES};
use callwatch::sinks::wallboard::{Hub, HubOptions, WallboardSink};
use callwatch::sinks::EventSink;
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;
use common::call_spec::spread_call;
use common::heap_count::{live_allocations, net_bytes};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const LEGS: usize = 5_000;
/// Asserted bounds (today's figures plus a margin), bytes per open leg.
const MAX_BOARD_BYTES_PER_LEG: f64 = 520.0;
const MAX_SIP_BOOKKEEPING_PER_LEG: f64 = 420.0;

struct Pkt {
    at: CaptureTime,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

/// What the sinks see, in order: a packet, or an event the engine emitted after it.
enum Step {
    Packet(usize),
    Event(Event),
}

fn spec(i: usize) -> CallSpec {
    // As long as a PBX's: 32 hex digits at the switch's address.
    spread_call(
        i,
        format!("{:032x}@10.1.0.10", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
    )
}

fn captured(p: &Pkt) -> Captured<'_> {
    Captured {
        at: p.at,
        source: SourceId(1),
        src: p.src,
        dst: p.dst,
        transport: Transport::Udp,
        hint: PayloadHint::Sip,
        payload: &p.payload,
        correlation_id: None,
    }
}

fn roster_file() -> std::path::PathBuf {
    let names = ["李娜", "王伟", "张敏", "刘洋", "陈静", "杨磊"];
    let mut csv = String::from("extension,agent_id,name,team\n");
    for n in 0..99 {
        csv.push_str(&format!(
            "{},A{:04},{}{},{}\n",
            8001 + n,
            n + 1,
            names[n % names.len()],
            n,
            ["Inbound-1", "Inbound-2", "VIP"][n % 3]
        ));
    }
    let p = std::env::temp_dir().join(format!("callwatch-sink-memory-{}.csv", std::process::id()));
    std::fs::write(&p, csv).unwrap();
    p
}

fn feed_hub(hub: &std::sync::Arc<Hub>, steps: &[Step]) {
    let mut sink = WallboardSink::new(hub.clone());
    for s in steps {
        if let Step::Event(ev) = s {
            sink.on_event(ev);
        }
    }
    // Dropping the sink only closes the (no) clients.
    drop(sink);
}

#[test]
fn sink_bytes_per_open_leg_with_5000_open_legs() {
    let roster = roster_file();
    let mut c = Config::default();
    c.agents.roster = roster.display().to_string();
    let cfg = c.validate(None).unwrap();
    let _ = std::fs::remove_file(&roster);
    let t0 = 1_800_000_000_000_000i64;
    let at = |us: i64| CaptureTime(t0 + us);

    // Every packet and event is built before counting starts.
    let mut pkts = Vec::new();
    let mut answering = Vec::new();
    for i in 0..LEGS {
        let c = spec(i);
        let t = i as i64 * 100;
        let p = |at, src, dst, payload| Pkt {
            at,
            src,
            dst,
            payload,
        };
        pkts.push(p(at(t), c.switch, c.phone, c.invite()));
        pkts.push(p(
            at(t + 10),
            c.phone,
            c.switch,
            c.invite_response(100, "Trying"),
        ));
        pkts.push(p(
            at(t + 20),
            c.phone,
            c.switch,
            c.invite_response(180, "Ringing"),
        ));
        if i % 2 == 0 {
            answering.push(p(
                at(1_000_000 + t),
                c.phone,
                c.switch,
                c.invite_response(200, "OK"),
            ));
            answering.push(p(at(1_000_000 + t + 10), c.switch, c.phone, c.ack("ack")));
        }
    }
    pkts.extend(answering);
    let mut engine = Engine::new(EngineSettings::from_config(&cfg));
    let mut steps = Vec::new();
    for (i, p) in pkts.iter().enumerate() {
        steps.push(Step::Packet(i));
        engine.handle_packet(&captured(p));
        while let Some(ev) = engine.poll_event() {
            steps.push(Step::Event(ev));
        }
    }
    assert_eq!(engine.open_legs().count(), LEGS, "every leg is open");
    let events = steps.iter().filter(|s| matches!(s, Step::Event(_))).count();
    let sample = steps.iter().find_map(|s| match s {
        Step::Event(Event::LegAnswered { leg, .. }) => Some(leg.clone()),
        _ => None,
    });
    let sample = sample.expect("answered legs");
    assert!(sample.agent_name.is_some() && sample.team.is_some() && sample.customer.is_some());
    let metrics = Metrics::new(10_000, 3.6);

    // The wallboard: board and figures (replay buffer off).
    let hub = Hub::new(
        &cfg,
        &metrics,
        HubOptions {
            replay_frames: 0,
            ..HubOptions::default()
        },
    );
    let region = Region::new(GLOBAL);
    feed_hub(&hub, &steps);
    let board = net_bytes(&region);
    let board_allocs = live_allocations(&region);
    // Every open leg is on the board: a snapshot lists them.
    let sub = hub.subscribe(None, None).unwrap();
    let snap: serde_json::Value = serde_json::from_str(sub.initial[0].text.as_str()).unwrap();
    assert_eq!(snap["legs"].as_array().unwrap().len(), LEGS);
    assert_eq!(snap["ringing"], LEGS / 2);
    assert_eq!(snap["active"], LEGS / 2);
    let snapshot_bytes = sub.initial[0].text.len();
    drop(sub);

    // The same with the default replay buffer, which these events fill.
    let opts = HubOptions::default();
    let full = Hub::new(&cfg, &metrics, opts.clone());
    let region = Region::new(GLOBAL);
    feed_hub(&full, &steps);
    let with_replay = net_bytes(&region);
    let replay = with_replay - board;

    // The store sink's SIP buffer, driven as the store sink drives it.
    let mut sip = SipBuffer::new(1 << 30, i64::MAX);
    let mut text = 0i64;
    let region = Region::new(GLOBAL);
    for s in &steps {
        match s {
            Step::Packet(i) => {
                let p = &pkts[*i];
                sip.on_packet(&captured(p));
                text += p.payload.len().min(MAX_MESSAGE_BYTES) as i64;
            }
            Step::Event(
                Event::LegRinging { leg, .. }
                | Event::LegAnswered { leg, .. }
                | Event::LegHeld { leg, .. }
                | Event::LegResumed { leg, .. }
                | Event::ViolationRaised { leg, .. },
            ) => {
                sip.leg_open(&leg.call_id, &leg.leg_id);
                if let Some(l) = &leg.linked_call_id {
                    sip.leg_open(l, &leg.leg_id);
                }
            }
            Step::Event(_) => {}
        }
    }
    let sip_total = net_bytes(&region);
    let sip_allocs = live_allocations(&region);
    assert_eq!(sip.calls(), LEGS);
    assert_eq!(sip.take_drops().messages, 0);
    assert_eq!(sip.count(&[sample.call_id.as_slice()]), 5);
    let msgs = sip.messages(&[sample.call_id.as_slice()]);
    assert_eq!(msgs[3].first_line, "SIP/2.0 200 OK");
    assert_eq!(msgs[0].transport, "udp");
    let bookkeeping = sip_total - text;

    let per = |b: i64| b as f64 / LEGS as f64;
    println!(
        "sink_memory: {LEGS} open legs ({} ringing, {} answered), {events} events, {} packets",
        LEGS / 2,
        LEGS / 2,
        pkts.len()
    );
    println!(
        "sink_memory: wallboard board+figures {board} B: {:.0} B per open leg ({:.1} live allocations per leg); snapshot {snapshot_bytes} B",
        per(board),
        board_allocs as f64 / LEGS as f64
    );
    println!(
        "sink_memory: wallboard replay buffer (bounded: {} frames / {} B) filled by these events: {replay} B ({:.0} B per leg at 5,000 legs, constant beyond)",
        opts.replay_frames,
        opts.replay_bytes,
        per(replay)
    );
    println!(
        "sink_memory: store SIP buffer {sip_total} B: SIP text {text} B ({:.0} B per leg, outside the figure), bookkeeping {bookkeeping} B: {:.0} B per open leg ({:.1} live allocations per leg)",
        per(text),
        per(bookkeeping),
        sip_allocs as f64 / LEGS as f64
    );
    assert!(
        per(board) < MAX_BOARD_BYTES_PER_LEG,
        "wallboard: {:.0} B per open leg, bound {MAX_BOARD_BYTES_PER_LEG}",
        per(board)
    );
    assert!(
        per(bookkeeping) < MAX_SIP_BOOKKEEPING_PER_LEG,
        "store SIP bookkeeping: {:.0} B per open leg, bound {MAX_SIP_BOOKKEEPING_PER_LEG}",
        per(bookkeeping)
    );
}
