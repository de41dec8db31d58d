//! The operations kit checked against the metric contract and the binary.
//!
//! - Every Grafana dashboard in `dashboards/` parses, has the structure Grafana imports
//!   (uid, title, schemaVersion, the `DS_PROMETHEUS` input and variable, panels with
//!   targets on that data source, bilingual titles) and defines every `$variable` its
//!   queries use.
//! - Every metric name in every panel query, template-variable query and alert rule
//!   (`deploy/prometheus/callwatch.rules.yml`) is one that SPEC §6
//!   (`../shared/SPEC.md`) names or `docs/metrics.md` documents, and every label the
//!   kit selects or groups by is one of that metric's labels.
//! - Every alert has `summary`, `description` and a `runbook` that points at a heading of
//!   `docs/operations.md`, and `callwatch.rules.test.yml` sees it both firing and not.
//!   (promtool itself runs in `scripts/check_ops_kit.sh`.)
//! - The deployment files only use subcommands and flags the binary has, and the
//!   configuration files and `CALLWATCH__*` overrides they ship pass `check-config`.
//! - A real daemon (`callwatch run`) fed the lab captures as HEP exports every metric and
//!   label the kit uses, and the ring-time exemplars carry the `leg_id` the Grafana
//!   exemplar link needs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::callwatch_run::{CallwatchRun, Listening};
use common::http_get::http_get;
use common::temp_dir::TempDir;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path, why: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {} ({why}): {e}", path.display()))
}

fn fail_if_any(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    );
}

// ------------------------------------------------------------------ the metric contract

/// Labels Prometheus adds to every series it scrapes.
const TARGET_LABELS: &[&str] = &["job", "instance"];
/// Series Prometheus makes itself, with their labels.
const PROMETHEUS_SERIES: &[(&str, &[&str])] = &[("up", &["job", "instance"])];

/// Metric name → its label names, as the contract documents them.
#[derive(Debug, Default)]
struct Contract {
    metrics: BTreeMap<String, BTreeSet<String>>,
    /// Histograms (their `_bucket`, `_count` and `_sum` series are theirs).
    histograms: BTreeSet<String>,
    /// Where each name comes from, for messages.
    source: BTreeMap<String, &'static str>,
}

/// One metric in a query, resolved against the contract.
struct Resolved<'a> {
    base: &'a str,
    labels: &'a BTreeSet<String>,
    bucket: bool,
}

impl Contract {
    fn load() -> Contract {
        let spec_path = root().join("../shared/SPEC.md");
        let spec = read(
            &spec_path,
            "the product specification: SPEC §6 names the metrics",
        );
        let start = spec
            .find("## 6.")
            .expect("SPEC.md has no \"## 6.\" section (live outputs, metric names)");
        let end = spec[start..]
            .find("\n## 7.")
            .map_or(spec.len(), |e| start + e);
        let mut c = Contract::default();
        c.add_from(&spec[start..end], "SPEC §6");

        let doc_path = root().join("docs/metrics.md");
        let doc = std::fs::read_to_string(&doc_path).unwrap_or_else(|e| {
            panic!(
                "docs/metrics.md is missing ({e}): it is the reference of every metric the \
                 daemon exports beyond SPEC §6, and the ops kit may only use documented names"
            )
        });
        c.add_from(&doc, "docs/metrics.md");
        for (name, labels) in PROMETHEUS_SERIES {
            c.metrics.insert(
                name.to_string(),
                labels.iter().map(|s| s.to_string()).collect(),
            );
            c.source.insert(name.to_string(), "Prometheus");
        }
        c
    }

    /// Collects `callwatch_*` names with their labels, written either right after the
    /// name (`name{a,b}`, as SPEC §6 does) or in a Markdown table row
    /// (`| \`name\` | type | \`a\`, \`b\` | meaning |`, as docs/metrics.md does). A
    /// metric is a histogram when "histogram" follows its name (SPEC) or is its type cell.
    fn add_from(&mut self, text: &str, source: &'static str) {
        for line in text.lines() {
            if let Some((name, kind, labels)) = table_row(line) {
                self.add(name, labels, kind == "histogram", source);
            }
            let mut rest = line;
            while let Some(i) = rest.find("callwatch_") {
                let after = &rest[i..];
                let name_len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                let name = &after[..name_len];
                let mut tail = &after[name_len..];
                let mut labels = BTreeSet::new();
                if let Some(inner) = tail.strip_prefix('{').and_then(|t| t.split('}').next()) {
                    for part in inner.split(',') {
                        let label: String = part
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !label.is_empty() {
                            labels.insert(label);
                        }
                    }
                    tail = &tail[inner.len() + 1..];
                }
                let histogram = tail
                    .trim_start_matches(['`', '}'])
                    .trim_start()
                    .trim_start_matches(['(', '|'])
                    .trim_start()
                    .starts_with("histogram");
                if name.len() > "callwatch_".len() {
                    self.add(name, labels, histogram, source);
                }
                rest = &after[name_len..];
            }
        }
        // Series of a histogram (`_bucket`...) mentioned in examples are the histogram's.
        let hist: Vec<String> = self.histograms.iter().cloned().collect();
        for h in hist {
            for s in ["_bucket", "_count", "_sum"] {
                let series = format!("{h}{s}");
                if let Some(mut labels) = self.metrics.remove(&series) {
                    labels.remove("le");
                    self.metrics.entry(h.clone()).or_default().extend(labels);
                    self.source.remove(&series);
                }
            }
        }
    }

    fn add(&mut self, name: &str, labels: BTreeSet<String>, histogram: bool, source: &'static str) {
        self.metrics
            .entry(name.to_string())
            .or_default()
            .extend(labels);
        self.source.entry(name.to_string()).or_insert(source);
        if histogram {
            self.histograms.insert(name.to_string());
        }
    }

    fn resolve(&self, name: &str) -> Option<Resolved<'_>> {
        if let Some((k, labels)) = self.metrics.get_key_value(name) {
            return Some(Resolved {
                base: k,
                labels,
                bucket: false,
            });
        }
        for suffix in ["_bucket", "_count", "_sum"] {
            if let Some(base) = name.strip_suffix(suffix) {
                if let Some((k, labels)) = self.metrics.get_key_value(base) {
                    if self.histograms.contains(base) {
                        return Some(Resolved {
                            base: k,
                            labels,
                            bucket: suffix == "_bucket",
                        });
                    }
                }
            }
        }
        None
    }
}

/// `| `name` | type | `a`, `b` | ... |` → (name, type, labels).
fn table_row(line: &str) -> Option<(&str, &str, BTreeSet<String>)> {
    let cells: Vec<&str> = line
        .trim()
        .strip_prefix('|')?
        .split('|')
        .map(str::trim)
        .collect();
    let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
    if !name.starts_with("callwatch_") || cells.len() < 3 {
        return None;
    }
    let labels = cells[2]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    Some((name, cells[1], labels))
}

#[test]
fn contract_reads_spec_section_6_and_docs_metrics() {
    let c = Contract::load();
    // A few names and labels SPEC §6 pins down, so that a change in the parsing above
    // cannot make every later check pass vacuously.
    for (name, labels) in [
        (
            "callwatch_legs_total",
            &["direction", "outcome", "team"][..],
        ),
        ("callwatch_ring_seconds", &["team"][..]),
        ("callwatch_ingest_errors_total", &["source", "kind"][..]),
        ("callwatch_legs_ringing", &[][..]),
    ] {
        let got = c
            .metrics
            .get(name)
            .unwrap_or_else(|| panic!("{name} not found in SPEC §6"));
        for l in labels {
            assert!(
                got.contains(*l),
                "{name}: label {l} not read from SPEC §6 ({got:?})"
            );
        }
    }
    let hist: Vec<&str> = c.histograms.iter().map(String::as_str).collect();
    assert_eq!(hist, ["callwatch_ring_seconds", "callwatch_rtp_mos"]);
    // docs/metrics.md's tables are read too (a metric beyond SPEC §6 and its labels).
    let ignored = c
        .metrics
        .get("callwatch_ingest_ignored_total")
        .expect("callwatch_ingest_ignored_total from docs/metrics.md");
    assert!(
        ignored.contains("source") && ignored.contains("kind"),
        "{ignored:?}"
    );
}

// ------------------------------------------------------------------ PromQL scanning

/// What one PromQL expression uses.
#[derive(Debug, Default, PartialEq)]
struct Uses {
    /// Metric names with the label names of their matchers.
    selectors: Vec<(String, Vec<String>)>,
    /// Labels of `by`, `without`, `on`, `ignoring`, `group_left`, `group_right`.
    grouping: Vec<String>,
    /// Grafana variables (`$team`, `${agent}`, `$__range`).
    vars: Vec<String>,
}

const GROUPING: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
const KEYWORDS: &[&str] = &[
    "and", "or", "unless", "bool", "offset", "atan2", "inf", "nan",
];
/// Aggregation operators, which may be followed by `by (...)` before their parenthesis.
const AGGREGATIONS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
];

fn ident_len(s: &[u8]) -> usize {
    s.iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c == b':'))
        .unwrap_or(s.len())
}

fn skip_string(s: &[u8], i: usize, uses: &mut Uses) -> usize {
    let quote = s[i];
    let mut j = i + 1;
    while j < s.len() && s[j] != quote {
        if s[j] == b'\\' && quote != b'`' {
            j += 1;
        } else if s[j] == b'$' {
            collect_var(s, j, uses);
        }
        j += 1;
    }
    j + 1
}

/// Reads `$name` or `${name}` or `${name:format}` at `i`; returns the end.
fn collect_var(s: &[u8], i: usize, uses: &mut Uses) -> usize {
    let mut j = i + 1;
    let braced = s.get(j) == Some(&b'{');
    if braced {
        j += 1;
    }
    let n = s[j..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_'))
        .unwrap_or(s.len() - j);
    if n > 0 {
        uses.vars
            .push(String::from_utf8_lossy(&s[j..j + n]).into_owned());
    }
    j += n;
    if braced {
        while j < s.len() && s[j] != b'}' {
            j += 1;
        }
        j += 1;
    }
    j
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Label names of a `{...}` matcher list starting at `i` (the `{`); returns the end.
fn matchers(s: &[u8], i: usize, uses: &mut Uses) -> (Vec<String>, usize) {
    let mut labels = Vec::new();
    let mut j = i + 1;
    let mut expect_name = true;
    while j < s.len() && s[j] != b'}' {
        match s[j] {
            b'"' | b'\'' | b'`' => {
                j = skip_string(s, j, uses);
                continue;
            }
            b',' => expect_name = true,
            c if expect_name && (c.is_ascii_alphabetic() || c == b'_') => {
                let n = ident_len(&s[j..]);
                labels.push(String::from_utf8_lossy(&s[j..j + n]).into_owned());
                expect_name = false;
                j += n;
                continue;
            }
            _ => {}
        }
        j += 1;
    }
    (labels, j + 1)
}

/// A rough PromQL scanner, enough for the kit's own expressions: it finds metric names
/// (identifiers that are not functions, keywords or grouping labels), the label names of
/// their matchers and of grouping clauses, and Grafana variables.
fn scan(expr: &str) -> Uses {
    let s = expr.as_bytes();
    let mut uses = Uses::default();
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(s, i, &mut uses),
            b'$' => i = collect_var(s, i, &mut uses),
            b'[' => {
                // Range or subquery: durations and Grafana interval variables.
                while i < s.len() && s[i] != b']' {
                    if s[i] == b'$' {
                        i = collect_var(s, i, &mut uses);
                    } else {
                        i += 1;
                    }
                }
                i += 1;
            }
            b'{' => {
                // A selector with no metric name ({__name__=...}): labels only.
                let (_, end) = matchers(s, i, &mut uses);
                i = end;
            }
            b'0'..=b'9' | b'.' => {
                // Numbers and durations (5m, 1e-3, 0x1f).
                while i < s.len() && (s[i].is_ascii_alphanumeric() || s[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let n = ident_len(&s[i..]);
                let word = String::from_utf8_lossy(&s[i..i + n]).into_owned();
                let next = skip_ws(s, i + n);
                let lower = word.to_ascii_lowercase();
                if GROUPING.contains(&lower.as_str()) {
                    i = next;
                    if s.get(i) == Some(&b'(') {
                        let close = s[i..]
                            .iter()
                            .position(|&c| c == b')')
                            .map_or(s.len(), |p| i + p);
                        for l in String::from_utf8_lossy(&s[i + 1..close]).split(',') {
                            let l = l.trim();
                            if !l.is_empty() {
                                uses.grouping.push(l.to_string());
                            }
                        }
                        i = close + 1;
                    }
                } else if KEYWORDS.contains(&lower.as_str())
                    || AGGREGATIONS.contains(&lower.as_str())
                {
                    i += n;
                } else if s.get(next) == Some(&b'(') {
                    // A function call (or an aggregation written `sum(`).
                    i += n;
                } else {
                    let mut labels = Vec::new();
                    i = next;
                    if s.get(i) == Some(&b'{') {
                        let (l, end) = matchers(s, i, &mut uses);
                        labels = l;
                        i = end;
                    }
                    uses.selectors.push((word, labels));
                }
            }
            _ => i += 1,
        }
    }
    uses
}

#[test]
fn scanner_finds_metrics_labels_and_variables() {
    let u = scan(
        r#"histogram_quantile(0.9, sum by (le, team) (rate(callwatch_ring_seconds_bucket{team=~"$team",le=~"10(\\.0)?"}[$__rate_interval]))) > 8
           and on (instance) sum without(job) (increase(callwatch_legs_total[1h] offset 5m)) >= 20 or up{job="callwatch"} == bool 0"#,
    );
    assert_eq!(
        u.selectors,
        vec![
            (
                "callwatch_ring_seconds_bucket".to_string(),
                vec!["team".to_string(), "le".to_string()]
            ),
            ("callwatch_legs_total".to_string(), vec![]),
            ("up".to_string(), vec!["job".to_string()]),
        ]
    );
    assert_eq!(u.grouping, vec!["le", "team", "instance", "job"]);
    assert_eq!(u.vars, vec!["team", "__rate_interval"]);
    let v = scan(r#"label_values(callwatch_agent_legs_total{team=~"${team:regex}"}, agent)"#);
    assert_eq!(
        v.selectors,
        vec![
            (
                "callwatch_agent_legs_total".to_string(),
                vec!["team".to_string()]
            ),
            ("agent".to_string(), vec![])
        ]
    );
    assert_eq!(v.vars, vec!["team"]);
}

/// Problems with the metrics and labels of one expression. `label_values(m, l)` is
/// understood: `l` is a label of `m`.
fn check_expr(contract: &Contract, place: &str, expr: &str, problems: &mut Vec<String>) {
    let mut uses = scan(expr);
    if let Some(rest) = expr.trim().strip_prefix("label_values(") {
        // The last argument is a label name, not a metric.
        if let Some((label, _)) = uses.selectors.pop() {
            uses.grouping.push(label);
        }
        if !rest.contains(',') {
            problems.push(format!("{place}: label_values without a metric: {expr}"));
        }
    }
    if uses.selectors.is_empty() {
        problems.push(format!("{place}: no metric in {expr:?}"));
    }
    let mut known_labels: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
    for (name, labels) in &uses.selectors {
        match contract.resolve(name) {
            None => problems.push(format!(
                "{place}: metric {name} is neither in SPEC §6 nor in docs/metrics.md"
            )),
            Some(r) => {
                let mut allowed = r.labels.clone();
                allowed.extend(TARGET_LABELS.iter().map(|s| s.to_string()));
                if r.bucket {
                    allowed.insert("le".into());
                }
                for l in labels {
                    if !allowed.contains(l) {
                        problems.push(format!(
                            "{place}: {name} has no label {l:?} (documented: {:?}, from {})",
                            r.labels,
                            contract.source.get(r.base).copied().unwrap_or("?")
                        ));
                    }
                }
                known_labels.extend(allowed);
            }
        }
    }
    for l in &uses.grouping {
        if !known_labels.contains(l) {
            problems.push(format!(
                "{place}: groups by {l:?}, which none of its metrics has: {expr}"
            ));
        }
    }
}

// ------------------------------------------------------------------ dashboards

struct Dashboard {
    file: String,
    json: Value,
}

fn dashboards() -> Vec<Dashboard> {
    let dir = root().join("dashboards");
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for e in entries {
        let path = e.expect("dashboards/ entry").path();
        if path.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = read(&path, "a Grafana dashboard");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("dashboards/{file} is not JSON: {e}"));
        out.push(Dashboard { file, json });
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    assert!(
        out.len() >= 4,
        "expected the floor, agent, media and ingest dashboards in dashboards/, found {:?}",
        out.iter().map(|d| &d.file).collect::<Vec<_>>()
    );
    out
}

/// Every panel, rows' nested panels included.
fn panels(d: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        out.push(p);
        for q in p["panels"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            out.push(q);
        }
    }
    out
}

fn variables(d: &Value) -> Vec<&Value> {
    d["templating"]["list"]
        .as_array()
        .map(|v| v.iter().collect())
        .unwrap_or_default()
}

fn variable_query(v: &Value) -> Option<String> {
    match &v["query"] {
        Value::String(s) if v["type"] == "query" => Some(s.clone()),
        Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn is_cjk(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// Grafana's own variables.
const GRAFANA_VARS: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
];

#[test]
fn dashboards_have_the_structure_grafana_imports() {
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for d in dashboards() {
        let f = &d.file;
        let j = &d.json;
        let uid = j["uid"].as_str().unwrap_or("");
        if uid.is_empty() || uid.len() > 40 {
            problems.push(format!("{f}: uid {uid:?} must be 1 to 40 characters"));
        }
        if !uids.insert(uid.to_string()) {
            problems.push(format!("{f}: uid {uid} is used by another dashboard"));
        }
        if j["title"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{f}: no title"));
        }
        if j["schemaVersion"].as_u64().is_none_or(|v| v < 36) {
            problems.push(format!(
                "{f}: schemaVersion {} (want a current schema, 36 or later)",
                j["schemaVersion"]
            ));
        }
        if !j["id"].is_null() {
            problems.push(format!("{f}: id must be null in a shared dashboard"));
        }
        let input_ok = j["__inputs"].as_array().is_some_and(|a| {
            a.iter().any(|i| {
                i["name"] == "DS_PROMETHEUS"
                    && i["type"] == "datasource"
                    && i["pluginId"] == "prometheus"
            })
        });
        if !input_ok {
            problems.push(format!(
                "{f}: no __inputs entry DS_PROMETHEUS (datasource, pluginId prometheus)"
            ));
        }
        let vars = variables(j);
        let var_names: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
        if !vars.iter().any(|v| {
            v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource" && v["query"] == "prometheus"
        }) {
            problems.push(format!(
                "{f}: no DS_PROMETHEUS data-source variable (type datasource, query prometheus) for file provisioning"
            ));
        }
        for v in &vars {
            if v["type"] == "query" {
                let q = variable_query(v).unwrap_or_default();
                if !q.starts_with("label_values(") {
                    problems.push(format!(
                        "{f}: variable {} should come from label_values(...), not {q:?}",
                        v["name"]
                    ));
                }
                if v["datasource"]["uid"] != "${DS_PROMETHEUS}" {
                    problems.push(format!(
                        "{f}: variable {} not on ${{DS_PROMETHEUS}}",
                        v["name"]
                    ));
                }
            }
        }
        let mut ids = BTreeSet::new();
        let all = panels(j);
        if all.iter().filter(|p| p["type"] != "row").count() == 0 {
            problems.push(format!("{f}: no panels"));
        }
        for p in all {
            let title = p["title"].as_str().unwrap_or("");
            let id = p["id"].as_u64();
            if id.is_none() || !ids.insert(id) {
                problems.push(format!("{f}: panel {title:?} has a missing or repeated id"));
            }
            let g = &p["gridPos"];
            let (x, w, h) = (g["x"].as_u64(), g["w"].as_u64(), g["h"].as_u64());
            if !matches!((x, w, h), (Some(x), Some(w), Some(h)) if x + w <= 24 && w > 0 && h > 0) {
                problems.push(format!(
                    "{f}: panel {title:?} gridPos {g} is outside the 24 columns"
                ));
            }
            // Bilingual: English and Chinese (SPEC: every user-facing label has zh-CN).
            if !(title.chars().any(|c| c.is_ascii_alphabetic()) && title.chars().any(is_cjk)) {
                problems.push(format!("{f}: panel title {title:?} is not English / 中文"));
            }
            if p["type"] == "row" {
                continue;
            }
            if p["datasource"]["uid"] != "${DS_PROMETHEUS}" {
                problems.push(format!("{f}: panel {title:?} is not on ${{DS_PROMETHEUS}}"));
            }
            let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if targets.is_empty() {
                problems.push(format!("{f}: panel {title:?} has no targets"));
            }
            let mut refs = BTreeSet::new();
            for t in targets {
                let expr = t["expr"].as_str().unwrap_or("");
                if expr.trim().is_empty() {
                    problems.push(format!("{f}: panel {title:?} has a target without expr"));
                }
                if t["datasource"]["uid"] != "${DS_PROMETHEUS}" {
                    problems.push(format!(
                        "{f}: a target of {title:?} is not on ${{DS_PROMETHEUS}}"
                    ));
                }
                if !refs.insert(t["refId"].as_str().unwrap_or("").to_string()) {
                    problems.push(format!("{f}: panel {title:?} repeats refId {}", t["refId"]));
                }
                for v in scan(expr).vars {
                    if !var_names.contains(v.as_str()) && !GRAFANA_VARS.contains(&v.as_str()) {
                        problems.push(format!(
                            "{f}: panel {title:?} uses ${v}, which is not defined"
                        ));
                    }
                }
            }
        }
    }
    fail_if_any("dashboards", &problems);
}

#[test]
fn dashboards_cover_the_floor_agents_media_and_ingest() {
    let all = dashboards();
    let by_uid: BTreeMap<&str, &Value> = all
        .iter()
        .filter_map(|d| Some((d.json["uid"].as_str()?, &d.json)))
        .collect();
    let exprs = |uid: &str| -> String {
        let d = by_uid
            .get(uid)
            .unwrap_or_else(|| panic!("no dashboard with uid {uid}"));
        panels(d)
            .iter()
            .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t["expr"].as_str().map(str::to_string))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let has_var = |uid: &str, name: &str| variables(by_uid[uid]).iter().any(|v| v["name"] == name);

    // Floor: service level per team, ring-time quantiles against the 10 s line with
    // exemplars, violations by rule and team, legs ringing and active.
    let floor = exprs("callwatch-floor");
    for needle in [
        "callwatch_service_level_ratio",
        "histogram_quantile(0.5, sum by (le) (rate(callwatch_ring_seconds_bucket",
        "histogram_quantile(0.9, sum by (le) (rate(callwatch_ring_seconds_bucket",
        "histogram_quantile(0.99, sum by (le) (rate(callwatch_ring_seconds_bucket",
        "sum by (team, rule) (increase(callwatch_violations_total",
        "callwatch_legs_ringing",
        "callwatch_legs_active",
    ] {
        assert!(floor.contains(needle), "floor dashboard lacks {needle}");
    }
    assert!(has_var("callwatch-floor", "team"));
    let ring = panels(by_uid["callwatch-floor"])
        .into_iter()
        .find(|p| {
            p["targets"].as_array().is_some_and(|t| {
                t.iter().any(|t| {
                    t["expr"]
                        .as_str()
                        .unwrap_or("")
                        .contains("histogram_quantile(0.99")
                })
            })
        })
        .expect("ring-time panel");
    assert!(
        ring["targets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["exemplar"] == true),
        "the ring-time panel shows no exemplars"
    );
    let steps = &ring["fieldConfig"]["defaults"]["thresholds"]["steps"];
    assert!(
        steps.as_array().unwrap().iter().any(|s| s["value"] == 10),
        "the ring-time panel has no 10 s threshold step: {steps}"
    );
    assert_eq!(
        ring["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"], "line",
        "the 10 s threshold is not drawn as a line"
    );

    let agents = exprs("callwatch-agents");
    for needle in [
        "callwatch_agent_legs_total",
        "callwatch_agent_violations_total",
    ] {
        assert!(agents.contains(needle), "agent dashboard lacks {needle}");
    }
    assert!(has_var("callwatch-agents", "team") && has_var("callwatch-agents", "agent"));

    let media = exprs("callwatch-media");
    for needle in [
        "histogram_quantile(0.1, sum by (le) (rate(callwatch_rtp_mos_bucket",
        "rate(callwatch_rtp_lost_packets_total",
    ] {
        assert!(media.contains(needle), "media dashboard lacks {needle}");
    }

    let ingest = exprs("callwatch-ingest");
    for needle in [
        "callwatch_ingest_packets_total",
        "sum by (source, kind) (rate(callwatch_ingest_errors_total",
        "callwatch_events_dropped_total",
        "callwatch_legs_tracked",
    ] {
        assert!(ingest.contains(needle), "ingest dashboard lacks {needle}");
    }
}

/// Every expression of the kit with where it is: dashboards (targets and variables) and
/// alert rules.
fn kit_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for d in dashboards() {
        for p in panels(&d.json) {
            for t in p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(e) = t["expr"].as_str() {
                    out.push((
                        format!(
                            "{} panel {:?} {}",
                            d.file,
                            p["title"].as_str().unwrap_or(""),
                            t["refId"]
                        ),
                        e.to_string(),
                    ));
                }
            }
        }
        for v in variables(&d.json) {
            if let Some(q) = variable_query(v) {
                out.push((format!("{} variable {}", d.file, v["name"]), q));
            }
        }
    }
    for r in alert_rules() {
        out.push((format!("alert {}", r.name), r.expr.clone()));
    }
    out
}

#[test]
fn every_metric_and_label_of_the_kit_is_in_the_contract() {
    let contract = Contract::load();
    let mut problems = Vec::new();
    let exprs = kit_expressions();
    for (place, expr) in &exprs {
        check_expr(&contract, place, expr, &mut problems);
    }
    fail_if_any("metric names and labels", &problems);
    assert!(exprs.len() > 40, "only {} expressions found", exprs.len());
}

// ------------------------------------------------------------------ alert rules

#[derive(Debug)]
struct AlertRule {
    name: String,
    expr: String,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

/// Unquotes a YAML scalar written inline ("...", '...' or plain).
fn yaml_scalar(v: &str) -> String {
    let v = v.trim();
    if let Some(inner) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some(o) => out.push(o),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    } else if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else {
        v.to_string()
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// `key: value` at `lines[i]`, with a block scalar (`>-`, `|`) gathered from the more
/// indented lines below. Returns (key, value, next line).
fn yaml_entry(lines: &[&str], i: usize) -> Option<(String, String, usize)> {
    let line = lines[i];
    let t = line.trim_start().trim_start_matches("- ");
    let (key, value) = t.split_once(':')?;
    if key.contains(' ') || key.starts_with('#') {
        return None;
    }
    let value = value.trim();
    if matches!(value, ">" | ">-" | "|" | "|-") {
        let base = indent(line);
        let mut j = i + 1;
        let mut parts = Vec::new();
        while j < lines.len() && (lines[j].trim().is_empty() || indent(lines[j]) > base) {
            parts.push(lines[j].trim());
            j += 1;
        }
        let sep = if value.starts_with('>') { " " } else { "\n" };
        return Some((key.to_string(), parts.join(sep).trim().to_string(), j));
    }
    Some((key.to_string(), yaml_scalar(value), i + 1))
}

/// The alert rules of `deploy/prometheus/callwatch.rules.yml`, read with the subset of
/// YAML that file is written in (promtool reads it for real in check_ops_kit.sh).
fn alert_rules() -> Vec<AlertRule> {
    let text = read(
        &root().join("deploy/prometheus/callwatch.rules.yml"),
        "alert rules",
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut rules: Vec<AlertRule> = Vec::new();
    let mut section = "";
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if t.starts_with('#') || t.is_empty() {
            i += 1;
            continue;
        }
        if let Some(name) = t.strip_prefix("- alert:") {
            rules.push(AlertRule {
                name: yaml_scalar(name),
                expr: String::new(),
                annotations: BTreeMap::new(),
                labels: BTreeMap::new(),
            });
            section = "";
            i += 1;
            continue;
        }
        if t.starts_with("- name:") || t.starts_with("- record:") {
            section = "";
            i += 1;
            continue;
        }
        match (rules.last_mut(), yaml_entry(&lines, i)) {
            (Some(rule), Some((key, value, next))) => {
                match (section, key.as_str()) {
                    (_, "expr") => rule.expr = value,
                    (_, "annotations") | (_, "labels") if value.is_empty() => {
                        section = if key == "labels" {
                            "labels"
                        } else {
                            "annotations"
                        };
                    }
                    (_, "for") => {}
                    ("annotations", k) => {
                        rule.annotations.insert(k.to_string(), value);
                    }
                    ("labels", k) => {
                        rule.labels.insert(k.to_string(), value);
                    }
                    _ => {}
                }
                i = next;
            }
            _ => i += 1,
        }
    }
    assert!(!rules.is_empty(), "no alert found in callwatch.rules.yml");
    rules
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn alerts_cover_the_operations_brief_with_annotations_and_runbooks() {
    let rules = alert_rules();
    let ops = read(&root().join("docs/operations.md"), "the runbooks");
    let anchors: BTreeSet<String> = ops
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for r in &rules {
        if !names.insert(r.name.clone()) {
            problems.push(format!("{}: defined twice", r.name));
        }
        if r.expr.is_empty() {
            problems.push(format!("{}: no expr", r.name));
        }
        for key in ["summary", "description", "runbook"] {
            if r.annotations.get(key).is_none_or(String::is_empty) {
                problems.push(format!("{}: no {key} annotation", r.name));
            }
        }
        if !matches!(
            r.labels.get("severity").map(String::as_str),
            Some("critical" | "warning")
        ) {
            problems.push(format!("{}: severity must be critical or warning", r.name));
        }
        if let Some(rb) = r.annotations.get("runbook") {
            match rb.split_once('#') {
                Some(("docs/operations.md", a)) if anchors.contains(a) => {}
                _ => problems.push(format!(
                    "{}: runbook {rb:?} is not docs/operations.md#<a heading of it>",
                    r.name
                )),
            }
        }
    }
    // What the issue asks the rules to watch, by the metric that shows it.
    for (what, needle) in [
        (
            "service level below target",
            "callwatch_service_level_ratio",
        ),
        ("ring times rising", "callwatch_ring_seconds_bucket"),
        ("violation bursts", "callwatch_violations_total"),
        ("no traffic seen", "callwatch_ingest_packets_total"),
        ("ingest drops", "callwatch_events_dropped_total"),
        ("poor audio on many calls", "poor_audio"),
        ("callwatch down", "up{job=\"callwatch\"}"),
    ] {
        if !rules.iter().any(|r| r.expr.contains(needle)) {
            problems.push(format!("no alert for {what} (nothing uses {needle})"));
        }
    }
    fail_if_any("alert rules", &problems);
}

#[test]
fn promtool_tests_see_every_alert_firing_and_not_firing() {
    let text = read(
        &root().join("deploy/prometheus/callwatch.rules.test.yml"),
        "promtool unit tests",
    );
    assert!(
        text.contains("rule_files: [callwatch.rules.yml]")
            || text.contains("- callwatch.rules.yml"),
        "the unit tests do not load callwatch.rules.yml"
    );
    // alertname → (seen firing, seen silent)
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = line.trim().strip_prefix("alertname:") else {
            continue;
        };
        let e = seen.entry(name.trim().to_string()).or_default();
        match lines.get(i + 1).map(|l| l.trim()) {
            Some("exp_alerts: []") => e.1 = true,
            Some("exp_alerts:")
                if lines
                    .get(i + 2)
                    .is_some_and(|l| l.trim().starts_with("- exp_labels:")) =>
            {
                e.0 = true
            }
            other => panic!("after alertname {name} expected exp_alerts, got {other:?}"),
        }
    }
    let mut problems = Vec::new();
    for r in alert_rules() {
        match seen.get(&r.name) {
            Some((true, true)) => {}
            Some((f, s)) => problems.push(format!(
                "{}: firing tested {f}, not firing tested {s}",
                r.name
            )),
            None => problems.push(format!("{}: no promtool test", r.name)),
        }
    }
    fail_if_any("promtool unit tests", &problems);
}

// ------------------------------------------------------------------ deployment files

fn callwatch() -> Command {
    Command::new(env!("CARGO_BIN_EXE_callwatch"))
}

/// The `callwatch ...` command lines the deployment files start.
fn deploy_command_lines() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let unit = read(
        &root().join("deploy/systemd/callwatch.service"),
        "systemd unit",
    );
    for l in unit.lines().filter(|l| l.starts_with("ExecStart=")) {
        let args: Vec<String> = l["ExecStart=".len()..]
            .split_whitespace()
            .skip(1)
            .map(String::from)
            .collect();
        out.push(("deploy/systemd/callwatch.service ExecStart".into(), args));
    }
    let docker = read(&root().join("deploy/docker/Dockerfile"), "Dockerfile");
    for l in docker.lines().filter(|l| l.starts_with("CMD ")) {
        let args: Vec<String> =
            serde_json::from_str(l["CMD ".len()..].trim()).expect("CMD in exec form");
        out.push(("deploy/docker/Dockerfile CMD".into(), args));
    }
    let k8s = read(&root().join("deploy/k8s/deployment.yaml"), "k8s Deployment");
    for l in k8s.lines().filter(|l| l.trim_start().starts_with("args:")) {
        let v = l.trim_start()["args:".len()..].trim();
        let args: Vec<String> =
            serde_json::from_str(v).expect("k8s args as a flow sequence of strings");
        out.push(("deploy/k8s/deployment.yaml args".into(), args));
    }
    assert_eq!(
        out.len(),
        3,
        "expected one command line per deployment file: {out:?}"
    );
    out
}

#[test]
fn deployment_files_only_use_subcommands_and_flags_the_binary_has() {
    let mut problems = Vec::new();
    for (place, args) in deploy_command_lines() {
        let Some(sub) = args.first() else {
            problems.push(format!("{place}: no subcommand"));
            continue;
        };
        let help = callwatch()
            .args([sub.as_str(), "--help"])
            .output()
            .expect("run callwatch");
        if !help.status.success() {
            problems.push(format!("{place}: `callwatch {sub}` is not a subcommand"));
            continue;
        }
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        for flag in args.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap_or(flag);
            if !help.contains(&format!("{flag} ")) {
                problems.push(format!("{place}: `callwatch {sub}` has no {flag}"));
            }
        }
    }
    fail_if_any("deployment command lines", &problems);
}

/// `CALLWATCH__*` overrides set by the systemd unit (active lines) and the k8s Deployment.
fn deploy_env_overrides() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let unit = read(
        &root().join("deploy/systemd/callwatch.service"),
        "systemd unit",
    );
    for l in unit.lines() {
        if let Some(kv) = l.strip_prefix("Environment=CALLWATCH__") {
            let (k, v) = kv.split_once('=').expect("Environment=KEY=VALUE");
            out.push((format!("CALLWATCH__{k}"), v.to_string()));
        }
    }
    let k8s = read(&root().join("deploy/k8s/deployment.yaml"), "k8s Deployment");
    for l in k8s.lines() {
        if let Some(name) = l.trim_start().strip_prefix("- name: CALLWATCH__") {
            // Values come from Secrets there; any well-formed value will do.
            out.push((
                format!("CALLWATCH__{}", name.trim()),
                "0123456789abcdef0123456789abcdef".into(),
            ));
        }
    }
    assert!(
        !out.is_empty(),
        "no CALLWATCH__ override found in the deployment files"
    );
    out
}

/// The literal block `key: |` of a YAML file, dedented.
fn yaml_block(text: &str, key: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == format!("{key}: |"))
        .unwrap_or_else(|| panic!("no `{key}: |` block"));
    let base = indent(lines[start]);
    let body: Vec<&str> = lines[start + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > base)
        .copied()
        .collect();
    let cut = body
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent(l))
        .min()
        .unwrap_or(0);
    body.iter()
        .map(|l| if l.len() >= cut { &l[cut..] } else { l.trim() })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[test]
fn deployment_configurations_pass_check_config() {
    let tmp = TempDir::new("ops-kit");
    let k8s_dir = tmp.join("k8s");
    std::fs::create_dir_all(&k8s_dir).unwrap();
    let cm = read(&root().join("deploy/k8s/configmap.yaml"), "k8s ConfigMap");
    std::fs::write(
        k8s_dir.join("callwatch.toml"),
        yaml_block(&cm, "callwatch.toml"),
    )
    .unwrap();
    std::fs::write(k8s_dir.join("agents.csv"), yaml_block(&cm, "agents.csv")).unwrap();

    let files = [
        root().join("deploy/docker/callwatch.toml"),
        k8s_dir.join("callwatch.toml"),
        root().join("config/callwatch.toml"),
    ];
    let env = deploy_env_overrides();
    let mut problems = Vec::new();
    for f in &files {
        // Alone, then with every override the deployment files set.
        for with_env in [false, true] {
            let mut cmd = callwatch();
            cmd.arg("check-config").arg(f);
            if with_env {
                cmd.envs(env.iter().map(|(k, v)| (k, v)));
            }
            let out = cmd.output().expect("run callwatch check-config");
            if !out.status.success() {
                problems.push(format!(
                    "check-config {} {}: {}",
                    f.display(),
                    if with_env {
                        "with the deployment overrides"
                    } else {
                        ""
                    },
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    fail_if_any("deployment configurations", &problems);
}

#[test]
fn systemd_unit_is_hardened() {
    let unit = read(
        &root().join("deploy/systemd/callwatch.service"),
        "systemd unit",
    );
    let active: BTreeSet<&str> = unit
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let mut problems = Vec::new();
    for want in [
        "User=callwatch",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/callwatch",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
    ] {
        if !active.contains(want) {
            problems.push(format!("missing {want}"));
        }
    }
    // Capture capabilities stay commented: HEP needs none.
    if active.iter().any(|l| l.contains("CAP_NET_RAW")) {
        problems.push("CAP_NET_RAW granted without live capture".into());
    }
    if !unit.contains("#AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN") {
        problems.push("the live-capture capabilities are not documented".into());
    }
    fail_if_any("systemd unit", &problems);
}

// ------------------------------------------------------------------ a real scrape

/// A `callwatch run` child (killed when dropped) in a folder of its own.
struct Daemon {
    run: CallwatchRun,
    hep: SocketAddr,
    http: SocketAddr,
    _dir: TempDir,
}

fn start_daemon() -> Daemon {
    let dir = TempDir::new("ops-scrape");
    let roster = root().join("config/agents.csv");
    let config = dir.join("callwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nhep_listen = \"127.0.0.1:0\"\n\n[agents]\nextensions = [\"8001-8099\"]\nroster = {:?}\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\n[store]\nurl = \"sqlite://{}/callwatch.db\"\n",
            roster.display().to_string(),
            dir.display()
        ),
    )
    .unwrap();
    let mut run = CallwatchRun::start(&config, "warn", &dir.join("callwatch.log"));
    let Listening { hep, http } = run.listening(Duration::from_secs(60));
    Daemon {
        run,
        hep,
        http,
        _dir: dir,
    }
}

/// Plays every lab capture (SIPp through Kamailio, `tests/data/lab/`) to the daemon as
/// HEP v3 over UDP, SIP only, as one capture agent; then one datagram that is not HEP
/// and one HEP packet of a payload type callwatch does not read.
fn replay_lab_as_hep(hep: SocketAddr) -> usize {
    use callwatch::sources::pcap_file::read_captures;
    use callwatch::wire::decode::{DecodeLimits, Decoder};
    use callwatch::wire::hep::HepBuilder;

    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("tests/data/lab"))
        .expect("tests/data/lab")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("pcap"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no lab captures in tests/data/lab");
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut packets: Vec<Vec<u8>> = Vec::new();
    read_captures(
        &files,
        &mut |f| {
            let micros = f.at.0;
            decoder.decode(f.link, f.at, f.data, &mut |d| {
                // SIP starts with a method or "SIP/2.0"; RTP/RTCP (0x80...) is not HEP's to carry here.
                if d.payload.first().is_some_and(u8::is_ascii_uppercase) {
                    let b = HepBuilder::packet(
                        d.src,
                        d.dst,
                        (micros / 1_000_000) as u32,
                        (micros % 1_000_000) as u32,
                        1,
                        7,
                        d.payload,
                    );
                    packets.push(b.build());
                }
            });
        },
        &mut |_, _| {},
    );
    for (i, p) in packets.iter().enumerate() {
        sock.send_to(p, hep).unwrap();
        // Stay well under the daemon's socket buffer.
        if i % 200 == 199 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    sock.send_to(b"GET / HTTP/1.1\r\n\r\n", hep).unwrap();
    let addr: SocketAddr = "10.0.0.1:5060".parse().unwrap();
    let log = HepBuilder::packet(addr, addr, 1, 0, 100, 7, b"a log line").build();
    sock.send_to(&log, hep).unwrap();
    packets.len()
}

/// Metric family → label names seen on its samples (`_bucket`/`_count`/`_sum` and
/// `_total` series are kept under their own names), and the exemplar labels per family.
fn parse_exposition(
    text: &str,
) -> (
    BTreeMap<String, BTreeSet<String>>,
    BTreeMap<String, BTreeSet<String>>,
) {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut exemplars: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let label_names = |inner: &str| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut uses = Uses::default();
        let (labels, _) = matchers(format!("{{{inner}}}").as_bytes(), 0, &mut uses);
        out.extend(labels);
        out
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (sample, exemplar) = match line.split_once(" # ") {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        let name_end = sample.find(['{', ' ']).unwrap_or(sample.len());
        let name = &sample[..name_end];
        let labels = match sample[name_end..].strip_prefix('{') {
            Some(rest) => label_names(rest.rsplit_once('}').map_or(rest, |(a, _)| a)),
            None => BTreeSet::new(),
        };
        series.entry(name.to_string()).or_default().extend(labels);
        if let Some(e) = exemplar.and_then(|e| e.strip_prefix('{')) {
            let inner = e.split_once('}').map_or(e, |(a, _)| a);
            exemplars
                .entry(name.to_string())
                .or_default()
                .extend(label_names(inner));
        }
    }
    (series, exemplars)
}

#[test]
fn a_real_scrape_has_every_metric_and_label_the_kit_uses() {
    let mut daemon = start_daemon();
    let deadline = Instant::now() + Duration::from_secs(20);
    daemon.run.wait_ready(daemon.http, deadline);
    let sent = replay_lab_as_hep(daemon.hep);
    assert!(sent > 100, "only {sent} SIP packets in the lab captures");

    // Wait for the replay to go through the engine: legs ended, a violation per agent.
    let wanted = [
        "callwatch_legs_total",
        "callwatch_agent_violations_total",
        "callwatch_ring_seconds_bucket",
        "callwatch_service_level_ratio",
        "callwatch_ingest_errors_total",
        "callwatch_ingest_ignored_total",
    ];
    let (series, exemplars, text) = loop {
        let (status, body) = http_get(
            daemon.http,
            "/metrics",
            &[("Accept", "application/openmetrics-text")],
        )
        .expect("GET /metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        let (series, exemplars) = parse_exposition(&body);
        if wanted.iter().all(|w| series.contains_key(*w)) {
            break (series, exemplars, body);
        }
        assert!(
            Instant::now() < deadline,
            "after replaying {sent} packets, the scrape still lacks {:?}:\n{body}",
            wanted
                .iter()
                .filter(|w| !series.contains_key(**w))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(200));
    };

    // Every metric and label the kit's expressions use, as Prometheus would see it
    // (job and instance are Prometheus' own; `up` is Prometheus' own series).
    let mut problems = Vec::new();
    for (place, expr) in kit_expressions() {
        let mut uses = scan(&expr);
        if expr.trim().starts_with("label_values(") {
            if let Some((label, _)) = uses.selectors.pop() {
                uses.grouping.push(label);
            }
        }
        let mut present: BTreeSet<String> = TARGET_LABELS.iter().map(|s| s.to_string()).collect();
        for (name, labels) in &uses.selectors {
            if PROMETHEUS_SERIES.iter().any(|(n, _)| n == name) {
                continue;
            }
            match series.get(name) {
                None => problems.push(format!("{place}: {name} is not in the scrape")),
                Some(have) => {
                    for l in labels {
                        if !have.contains(l) && !TARGET_LABELS.contains(&l.as_str()) {
                            problems
                                .push(format!("{place}: {name} has no label {l} in the scrape"));
                        }
                    }
                    present.extend(have.iter().cloned());
                }
            }
        }
        for l in &uses.grouping {
            if !present.contains(l)
                && !uses
                    .selectors
                    .iter()
                    .all(|(n, _)| PROMETHEUS_SERIES.iter().any(|(p, _)| p == n))
            {
                problems.push(format!(
                    "{place}: groups by {l}, absent from the scraped series"
                ));
            }
        }
    }
    // The floor's exemplar link opens the call page by the exemplar's leg_id.
    if !exemplars
        .get("callwatch_ring_seconds_bucket")
        .is_some_and(|l| l.contains("leg_id"))
    {
        problems.push(format!(
            "no ring-time exemplar with leg_id (exemplars: {exemplars:?})"
        ));
    }
    // The bucket boundaries the kit's expressions pick by value.
    for bucket in [r#"le="10.0""#, r#"le="3.6""#] {
        if !text.contains(bucket) {
            problems.push(format!("no bucket {bucket} in the scrape"));
        }
    }
    fail_if_any("the real scrape", &problems);
}

/// The image's build stage has every folder the crate compiles from: the sources, the
/// benchmarks Cargo.toml names, and the folders compiled in by `sqlx::migrate!` and
/// `include_str!` (a folder left out of the Dockerfile's COPY lines or its dockerignore
/// breaks `docker build`, which no test here can run without a Docker engine).
#[test]
fn the_container_build_copies_every_folder_the_crate_compiles_from() {
    let docker = read(&root().join("deploy/docker/Dockerfile"), "Dockerfile");
    let ignore = read(
        &root().join("deploy/docker/Dockerfile.dockerignore"),
        "dockerignore",
    );
    let mut needed = vec!["src".to_string(), "benches".to_string()];
    // Folders named by sqlx::migrate!("…") anywhere in src/.
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = read(&p, "source");
                for part in text.split("migrate!(\"").skip(1) {
                    let path = part.split('"').next().unwrap();
                    let top = path.split('/').next().unwrap().to_string();
                    if !needed.contains(&top) {
                        needed.push(top);
                    }
                }
            }
        }
    }
    assert!(needed.iter().any(|n| n == "migrations"), "{needed:?}");
    for folder in &needed {
        assert!(
            docker
                .lines()
                .any(|l| l.starts_with("COPY ") && l.contains(&format!(" {folder} "))),
            "deploy/docker/Dockerfile copies no {folder}/ into the build stage"
        );
        assert!(
            ignore.lines().any(|l| l.trim() == format!("!{folder}")),
            "deploy/docker/Dockerfile.dockerignore does not let {folder}/ through"
        );
    }
}
