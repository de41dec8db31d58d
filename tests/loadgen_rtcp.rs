//! loadgen's call-centre mix with RTCP (`--rtcp-interval-ms`): HEP payload type 5 from
//! both sides of every answered call, between the call's SDP media addresses.
//!
//! - Against the engine directly: every report is taken as RTCP and lands on its call's
//!   leg (found by the SDP addresses; none counted unmatched), no error, the calls still
//!   end as their stories say, and every answered leg keeps the reports' figures for both
//!   directions in `media` (a HEP feed has no RTP: the streams are known from RTCP alone).
//! - Against the daemon, in-process on loopback port 0 with `loadgen::run` over UDP:
//!   every packet loadgen sent is received or counted as a kernel drop, none refused or
//!   ignored, and (when nothing was dropped) every call ends as a leg.

mod common;

use std::time::Duration;

use callwatch::config::Config;
use callwatch::daemon::Options;
use callwatch::engine::leg::Party;
use callwatch::engine::{Captured, Engine, EngineSettings, Event, PayloadHint, SourceId};
use callwatch::loadgen::{
    self, draw_call, metric_sum, write_frame, LoadgenOptions, Msg, Rng, Story,
};
use callwatch::time::CaptureTime;
use callwatch::wire::hep::{HepPacket, HepProto};
use common::daemon_task::DaemonTask;
use common::metrics_wait::wait_metrics;
use common::temp_dir::TempDir;

fn mix() -> LoadgenOptions {
    LoadgenOptions {
        time_scale: 0.01,
        rtcp_interval: Some(Duration::from_millis(10)),
        ..LoadgenOptions::default()
    }
}

#[test]
fn every_rtcp_report_lands_on_its_leg_in_the_engine() {
    let cfg = Config::default().validate(None).unwrap();
    let mut engine = Engine::new(EngineSettings::from_config(&cfg));
    let opts = mix();
    let mut rng = Rng::new(17);
    let (mut plan, mut frame) = (Vec::new(), Vec::new());
    let (mut rtcp_sent, mut answered) = (0u64, 0u64);
    // One call after the other, 5 s apart on the capture clock.
    let mut t0 = 1_800_000_000_000i64;
    let calls = 200;
    for n in 0..calls {
        let (story, spec) = draw_call(&mut rng, n, 0x77, &opts);
        spec.plan(story, Some(10), &mut plan);
        answered += u64::from(story != Story::Cancelled);
        for p in &plan {
            frame.clear();
            let is_rtcp = write_frame(&mut frame, &spec, p, (0, 0), 1, None);
            assert_eq!(is_rtcp, matches!(p.msg, Msg::Rtcp { .. }));
            let h = HepPacket::parse(&frame).expect("loadgen writes valid HEP");
            let hint = match h.proto {
                HepProto::Sip => PayloadHint::Sip,
                HepProto::Rtcp => {
                    rtcp_sent += 1;
                    PayloadHint::Rtcp
                }
                other => panic!("payload type {other:?}"),
            };
            engine.handle_packet(&Captured {
                at: CaptureTime::from_millis(t0 + p.after_ms as i64),
                source: SourceId(1),
                src: h.src,
                dst: h.dst,
                transport: callwatch::wire::Transport::Udp,
                hint,
                payload: h.payload,
                correlation_id: h.correlation_id,
            });
        }
        t0 += 5_000;
    }
    engine.handle_timeout(SourceId(1), CaptureTime::from_millis(t0 + 60_000));
    let (mut ended, mut with_rtcp_figures) = (0u64, 0u64);
    while let Some(ev) = engine.poll_event() {
        if let Event::LegEnded { leg, .. } = ev {
            ended += 1;
            // Both directions, each a stream known from RTCP alone (no RTP packets) between
            // the two SDP media addresses, with the reports' figures.
            let both = [Party::Agent, Party::Customer].iter().all(|&from| {
                leg.media.iter().any(|m| {
                    m.from == from
                        && m.packets == 0
                        && m.src != m.dst
                        && m.rtcp.as_ref().is_some_and(|r| r.reports > 0)
                })
            });
            with_rtcp_figures += u64::from(both);
        }
    }
    let s = engine.stats();
    assert!(
        rtcp_sent > 20 * answered,
        "{rtcp_sent} reports for {answered} calls"
    );
    assert_eq!(s.rtcp_packets, rtcp_sent, "every report taken as RTCP");
    assert_eq!(
        s.rtp_unmatched, 0,
        "a report matched no leg's SDP address: {s:?}"
    );
    assert!(s.errors.is_empty(), "{:?}", s.errors);
    assert_eq!(ended, calls, "{s:?}");
    assert_eq!(
        with_rtcp_figures, answered,
        "every answered leg keeps RTCP figures for both directions"
    );
    eprintln!(
        "engine: {rtcp_sent} RTCP reports on {answered} answered legs, {} unmatched; \
         {with_rtcp_figures} of {ended} ended legs carry RTCP figures in `media`",
        s.rtp_unmatched
    );
}

/// The daemon in-process with a store of its own (tests run in parallel), up once its
/// metrics answer.
async fn start_daemon(dir: &TempDir) -> DaemonTask {
    let mut c = Config::default();
    c.store.url = format!("sqlite://{}/callwatch.db", dir.display());
    let d = DaemonTask::start(c.validate(None).unwrap(), Options::default()).await;
    wait_metrics(d.http, "ready", Duration::from_secs(10), String::new, |t| {
        t.contains("callwatch_legs_ringing")
    })
    .await;
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_takes_every_packet_of_the_rtcp_mix() {
    let dir = TempDir::new("loadgen-rtcp");
    let d = start_daemon(&dir).await;
    let opts = LoadgenOptions {
        target: d.hep,
        cps: 200.0,
        concurrent: 100_000,
        duration: Some(Duration::from_secs(1)),
        seed: 3,
        ..mix()
    };
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        loadgen::run(&opts, std::future::pending()),
    )
    .await
    .expect("loadgen ends within 30 s")
    .unwrap();
    assert_eq!(r.send_errors, 0, "{r:?}");
    assert!(r.calls_started >= 150, "{r:?}");
    assert!(r.rtcp_sent > r.packets_sent / 2, "{r:?}");

    let hep_udp = &[("source", "hep_udp")][..];
    let kernel = &[("sink", "hep_udp_socket")][..];
    let sent = r.packets_sent as f64;
    // Every packet is either received or counted as dropped by the kernel (the socket's
    // drop counter is read every 250 ms).
    let t = wait_metrics(
        d.http,
        "every packet accounted for",
        Duration::from_secs(15),
        String::new,
        |t| {
            metric_sum(t, "callwatch_ingest_packets_total", hep_udp)
                + metric_sum(t, "callwatch_events_dropped_total", kernel)
                >= sent
        },
    )
    .await;
    let received = metric_sum(&t, "callwatch_ingest_packets_total", hep_udp);
    let kernel_drops = metric_sum(&t, "callwatch_events_dropped_total", kernel);
    assert_eq!(received + kernel_drops, sent, "{r:?}\n{t}");
    let queue_drops = metric_sum(
        &t,
        "callwatch_events_dropped_total",
        &[("sink", "engine_queue")],
    );
    if kernel_drops == 0.0 && queue_drops == 0.0 {
        // Nothing lost: every call ends as a leg.
        let t = wait_metrics(
            d.http,
            "every leg ended",
            Duration::from_secs(15),
            String::new,
            |t| metric_sum(t, "callwatch_legs_total", &[]) >= r.calls_started as f64,
        )
        .await;
        assert_eq!(
            metric_sum(&t, "callwatch_legs_total", &[]),
            r.calls_started as f64,
            "{t}"
        );
    } else {
        eprintln!("{kernel_drops} kernel drops, {queue_drops} queue drops: legs not compared");
    }
    // RTCP is neither refused nor set aside: no ingest error or ignored packet of any kind.
    assert_eq!(
        metric_sum(&t, "callwatch_ingest_errors_total", &[]),
        0.0,
        "{t}"
    );
    assert_eq!(
        metric_sum(&t, "callwatch_ingest_ignored_total", &[]),
        0.0,
        "{t}"
    );
    eprintln!(
        "daemon: {received} of {sent} packets received ({} RTCP sent), {kernel_drops} kernel drops, {queue_drops} queue drops",
        r.rtcp_sent
    );
    d.stop_within(Duration::from_secs(10)).await;
}
