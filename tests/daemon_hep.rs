//! The live daemon end to end, in-process on port 0 (mini-redis style): HEP over UDP and
//! TCP in, `GET /metrics` out. Real time with the late-answer threshold lowered to 1 s,
//! so that "raised live, before the answer" is seen as an operator would see it.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callwatch::config::Config;
use callwatch::daemon::Options;
use callwatch::loadgen::{hep_frame, metric_sum, scrape, CallSpec, Step};
use common::call_spec::{call_spec, CUSTOMER};
use common::daemon_task::DaemonTask;
use common::temp_dir::TempDir;
use common::zone::zone_near_noon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

struct Daemon {
    hep: SocketAddr,
    http: SocketAddr,
    task: DaemonTask,
    _dir: TempDir,
}

impl Daemon {
    async fn start(f: impl FnOnce(&mut Config, &mut Options)) -> Daemon {
        let mut c = Config::default();
        c.rules.late_answer.threshold_ms = 1_000;
        // Today's figures are asserted: no midnight in the middle of the test.
        c.time.zone = zone_near_noon();
        // A store of its own: never the repository's `data/` (tests run in parallel, and
        // a store left by another build must not decide this test).
        let dir = TempDir::new("daemon-hep");
        c.store.url = format!("sqlite://{}/callwatch.db", dir.display());
        let mut opts = Options::default();
        f(&mut c, &mut opts);
        let task = DaemonTask::start(c.validate(None).unwrap(), opts).await;
        let d = Daemon {
            hep: task.hep,
            http: task.http,
            task,
            _dir: dir,
        };
        d.wait_for("ready", |t| t.contains("callwatch_legs_ringing"))
            .await;
        d
    }

    fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(text, name, labels)
    }

    /// Polls /metrics until `pred` holds (5 s at most).
    async fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_within(what, Duration::from_secs(5), pred).await
    }

    /// Polls /metrics until `pred` holds (`limit` at most).
    async fn wait_within(
        &self,
        what: &str,
        limit: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let t = scrape(self.http).await.unwrap_or_default();
            if pred(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{t}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn get(&self, path: &str) -> String {
        let mut s = TcpStream::connect(self.http).await.unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    async fn stop(self) {
        self.task.stop_within(Duration::from_secs(5)).await;
    }
}

fn call(id: &str, agent: &str) -> CallSpec {
    call_spec(id.into(), agent.into(), CUSTOMER, "10.1.9.1:5060")
}

fn step(from_phone: bool, sip: Vec<u8>) -> Step {
    Step {
        after_ms: 0,
        from_phone,
        sip,
    }
}

fn frame(spec: &CallSpec, from_phone: bool, sip: Vec<u8>, key: Option<&[u8]>) -> Vec<u8> {
    hep_frame(spec, &step(from_phone, sip), 7, key)
}

async fn udp_to(addr: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.connect(addr).await.unwrap();
    s
}

const LATE: &[(&str, &str)] = &[("rule", "late_answer"), ("team", "none")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_answer_shows_in_metrics_while_ringing_then_the_leg_when_it_ends() {
    let d = Daemon::start(|_, _| {}).await;
    let c = call("live-1", "8001");
    let udp = udp_to(d.hep).await;
    udp.send(&frame(&c, false, c.invite(), None)).await.unwrap();
    let mut tcp = TcpStream::connect(d.hep).await.unwrap();
    // The 180 over TCP, split in three writes.
    let ringing = frame(&c, true, c.invite_response(180, "Ringing"), None);
    let rung = Instant::now();
    for part in [&ringing[..3], &ringing[3..40], &ringing[40..]] {
        tcp.write_all(part).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let t = d
        .wait_for("the leg ringing", |t| {
            Daemon::value(t, "callwatch_legs_ringing", &[]) == 1.0
        })
        .await;
    if rung.elapsed() < Duration::from_millis(900) {
        // (A machine too slow to get here before the threshold cannot tell.)
        assert_eq!(Daemon::value(&t, "callwatch_violations_total", LATE), 0.0);
    }

    // No packet after the 180: the violation comes from the clock alone, while the
    // phone still rings.
    let t = d
        .wait_for("late_answer raised live", |t| {
            Daemon::value(t, "callwatch_violations_total", LATE) == 1.0
        })
        .await;
    let waited = rung.elapsed();
    assert!(
        waited >= Duration::from_millis(1_000) && waited < Duration::from_millis(4_000),
        "raised after {waited:?}"
    );
    assert!(t.contains(r#"callwatch_violations_total{rule="late_answer",team="none"} 1"#));
    assert!(
        t.contains(
            r#"callwatch_agent_violations_total{agent="8001",team="none",rule="late_answer"} 1"#
        ),
        "{t}"
    );
    assert_eq!(Daemon::value(&t, "callwatch_legs_ringing", &[]), 1.0);
    assert_eq!(Daemon::value(&t, "callwatch_legs_total", &[]), 0.0);
    // The store sink holds the call's SIP text (the INVITE and the 180) in memory for
    // the flagged leg, and has spilled nothing.
    let text = (c.invite().len() + c.invite_response(180, "Ringing").len()) as f64;
    let t = d
        .wait_for("the SIP text held", |t| {
            Daemon::value(t, "callwatch_store_sip_buffer_bytes", &[]) >= text
        })
        .await;
    assert_eq!(
        Daemon::value(&t, "callwatch_store_sip_spill_bytes", &[]),
        0.0
    );

    // Answer, ACK, BYE and its 200 over TCP, all merged in one write.
    let mut merged = Vec::new();
    merged.extend(frame(&c, true, c.invite_response(200, "OK"), None));
    merged.extend(frame(&c, false, c.ack("ack"), None));
    merged.extend(frame(
        &c,
        false,
        c.request("BYE", 2, false, "", "", ""),
        None,
    ));
    merged.extend(frame(&c, true, c.response(200, "BYE", 2, false), None));
    tcp.write_all(&merged).await.unwrap();
    let t = d
        .wait_for("the leg ended", |t| {
            Daemon::value(t, "callwatch_legs_total", &[]) == 1.0
        })
        .await;
    assert!(
        t.contains(r#"callwatch_legs_total{direction="inbound",outcome="answered",team="none"} 1"#),
        "{t}"
    );
    assert!(t.contains(r#"callwatch_ring_seconds_count{team="none"} 1"#));
    // Rang past the (1 s) threshold: nothing answered within it today.
    assert!(
        t.contains(r#"callwatch_service_level_ratio{team="none"} 0.0"#),
        "{t}"
    );
    assert_eq!(Daemon::value(&t, "callwatch_violations_total", LATE), 1.0);
    assert_eq!(Daemon::value(&t, "callwatch_legs_ringing", &[]), 0.0);
    assert_eq!(Daemon::value(&t, "callwatch_legs_active", &[]), 0.0);
    assert_eq!(
        Daemon::value(
            &t,
            "callwatch_ingest_packets_total",
            &[("source", "hep_tcp")]
        ),
        5.0
    );
    assert_eq!(
        Daemon::value(
            &t,
            "callwatch_ingest_packets_total",
            &[("source", "hep_udp")]
        ),
        1.0
    );
    assert_eq!(Daemon::value(&t, "callwatch_ingest_errors_total", &[]), 0.0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_auth_key_is_counted_and_dropped() {
    let d = Daemon::start(|c, _| c.capture.hep_auth_key = "s3cret".into()).await;
    let udp = udp_to(d.hep).await;
    let (a, b, ok) = (
        call("auth-1", "8001"),
        call("auth-2", "8002"),
        call("auth-3", "8003"),
    );
    udp.send(&frame(&a, false, a.invite(), Some(b"wrong")))
        .await
        .unwrap();
    udp.send(&frame(&b, false, b.invite(), None)).await.unwrap();
    udp.send(&frame(&ok, false, ok.invite(), Some(b"s3cret")))
        .await
        .unwrap();
    let t = d
        .wait_for("the good INVITE", |t| {
            Daemon::value(t, "callwatch_legs_ringing", &[]) == 1.0
                && Daemon::value(t, "callwatch_ingest_errors_total", &[]) == 2.0
        })
        .await;
    assert!(
        t.contains(r#"callwatch_ingest_errors_total{source="hep_udp",kind="hep_auth"} 2"#),
        "{t}"
    );
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_hep_are_counted_and_garbage_connections_closed() {
    let d = Daemon::start(|_, _| {}).await;
    let c = call("bad-1", "8001");
    let good = frame(&c, false, c.invite(), None);
    let udp = udp_to(d.hep).await;
    udp.send(b"hello, not HEP").await.unwrap();
    udp.send(&good[..good.len() - 10]).await.unwrap();
    let mut long = good.clone();
    long.extend_from_slice(b"tail");
    udp.send(&long).await.unwrap();

    // TCP: garbage closes the connection.
    let mut g = TcpStream::connect(d.hep).await.unwrap();
    g.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(3), g.read(&mut buf))
        .await
        .expect("the collector closes a garbage connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // TCP: half a frame, then the client closes.
    let mut h = TcpStream::connect(d.hep).await.unwrap();
    h.write_all(&good[..good.len() / 2]).await.unwrap();
    h.shutdown().await.unwrap();
    drop(h);

    let t = d
        .wait_for("five errors", |t| {
            Daemon::value(t, "callwatch_ingest_errors_total", &[]) == 5.0
        })
        .await;
    for (source, kind) in [
        ("hep_udp", "hep_not_hep"),
        ("hep_udp", "hep_truncated"),
        ("hep_udp", "hep_bad_length"),
        ("hep_tcp", "hep_not_hep"),
        ("hep_tcp", "hep_truncated"),
    ] {
        assert_eq!(
            Daemon::value(
                &t,
                "callwatch_ingest_errors_total",
                &[("source", source), ("kind", kind)]
            ),
            1.0,
            "{source} {kind}\n{t}"
        );
    }
    assert_eq!(Daemon::value(&t, "callwatch_legs_ringing", &[]), 0.0);
    // Still serving.
    udp.send(&good).await.unwrap();
    d.wait_for("a good packet after the bad ones", |t| {
        Daemon::value(t, "callwatch_legs_ringing", &[]) == 1.0
    })
    .await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tcp_client_does_not_block_others_and_is_closed() {
    let d = Daemon::start(|_, o| o.hep.tcp_stall = Duration::from_millis(800)).await;
    let c = call("stall-1", "8001");
    let f = frame(&c, false, c.invite(), None);
    let mut stalled = TcpStream::connect(d.hep).await.unwrap();
    stalled.write_all(&f[..f.len() / 2]).await.unwrap();
    let opened = Instant::now();

    let other = call("stall-2", "8002");
    let mut tcp = TcpStream::connect(d.hep).await.unwrap();
    tcp.write_all(&frame(&other, false, other.invite(), None))
        .await
        .unwrap();
    d.wait_for("the other client's INVITE", |t| {
        Daemon::value(t, "callwatch_legs_ringing", &[]) == 1.0
            && Daemon::value(t, "callwatch_hep_tcp_connections", &[]) == 2.0
    })
    .await;
    assert!(
        opened.elapsed() < Duration::from_millis(800),
        "served while the other stalled"
    );

    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(3), stalled.read(&mut buf))
        .await
        .expect("the stalled connection is closed")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let t = d
        .wait_for("the stall counted", |t| {
            Daemon::value(
                t,
                "callwatch_ingest_errors_total",
                &[("kind", "hep_tcp_stalled")],
            ) == 1.0
        })
        .await;
    assert_eq!(Daemon::value(&t, "callwatch_hep_tcp_connections", &[]), 1.0);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let d = Daemon::start(|_, _| {}).await;
    let h = d.get("/healthz").await;
    assert!(h.starts_with("HTTP/1.1 200"), "{h}");
    let r = d.get("/readyz").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    let m = d.get("/metrics").await;
    assert!(m.contains("application/openmetrics-text"), "{m}");
    assert!(m.trim_end().ends_with("# EOF"));
    let missing = d.get("/nope").await;
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_udp_packets_is_all_taken() {
    let d = Daemon::start(|_, _| {}).await;
    let udp = udp_to(d.hep).await;
    for i in 0..200 {
        let c = call(&format!("drain-{i}"), "8001");
        udp.send(&frame(&c, false, c.invite(), None)).await.unwrap();
    }
    let t = d
        .wait_for("200 legs", |t| {
            Daemon::value(t, "callwatch_legs_ringing", &[]) == 200.0
        })
        .await;
    assert_eq!(
        Daemon::value(
            &t,
            "callwatch_events_dropped_total",
            &[("sink", "engine_queue")]
        ),
        0.0
    );
    d.stop().await;
}

/// A flood far beyond what a small engine queue holds: every datagram sent is either a
/// leg, a drop at the engine queue, or a drop the kernel made at the socket's full
/// receive buffer. Nothing is lost without being counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_flood_loses_nothing_uncounted() {
    let d = Daemon::start(|_, o| o.queue_capacity = 32).await;
    let udp = udp_to(d.hep).await;
    // Far more than the socket's receive buffer holds (8 MiB asked, capped by
    // net.core.rmem_max: a few thousand such datagrams) while a debug engine takes a few
    // thousand INVITEs a second: the kernel drops some, and counts them.
    let frames: Vec<Vec<u8>> = (0..30_000)
        .map(|i| {
            let c = call(&format!("flood-{i}"), &(8001 + i % 99).to_string());
            frame(&c, false, c.invite(), None)
        })
        .collect();
    let sent = frames.len() as f64;
    for f in &frames {
        udp.send(f).await.unwrap();
    }
    let counted = |t: &str| {
        let received = Daemon::value(
            t,
            "callwatch_ingest_packets_total",
            &[("source", "hep_udp")],
        );
        let kernel = Daemon::value(
            t,
            "callwatch_events_dropped_total",
            &[("sink", "hep_udp_socket")],
        );
        (received, kernel)
    };
    // The engine of a debug build takes about a thousand INVITEs a second.
    let t = d
        .wait_within(
            "every datagram received or dropped by the kernel",
            Duration::from_secs(30),
            |t| {
                let (received, kernel) = counted(t);
                received + kernel == sent
                    && Daemon::value(t, "callwatch_engine_queue_depth", &[]) == 0.0
            },
        )
        .await;
    let (received, kernel) = counted(&t);
    let t = d
        .wait_within(
            "every datagram received is a leg or a queue drop",
            Duration::from_secs(30),
            |t| {
                let legs = Daemon::value(t, "callwatch_legs_ringing", &[]);
                let queue = Daemon::value(
                    t,
                    "callwatch_events_dropped_total",
                    &[("sink", "engine_queue")],
                );
                legs + queue == received
            },
        )
        .await;
    assert_eq!(Daemon::value(&t, "callwatch_ingest_errors_total", &[]), 0.0);
    eprintln!(
        "flood: {sent} sent, {received} received, {kernel} dropped by the kernel, {} at the engine queue",
        Daemon::value(&t, "callwatch_events_dropped_total", &[("sink", "engine_queue")])
    );
    d.stop().await;
}
