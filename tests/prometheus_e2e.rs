//! A real Prometheus scraping a real `callwatch run`, with alerts of
//! `deploy/prometheus/callwatch.rules.yml` firing for a scenario that breaks the
//! late-answer rule (issue 7).
//!
//! - `callwatch run` on free loopback ports (HEP, HTTP), a temporary data directory, the
//!   example roster (`config/agents.csv`: 8001 and 8002 in team A, 8003 in team B) and the
//!   default late-answer threshold of 10 s, which the rules and dashboards are written for.
//! - Debian's `prometheus` server (`/usr/bin/prometheus`, installed by
//!   `scripts/check_ops_kit.sh`; the test fails when it is missing) with a configuration
//!   derived from `deploy/prometheus/prometheus.yml`: the daemon as the target, scrape and
//!   evaluation every second, no Alertmanager, and a test copy of the real rules file in
//!   which only the `for:` durations are shortened (minutes read as seconds, so `15m`
//!   becomes `15s`): every expression, label and annotation is the shipped one.
//! - HEP v3 over UDP with the SIP the crate's load generator writes (`loadgen::CallSpec`):
//!   team A's phones ring 11 s before each of 24 answers (24 `late_answer`), team B
//!   answers 24 calls after 1 s and its agent hangs up first on 3 of them.
//! - Prometheus' own API then shows: the target `up`, every rule evaluated without error,
//!   `CallwatchViolationBurst` (rule late_answer, team A), `CallwatchRingTimeRising` and
//!   `CallwatchServiceLevelLow` (team A) firing with the labels the rules promise,
//!   `callwatch_violations_total{rule="late_answer"}` at 24 for A and 0 elsewhere, the
//!   ring-time exemplars stored with their `leg_id`; and as negative controls nothing for
//!   team B (which has the volume but not the lateness, and 3 violations of another rule,
//!   under the burst threshold), and the availability and media alerts inactive.
//! - Every dashboard query and template variable of `dashboards/` answers without error
//!   and with data.
//!
//! Both processes are killed when the test ends, also on a panic (guards with `Drop`).
//! It takes about 40 s, bounded: every wait has a deadline.

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use callwatch::loadgen::{hep_frame, CallSpec, Story};
use common::callwatch_run::{CallwatchRun, Listening};
use common::http_get::http_get;
use common::ports::free_port;
use common::process_group::ProcessGroup;
use common::temp_dir::TempDir;
use common::zone::zone_near_noon;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ------------------------------------------------------------------ processes and files

/// `prometheus` on the PATH (Debian installs `/usr/bin/prometheus`).
fn prometheus_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Prometheus server `prometheus` is not installed: this test runs the real \
                 server against the daemon. Install Debian's `prometheus` package \
                 (`apt-get install prometheus`, or run `bash scripts/check_ops_kit.sh`, \
                 which installs it; scripts/test.sh does so before cargo test)"
            )
        })
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------ the daemon

struct Daemon {
    run: CallwatchRun,
    hep: SocketAddr,
    http: SocketAddr,
}

/// `callwatch run` on free loopback ports, as ops_kit.rs starts it, with its log in `dir`.
fn start_daemon(dir: &Path) -> Daemon {
    let roster = root().join("config/agents.csv");
    let config = dir.join("callwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nhep_listen = \"127.0.0.1:0\"\n\n\
             [agents]\nextensions = [\"8001-8099\"]\nroster = {:?}\n\n\
             # The rules and dashboards are written for the default 10 s (docs/operations.md).\n\
             [rules.late_answer]\nthreshold_ms = 10000\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n\
             # Today's service level must not start afresh half-way through the test.\n\
             [time]\nzone = {:?}\n\n\
             [store]\nurl = \"sqlite://{}/callwatch.db\"\ndata_dir = {:?}\n",
            roster.display().to_string(),
            zone_near_noon(),
            dir.display(),
            dir.display().to_string(),
        ),
    )
    .unwrap();
    let mut run = CallwatchRun::start(&config, "warn", &dir.join("callwatch.log"));
    let Listening { hep, http } = run.listening(Duration::from_secs(60));
    run.wait_ready(http, Instant::now() + Duration::from_secs(20));
    Daemon { run, hep, http }
}

// ------------------------------------------------------------------ the Prometheus side

/// The test copy of the rules: `for: Nm` becomes `for: Ns` (a test cannot wait 15
/// minutes); everything else, expressions included, is the shipped file byte for byte.
/// Returns the text and the durations changed.
fn rules_for_the_test(original: &str) -> (String, Vec<String>) {
    let mut changed = Vec::new();
    let mut out = String::with_capacity(original.len());
    for line in original.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let indent = &body[..body.len() - body.trim_start().len()];
        match body.trim_start().strip_prefix("for: ") {
            Some(d) => {
                let minutes = d
                    .trim()
                    .strip_suffix('m')
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "callwatch.rules.yml: `for: {d}` is not in whole minutes; \
                             tests/prometheus_e2e.rs shortens minutes to seconds, extend it"
                        )
                    });
                changed.push(format!("{minutes}m→{minutes}s"));
                out.push_str(&format!("{indent}for: {minutes}s\n"));
            }
            None => out.push_str(line),
        }
    }
    (out, changed)
}

/// `deploy/prometheus/prometheus.yml` with the daemon as its target, every interval at
/// 1 s, the rules at `rules`, and no Alertmanager (there is none in the test).
fn prometheus_config(example: &str, target: SocketAddr, rules: &Path) -> String {
    const EXAMPLE_TARGET: &str = "callwatch-1.example.internal:8080";
    const EXAMPLE_RULES: &str = "/etc/prometheus/callwatch.rules.yml";
    let mut out = String::new();
    let (mut targets, mut rule_files, mut intervals, mut in_alerting) = (0, 0, 0, false);
    for line in example.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if !line.is_empty() && indent.is_empty() && !line.starts_with('#') {
            in_alerting = line.starts_with("alerting:");
        }
        if in_alerting {
            continue;
        }
        let key = trimmed.split(':').next().unwrap_or("");
        if ["scrape_interval", "evaluation_interval", "scrape_timeout"].contains(&key) {
            intervals += 1;
            out.push_str(&format!("{indent}{key}: 1s\n"));
        } else if line.contains(EXAMPLE_TARGET) {
            targets += 1;
            out.push_str(&line.replace(EXAMPLE_TARGET, &target.to_string()));
            out.push('\n');
        } else if line.contains(EXAMPLE_RULES) {
            rule_files += 1;
            out.push_str(&line.replace(EXAMPLE_RULES, &rules.display().to_string()));
            out.push('\n');
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert!(
        targets == 1 && rule_files == 1 && intervals >= 2,
        "deploy/prometheus/prometheus.yml changed shape: expected one target \
         {EXAMPLE_TARGET}, one rule file {EXAMPLE_RULES} and the intervals \
         (found {targets}, {rule_files}, {intervals}); update tests/prometheus_e2e.rs"
    );
    out
}

struct Prometheus {
    proc: ProcessGroup,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(dir: &Path, config: &Path) -> Prometheus {
        let bin = prometheus_binary();
        // A port picked free can be taken before Prometheus binds it: try a few.
        let mut last = String::new();
        for attempt in 0..3 {
            let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
            let log = dir.join(format!("prometheus-{attempt}.log"));
            let mut proc = ProcessGroup::spawn(
                "prometheus",
                Command::new(&bin)
                    .arg(format!("--config.file={}", config.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.join(format!("tsdb-{attempt}")).display()
                    ))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--enable-feature=exemplar-storage"),
                &log,
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if matches!(http_get(addr, "/-/ready", &[]), Ok((200, _))) {
                    return Prometheus { proc, addr };
                }
                if proc.exited() || Instant::now() > deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            last = proc.log_tail();
            if !last.contains("address already in use") {
                break;
            }
        }
        panic!("prometheus did not become ready\n{last}");
    }

    /// `GET /api/v1/...` → its `data`; fails on anything but `"status": "success"`.
    fn api(&self, path_and_query: &str) -> Value {
        let (status, body) = http_get(self.addr, path_and_query, &[])
            .unwrap_or_else(|e| panic!("prometheus {path_and_query}: {e}"));
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| {
            panic!("prometheus {path_and_query}: HTTP {status}, not JSON ({e}): {body}")
        });
        assert_eq!(
            v["status"], "success",
            "prometheus {path_and_query}: HTTP {status}: {body}"
        );
        v["data"].clone()
    }

    /// An instant query's vector as (labels, value).
    fn query(&self, promql: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api(&format!("/api/v1/query?query={}", urlencode(promql)));
        assert_eq!(data["resultType"], "vector", "{promql}: {data}");
        data["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let labels = serde_json::from_value(s["metric"].clone()).unwrap();
                let value = s["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (labels, value)
            })
            .collect()
    }

    fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts")["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every alerting rule loaded: name → (state, health, lastError).
    fn rules(&self) -> BTreeMap<String, (String, String, String)> {
        let data = self.api("/api/v1/rules?type=alert");
        let mut out = BTreeMap::new();
        for g in data["groups"].as_array().unwrap() {
            for r in g["rules"].as_array().unwrap() {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                out.insert(s("name"), (s("state"), s("health"), s("lastError")));
            }
        }
        out
    }
}

// ------------------------------------------------------------------ the scenario

const LATE_CALLS: usize = 24;
/// From the 180 to the answer of team A's calls: 1 s over the 10 s threshold, so that a
/// stalled sender on a loaded machine cannot make one of them on time.
const LATE_RING_MS: u64 = 11_000;
const TEAM_B_CALLS: usize = 24;
const TEAM_B_AGENT_HANGUPS: usize = 3;

struct Call {
    start_ms: u64,
    spec: CallSpec,
    story: Story,
}

fn call(id: String, agent: &str, start_ms: u64, ring_ms: u64, talk_ms: u64, story: Story) -> Call {
    let host = agent.parse::<u32>().unwrap() % 250;
    Call {
        start_ms,
        spec: CallSpec {
            call_id: id,
            customer: "13812345678".into(),
            agent: agent.into(),
            switch: "10.1.0.10:5060".parse().unwrap(),
            phone: format!("10.1.9.{host}:5060").parse().unwrap(),
            trying_ms: 20,
            ring_ms,
            talk_ms,
        },
        story,
    }
}

/// The calls, over about 17 s:
/// - at 0 s one quick answered call per team, so that the teams' `callwatch_legs_total`
///   and ring-time series exist before the bulk (Prometheus' `increase()` cannot count
///   the value a series first appears with);
/// - from 2.5 s, every 150 ms, a call to team A (8001, 8002) that rings 11 s before the
///   answer (late: raised live at 10 s) and a call to team B (8003) answered after 1 s,
///   whose agent hangs up first on 3 of them.
fn scenario() -> Vec<Call> {
    let mut calls = vec![
        call("pe-warm-a".into(), "8001", 0, 300, 200, Story::Answered),
        call("pe-warm-b".into(), "8003", 50, 300, 200, Story::Answered),
    ];
    for i in 0..LATE_CALLS {
        let agent = if i % 2 == 0 { "8001" } else { "8002" };
        let t = 2_500 + 150 * i as u64;
        calls.push(call(
            format!("pe-late-{i}"),
            agent,
            t,
            LATE_RING_MS,
            300,
            Story::Late,
        ));
    }
    for i in 0..TEAM_B_CALLS {
        let story = if i % 8 == 3 {
            Story::AgentHangup
        } else {
            Story::Answered
        };
        let t = 2_575 + 150 * i as u64;
        calls.push(call(format!("pe-b-{i}"), "8003", t, 1_000, 500, story));
    }
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.story == Story::AgentHangup)
            .count(),
        TEAM_B_AGENT_HANGUPS
    );
    calls
}

/// Sends every message of `calls` as HEP v3 over UDP at its time (stamped with the wall
/// clock when sent, as a capture agent does).
fn play(hep: SocketAddr, calls: Vec<Call>) {
    let mut sends: Vec<(u64, usize, usize)> = Vec::new();
    let steps: Vec<_> = calls.iter().map(|c| c.spec.steps(c.story)).collect();
    for (ci, c) in calls.iter().enumerate() {
        for (si, s) in steps[ci].iter().enumerate() {
            sends.push((c.start_ms + s.after_ms, ci, si));
        }
    }
    sends.sort();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for (at, ci, si) in sends {
        let due = start + Duration::from_millis(at);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let frame = hep_frame(&calls[ci].spec, &steps[ci][si], 7, None);
        sock.send_to(&frame, hep).expect("send HEP");
    }
}

/// A datagram that is not HEP (`hep_not_hep`) and a HEP log packet (payload type 100,
/// ignored as `other_payload_type`).
fn send_odd_packets(hep: SocketAddr) {
    use callwatch::wire::hep::HepBuilder;
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.send_to(b"GET / HTTP/1.1\r\n\r\n", hep).unwrap();
    let addr: SocketAddr = "10.1.0.10:5060".parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let log = HepBuilder::packet(addr, addr, now.as_secs() as u32, 0, 100, 7, b"a log line");
    sock.send_to(&log.build(), hep).unwrap();
}

// ------------------------------------------------------------------ the test

fn labels_of(alert: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(alert["labels"].clone()).unwrap_or_default()
}

fn describe(alerts: &[Value]) -> String {
    alerts
        .iter()
        .map(|a| format!("{} {}", a["state"], a["labels"]))
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[test]
fn prometheus_scrapes_the_daemon_and_fires_the_late_answer_alerts() {
    let began = Instant::now();
    let scratch = TempDir::new("prometheus-e2e");
    let dir = scratch.to_path_buf();

    // The rules as shipped, `for:` shortened.
    let rules_path = root().join("deploy/prometheus/callwatch.rules.yml");
    let shipped = read(&rules_path);
    let (test_rules, shortened) = rules_for_the_test(&shipped);
    assert!(!shortened.is_empty(), "no `for:` in the rules to shorten?");
    let alert_names: Vec<String> = shipped
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|n| n.trim().to_string())
        .collect();
    let test_rules_path = dir.join("callwatch.rules.yml");
    std::fs::write(&test_rules_path, &test_rules).unwrap();

    let daemon = start_daemon(&dir);
    let config = prometheus_config(
        &read(&root().join("deploy/prometheus/prometheus.yml")),
        daemon.http,
        &test_rules_path,
    );
    let config_path = dir.join("prometheus.yml");
    std::fs::write(&config_path, &config).unwrap();
    let prom = Prometheus::start(&dir, &config_path);
    let logs = |prom: &Prometheus, daemon: &Daemon| {
        format!("{}\n{}", prom.proc.log_tail(), daemon.run.output_tail(30))
    };
    let instance = daemon.http.to_string();

    // Every rule of the shipped file is loaded.
    let loaded = prom.rules();
    assert_eq!(
        loaded.keys().cloned().collect::<Vec<_>>(),
        {
            let mut n = alert_names.clone();
            n.sort();
            n
        },
        "Prometheus did not load the alert rules of callwatch.rules.yml\n{}",
        logs(&prom, &daemon)
    );

    // The target is up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let targets = prom.api("/api/v1/targets?state=active");
        let ours = targets["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["labels"]["job"] == "callwatch" && t["labels"]["instance"] == instance)
            .cloned();
        if let Some(t) = &ours {
            if t["health"] == "up" {
                assert_eq!(t["labels"]["node"], "capture-1", "{t}");
                assert_eq!(t["scrapeUrl"], format!("http://{instance}/metrics"), "{t}");
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the callwatch target never came up in Prometheus: {ours:?}\n{}",
            logs(&prom, &daemon)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let up = prom.query(r#"up{job="callwatch"}"#);
    assert!(
        up.len() == 1 && up[0].1 == 1.0 && up[0].0["instance"] == instance,
        "up{{job=\"callwatch\"}}: {up:?}"
    );

    // The scenario, played while Prometheus scrapes.
    let hep = daemon.hep;
    let player = std::thread::spawn(move || play(hep, scenario()));
    let played_from = Instant::now();

    // Team A's alerts fire, with the labels the rules promise.
    let want: [(&str, Vec<(&str, &str)>); 3] = [
        (
            "CallwatchViolationBurst",
            vec![
                ("rule", "late_answer"),
                ("team", "A"),
                ("severity", "warning"),
            ],
        ),
        (
            "CallwatchRingTimeRising",
            vec![("team", "A"), ("severity", "warning")],
        ),
        (
            "CallwatchServiceLevelLow",
            vec![
                ("team", "A"),
                ("severity", "warning"),
                ("job", "callwatch"),
                ("node", "capture-1"),
            ],
        ),
    ];
    let mut fired_after = BTreeMap::new();
    let deadline = played_from + Duration::from_secs(75);
    let alerts = loop {
        let alerts = prom.alerts();
        for (name, labels) in &want {
            let firing = alerts.iter().any(|a| {
                let l = labels_of(a);
                a["state"] == "firing"
                    && l.get("alertname").map(String::as_str) == Some(*name)
                    && l.get("instance") == Some(&instance)
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            });
            if firing {
                fired_after
                    .entry(name.to_string())
                    .or_insert_with(|| played_from.elapsed());
            }
        }
        if fired_after.len() == want.len() {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "not firing after {:?}: {:?}; alerts:\n  {}\n{}",
            played_from.elapsed(),
            want.iter()
                .map(|(n, _)| *n)
                .filter(|n| !fired_after.contains_key(*n))
                .collect::<Vec<_>>(),
            describe(&alerts),
            logs(&prom, &daemon)
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    player.join().expect("the HEP player");
    eprintln!("prometheus_e2e: firing after (from the first call) {fired_after:?}");

    // The burst alert's annotations are rendered from the real series.
    let burst = alerts
        .iter()
        .find(|a| labels_of(a)["alertname"] == "CallwatchViolationBurst")
        .expect("CallwatchViolationBurst in the alerts seen firing");
    let summary = burst["annotations"]["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("late_answer violations in team A"),
        "summary: {summary}"
    );
    assert_eq!(
        burst["annotations"]["runbook"],
        "docs/operations.md#callwatchviolationburst"
    );

    // Service level: of team A's 25 inbound legs today only the first was answered
    // within 10 s.
    let level = alerts
        .iter()
        .find(|a| labels_of(a)["alertname"] == "CallwatchServiceLevelLow")
        .expect("CallwatchServiceLevelLow in the alerts seen firing");
    assert_eq!(
        level["annotations"]["summary"], "Team A service level 4% / A 组服务水平低于目标",
        "{level}"
    );

    // The counters, through Prometheus: every late answer, in team A only.
    let late = prom.query(r#"callwatch_violations_total{rule="late_answer"}"#);
    let by_team: BTreeMap<String, f64> =
        late.iter().map(|(l, v)| (l["team"].clone(), *v)).collect();
    assert_eq!(
        by_team,
        BTreeMap::from([
            ("A".to_string(), LATE_CALLS as f64),
            ("B".to_string(), 0.0),
            ("none".to_string(), 0.0)
        ]),
        "callwatch_violations_total{{rule=\"late_answer\"}}: {late:?}"
    );
    for (_, v) in prom.query(r#"callwatch_violations_total{rule="agent_hangup_first",team="B"}"#) {
        assert_eq!(
            v, TEAM_B_AGENT_HANGUPS as f64,
            "agent_hangup_first in team B"
        );
    }

    // The ingest dashboard's error ratio reads 0 on a clean feed (no error series yet),
    // not "No data".
    let ratio_expr = dashboard_expr("ingest-health.json", "Error ratio");
    let ratio = prom.query(&grafana_vars(&ratio_expr));
    assert!(
        ratio.len() == 1 && ratio[0].1 == 0.0,
        "error ratio on a clean feed: {ratio:?} ({ratio_expr})"
    );

    // One datagram that is not HEP and one HEP log packet: an error and an ignored
    // packet, far under the 5 % of CallwatchIngestErrorsHigh, for the ingest panels.
    send_odd_packets(daemon.hep);
    // rate() needs two samples of the new series (their first value itself is not seen
    // as an increase: these counters have no zero series before the first error).
    let deadline = Instant::now() + Duration::from_secs(15);
    while prom
        .query(r#"rate(callwatch_ingest_errors_total{kind="hep_not_hep"}[1m])"#)
        .is_empty()
        || prom
            .query(r#"rate(callwatch_ingest_ignored_total{kind="other_payload_type"}[1m])"#)
            .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "Prometheus never saw the error and the ignored packet\n{}",
            logs(&prom, &daemon)
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Negative controls. Team B has the volume of the service-level alert (its own
    // sub-expression) and violations of another rule, but none of its alerts is even
    // pending; no burst for a rule other than late_answer.
    let volume = prom.query(
        r#"sum by (instance, team) (increase(callwatch_legs_total{direction="inbound"}[1h]))"#,
    );
    assert!(
        volume.iter().any(|(l, v)| l["team"] == "B" && *v >= 20.0),
        "team B's inbound volume is under the alert's 20 legs, the control says nothing: {volume:?}"
    );
    let alerts = prom.alerts();
    let stray: Vec<&Value> = alerts
        .iter()
        .filter(|a| {
            let l = labels_of(a);
            l.get("team").is_some_and(|t| t != "A")
                || l.get("rule").is_some_and(|r| r != "late_answer")
        })
        .collect();
    assert!(
        stray.is_empty(),
        "alerts for a team or rule the scenario did not break:\n  {}",
        describe(&alerts)
    );
    let rules = prom.rules();
    for name in [
        "CallwatchDown",
        "CallwatchTargetMissing",
        "CallwatchIngestDrops",
        "CallwatchLegsTableFull",
        "CallwatchIngestErrorsHigh",
        "CallwatchHepAuthFailures",
        "CallwatchEngineBacklog",
        "CallwatchPoorAudioWidespread",
    ] {
        assert_eq!(
            rules.get(name).map(|r| r.0.as_str()),
            Some("inactive"),
            "{name} should be inactive in this scenario: {rules:?}"
        );
    }
    // Every rule evaluates without error (a label mismatch in `on (...)`, a many-to-many
    // match, would show here).
    let broken: Vec<_> = rules
        .iter()
        .filter(|(_, (_, health, _))| health != "ok")
        .collect();
    assert!(broken.is_empty(), "rules failing to evaluate: {broken:?}");

    // The ring-time exemplars are stored with the leg_id the Grafana link needs.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ex = prom.api(&format!(
        "/api/v1/query_exemplars?query={}&start={}&end={}",
        urlencode(r#"callwatch_ring_seconds_bucket{team="A"}"#),
        now - 300,
        now + 60
    ));
    let has_leg_id = ex.as_array().into_iter().flatten().any(|s| {
        s["exemplars"].as_array().into_iter().flatten().any(|e| {
            e["labels"]["leg_id"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
                && e["labels"]["call_id"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("pe-"))
        })
    });
    assert!(
        has_leg_id,
        "no ring-time exemplar with leg_id and call_id: {ex}"
    );

    // Every dashboard query answers, with data, on this Prometheus.
    check_dashboards(&prom);

    drop(prom);
    drop(daemon);
    eprintln!(
        "prometheus_e2e: done in {:?} (for: shortened {})",
        began.elapsed(),
        shortened.join(", ")
    );
}

/// Grafana's variables as a dashboard with everything selected would send them.
fn grafana_vars(expr: &str) -> String {
    let mut e = expr.to_string();
    for (var, value) in [
        ("${__rate_interval}", "1m"),
        ("$__rate_interval", "1m"),
        ("${__interval}", "1m"),
        ("$__interval", "1m"),
        ("${__range}", "1h"),
        ("$__range", "1h"),
    ] {
        e = e.replace(var, value);
    }
    for var in ["team", "agent", "instance"] {
        e = e.replace(&format!("${{{var}}}"), ".*");
        e = e.replace(&format!("${var}"), ".*");
    }
    assert!(!e.contains('$'), "a Grafana variable left in {expr}");
    e
}

fn check_dashboards(prom: &Prometheus) {
    let mut problems = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("dashboards"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no dashboards");
    let mut checked = 0;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let d: Value = serde_json::from_str(&read(&f)).unwrap();
        let mut exprs = Vec::new();
        collect_exprs(&d, &mut exprs);
        for expr in exprs {
            let q = grafana_vars(&expr);
            let (status, body) = http_get(
                prom.addr,
                &format!("/api/v1/query?query={}", urlencode(&q)),
                &[],
            )
            .unwrap();
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            if v["status"] != "success" {
                problems.push(format!("{name}: {expr}: HTTP {status}: {body}"));
            } else if v["data"]["result"].as_array().is_some_and(|r| r.is_empty()) {
                problems.push(format!("{name}: {expr}: no data"));
            }
            checked += 1;
        }
        // Template variables: label_values(selector, label).
        for var in d["templating"]["list"].as_array().into_iter().flatten() {
            let Some(q) = var["query"]["query"].as_str().or(var["query"].as_str()) else {
                continue;
            };
            let Some(inner) = q
                .trim()
                .strip_prefix("label_values(")
                .and_then(|r| r.strip_suffix(')'))
            else {
                continue;
            };
            let (selector, label) = inner.rsplit_once(',').unwrap();
            let selector = grafana_vars(selector.trim());
            let values = prom.api(&format!(
                "/api/v1/label/{}/values?match[]={}",
                label.trim(),
                urlencode(&selector)
            ));
            if values.as_array().is_none_or(|a| a.is_empty()) {
                problems.push(format!("{name}: variable {q}: no values"));
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} dashboard queries found");
    assert!(
        problems.is_empty(),
        "dashboard queries on the live Prometheus: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

/// The query of the panel of `file` whose title starts with `title`.
fn dashboard_expr(file: &str, title: &str) -> String {
    let d: Value = serde_json::from_str(&read(&root().join("dashboards").join(file))).unwrap();
    let mut panels = vec![&d];
    while let Some(p) = panels.pop() {
        if p["title"].as_str().is_some_and(|t| t.starts_with(title)) {
            if let Some(e) = p["targets"][0]["expr"].as_str() {
                return e.to_string();
            }
        }
        panels.extend(p["panels"].as_array().into_iter().flatten());
    }
    panic!("{file}: no panel titled {title}");
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(e)) = m.get("expr") {
                out.push(e.clone());
            }
            m.values().for_each(|x| collect_exprs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_exprs(x, out)),
        _ => {}
    }
}
