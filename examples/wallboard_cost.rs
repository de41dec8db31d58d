//! What the wallboard hub costs per engine event (issue 4: with a leg ending every ~8
//! HEP packets, every sink's cost per event adds up): numbering the event, rendering its
//! JSON frame (and the `agent.state` frame it causes), the replay buffer and the fan-out
//! to each client's queue; and what one `snapshot` costs with many open legs.
//!
//! The events come from the engine (realistic records: roster names and teams, long
//! Call-IDs), computed before anything is measured: `--calls` calls, four in five
//! answered then hung up, one in five cancelled while ringing, plus `--open` legs left
//! open (half ringing, half answered) for the snapshot. The clients' queues are drained
//! between batches of 64 events, outside what is measured (sending is the websocket
//! side's cost, [`callwatch::api::ws`]).
//!
//! Instruction counts are repeatable where timings on a shared machine are not: run it
//! under callgrind with collection on the measured function only, and divide by the
//! events it prints:
//!
//! ```sh
//! cargo build --release --example wallboard_cost
//! valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.out \
//!   --toggle-collect='*wallboard_cost::feed*' \
//!   target/release/examples/wallboard_cost --clients 0
//! callgrind_annotate /tmp/cg.out | head -20        # "PROGRAM TOTALS" Ir / events
//! # the same with --clients 4; the snapshot: --toggle-collect='*wallboard_cost::snapshot*'
//! ```
//!
//! Without valgrind it prints the wall time per event (noisy on a shared machine).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use callwatch::config::Config;
use callwatch::engine::{Captured, Engine, EngineSettings, Event, PayloadHint, SourceId};
use callwatch::loadgen::CallSpec;
use callwatch::sinks::metrics::Metrics;
use callwatch::sinks::wallboard::{Hub, HubOptions, Subscription, WallboardSink};
use callwatch::sinks::EventSink;
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;

struct Pkt {
    at: i64,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

fn spec(i: usize) -> CallSpec {
    let (hi, lo) = ((i / 250 % 250) as u8, (i % 250) as u8 + 1);
    CallSpec {
        call_id: format!("{:032x}@10.1.0.10", (i as u128 + 1) * 0x9e37_79b9_7f4a_7c15),
        customer: format!("138{:08}", i * 7919 % 100_000_000),
        agent: (8001 + (i % 99)).to_string(),
        switch: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 3, hi, lo)), 5060),
        phone: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 2, hi, lo)), 5060),
        trying_ms: 50,
        ring_ms: 2_000,
        talk_ms: 30_000,
    }
}

/// A call's packets from `t` (µs): ring, then answer and hang up, cancel, or nothing.
fn call(out: &mut Vec<Pkt>, i: usize, t: i64, end: Option<bool>) {
    let c = spec(i);
    let mut p = |dt: i64, from_phone: bool, payload: Vec<u8>| {
        let (src, dst) = c.ends(from_phone);
        out.push(Pkt {
            at: t + dt,
            src,
            dst,
            payload,
        })
    };
    p(0, false, c.invite());
    p(10_000, true, c.invite_response(100, "Trying"));
    p(50_000, true, c.invite_response(180, "Ringing"));
    match end {
        Some(true) => {
            p(2_050_000, true, c.invite_response(200, "OK"));
            p(2_060_000, false, c.ack("ack"));
            p(32_000_000, false, c.request("BYE", 2, false, "", "", ""));
            p(32_010_000, true, c.response(200, "BYE", 2, false));
        }
        Some(false) => {
            p(3_000_000, false, c.cancel());
            p(3_010_000, true, c.cancel_ok());
            p(
                3_020_000,
                true,
                c.invite_response(487, "Request Terminated"),
            );
            p(3_030_000, false, c.ack("inv"));
        }
        None => {
            if i % 2 == 0 {
                p(2_050_000, true, c.invite_response(200, "OK"));
                p(2_060_000, false, c.ack("ack"));
            }
        }
    }
}

fn events(cfg: &callwatch::config::Validated, calls: usize, open: usize) -> Vec<Event> {
    let t0 = 1_800_000_000_000_000i64;
    let mut pkts = Vec::new();
    for i in 0..calls {
        // One call started every 20 ms: about 1,600 open at once.
        call(&mut pkts, i, t0 + i as i64 * 20_000, Some(i % 5 != 4));
    }
    let after = t0 + calls as i64 * 20_000 + 40_000_000;
    for i in calls..calls + open {
        call(&mut pkts, i, after + (i - calls) as i64 * 100, None);
    }
    pkts.sort_by_key(|p| p.at);
    let mut engine = Engine::new(EngineSettings::from_config(cfg));
    let mut out = Vec::new();
    for p in &pkts {
        engine.handle_packet(&Captured {
            at: CaptureTime(p.at),
            source: SourceId(1),
            src: p.src,
            dst: p.dst,
            transport: Transport::Udp,
            hint: PayloadHint::Sip,
            payload: &p.payload,
            correlation_id: None,
        });
        while let Some(ev) = engine.poll_event() {
            out.push(ev);
        }
    }
    out
}

/// What is measured: the hub taking a batch of events.
#[inline(never)]
fn feed(sink: &mut WallboardSink, batch: &[Event]) {
    for ev in batch {
        sink.on_event(ev);
    }
}

/// What is measured with `--toggle-collect=*snapshot*`: one client's snapshot.
#[inline(never)]
fn snapshot(hub: &Arc<Hub>) -> Subscription {
    hub.subscribe(None, None).expect("subscribed")
}

fn roster() -> std::path::PathBuf {
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
    let p = std::env::temp_dir().join(format!("callwatch-wb-cost-{}.csv", std::process::id()));
    std::fs::write(&p, csv).expect("roster written");
    p
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().expect("a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients = arg(&args, "--clients", 0);
    let calls = arg(&args, "--calls", 2_000);
    let open = arg(&args, "--open", 2_000);
    let path = roster();
    let mut c = Config::default();
    c.agents.roster = path.display().to_string();
    let cfg = c.validate(None).expect("config");
    let _ = std::fs::remove_file(&path);
    let evs = events(&cfg, calls, open);
    let metrics = Metrics::new(10_000, 3.6);
    let hub = Hub::new(&cfg, &metrics, HubOptions::default());
    let mut subs: Vec<Subscription> = (0..clients)
        .map(|_| hub.subscribe(None, None).expect("subscribed"))
        .collect();
    let mut sink = WallboardSink::new(hub.clone());
    let (mut frames, mut bytes) = (0usize, 0usize);
    let start = Instant::now();
    for batch in evs.chunks(64) {
        feed(&mut sink, batch);
        for s in &mut subs {
            while let Ok(f) = s.rx.try_recv() {
                frames += 1;
                bytes += f.text.len();
            }
        }
    }
    let took = start.elapsed();
    let t = Instant::now();
    let snap = snapshot(&hub);
    let snap_took = t.elapsed();
    let snap_bytes = snap.initial.first().map_or(0, |f| f.text.len());
    println!(
        "wallboard_cost: {} events to {clients} clients: {:.2} us wall per event; {frames} frames ({bytes} B) received; dropped {}",
        evs.len(),
        took.as_secs_f64() * 1e6 / evs.len() as f64,
        metrics.dropped("wallboard").get(),
    );
    println!(
        "wallboard_cost: snapshot with {} open legs: {snap_bytes} B in {:.2} ms wall",
        open,
        snap_took.as_secs_f64() * 1e3
    );
    drop(snap);
    drop(subs);
}
