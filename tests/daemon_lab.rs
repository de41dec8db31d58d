//! Real SIP software feeding the live daemon: Kamailio (`siptrace`, HEP v3 with an auth
//! key, mirroring every message it receives and sends) proxies a SIPp customer call to a
//! SIPp agent phone on this machine's loopback (`tests/daemon_lab/`). The phone rings
//! 2.5 s with the late-answer threshold at 1 s: `/metrics` must show the violation while
//! it still rings, then the answered leg once the customer hangs up.
//!
//! Needs `kamailio` and `sipp` (Debian packages `kamailio`, `sip-tester`). Without them
//! the test says so and passes, except under CI (`CI` set), where it fails.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use callwatch::config::Config;
use callwatch::daemon::{self, Listeners, Options};
use callwatch::loadgen::{metric_sum, scrape};

const AUTH_KEY: &str = "daemon-lab-key";

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A process group we started; killed (TERM, then KILL) when dropped.
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Proc {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { name, child }
    }

    fn signal_group(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([sig, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    /// Waits for the process to exit by itself; its exit status.
    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        self.signal_group("-TERM");
        if self.wait(Duration::from_secs(3)).is_none() {
            self.signal_group("-KILL");
            let _ = self.child.wait();
        }
        let _ = self.name;
    }
}

fn lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/daemon_lab")
}

fn work_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("callwatch-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for f in ["kamailio.log", "phone.log", "trunk.log"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(30).collect();
        out.push_str(&format!("--- {f} (last lines)\n"));
        for l in tail.into_iter().rev() {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

async fn wait_metrics(
    http: SocketAddr,
    what: &str,
    limit: Duration,
    dir: &Path,
    pred: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + limit;
    loop {
        let t = scrape(http).await.unwrap_or_default();
        if pred(&t) {
            return t;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}\n{t}\n{}",
            logs(dir)
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One call through Kamailio; `prefix` is a loopback block of the test's own, and
/// `hep_tcp` sends the HEP over TCP instead of UDP.
async fn kamailio_call_is_reported_live(prefix: &str, hep_tcp: bool) {
    assert!(
        have("kamailio") && have("sipp"),
        "kamailio and sipp are needed (apt-get install -y kamailio sip-tester; bash scripts/test.sh installs them)"
    );
    let dir = work_dir(&format!(
        "daemon-lab-{}",
        if hep_tcp { "tcp" } else { "udp" }
    ));

    let mut c = Config::default();
    c.rules.late_answer.threshold_ms = 1_000;
    c.capture.hep_auth_key = AUTH_KEY.into();
    // A store of its own in the test's folder, never the repository's `data/`.
    c.store.url = format!("sqlite://{}/callwatch.db", dir.display());
    let cfg = c.validate(None).unwrap();
    let l = Listeners::bind(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (hep, http) = (l.hep_addr().unwrap(), l.http_addr().unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let daemon = tokio::spawn(async move {
        daemon::run(&cfg, l, Options::default(), async move {
            let _ = stop_rx.await;
        })
        .await
    });

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
    let kamailio = Proc::spawn(
        "kamailio",
        Command::new("kamailio")
            .args(["-f", "kamailio.cfg", "-DD", "-E", "-m", "32", "-M", "8"])
            .arg("-Y")
            .arg(&dir)
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
    let mut phone = Proc::spawn(
        "sipp phone",
        &mut sipp("phone8001", format!("{prefix}.11"), &[]),
        &dir.join("phone.log"),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut trunk = Proc::spawn(
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
        &dir,
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
        &dir,
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
    let _ = stop_tx.send(());
    daemon.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_siptrace_over_udp_late_answer_is_live() {
    kamailio_call_is_reported_live("127.0.77", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kamailio_siptrace_over_tcp_late_answer_is_live() {
    kamailio_call_is_reported_live("127.0.78", true).await;
}
