//! End-to-end stories captured from real SIP software.
//!
//! Each capture in `tests/data/lab/` was made by `tests/lab/regenerate.sh`: SIPp
//! playing the customer trunk, the agents' phones, the survey IVR (and a B2BUA PBX),
//! talking through a Kamailio 5.6 proxy, recorded with dumpcap on a network
//! namespace's loopback (both sides of the proxy, so every message is seen twice).
//! Next to each capture, `<story>.expect.json` holds what the story was designed
//! to produce (not what callwatch printed): configuration overrides and, per agent
//! leg, the fields of the `callwatch analyze` JSON line that matter.
//!
//! Every test runs the built binary, `callwatch analyze --config <overrides>
//! --format json <capture>`, and checks its lines against the expect file with
//! [`check_story`]. See `tests/lab/README.md` for the stories and the lab.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

mod common;
use common::contract::LEG_FIELDS as CONTRACT_FIELDS;

/// Keys of an expect file's leg that are notes for people, not fields to check.
const NOT_CHECKED: &[&str] = &["note"];

fn lab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lab")
}

/// Renders `{"rules.long_hold.threshold_ms": 20000, "engine.correlation_header":
/// "X-Call-ID"}` as TOML: one table per dotted prefix.
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
        out.push('\n');
    }
    out
}

fn toml_value(v: &Value) -> String {
    match v {
        // a JSON string literal is a valid TOML basic string
        Value::String(_) | Value::Number(_) | Value::Bool(_) => v.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            format!("[{}]", items.join(", "))
        }
        other => panic!("config override value {other} has no TOML form here"),
    }
}

/// Runs `callwatch analyze` on a lab capture with the story's configuration and
/// returns its JSON lines.
fn analyze(story: &str, overrides: &Map<String, Value>) -> Vec<Map<String, Value>> {
    let pcap = lab_dir().join(format!("{story}.pcap"));
    assert!(
        pcap.exists(),
        "{} is missing: regenerate it with `sudo bash tests/lab/regenerate.sh {story}`",
        pcap.display()
    );
    let config =
        std::env::temp_dir().join(format!("callwatch-lab-{story}-{}.toml", std::process::id()));
    std::fs::write(&config, toml_from_overrides(overrides)).expect("write the test config");
    let output = Command::new(env!("CARGO_BIN_EXE_callwatch"))
        .arg("analyze")
        .arg("--config")
        .arg(&config)
        .args(["--format", "json"])
        .arg(&pcap)
        .output()
        .expect("run callwatch");
    let _ = std::fs::remove_file(&config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "callwatch analyze {story}.pcap exited with {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(record)) => record,
            _ => panic!(
                "callwatch analyze {story}.pcap printed a line that is not a JSON object: \
                 {line:?}\nstderr:\n{stderr}"
            ),
        })
        .collect()
}

/// The differences between an expected leg and an analyze record, empty when they agree.
///
/// - `*_ms` given as `[min, max]`: the record's integer lies in the range;
/// - `violations`: a sorted list of rule ids, equal to the record's rule ids;
/// - `holds`: `[{"by": ..., "ms": [min, max]}, ...]`, same number of episodes, in order;
/// - `media`: partial stream objects, each matched by a distinct stream of the record
///   (same number of streams);
/// - anything else: equal JSON values.
fn leg_differences(want: &Map<String, Value>, got: &Map<String, Value>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (key, expected) in want {
        if NOT_CHECKED.contains(&key.as_str()) {
            continue;
        }
        let actual = got.get(key).unwrap_or(&Value::Null);
        match (key.as_str(), expected) {
            ("violations", Value::Array(rules)) => {
                let mut ids: Vec<String> = actual
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .map(|x| {
                                x.get("rule")
                                    .and_then(Value::as_str)
                                    .unwrap_or("?")
                                    .to_string()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                ids.sort();
                let mut want_ids: Vec<String> = rules
                    .iter()
                    .map(|r| r.as_str().unwrap_or("?").to_string())
                    .collect();
                want_ids.sort();
                if ids != want_ids {
                    diffs.push(format!("violations: expected {want_ids:?}, got {ids:?}"));
                }
            }
            ("holds", Value::Array(holds)) => {
                let got_holds = actual.as_array().cloned().unwrap_or_default();
                if got_holds.len() != holds.len() {
                    diffs.push(format!(
                        "holds: expected {} episode(s) {expected}, got {actual}",
                        holds.len()
                    ));
                    continue;
                }
                for (i, (w, g)) in holds.iter().zip(&got_holds).enumerate() {
                    if w.get("by") != g.get("by") {
                        diffs.push(format!(
                            "holds[{i}].by: expected {}, got {}",
                            w["by"], g["by"]
                        ));
                    }
                    if let Some(d) = range_difference(&w["ms"], g.get("ms").unwrap_or(&Value::Null))
                    {
                        diffs.push(format!("holds[{i}].ms: {d}"));
                    }
                }
            }
            ("media", Value::Array(streams)) => {
                let got_streams = actual.as_array().cloned().unwrap_or_default();
                if got_streams.len() != streams.len() {
                    diffs.push(format!(
                        "media: expected {} stream(s), got {}: {actual}",
                        streams.len(),
                        got_streams.len()
                    ));
                    continue;
                }
                let mut used = vec![false; got_streams.len()];
                for w in streams {
                    let w = w.as_object().expect("media entries are objects");
                    let found = got_streams
                        .iter()
                        .enumerate()
                        .position(|(i, g)| !used[i] && w.iter().all(|(k, v)| g.get(k) == Some(v)));
                    match found {
                        Some(i) => used[i] = true,
                        None => diffs.push(format!(
                            "media: no stream matches {}; streams: {actual}",
                            Value::Object(w.clone())
                        )),
                    }
                }
            }
            (k, Value::Array(range)) if k.ends_with("_ms") && range.len() == 2 => {
                if let Some(d) = range_difference(expected, actual) {
                    diffs.push(format!("{key}: {d}"));
                }
            }
            _ => {
                if actual != expected {
                    diffs.push(format!("{key}: expected {expected}, got {actual}"));
                }
            }
        }
    }
    diffs
}

fn range_difference(range: &Value, actual: &Value) -> Option<String> {
    let (lo, hi) = (range[0].as_i64().unwrap(), range[1].as_i64().unwrap());
    match actual.as_i64() {
        Some(v) if lo <= v && v <= hi => None,
        _ => Some(format!("expected {lo}..={hi}, got {actual}")),
    }
}

/// Checks `callwatch analyze` on `tests/data/lab/<story>.pcap` against
/// `<story>.expect.json`: the same number of agent legs; every expected leg matched
/// by a distinct record with the same agent and direction (and Call-ID when given)
/// whose fields agree (see [`leg_differences`]); and every record carrying all the
/// contract fields, with `agent_id` = `agent` and no name or team (no roster).
fn check_story(story: &str) {
    let expect_path = lab_dir().join(format!("{story}.expect.json"));
    let expect: Value = serde_json::from_str(
        &std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", expect_path.display()));
    let overrides = expect["config"].as_object().cloned().unwrap_or_default();
    let want_legs: Vec<Map<String, Value>> = expect["legs"]
        .as_array()
        .expect("legs")
        .iter()
        .map(|l| l.as_object().expect("a leg is an object").clone())
        .collect();

    let records = analyze(story, &overrides);
    let shown: Vec<String> = records
        .iter()
        .map(|r| Value::Object(r.clone()).to_string())
        .collect();
    let shown = shown.join("\n");
    let mut problems = Vec::new();

    for (i, r) in records.iter().enumerate() {
        let missing: Vec<&&str> = CONTRACT_FIELDS
            .iter()
            .filter(|f| !r.contains_key(**f))
            .collect();
        if !missing.is_empty() {
            problems.push(format!("record {i}: fields missing: {missing:?}"));
        }
        if r.get("agent_id") != r.get("agent") {
            problems.push(format!(
                "record {i}: agent_id is not the extension (no roster)"
            ));
        }
        for f in ["agent_name", "team"] {
            if r.get(f).is_some_and(|v| !v.is_null()) {
                problems.push(format!("record {i}: {f} should be null without a roster"));
            }
        }
    }
    let mut ids: Vec<&Value> = records.iter().filter_map(|r| r.get("leg_id")).collect();
    ids.sort_by_key(|v| v.to_string());
    ids.dedup();
    if ids.len() != records.len() {
        problems.push("leg_id values are not unique".to_string());
    }
    if records.len() != want_legs.len() {
        problems.push(format!(
            "expected {} agent leg(s), got {}",
            want_legs.len(),
            records.len()
        ));
    }

    let mut used = vec![false; records.len()];
    for want in &want_legs {
        let identity = |r: &Map<String, Value>| {
            ["agent", "direction", "call_id"]
                .iter()
                .all(|k| want.get(*k).is_none() || r.get(*k) == want.get(*k))
        };
        let label = format!(
            "leg {} {} {}",
            want["agent"],
            want["direction"],
            want.get("call_id").unwrap_or(&Value::Null)
        );
        let candidates: Vec<usize> = (0..records.len())
            .filter(|&i| !used[i] && identity(&records[i]))
            .collect();
        if candidates.is_empty() {
            problems.push(format!(
                "{label}: no record with that agent, direction and Call-ID"
            ));
            continue;
        }
        let mut best: Option<(usize, Vec<String>)> = None;
        for i in candidates {
            let diffs = leg_differences(want, &records[i]);
            if best.as_ref().is_none_or(|(_, d)| diffs.len() < d.len()) {
                best = Some((i, diffs));
            }
        }
        let (i, diffs) = best.unwrap();
        used[i] = true;
        for d in diffs {
            problems.push(format!("{label}: {d}"));
        }
    }

    assert!(
        problems.is_empty(),
        "story {story}: callwatch analyze does not match {story}.expect.json:\n  - {}\n\
         analyze printed:\n{shown}\n",
        problems.join("\n  - ")
    );
}

// ---------------------------------------------------------------------------------
// The stories (tests/lab/README.md tells each one).
// ---------------------------------------------------------------------------------

#[test]
fn answered_in_4s_then_transferred_to_survey() {
    check_story("answered_in_4s_then_transferred_to_survey");
}

#[test]
fn answered_after_13s_is_a_late_answer() {
    check_story("answered_after_13s_is_a_late_answer");
}

#[test]
fn agent_hangs_up_first_without_survey() {
    check_story("agent_hangs_up_first_without_survey");
}

#[test]
fn agent_rings_15s_and_caller_cancels() {
    check_story("agent_rings_15s_and_caller_cancels");
}

#[test]
fn caller_cancels_after_5s_without_violation() {
    check_story("caller_cancels_after_5s_without_violation");
}

#[test]
fn agent_holds_customer_longer_than_threshold() {
    check_story("agent_holds_customer_longer_than_threshold");
}

#[test]
fn outbound_call_from_agent_has_no_ring_rule() {
    check_story("outbound_call_from_agent_has_no_ring_rule");
}

#[test]
fn early_media_183_starts_the_ring() {
    check_story("early_media_183_starts_the_ring");
}

#[test]
fn agent_rejects_with_486_after_11s() {
    check_story("agent_rejects_with_486_after_11s");
}

#[test]
fn parallel_ringing_gives_two_legs_one_answered() {
    check_story("parallel_ringing_gives_two_legs_one_answered");
}

#[test]
fn survey_transfer_failing_with_503_is_survey_missing() {
    check_story("survey_transfer_failing_with_503_is_survey_missing");
}

#[test]
fn fragmented_invite_is_reassembled() {
    check_story("fragmented_invite_is_reassembled");
}

#[test]
fn sip_over_tcp_is_followed() {
    check_story("sip_over_tcp_is_followed");
}

#[test]
fn retransmitted_invite_and_200_count_once() {
    check_story("retransmitted_invite_and_200_count_once");
}

#[test]
fn b2bua_agent_leg_is_linked_to_customer_leg() {
    check_story("b2bua_agent_leg_is_linked_to_customer_leg");
}

#[test]
fn gbk_display_name_is_decoded() {
    check_story("gbk_display_name_is_decoded");
}

#[test]
fn glare_bye_counts_the_earlier_bye() {
    check_story("glare_bye_counts_the_earlier_bye");
}

#[test]
fn attended_transfer_to_survey_with_replaces() {
    check_story("attended_transfer_to_survey_with_replaces");
}

#[test]
fn switch_side_hold_is_no_violation() {
    check_story("switch_side_hold_is_no_violation");
}

#[test]
fn cancel_racing_the_answer_loses_to_the_200() {
    check_story("cancel_racing_the_answer_loses_to_the_200");
}

#[test]
fn registrations_options_and_ivr_calls_give_no_leg() {
    check_story("registrations_options_and_ivr_calls_give_no_leg");
}

#[test]
fn capture_started_mid_call_gives_no_leg() {
    check_story("capture_started_mid_call_gives_no_leg");
}

#[test]
fn capture_ending_mid_call_leaves_the_leg_open() {
    check_story("capture_ending_mid_call_leaves_the_leg_open");
}

#[test]
fn internal_call_between_agents_gives_two_legs() {
    check_story("internal_call_between_agents_gives_two_legs");
}

/// The matcher itself: a record built to fit an expected leg passes, and each kind of
/// disagreement is reported (so that the story tests fail only for callwatch's faults).
#[test]
fn leg_matcher_accepts_a_fitting_record_and_names_each_difference() {
    let expect: Value = serde_json::from_str(
        &std::fs::read_to_string(
            lab_dir().join("attended_transfer_to_survey_with_replaces.expect.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let want = expect["legs"][0].as_object().unwrap().clone();
    let mid = |r: &Value| Value::from((r[0].as_i64().unwrap() + r[1].as_i64().unwrap()) / 2);
    let mut record = Map::new();
    for (k, v) in &want {
        let fitted = match k.as_str() {
            "violations" => Value::Array(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| serde_json::json!({"rule": r, "at": null, "detail": ""}))
                    .collect(),
            ),
            "holds" => Value::Array(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|h| serde_json::json!({"start_at": null, "ms": mid(&h["ms"]), "by": h["by"]}))
                    .collect(),
            ),
            "media" => Value::Array(
                v.as_array()
                    .unwrap()
                    .iter()
                    .rev()
                    .map(|m| {
                        let mut s = m.as_object().unwrap().clone();
                        s.insert("ssrc".into(), Value::from("0x0C057001"));
                        s.insert("jitter_ms".into(), Value::from(0.3));
                        Value::Object(s)
                    })
                    .collect(),
            ),
            k if k.ends_with("_ms") => mid(v),
            _ => v.clone(),
        };
        record.insert(k.clone(), fitted);
    }
    assert_eq!(leg_differences(&want, &record), Vec::<String>::new());

    let mut bad = record.clone();
    bad.insert("ring_ms".into(), Value::from(9999));
    bad.insert("customer".into(), Value::from("13812345678"));
    bad.insert(
        "violations".into(),
        serde_json::json!([{"rule": "long_hold", "at": null, "detail": ""}]),
    );
    bad.insert("holds".into(), Value::Array(vec![]));
    bad["media"].as_array_mut().unwrap()[0]["packets"] = Value::from(99);
    let diffs = leg_differences(&want, &bad);
    for key in ["ring_ms", "customer", "violations", "holds", "media"] {
        assert!(
            diffs.iter().any(|d| d.starts_with(key)),
            "no difference reported for {key}: {diffs:?}"
        );
    }
    assert_eq!(diffs.len(), 5, "{diffs:?}");

    let toml = toml_from_overrides(
        serde_json::json!({"rules.long_hold.threshold_ms": 20000,
                           "engine.correlation_header": "X-Call-ID"})
        .as_object()
        .unwrap(),
    );
    assert_eq!(
        toml,
        "[engine]\ncorrelation_header = \"X-Call-ID\"\n\n[rules.long_hold]\nthreshold_ms = 20000\n\n"
    );
}

/// Every capture in tests/data/lab has its expect file and its test above, and the
/// other way round, so that a story added to the lab is never silently untested.
#[test]
fn every_lab_capture_has_a_story_test() {
    let source = include_str!("scenarios.rs");
    let mut stories = Vec::new();
    for entry in std::fs::read_dir(lab_dir()).expect("tests/data/lab") {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(story) = name.strip_suffix(".expect.json") {
            stories.push(story.to_string());
        }
    }
    stories.sort();
    assert!(!stories.is_empty(), "no expect files in tests/data/lab");
    for story in &stories {
        assert!(
            lab_dir().join(format!("{story}.pcap")).exists(),
            "{story}.expect.json has no capture"
        );
        assert!(
            source.contains(&format!("fn {story}()")),
            "{story} has no #[test] fn {story}() in tests/scenarios.rs"
        );
    }
}
