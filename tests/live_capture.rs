#![cfg(feature = "live-capture")]
//! Live capture end to end: `callwatch run` (the built binary, feature `live-capture`)
//! captures `lo` through libpcap with a BPF restricted to this test's own loopback
//! block and ports, while SIPp places a real call on it (`tests/live_capture/`): a
//! customer calls agent 8001 directly, the phone rings 2.5 s (late-answer threshold
//! 1 s), answers, both sides play G.711 A-law (Debian sip-tester's sample), and the
//! agent hangs up without the survey. `/metrics` must show `late_answer` while the
//! phone still rings, then the answered leg with its three violations and its two
//! RTP streams, the interface's packets under `source="live:lo"` and its kernel drop
//! counters; SIGTERM must stop the daemon cleanly. Interfaces that cannot be opened
//! and filters that do not compile must refuse the start, naming the key.
//!
//! Needs `sipp` (Debian `sip-tester`, with its `g711a.pcap`) and the right to capture
//! (root, or CAP_NET_RAW and CAP_NET_ADMIN): the test fails, saying so, without them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callwatch::loadgen::metric_sum;
use common::callwatch_run::CallwatchRun;
use common::metrics_wait::wait_metrics;
use common::process_group::{log_tail, ProcessGroup};
use common::temp_dir::TempDir;
use common::tools::have;

/// This test's loopback block, SIP port and media ports (nothing else uses them).
const NET: &str = "127.0.79";
const SIP_PORT: u16 = 25060;
const PHONE_MEDIA: u16 = 26010;
const TRUNK_MEDIA: u16 = 26020;
/// RTP packets each side plays (30 ms each: 1.8 s, within the 2.5 s of talk).
const RTP_PACKETS: usize = 60;
const G711: &str = "/usr/share/sip-tester/g711a.pcap";

fn scenario_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/live_capture")
}

/// `callwatch run --config FILE`, its output in `dir/callwatch.log`.
fn start_daemon(dir: &Path, config: &Path) -> CallwatchRun {
    CallwatchRun::start(config, "info", &dir.join("callwatch.log"))
}

/// Fails at once with a clear message when the binary has no live capture (a
/// `cargo build` without the feature in the same target directory replaces it).
fn check_build(daemon: &CallwatchRun) {
    let text = daemon.output();
    assert!(
        !text.contains("this build has no live capture"),
        "{} was built without the live-capture feature (another `cargo build` \
         without it shares the target directory?); run this test with its own \
         CARGO_TARGET_DIR\n{text}",
        env!("CARGO_BIN_EXE_callwatch")
    );
}

fn write_config(dir: &Path, interfaces: &str, bpf: &str) -> PathBuf {
    let f = dir.join("callwatch.toml");
    std::fs::write(
        &f,
        format!(
            "[capture]\nhep_listen = \"127.0.0.1:0\"\ninterfaces = {interfaces}\nbpf = {bpf:?}\n\
             [rules.late_answer]\nthreshold_ms = 1000\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [store]\nurl = \"sqlite://{}\"\ndata_dir = {:?}\n",
            dir.join("callwatch.db").display(),
            dir.display().to_string()
        ),
    )
    .unwrap();
    f
}

/// The first `n` packets of a classic little-endian pcap file.
fn first_packets(src: &[u8], n: usize) -> Vec<u8> {
    assert_eq!(
        &src[..4],
        b"\xd4\xc3\xb2\xa1",
        "{G711}: not a little-endian pcap"
    );
    let mut out = src[..24].to_vec();
    let mut off = 24;
    for _ in 0..n {
        let Some(h) = src.get(off..off + 16) else {
            break;
        };
        let incl = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let Some(rec) = src.get(off..off + 16 + incl) else {
            break;
        };
        out.extend_from_slice(rec);
        off += 16 + incl;
    }
    out
}

fn logs(dir: &Path, daemon: &CallwatchRun) -> String {
    let mut out = String::new();
    for f in ["phone.log", "trunk.log"] {
        out.push_str(&log_tail(&dir.join(f), 25));
    }
    out.push_str("--- callwatch output\n");
    out.push_str(&daemon.output());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_call_on_lo_is_captured_live_with_late_answer_while_ringing() {
    assert!(
        have("sipp"),
        "sipp is needed for the live capture test (apt-get install sip-tester)"
    );
    let g711 =
        std::fs::read(G711).unwrap_or_else(|e| panic!("{G711}: {e} (Debian package sip-tester)"));
    let dir = TempDir::new("live-call");
    std::fs::write(dir.join("rtp.pcap"), first_packets(&g711, RTP_PACKETS)).unwrap();

    // Only this test's traffic: its loopback block, its SIP port and media ports.
    let bpf = format!(
        "udp and net {NET}.0/24 and (port {SIP_PORT} or portrange {PHONE_MEDIA}-{})",
        TRUNK_MEDIA + 3
    );
    let config = write_config(&dir, "[\"lo\"]", &bpf);
    let mut daemon = start_daemon(&dir, &config);
    let http = match daemon.try_listening(Duration::from_secs(20)) {
        Ok(l) => l.http,
        Err(why) => {
            check_build(&daemon);
            panic!("{why}")
        }
    };
    // The interface's counters exist once its capture thread runs.
    let t = wait_metrics(
        http,
        "the capture on lo",
        Duration::from_secs(20),
        || daemon.output(),
        |t| t.contains(r#"callwatch_capture_kernel_drops_total{interface="lo"}"#),
    )
    .await;
    assert!(
        t.contains(r#"callwatch_capture_interface_drops_total{interface="lo"}"#),
        "{t}"
    );

    let sipp = |role: &str, host: u8, media: u16, extra: &[&str]| {
        let ip = format!("{NET}.{host}");
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "40", "sipp"])
            .arg("-sf")
            .arg(scenario_dir().join(format!("{role}.xml")))
            .args([
                "-i",
                &ip,
                "-p",
                &SIP_PORT.to_string(),
                "-bind_local",
                "-m",
                "1",
            ])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-mi", &ip, "-mp", &media.to_string()])
            .args(extra)
            .current_dir(&dir);
        cmd
    };
    let mut phone = ProcessGroup::spawn(
        "sipp phone",
        &mut sipp("phone8001", 11, PHONE_MEDIA, &[]),
        &dir.join("phone.log"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let remote = format!("{NET}.11:{SIP_PORT}");
    let mut trunk = ProcessGroup::spawn(
        "sipp trunk",
        &mut sipp("trunk", 20, TRUNK_MEDIA, &[&remote]),
        &dir.join("trunk.log"),
    );
    let dialled = Instant::now();

    // The phone rings 2.5 s, the threshold is 1 s: the violation shows while it rings,
    // on the interface's own clock, with no packet after the 180.
    let late = [("rule", "late_answer"), ("team", "none")];
    let t = wait_metrics(
        http,
        "late_answer while ringing",
        Duration::from_secs(10),
        || logs(&dir, &daemon),
        |t| metric_sum(t, "callwatch_violations_total", &late) >= 1.0,
    )
    .await;
    let seen_after = dialled.elapsed();
    eprintln!("live_capture: late_answer seen {seen_after:?} after dialling");
    assert_eq!(
        metric_sum(&t, "callwatch_legs_ringing", &[]),
        1.0,
        "late_answer must be raised while the phone rings\n{t}"
    );
    assert_eq!(metric_sum(&t, "callwatch_legs_total", &[]), 0.0, "{t}");
    assert_eq!(metric_sum(&t, "callwatch_legs_active", &[]), 0.0, "{t}");

    let trunk_ok = trunk.wait(Duration::from_secs(30));
    let phone_ok = phone.wait(Duration::from_secs(10));
    assert!(
        trunk_ok.is_some_and(|s| s.success()) && phone_ok.is_some_and(|s| s.success()),
        "SIPp failed: trunk {trunk_ok:?}, phone {phone_ok:?}\n{}",
        logs(&dir, &daemon)
    );
    let t = wait_metrics(
        http,
        "the answered leg",
        Duration::from_secs(10),
        || logs(&dir, &daemon),
        |t| metric_sum(t, "callwatch_legs_total", &[]) >= 1.0,
    )
    .await;
    let why = || format!("{t}\n{}", logs(&dir, &daemon));
    assert_eq!(
        metric_sum(
            &t,
            "callwatch_legs_total",
            &[
                ("direction", "inbound"),
                ("outcome", "answered"),
                ("team", "none")
            ]
        ),
        1.0,
        "{}",
        why()
    );
    assert_eq!(
        metric_sum(&t, "callwatch_legs_total", &[]),
        1.0,
        "{}",
        why()
    );
    // The agent hung up without the survey: the two rules of that, and the late answer.
    for rule in ["late_answer", "agent_hangup_first", "survey_missing"] {
        assert_eq!(
            metric_sum(&t, "callwatch_violations_total", &[("rule", rule)]),
            1.0,
            "{rule}\n{}",
            why()
        );
    }
    assert_eq!(
        metric_sum(&t, "callwatch_violations_total", &[]),
        3.0,
        "{}",
        why()
    );
    assert_eq!(
        metric_sum(&t, "callwatch_ring_seconds_count", &[]),
        1.0,
        "{}",
        why()
    );
    // RTP was captured too (HEP never carries it): both streams got a MOS, none lost.
    assert_eq!(
        metric_sum(&t, "callwatch_rtp_mos_count", &[]),
        2.0,
        "{}",
        why()
    );
    assert_eq!(
        metric_sum(&t, "callwatch_rtp_lost_packets_total", &[]),
        0.0,
        "{}",
        why()
    );
    // Six SIP messages at least, and both sides' RTP, all under the interface's label.
    let captured = metric_sum(
        &t,
        "callwatch_ingest_packets_total",
        &[("source", "live:lo")],
    );
    assert!(
        captured >= (6 + 2 * RTP_PACKETS) as f64,
        "{captured} packets captured\n{}",
        why()
    );
    assert_eq!(
        metric_sum(
            &t,
            "callwatch_ingest_errors_total",
            &[("source", "live:lo")]
        ),
        0.0,
        "{}",
        why()
    );
    assert_eq!(
        metric_sum(&t, "callwatch_events_dropped_total", &[]),
        0.0,
        "{}",
        why()
    );
    // Exported, and nothing dropped by the kernel for so little traffic.
    for name in [
        "callwatch_capture_kernel_drops_total",
        "callwatch_capture_interface_drops_total",
    ] {
        assert!(
            t.contains(&format!("{name}{{interface=\"lo\"}} 0")),
            "{name}\n{}",
            why()
        );
    }
    assert_eq!(
        metric_sum(&t, "callwatch_capture_sources", &[]),
        1.0,
        "{}",
        why()
    );

    // SIGTERM: the capture thread stops, the engine drains, the process exits 0.
    let status = daemon.terminate(Duration::from_secs(20));
    let text = daemon.output();
    assert!(
        status.is_some_and(|s| s.success()),
        "callwatch did not stop cleanly on SIGTERM: {status:?}\n{text}"
    );
    assert!(text.contains("live capture stopped"), "{text}");
}

#[test]
fn an_interface_that_cannot_be_opened_refuses_the_start_with_the_key_and_reason() {
    let dir = TempDir::new("live-bad-if");
    let config = write_config(&dir, "[\"cwnosuch0\"]", "udp");
    let mut daemon = start_daemon(&dir, &config);
    let status = daemon.wait_exit(Duration::from_secs(20));
    check_build(&daemon);
    let text = daemon.output();
    assert!(
        status.is_some_and(|s| !s.success()),
        "callwatch must refuse to start: {status:?}\n{text}"
    );
    assert!(
        text.contains("`capture.interfaces`: cannot open \"cwnosuch0\": "),
        "{text}"
    );
    assert!(text.contains("No such device"), "libpcap's reason\n{text}");
}

#[test]
fn a_filter_that_does_not_compile_refuses_the_start_with_the_key() {
    let dir = TempDir::new("live-bad-bpf");
    let config = write_config(&dir, "[\"lo\"]", "udp and port");
    let mut daemon = start_daemon(&dir, &config);
    let status = daemon.wait_exit(Duration::from_secs(20));
    check_build(&daemon);
    let text = daemon.output();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{text}");
    assert!(text.contains("`capture.bpf`"), "{text}");
    assert!(text.contains("syntax error"), "libpcap's reason\n{text}");
}
