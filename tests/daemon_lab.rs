//! Real SIP software feeding the live daemon: Kamailio (`siptrace`, HEP v3 with an auth
//! key, mirroring every message it receives and sends) proxies a SIPp customer call to a
//! SIPp agent phone on this machine's loopback (`tests/daemon_lab/`). The phone rings
//! 2.5 s with the late-answer threshold at 1 s: `/metrics` must show the violation while
//! it still rings, then the answered leg once the customer hangs up.
//!
//! Needs `kamailio` and `sipp` (Debian packages `kamailio`, `sip-tester`): without them
//! the test fails, saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use callwatch::config::Config;
use callwatch::daemon::Options;
use callwatch::loadgen::metric_sum;
use common::daemon_task::DaemonTask;
use common::metrics_wait::wait_metrics;
use common::process_group::{log_tail, ProcessGroup};
use common::temp_dir::TempDir;
use common::tools::have;

const AUTH_KEY: &str = "daemon-lab-key";

fn lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/daemon_lab")
}

fn logs(dir: &Path) -> String {
    ["kamailio.log", "phone.log", "trunk.log"]
        .iter()
        .map(|f| log_tail(&dir.join(f), 30))
        .collect()
}

/// One call through Kamailio; `prefix` is a loopback block of the test's own, and
/// `hep_tcp` sends the HEP over TCP instead of UDP.
async fn kamailio_call_is_reported_live(prefix: &str, hep_tcp: bool) {
    assert!(
        have("kamailio") && have("sipp"),
        "kamailio and sipp are needed (apt-get install -y kamailio sip-tester; bash scripts/test.sh installs them)"
    );
    let dir = TempDir::new(&format!(
        "daemon-lab-{}",
        if hep_tcp { "tcp" } else { "udp" }
    ));

    let mut c = Config::default();
    c.rules.late_answer.threshold_ms = 1_000;
    c.capture.hep_auth_key = AUTH_KEY.into();
    // A store of its own in the test's folder, never the repository's `data/`.
    c.store.url = format!("sqlite://{}/callwatch.db", dir.display());
    let daemon = DaemonTask::start(c.validate(None).unwrap(), Options::default()).await;
    let (hep, http) = (daemon.hep, daemon.http);

    let hep_uri = if hep_tcp {
        format!("sip:{hep};transport=tcp")
    } else {
        format!("sip:{hep}")
    };
    let kcfg = std::fs::read_to_string(lab_dir().join("kamailio.cfg.in"))
        .unwrap()
        .replace("@PREFIX@", prefix)
        .replace("@HEP_URI@", &hep_uri)
        .replace("@AUTH_KEY@", AUTH_KEY);
    std::fs::write(dir.join("kamailio.cfg"), kcfg).unwrap();
    let proxy = format!("{prefix}.10:5060");
    let kamailio = ProcessGroup::spawn(
        "kamailio",
        Command::new("kamailio")
            .args(["-f", "kamailio.cfg", "-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(dir.path())
            .arg("-P")
            .arg(dir.join("kamailio.pid"))
            .current_dir(&dir),
        &dir.join("kamailio.log"),
    );
    let end = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(dir.join("kamailio.log"))
        .unwrap_or_default()
        .contains("Listening on")
    {
        assert!(
            Instant::now() < end,
            "kamailio did not start\n{}",
            logs(&dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sipp = |role: &str, ip: String, extra: &[&str]| {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", "40", "sipp"])
            .arg("-sf")
            .arg(lab_dir().join(format!("{role}.xml")))
            .args(["-i", &ip, "-p", "5060", "-bind_local", "-m", "1"])
            .args(["-nostdin", "-timeout", "30s", "-timeout_error"])
            .args(["-mi", &ip, "-mp", "16000"])
            .args(extra)
            .current_dir(&dir);
        cmd
    };
    let mut phone = ProcessGroup::spawn(
        "sipp phone",
        &mut sipp("phone8001", format!("{prefix}.11"), &[]),
        &dir.join("phone.log"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut trunk = ProcessGroup::spawn(
        "sipp trunk",
        &mut sipp("trunk", format!("{prefix}.20"), &[&proxy]),
        &dir.join("trunk.log"),
    );
    let dialled = Instant::now();

    // The phone rings 2.5 s; the threshold is 1 s: the violation shows while it rings.
    let late = [("rule", "late_answer"), ("team", "none")];
    let t = wait_metrics(
        http,
        "late_answer while ringing",
        Duration::from_secs(10),
        || logs(&dir),
        |t| metric_sum(t, "callwatch_violations_total", &late) >= 1.0,
    )
    .await;
    // Seen on the same scrape as the leg still ringing and no leg ended: raised live.
    eprintln!(
        "daemon_lab: late_answer seen {:?} after dialling",
        dialled.elapsed()
    );
    assert_eq!(metric_sum(&t, "callwatch_legs_ringing", &[]), 1.0, "{t}");
    assert_eq!(metric_sum(&t, "callwatch_legs_total", &[]), 0.0, "{t}");

    let trunk_ok = trunk.wait(Duration::from_secs(30));
    let phone_ok = phone.wait(Duration::from_secs(10));
    assert!(
        trunk_ok.is_some_and(|s| s.success()) && phone_ok.is_some_and(|s| s.success()),
        "SIPp failed: trunk {trunk_ok:?}, phone {phone_ok:?}\n{}",
        logs(&dir)
    );
    let source = if hep_tcp { "hep_tcp" } else { "hep_udp" };
    let t = wait_metrics(
        http,
        "the answered leg",
        Duration::from_secs(10),
        || logs(&dir),
        |t| metric_sum(t, "callwatch_legs_total", &[]) >= 1.0,
    )
    .await;
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
        "{t}"
    );
    assert_eq!(
        metric_sum(&t, "callwatch_violations_total", &late),
        1.0,
        "{t}"
    );
    assert_eq!(
        metric_sum(&t, "callwatch_violations_total", &[]),
        1.0,
        "{t}"
    );
    assert_eq!(
        metric_sum(&t, "callwatch_ring_seconds_count", &[]),
        1.0,
        "{t}"
    );
    // Every message twice (received and sent by the proxy): well over ten packets,
    // all with the right key.
    assert!(
        metric_sum(&t, "callwatch_ingest_packets_total", &[("source", source)]) >= 10.0,
        "{t}"
    );
    assert_eq!(
        metric_sum(&t, "callwatch_ingest_errors_total", &[]),
        0.0,
        "{t}"
    );
    assert_eq!(metric_sum(&t, "callwatch_capture_sources", &[]), 1.0, "{t}");

    drop(kamailio);
    daemon.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_siptrace_over_udp_late_answer_is_live() {
    kamailio_call_is_reported_live("127.0.77", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_siptrace_over_tcp_late_answer_is_live() {
    kamailio_call_is_reported_live("127.0.78", true).await;
}
