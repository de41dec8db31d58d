//! The media figures of `callwatch analyze` agree with Wireshark 4.0's `tshark -q -z
//! rtp,streams` on whole calls (SPEC §3 "media"): the captures made by SIPp and Kamailio
//! (`tests/data/lab/`, see `tests/lab/README.md`) and the synthetic calls with loss,
//! jitter, an SSRC change, DTMF and a one-way stretch (`tests/data/media_legs/`, written
//! by `gen_media_legs.py` there).
//!
//! For each capture: run the built binary, `callwatch analyze --format json` (with the
//! configuration overrides of the capture's `.expect.json`, if any), and `tshark -r FILE
//! -q -z rtp,streams`; then compare stream by stream, matched on source, destination
//! and SSRC: packets, expected and lost exactly, loss % as Wireshark computes it, mean
//! and max jitter and max delta within max(0.5 ms, 5 %) (analyze rounds them to 2
//! decimals, tshark prints 3). Every stream tshark reports must be in an agent leg of
//! callwatch's output and vice versa, except the streams [`NOT_IN_AGENT_LEGS`] names,
//! each with the reason it belongs to no agent leg.
//!
//! tshark runs without `rtp.heuristic_rtp`: it decodes RTP from the SDP in the
//! capture, as callwatch matches streams to legs. That sees every agent stream of these
//! captures (the calls' SIP is all there), so the comparison needs no heuristic. One
//! test does turn the heuristic on, for a different question: is there RTP in the
//! captures that no SDP describes (a call whose SIP was not captured) and that would
//! otherwise go unnoticed? Those streams are listed too, with `heuristic only`.
//!
//! tshark missing, failing, or not 4.0 is a failure, not a skip: these figures are a
//! contract (Wireshark 4.0 and later releases count `expected` differently,
//! `docs/media-quality.md` §4).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};

/// A stream as tshark keys it: `src`, `dst` (address:port) and SSRC.
type StreamKey = (String, String, u32);

/// Streams in the captures that belong to no agent leg, by capture file name.
/// `sdp`: tshark decodes them from the SDP of a dialog in the capture; otherwise only
/// the RTP heuristic finds them.
struct NotInAgentLeg {
    file: &'static str,
    src: &'static str,
    dst: &'static str,
    ssrc: u32,
    sdp: bool,
    why: &'static str,
}

const NOT_IN_AGENT_LEGS: &[NotInAgentLeg] = &[
    NotInAgentLeg {
        file: "survey_ivr_leg.pcap",
        src: "10.20.3.1:40000",
        dst: "10.20.2.1:20042",
        ssrc: 0x1F00_0051,
        sdp: true,
        why: "the survey IVR's prompt to the customer: the switch's dialog with 96000 has \
              no agent at either end (SPEC §2: no record)",
    },
    NotInAgentLeg {
        file: "survey_ivr_leg.pcap",
        src: "10.20.2.1:20042",
        dst: "10.20.3.1:40000",
        ssrc: 0x3C1A_0042,
        sdp: true,
        why: "the customer's audio to the survey IVR, same dialog with no agent",
    },
    NotInAgentLeg {
        file: "capture_started_mid_call_gives_no_leg.pcap",
        src: "127.0.0.11:6000",
        dst: "127.0.0.20:6000",
        ssrc: 0x0A6E_7001,
        sdp: false,
        why: "heuristic only: the capture starts after the ACK, the INVITE and its SDP \
              were never seen, so there is no leg (SPEC §2)",
    },
    NotInAgentLeg {
        file: "capture_started_mid_call_gives_no_leg.pcap",
        src: "127.0.0.20:6000",
        dst: "127.0.0.11:6000",
        ssrc: 0x0C05_7001,
        sdp: false,
        why: "heuristic only: the other direction of the same call",
    },
];

fn not_in_agent_legs(file: &str, heuristic: bool) -> BTreeSet<StreamKey> {
    NOT_IN_AGENT_LEGS
        .iter()
        .filter(|n| n.file == file && (heuristic || n.sdp))
        .map(|n| (n.src.to_string(), n.dst.to_string(), n.ssrc))
        .collect()
}

fn data_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(sub)
}

/// Every `*.pcap` of the lab and of the media legs, sorted.
fn captures() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for sub in ["lab", "media_legs"] {
        let dir = data_dir(sub);
        let before = files.len();
        files.extend(
            std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "pcap")),
        );
        assert!(
            files.len() > before,
            "no capture in {}: regenerate it (tests/lab/README.md, \
             tests/data/media_legs/gen_media_legs.py)",
            dir.display()
        );
    }
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// The capture's `.expect.json`, when there is one.
fn expect_of(pcap: &Path) -> Option<Map<String, Value>> {
    let path = pcap.with_extension("expect.json");
    let text = std::fs::read_to_string(&path).ok()?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Some(m),
        _ => panic!("{} is not a JSON object", path.display()),
    }
}

/// `{"rules.audio.max_loss_pct": 5}` → TOML, one table per dotted prefix.
fn toml_from_overrides(overrides: &Map<String, Value>) -> String {
    let mut tables: BTreeMap<&str, Vec<(&str, &Value)>> = BTreeMap::new();
    for (path, value) in overrides {
        let (table, key) = path
            .rsplit_once('.')
            .unwrap_or_else(|| panic!("config override `{path}` is not section.key"));
        tables.entry(table).or_default().push((key, value));
    }
    let mut out = String::new();
    for (table, keys) in tables {
        writeln!(out, "[{table}]").unwrap();
        for (key, value) in keys {
            writeln!(out, "{key} = {}", toml_value(value)).unwrap();
        }
    }
    out
}

fn toml_value(v: &Value) -> String {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => panic!("config override value {other} has no TOML form"),
    }
}

/// `callwatch analyze --format json` on one capture, with its story's configuration.
fn analyze(pcap: &Path) -> Vec<Map<String, Value>> {
    let overrides = expect_of(pcap)
        .and_then(|e| e.get("config").and_then(Value::as_object).cloned())
        .unwrap_or_default();
    // Tests run in parallel in one process: each run gets its own file.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let config = std::env::temp_dir().join(format!(
        "callwatch-tshark-lab-{}-{}-{}.toml",
        file_name(pcap),
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&config, toml_from_overrides(&overrides)).expect("write the test config");
    let out = Command::new(env!("CARGO_BIN_EXE_callwatch"))
        .arg("analyze")
        .arg("--config")
        .arg(&config)
        .args(["--format", "json"])
        .arg(pcap)
        .output()
        .expect("run callwatch");
    let _ = std::fs::remove_file(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "callwatch analyze {} exited with {}\n{}",
        pcap.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match serde_json::from_str(l) {
            Ok(Value::Object(m)) => m,
            _ => panic!("not a JSON object: {l}"),
        })
        .collect()
}

fn tshark_version() -> String {
    let out = Command::new("tshark")
        .arg("-v")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "tshark is required by this test and could not be run ({e}); install \
             Wireshark 4.0's tshark (Debian 12: apt-get install tshark)"
            )
        });
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// One row of tshark 4.0's "RTP Streams" table.
#[derive(Debug, Clone)]
struct Row {
    key: StreamKey,
    payload: String,
    packets: i64,
    lost: i64,
    loss_pct: String,
    max_delta: f64,
    mean_jitter: f64,
    max_jitter: f64,
}

/// Columns: start end src sport dst dport ssrc payload... pkts lost (pct%) then min,
/// mean, max delta, min, mean, max jitter, [X]. The payload column may hold spaces
/// ("g711U, telephone-event"): the row is read from both ends of the "(pct%)" token.
fn parse_row(line: &str) -> Option<Row> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let pct = t
        .iter()
        .position(|s| s.starts_with('(') && s.ends_with("%)"))?;
    if pct < 9 || t.len() < pct + 7 {
        return None;
    }
    let f = |i: usize| t[i].parse::<f64>().ok();
    Some(Row {
        key: (
            format!("{}:{}", t[2], t[3]),
            format!("{}:{}", t[4], t[5]),
            u32::from_str_radix(t[6].strip_prefix("0x")?, 16).ok()?,
        ),
        payload: t[7..pct - 2].join(" "),
        packets: t[pct - 2].parse().ok()?,
        lost: t[pct - 1].parse().ok()?,
        loss_pct: t[pct]
            .trim_start_matches('(')
            .trim_end_matches("%)")
            .to_string(),
        max_delta: f(pct + 3)?,
        mean_jitter: f(pct + 5)?,
        max_jitter: f(pct + 6)?,
    })
}

fn tshark_streams(pcap: &Path, heuristic: bool) -> Vec<Row> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(pcap).args(["-q", "-z", "rtp,streams"]);
    if heuristic {
        cmd.args(["-o", "rtp.heuristic_rtp:TRUE"]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("tshark could not be run: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("RTP Streams"),
        "tshark failed on {}: {}\n{text}",
        pcap.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines().filter_map(parse_row).collect()
}

/// Runs `job` on every capture, a few at a time (tshark takes about half a second to
/// start), and returns the results in the captures' order.
fn each_capture<T: Send>(files: &[PathBuf], job: impl Fn(&Path) -> T + Sync) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<T>>> = Mutex::new(files.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = {
                    let mut n = next.lock().unwrap();
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(file) = files.get(i) else { break };
                let r = job(file);
                results.lock().unwrap()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every capture was processed"))
        .collect()
}

/// A stream of an agent leg in callwatch's output.
struct OurStream {
    leg: String,
    media: Map<String, Value>,
}

fn our_streams(records: &[Map<String, Value>]) -> BTreeMap<StreamKey, Vec<OurStream>> {
    let mut out: BTreeMap<StreamKey, Vec<OurStream>> = BTreeMap::new();
    for r in records {
        let leg = format!(
            "leg {} {} of {}",
            r["agent"].as_str().unwrap_or("?"),
            r["direction"].as_str().unwrap_or("?"),
            r["call_id"].as_str().unwrap_or("?")
        );
        for m in r["media"].as_array().into_iter().flatten() {
            let m = m.as_object().expect("media entries are objects").clone();
            let ssrc = m["ssrc"]
                .as_str()
                .and_then(|s| s.strip_prefix("0x"))
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .unwrap_or_else(|| panic!("bad ssrc in {m:?}"));
            let key = (
                m["src"].as_str().unwrap_or_default().to_string(),
                m["dst"].as_str().unwrap_or_default().to_string(),
                ssrc,
            );
            // An internal call's stream is in both agents' legs: each is compared.
            out.entry(key).or_default().push(OurStream {
                leg: leg.clone(),
                media: m,
            });
        }
    }
    out
}

/// Largest deviation per figure over every compared stream, for the summary.
#[derive(Default)]
struct Deviations {
    worst: BTreeMap<&'static str, (f64, String)>,
}

impl Deviations {
    fn check(
        &mut self,
        failures: &mut Vec<String>,
        what: &'static str,
        ours: f64,
        theirs: f64,
        ctx: &str,
    ) {
        let dev = (ours - theirs).abs();
        let allowed = (theirs.abs() * 0.05).max(0.5);
        if dev.is_nan() || dev > allowed {
            failures.push(format!(
                "{ctx}: {what} callwatch {ours} tshark {theirs} (allowed ±{allowed:.3})"
            ));
        }
        let w = self.worst.entry(what).or_insert((0.0, String::new()));
        if dev > w.0 || w.1.is_empty() {
            *w = (dev, ctx.to_string());
        }
    }
}

fn num(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("media field {k} missing or not a number in {m:?}"))
}

fn int(m: &Map<String, Value>, k: &str) -> i64 {
    m.get(k)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("media field {k} missing or not an integer in {m:?}"))
}

/// Compares one tshark row with one of callwatch's streams.
fn compare(
    row: &Row,
    ours: &OurStream,
    ctx: &str,
    failures: &mut Vec<String>,
    dev: &mut Deviations,
) {
    let m = &ours.media;
    let ctx = format!("{ctx} ({}, {})", row.payload, ours.leg);
    let (packets, expected, lost) = (int(m, "packets"), int(m, "expected"), int(m, "lost"));
    // tshark prints Pkts and Lost; expected is Pkts + Lost by construction.
    let their_expected = row.packets + row.lost;
    for (what, a, b) in [
        ("packets", packets, row.packets),
        ("expected", expected, their_expected),
        ("lost", lost, row.lost),
    ] {
        if a != b {
            failures.push(format!("{ctx}: {what} callwatch {a} tshark {b}"));
        }
    }
    // loss % is Wireshark's lost·100/expected: tshark prints it with 1 decimal,
    // analyze with 2.
    let exact = if their_expected == 0 {
        0.0
    } else {
        row.lost as f64 * 100.0 / their_expected as f64
    };
    if format!("{exact:.1}") != row.loss_pct {
        failures.push(format!(
            "{ctx}: tshark loss % {} is not lost/expected {exact:.3}",
            row.loss_pct
        ));
    }
    let loss_pct = num(m, "loss_pct");
    if (loss_pct - exact).abs() > 0.005 + 1e-9 {
        failures.push(format!(
            "{ctx}: loss_pct callwatch {loss_pct} Wireshark {exact:.4}"
        ));
    }
    dev.check(
        failures,
        "jitter_ms (Mean Jitter)",
        num(m, "jitter_ms"),
        row.mean_jitter,
        &ctx,
    );
    dev.check(
        failures,
        "max_jitter_ms (Max Jitter)",
        num(m, "max_jitter_ms"),
        row.max_jitter,
        &ctx,
    );
    dev.check(
        failures,
        "max_delta_ms (Max Delta)",
        num(m, "max_delta_ms"),
        row.max_delta,
        &ctx,
    );
}

#[test]
fn analyze_media_figures_agree_with_tshark_on_every_lab_and_media_leg_capture() {
    let version = tshark_version();
    assert!(
        version.contains(" 4.0."),
        "the figures are pinned to Wireshark 4.0 (standards.md §6), found: {version}"
    );
    let files = captures();
    let runs = each_capture(&files, |f| (analyze(f), tshark_streams(f, false)));
    let mut failures = Vec::new();
    let mut dev = Deviations::default();
    let mut compared = 0;
    let mut outside = 0;
    for (file, (records, rows)) in files.iter().zip(&runs) {
        let name = file_name(file);
        let ours = our_streams(records);
        let listed = not_in_agent_legs(&name, false);
        let theirs: BTreeMap<&StreamKey, &Row> = rows.iter().map(|r| (&r.key, r)).collect();
        for key in ours.keys() {
            if !theirs.contains_key(key) {
                failures.push(format!(
                    "{name}: callwatch has {key:?} in an agent leg, tshark has no such stream"
                ));
            }
            if listed.contains(key) {
                failures.push(format!(
                    "{name}: {key:?} is listed as in no agent leg, but callwatch has it"
                ));
            }
        }
        for key in &listed {
            if !theirs.contains_key(key) {
                failures.push(format!(
                    "{name}: listed stream {key:?} is not in tshark's table"
                ));
            }
        }
        for (key, row) in &theirs {
            let ctx = format!("{name} {} -> {} ssrc {:#010x}", key.0, key.1, key.2);
            match ours.get(*key) {
                Some(streams) => {
                    for s in streams {
                        compared += 1;
                        compare(row, s, &ctx, &mut failures, &mut dev);
                    }
                }
                None if listed.contains(*key) => outside += 1,
                None => failures.push(format!(
                    "{ctx}: tshark reports this stream ({} packets), callwatch has it in no \
                     agent leg and it is not listed in NOT_IN_AGENT_LEGS",
                    row.packets
                )),
            }
        }
    }
    println!(
        "{version}: {compared} agent-leg streams compared in {} captures; {outside} \
         tshark streams in no agent leg (listed)",
        files.len()
    );
    for (what, (d, ctx)) in &dev.worst {
        println!("  max |{what} deviation| = {d:.4} ms at {ctx}");
    }
    assert!(compared >= 50, "too few streams compared: {compared}");
    assert!(
        failures.is_empty(),
        "callwatch and tshark disagree:\n{}",
        failures.join("\n")
    );
}

#[test]
fn every_rtp_stream_in_the_captures_is_in_an_agent_leg_or_listed_with_its_reason() {
    tshark_version();
    let files = captures();
    // The RTP heuristic finds RTP that no SDP of the capture describes.
    let runs = each_capture(&files, |f| (analyze(f), tshark_streams(f, true)));
    let mut failures = Vec::new();
    for (file, (records, rows)) in files.iter().zip(&runs) {
        let name = file_name(file);
        let ours: BTreeSet<StreamKey> = our_streams(records).into_keys().collect();
        let all: BTreeSet<StreamKey> = rows.iter().map(|r| r.key.clone()).collect();
        let outside: BTreeSet<StreamKey> = all.difference(&ours).cloned().collect();
        let listed = not_in_agent_legs(&name, true);
        if outside != listed {
            failures.push(format!(
                "{name}: streams in no agent leg {outside:?}, listed {listed:?}"
            ));
        }
        if !ours.is_subset(&all) {
            failures.push(format!(
                "{name}: callwatch streams tshark does not see: {:?}",
                ours.difference(&all).collect::<Vec<_>>()
            ));
        }
    }
    for n in NOT_IN_AGENT_LEGS {
        assert!(
            files.iter().any(|f| file_name(f) == n.file),
            "NOT_IN_AGENT_LEGS names a capture that does not exist: {}",
            n.file
        );
        assert!(!n.why.is_empty());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---- the media-leg captures' own stories -------------------------------------------

/// Whether an expected media entry (`from`, `codec`, `packets`, `lost`) fits a stream.
fn media_fits(want: &Map<String, Value>, got: &Value) -> bool {
    want.iter().all(|(k, v)| got.get(k) == Some(v))
}

#[test]
fn media_leg_captures_give_the_records_their_stories_designed() {
    let files: Vec<PathBuf> = captures()
        .into_iter()
        .filter(|f| f.parent().is_some_and(|p| p.ends_with("media_legs")))
        .collect();
    assert!(files.len() >= 5, "media leg captures: {files:?}");
    let runs = each_capture(&files, analyze);
    let mut failures = Vec::new();
    for (file, records) in files.iter().zip(&runs) {
        let name = file_name(file);
        let expect = expect_of(file).unwrap_or_else(|| panic!("{name} has no expect file"));
        let legs = expect["legs"].as_array().expect("legs");
        if legs.len() != records.len() {
            failures.push(format!(
                "{name}: {} records, {} expected",
                records.len(),
                legs.len()
            ));
        }
        for want in legs {
            let want = want.as_object().expect("leg object");
            let Some(got) = records.iter().find(|r| {
                ["agent", "direction", "call_id"]
                    .iter()
                    .all(|k| r.get(*k) == want.get(*k))
            }) else {
                failures.push(format!("{name}: no record for {want:?}"));
                continue;
            };
            for (k, v) in want {
                match k.as_str() {
                    "violations" => {
                        let mut a: Vec<&str> = got["violations"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v["rule"].as_str())
                            .collect();
                        let mut b: Vec<&str> = v
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect();
                        a.sort_unstable();
                        b.sort_unstable();
                        if a != b {
                            failures.push(format!("{name}: violations {a:?}, expected {b:?}"));
                        }
                    }
                    "media" => {
                        let got_media = got["media"].as_array().cloned().unwrap_or_default();
                        let want_media = v.as_array().cloned().unwrap_or_default();
                        let mut used = vec![false; got_media.len()];
                        for w in &want_media {
                            let w = w.as_object().expect("media object");
                            match (0..got_media.len())
                                .find(|&i| !used[i] && media_fits(w, &got_media[i]))
                            {
                                Some(i) => used[i] = true,
                                None => failures
                                    .push(format!("{name}: no stream fits {w:?} in {got_media:?}")),
                            }
                        }
                        if got_media.len() != want_media.len() {
                            failures.push(format!(
                                "{name}: {} streams, {} expected",
                                got_media.len(),
                                want_media.len()
                            ));
                        }
                    }
                    _ => {
                        if got.get(k) != Some(v) {
                            failures.push(format!(
                                "{name}: {k} = {}, expected {v}",
                                got.get(k).unwrap_or(&Value::Null)
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn row_parser_reads_tshark_4_0_lines() {
    let line = "     1.535506     18.515950       10.20.1.1 30010       10.20.2.1 20010 \
                0x5A6E0011 g711U, telephone-event   851     0 (0.0%)           0.500          \
                19.955          20.939           0.019           0.490           8.525 ";
    let r = parse_row(line).expect("row");
    assert_eq!(
        r.key,
        (
            "10.20.1.1:30010".into(),
            "10.20.2.1:20010".into(),
            0x5A6E_0011
        )
    );
    assert_eq!(r.payload, "g711U, telephone-event");
    assert_eq!((r.packets, r.lost, r.loss_pct.as_str()), (851, 0, "0.0"));
    assert_eq!(
        (r.max_delta, r.mean_jitter, r.max_jitter),
        (20.939, 0.490, 8.525)
    );
    assert!(parse_row("========================= RTP Streams ========================").is_none());
}
