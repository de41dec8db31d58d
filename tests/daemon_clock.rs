//! The engine task on paused tokio time: deadlines fire when a source's clock (its
//! latest capture timestamp plus the wall time since) reaches them, with no further
//! packet; each source runs on its own clock; queued packets are processed before the
//! task ends. Packets go straight into the engine queue, no sockets.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use callwatch::config::Config;
use callwatch::daemon::{EngineContext, EngineLoopOptions, Health, IngestPacket};
use callwatch::engine::rules::RuleId;
use callwatch::engine::{Engine, EngineSettings, Event, PayloadHint, SourceId};
use callwatch::loadgen::CallSpec;
use callwatch::sinks::metrics::Metrics;
use callwatch::sinks::EventSink;
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;
use common::call_spec::{call_spec, CUSTOMER};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

/// Records every event the engine task hands to its sinks.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Event>>>);

impl EventSink for Recorder {
    fn on_event(&mut self, ev: &Event) {
        self.0.lock().unwrap().push(ev.clone());
    }
}

impl Recorder {
    fn violations(&self) -> Vec<(RuleId, CaptureTime, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::ViolationRaised { violation, leg, .. } => {
                    Some((violation.rule, violation.at, leg.agent.clone()))
                }
                _ => None,
            })
            .collect()
    }
    fn count(&self, f: impl Fn(&Event) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| f(e)).count()
    }
}

const GRACE: Duration = Duration::from_millis(200);
/// 2027-01-15 09:20:00 UTC, in microseconds.
const T0: i64 = 1_800_000_000_000_000;

fn start() -> (
    mpsc::Sender<IngestPacket>,
    Recorder,
    JoinHandle<Engine>,
    Arc<Metrics>,
) {
    let cfg = Config::default().validate(None).unwrap();
    let engine = Engine::new(EngineSettings::from_config(&cfg));
    let (tx, rx) = mpsc::channel(1024);
    let rec = Recorder::default();
    let metrics = Arc::new(Metrics::new(10_000, 3.6));
    let task = tokio::spawn(callwatch::daemon::engine_task::run_engine(
        engine,
        rx,
        vec![Box::new(rec.clone())],
        EngineContext {
            metrics: metrics.clone(),
            health: Arc::new(Health::new()),
            opts: EngineLoopOptions {
                grace: GRACE,
                ..EngineLoopOptions::default()
            },
        },
    ));
    (tx, rec, task, metrics)
}

fn call(id: &str, agent: &str, phone: &str) -> CallSpec {
    call_spec(id.into(), agent.into(), CUSTOMER, phone)
}

fn packet(c: &CallSpec, source: u32, at: i64, from_phone: bool, sip: Vec<u8>) -> IngestPacket {
    let (src, dst) = c.ends(from_phone);
    IngestPacket {
        at: CaptureTime(at),
        received: Instant::now(),
        source: SourceId(source),
        src,
        dst,
        transport: Transport::Udp,
        hint: PayloadHint::Sip,
        payload: sip,
        correlation_id: None,
    }
}

#[tokio::test(start_paused = true)]
async fn a_phone_still_ringing_is_late_at_the_threshold_with_no_further_packet() {
    let (tx, rec, task, _) = start();
    let c = call("p1", "8001", "10.1.9.1:5060");
    tx.send(packet(&c, 1, T0, false, c.invite())).await.unwrap();
    tx.send(packet(
        &c,
        1,
        T0 + 100_000,
        true,
        c.invite_response(180, "Ringing"),
    ))
    .await
    .unwrap();
    // The 180 was stamped 100 ms after the INVITE but received with it: the source's
    // clock starts at the 180's stamp. Ring start + 10 s is 10 s of wall time away.
    sleep(Duration::from_millis(9_900)).await;
    assert!(rec.violations().is_empty(), "not before the threshold");
    sleep(Duration::from_millis(100) + GRACE + Duration::from_millis(10)).await;
    let v = rec.violations();
    assert_eq!(
        v,
        vec![(
            RuleId::LateAnswer,
            CaptureTime(T0 + 100_000 + 10_000_000),
            "8001".to_string()
        )]
    );
    // The answer comes later: the rule is not raised twice.
    tx.send(packet(
        &c,
        1,
        T0 + 13_000_000,
        true,
        c.invite_response(200, "OK"),
    ))
    .await
    .unwrap();
    drop(tx);
    let engine = task.await.unwrap();
    assert_eq!(rec.violations().len(), 1);
    assert_eq!(rec.count(|e| matches!(e, Event::LegAnswered { .. })), 1);
    assert_eq!(engine.open_legs().count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_packet_in_flight_within_the_grace_still_beats_the_deadline() {
    let (tx, rec, task, _) = start();
    let c = call("p2", "8001", "10.1.9.1:5060");
    tx.send(packet(&c, 1, T0, false, c.invite())).await.unwrap();
    tx.send(packet(&c, 1, T0, true, c.invite_response(180, "Ringing")))
        .await
        .unwrap();
    // The 200 was captured at 9.99 s but reaches the collector at 10.1 s.
    sleep(Duration::from_millis(10_100)).await;
    tx.send(packet(
        &c,
        1,
        T0 + 9_990_000,
        true,
        c.invite_response(200, "OK"),
    ))
    .await
    .unwrap();
    sleep(Duration::from_secs(1)).await;
    assert!(rec.violations().is_empty(), "{:?}", rec.violations());
    drop(tx);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn each_source_fires_its_legs_on_its_own_clock() {
    let (tx, rec, task, _) = start();
    // Agent A's capture node is on time; node B's clock is an hour behind.
    let a = call("pa", "8001", "10.1.9.1:5060");
    let b = call("pb", "8002", "10.1.9.2:5060");
    let behind = T0 - 3_600_000_000;
    tx.send(packet(&b, 2, behind, false, b.invite()))
        .await
        .unwrap();
    tx.send(packet(
        &b,
        2,
        behind,
        true,
        b.invite_response(180, "Ringing"),
    ))
    .await
    .unwrap();
    sleep(Duration::from_secs(5)).await;
    // A's packets, an hour "later", do not fire B's deadline early.
    tx.send(packet(&a, 1, T0 + 5_000_000, false, a.invite()))
        .await
        .unwrap();
    tx.send(packet(
        &a,
        1,
        T0 + 5_000_000,
        true,
        a.invite_response(180, "Ringing"),
    ))
    .await
    .unwrap();
    sleep(Duration::from_millis(4_900)).await;
    assert!(rec.violations().is_empty(), "{:?}", rec.violations());
    sleep(Duration::from_millis(400)).await;
    let v = rec.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].2, "8002");
    assert_eq!(v[0].1, CaptureTime(behind + 10_000_000));
    sleep(Duration::from_secs(5)).await;
    let v = rec.violations();
    assert_eq!(v.len(), 2, "{v:?}");
    assert_eq!(v[1].2, "8001");
    assert_eq!(v[1].1, CaptureTime(T0 + 15_000_000));
    drop(tx);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_source_ahead_of_the_others_still_fires_on_time() {
    let (tx, rec, task, _) = start();
    // Node B's clock is an hour ahead: its deadlines are later in capture time than
    // A's, yet due first in wall time.
    let a = call("pa", "8001", "10.1.9.1:5060");
    let b = call("pb", "8002", "10.1.9.2:5060");
    let ahead = T0 + 3_600_000_000;
    tx.send(packet(&b, 2, ahead, false, b.invite()))
        .await
        .unwrap();
    tx.send(packet(
        &b,
        2,
        ahead,
        true,
        b.invite_response(180, "Ringing"),
    ))
    .await
    .unwrap();
    sleep(Duration::from_secs(5)).await;
    tx.send(packet(&a, 1, T0, false, a.invite())).await.unwrap();
    tx.send(packet(&a, 1, T0, true, a.invite_response(180, "Ringing")))
        .await
        .unwrap();
    sleep(Duration::from_millis(5_500)).await;
    let v = rec.violations();
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].2, "8002");
    sleep(Duration::from_secs(5)).await;
    assert_eq!(rec.violations().len(), 2);
    drop(tx);
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_packets_are_processed_before_the_engine_task_ends() {
    let (tx, rec, task, _) = start();
    for i in 0..500 {
        let c = call(&format!("q{i}"), "8001", "10.1.9.1:5060");
        tx.send(packet(&c, 1, T0 + i * 1000, false, c.invite()))
            .await
            .unwrap();
    }
    // Closing the queue is how the daemon stops intake.
    drop(tx);
    let engine = task.await.unwrap();
    assert_eq!(engine.stats().sip_messages, 500);
    assert_eq!(rec.count(|e| matches!(e, Event::LegRinging { .. })), 500);
}

#[tokio::test(start_paused = true)]
async fn sources_beyond_the_cap_are_dropped_and_counted() {
    let cfg = Config::default().validate(None).unwrap();
    let engine = Engine::new(EngineSettings::from_config(&cfg));
    let (tx, rx) = mpsc::channel(16);
    let metrics = Arc::new(Metrics::new(10_000, 3.6));
    let task = tokio::spawn(callwatch::daemon::engine_task::run_engine(
        engine,
        rx,
        Vec::new(),
        EngineContext {
            metrics: metrics.clone(),
            health: Arc::new(Health::new()),
            opts: EngineLoopOptions {
                max_sources: 2,
                ..EngineLoopOptions::default()
            },
        },
    ));
    for s in 0..4 {
        let c = call(&format!("s{s}"), "8001", "10.1.9.1:5060");
        tx.send(packet(&c, s, T0, false, c.invite())).await.unwrap();
    }
    drop(tx);
    let engine = task.await.unwrap();
    assert_eq!(engine.stats().sip_messages, 2);
    assert!(metrics
        .encode()
        .contains(r#"callwatch_ingest_errors_total{source="engine",kind="too_many_sources"} 2"#));
}
