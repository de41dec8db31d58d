//! The command line as a user meets it: the built `callwatch` binary run on the lab
//! captures of `tests/data/lab/` and on files made here (cut, corrupted, not captures,
//! bad configurations), checking exit statuses, messages, output formats and masking
//! against SPEC §4 and §5.
//!
//! Every run clears the `CALLWATCH__*` environment first, so the user's shell cannot
//! change a verdict; tests that exercise an override set it explicitly. Scratch files go
//! under Cargo's per-target temporary directory, one folder per test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::contract::{LEG_FIELDS as CONTRACT_FIELDS, MEDIA_FIELDS};

/// Two lab stories with two legs each, and three single-leg ones whose legs end at
/// different times; together they interleave.
const PARALLEL: &str = "parallel_ringing_gives_two_legs_one_answered.pcap";
const LATE_ANSWER: &str = "answered_after_13s_is_a_late_answer.pcap";
const AGENT_HANGS_UP: &str = "agent_hangs_up_first_without_survey.pcap";
const CALLER_CANCELS: &str = "caller_cancels_after_5s_without_violation.pcap";
const REJECTS: &str = "agent_rejects_with_486_after_11s.pcap";

fn lab(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lab")
        .join(name)
}

fn lab_captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lab");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    out.sort();
    assert!(out.len() >= 10, "lab captures missing in {}", dir.display());
    out
}

/// A fresh scratch folder for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cli_analyze")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The binary, with no `CALLWATCH__*` variable inherited from the caller.
fn callwatch() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callwatch"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CALLWATCH__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// What one run printed and how it ended.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn from_output(o: Output) -> Run {
        Run {
            code: o.status.code().expect("callwatch killed by a signal"),
            stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
        }
    }

    /// The JSON records on stdout.
    fn legs(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
            })
            .collect()
    }

    fn leg_ids(&self) -> Vec<String> {
        self.legs()
            .iter()
            .map(|l| {
                l["leg_id"]
                    .as_str()
                    .expect("leg_id is a string")
                    .to_string()
            })
            .collect()
    }

    fn expect_code(&self, code: i32, what: &str) -> &Run {
        assert_eq!(
            self.code, code,
            "{what}: exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn run(cmd: &mut Command) -> Run {
    Run::from_output(cmd.output().expect("run callwatch"))
}

fn analyze(args: &[&str], files: &[&Path]) -> Run {
    run(callwatch().arg("analyze").args(args).args(files))
}

fn analyze_json(files: &[&Path]) -> Run {
    analyze(&["--format", "json"], files)
}

/// A time of the JSON line in microseconds since the epoch.
fn micros(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"));
    Some(t.timestamp_micros())
}

/// Keys of the top-level object of a JSON text, in the order they are written.
fn top_level_keys(line: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut current = String::new();
    // Inside the top-level object, a string is a key when it follows `{` or `,`.
    let mut expect_key = false;
    let mut reading_key = false;
    for c in line.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
                if reading_key {
                    keys.push(std::mem::take(&mut current));
                    reading_key = false;
                }
                continue;
            }
            if reading_key {
                current.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                reading_key = depth == 1 && expect_key;
                expect_key = false;
            }
            '{' | '[' => {
                depth += 1;
                expect_key = depth == 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            ',' => expect_key = depth == 1,
            _ => {}
        }
    }
    keys
}

/// Runs of ASCII digits standing alone (not inside a word such as a hex id) of at
/// least `n` digits.
fn digit_runs(text: &str, n: usize) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= n && w.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// Violation counts by rule in the records.
fn violations_by_rule(legs: &[Value]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for leg in legs {
        for v in leg["violations"].as_array().expect("violations is a list") {
            let rule = v["rule"].as_str().expect("rule is a string").to_string();
            *out.entry(rule).or_insert(0) += 1;
        }
    }
    out
}

/// The summary line on stderr: (legs, violations by rule).
fn summary(stderr: &str) -> (u64, BTreeMap<String, u64>) {
    let line = stderr
        .lines()
        .find(|l| l.contains(" agent legs"))
        .unwrap_or_else(|| panic!("no summary line on stderr:\n{stderr}"));
    let after = line.trim_start_matches("callwatch: ");
    let (legs, rest) = after.split_once(" agent legs").unwrap();
    let legs: u64 = legs.trim().parse().unwrap_or_else(|_| panic!("{line}"));
    let mut by_rule = BTreeMap::new();
    let v = rest
        .split_once("violations: ")
        .unwrap_or_else(|| panic!("no violations in summary: {line}"))
        .1;
    let v = v.split(';').next().unwrap_or("");
    if v.trim() != "none" {
        for part in v.split(',') {
            let (rule, n) = part
                .trim()
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("`{part}` in {line}"));
            by_rule.insert(rule.to_string(), n.parse().unwrap());
        }
    }
    (legs, by_rule)
}

// ---------------------------------------------------------------------------------
// pcap surgery

/// One record of a classic pcap file: where it starts, its timestamp, its length.
#[derive(Clone, Copy, Debug)]
struct Record {
    offset: usize,
    at_us: i64,
    caplen: usize,
}

/// The records of a little-endian, microsecond pcap file (how the lab captures are
/// written).
fn pcap_records(bytes: &[u8]) -> Vec<Record> {
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "little-endian µs pcap"
    );
    let u32le = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        let caplen = u32le(at + 8) as usize;
        let at_us = i64::from(u32le(at)) * 1_000_000 + i64::from(u32le(at + 4));
        out.push(Record {
            offset: at,
            at_us,
            caplen,
        });
        at += 16 + caplen;
    }
    assert_eq!(at, bytes.len(), "lab capture ends on a record boundary");
    out
}

/// The same frames as a pcapng file (SHB, one IDB at microsecond resolution, one EPB
/// per record), with the offset of each EPB.
fn to_pcapng(bytes: &[u8]) -> (Vec<u8>, Vec<usize>) {
    let link = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    let mut out = Vec::new();
    let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(body);
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&(link as u16).to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&0u32.to_le_bytes());
    block(&mut out, 1, &idb);
    let mut offsets = Vec::new();
    for r in pcap_records(bytes) {
        let data = &bytes[r.offset + 16..r.offset + 16 + r.caplen];
        let ts = r.at_us as u64;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(r.caplen as u32).to_le_bytes());
        epb.extend_from_slice(&(r.caplen as u32).to_le_bytes());
        epb.extend_from_slice(data);
        offsets.push(out.len());
        block(&mut out, 6, &epb);
    }
    (out, offsets)
}

/// Checks a run on a capture cut at `cut` bytes against the run on the whole file:
/// exit 1, a message naming the file and `offset`, and every leg that ended before the
/// last complete frame (at `last_frame_us`) reported with the same leg_id. Returns how
/// many such legs there were.
fn check_cut(cut_file: &Path, offset: usize, last_frame_us: i64, full: &Run, what: &str) -> usize {
    let r = analyze_json(&[cut_file]);
    r.expect_code(1, what);
    let name = cut_file.display().to_string();
    let message = r
        .stderr
        .lines()
        .find(|l| l.contains(&name))
        .unwrap_or_else(|| panic!("{what}: no message names {name}:\n{}", r.stderr));
    assert!(
        message.contains(&format!("byte {offset}")),
        "{what}: the message should name byte {offset}: {message}"
    );
    let got = r.leg_ids();
    let full_ids = full.leg_ids();
    let mut ended_before = 0;
    for leg in full.legs() {
        let Some(end) = micros(&leg["ended_at"]) else {
            continue;
        };
        // ended_at is printed to the millisecond: leave a millisecond of doubt.
        if end + 1_000 < last_frame_us {
            let id = leg["leg_id"].as_str().unwrap();
            assert!(
                got.iter().any(|g| g == id),
                "{what}: leg {id} ended at {} before the cut but is missing; got {got:?}",
                leg["ended_at"]
            );
            ended_before += 1;
            // Once its BYE is settled (its 200, or the 4 s grace), nothing after can
            // change the record.
            if end + 5_000_000 < last_frame_us {
                let same = r.legs().into_iter().find(|l| l["leg_id"] == leg["leg_id"]);
                assert_eq!(
                    same.as_ref(),
                    Some(&leg),
                    "{what}: a leg settled long before the cut is reported as from the whole file"
                );
            }
        }
    }
    for id in &got {
        assert!(
            full_ids.contains(id),
            "{what}: leg {id} is not a leg of the whole file {full_ids:?}"
        );
    }
    ended_before
}

// ---------------------------------------------------------------------------------
// Truncated and corrupt captures

#[test]
fn capture_cut_mid_record_exits_1_and_keeps_the_legs_that_ended_before() {
    let dir = scratch("cut_mid_record");
    let full_path = lab(PARALLEL);
    let full = analyze_json(&[&full_path]);
    full.expect_code(0, "whole file");
    let legs = full.legs();
    assert_eq!(legs.len(), 2, "the story has two legs");
    let first_end = micros(&legs[0]["ended_at"]).expect("the first leg ends");
    let second_end = micros(&legs[1]["ended_at"]).expect("the second leg ends");
    assert!(first_end + 2_000_000 < second_end, "the legs end apart");

    // Cut in the middle of the first record a second after the first leg ended.
    let bytes = std::fs::read(&full_path).unwrap();
    let records = pcap_records(&bytes);
    let (k, rec) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r.at_us > first_end + 1_000_000)
        .map(|(k, r)| (k, *r))
        .unwrap();
    assert!(rec.at_us < second_end);
    let cut = rec.offset + 16 + rec.caplen / 2;
    let path = dir.join("cut.pcap");
    std::fs::write(&path, &bytes[..cut]).unwrap();

    let r = analyze_json(&[&path]);
    let n = check_cut(&path, rec.offset, records[k - 1].at_us, &full, "cut mid");
    assert_eq!(n, 1, "one leg ended before the cut");

    // The leg that ended before is reported whole, exactly as from the whole file; the
    // other is still open at the end of the input.
    let got = r.legs();
    assert_eq!(got.len(), 2, "{}", r.stdout);
    assert_eq!(
        got[0], legs[0],
        "the leg that ended before the cut is unchanged"
    );
    assert_eq!(got[1]["leg_id"], legs[1]["leg_id"]);
    assert_eq!(got[1]["ended_at"], Value::Null, "open at the cut");
    assert_eq!(got[1]["end_reason"], "capture_end");
    let (n, _) = summary(&r.stderr);
    assert_eq!(n, 2, "the summary counts what was reported");
}

#[test]
fn every_lab_capture_cut_anywhere_keeps_the_legs_that_ended_before_the_cut() {
    let dir = scratch("cut_sweep");
    let mut checked = 0;
    let mut legs_checked = 0;
    for path in lab_captures() {
        let full = analyze_json(&[&path]);
        full.expect_code(0, &path.display().to_string());
        let bytes = std::fs::read(&path).unwrap();
        let records = pcap_records(&bytes);
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        // Cut a little after each leg's end (its BYE or final response seen, what
        // follows not), and at a few places in between.
        let mut cuts: Vec<usize> = full
            .legs()
            .iter()
            .filter_map(|l| micros(&l["ended_at"]))
            .filter_map(|end| records.iter().position(|r| r.at_us > end + 1_000))
            .map(|k| k + 1)
            .chain([10usize, 35, 60, 85].map(|pct| records.len() * pct / 100))
            .filter(|&k| k >= 1 && k < records.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        for (i, k) in cuts.into_iter().enumerate() {
            let rec = records[k];
            let last = records[k - 1].at_us;
            // Inside the record's data, and inside its 16-byte header.
            for (j, cut) in [rec.offset + 16 + rec.caplen / 2, rec.offset + 7]
                .into_iter()
                .enumerate()
            {
                let cut_path = dir.join(format!("{stem}.{i}{j}.pcap"));
                std::fs::write(&cut_path, &bytes[..cut]).unwrap();
                let what = format!("{stem} cut at byte {cut} (record {k})");
                legs_checked += check_cut(&cut_path, rec.offset, last, &full, &what);
                checked += 1;
            }
        }
    }
    assert!(checked >= 100);
    assert!(
        legs_checked >= 40,
        "only {legs_checked} legs ended before a cut: cut later"
    );
}

#[test]
fn pcapng_cut_mid_block_exits_1_naming_the_block_offset() {
    let dir = scratch("pcapng_cut");
    let bytes = std::fs::read(lab(PARALLEL)).unwrap();
    let records = pcap_records(&bytes);
    let (ng, offsets) = to_pcapng(&bytes);
    let whole = dir.join("whole.pcapng");
    std::fs::write(&whole, &ng).unwrap();
    let full = analyze_json(&[&whole]);
    full.expect_code(0, "whole pcapng");
    assert_eq!(
        full.legs(),
        analyze_json(&[&lab(PARALLEL)]).legs(),
        "pcap and pcapng of the same frames give the same records"
    );

    let k = records.len() * 2 / 3;
    let cut_at = offsets[k] + 30;
    let path = dir.join("cut.pcapng");
    std::fs::write(&path, &ng[..cut_at]).unwrap();
    let n = check_cut(&path, offsets[k], records[k - 1].at_us, &full, "pcapng cut");
    assert_eq!(n, 1, "one leg ended before the cut");
}

#[test]
fn record_claiming_a_huge_length_is_corrupt_part_way_exit_1() {
    let dir = scratch("corrupt");
    let bytes = std::fs::read(lab(PARALLEL)).unwrap();
    let records = pcap_records(&bytes);
    let full = analyze_json(&[&lab(PARALLEL)]);
    let k = records.len() * 3 / 4;
    let mut bad = bytes.clone();
    let at = records[k].offset;
    // caplen and len of 2 GB: no pcap reader should believe it.
    bad[at + 8..at + 12].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    bad[at + 12..at + 16].copy_from_slice(&0x8000_0000u32.to_le_bytes());
    let path = dir.join("corrupt.pcap");
    std::fs::write(&path, &bad).unwrap();
    check_cut(
        &path,
        records[k].offset,
        records[k - 1].at_us,
        &full,
        "huge caplen",
    );
}

/// A copy of the Ethernet/IPv4/UDP headers of `frame` carrying `payload`, lengths and
/// IPv4 header checksum fixed up, so the payload reaches the SIP parser.
fn udp_frame_like(frame: &[u8], payload: &[u8]) -> Vec<u8> {
    assert_eq!(&frame[12..14], &[0x08, 0x00], "Ethernet + IPv4");
    let ihl = usize::from(frame[14] & 0x0f) * 4;
    let mut out = frame[..14 + ihl + 8].to_vec();
    out.extend_from_slice(payload);
    let ip_len = (ihl + 8 + payload.len()) as u16;
    out[16..18].copy_from_slice(&ip_len.to_be_bytes());
    out[24..26].copy_from_slice(&[0, 0]);
    let sum: u32 = out[14..14 + ihl]
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let csum = !(((folded & 0xffff) + (folded >> 16)) as u16);
    out[24..26].copy_from_slice(&csum.to_be_bytes());
    let udp = 14 + ihl;
    out[udp + 4..udp + 6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    out[udp + 6..udp + 8].copy_from_slice(&[0, 0]);
    out
}

#[test]
fn garbage_frames_inside_a_capture_are_counted_not_fatal() {
    let dir = scratch("garbage_frames");
    let bytes = std::fs::read(lab(LATE_ANSWER)).unwrap();
    let records = pcap_records(&bytes);
    // After every tenth record, records with the same timestamp and addresses holding
    // binary noise, a SIP start line followed by noise, a SIP message with a lying
    // Content-Length, and a two-byte runt.
    let mut out = bytes[..24].to_vec();
    let mut x: u32 = 7;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    };
    for (i, r) in records.iter().enumerate() {
        let frame = &bytes[r.offset + 16..r.offset + 16 + r.caplen];
        out.extend_from_slice(&bytes[r.offset..r.offset + 16]);
        out.extend_from_slice(frame);
        if i % 10 != 0 {
            continue;
        }
        let mut sip_noise = b"INVITE sip:8001@10.0.0.1 SIP/2.0\r\nCall-ID: ".to_vec();
        sip_noise.extend(noise(120));
        let liar = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\n\
Call-ID: zz\r\nCSeq: 1 INVITE\r\nContent-Length: 99999\r\n\r\nv=0\r\n"
            .to_vec();
        for f in [
            udp_frame_like(frame, &noise(200)),
            udp_frame_like(frame, &sip_noise),
            udp_frame_like(frame, &liar),
            vec![0xde, 0xad],
        ] {
            out.extend_from_slice(&bytes[r.offset..r.offset + 8]);
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&f);
        }
    }
    let path = dir.join("noisy.pcap");
    std::fs::write(&path, &out).unwrap();
    let clean = analyze_json(&[&lab(LATE_ANSWER)]);
    let noisy = analyze_json(&[&path]);
    noisy.expect_code(0, "malformed packets are not fatal");
    assert_eq!(noisy.legs(), clean.legs(), "noise changes no record");
    let line = noisy
        .stderr
        .lines()
        .find(|l| l.contains(" agent legs"))
        .unwrap();
    let errors = line.rsplit_once("errors: ").unwrap().1;
    assert_ne!(
        errors.trim(),
        "none",
        "malformed packets are counted: {line}"
    );
}

// ---------------------------------------------------------------------------------
// Files that are not captures

#[test]
fn files_that_are_not_captures_exit_2_naming_the_file() {
    let dir = scratch("not_captures");
    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "INVITE sip:8001@pbx SIP/2.0\r\nthis is not a capture\r\n",
    )
    .unwrap();
    let empty = dir.join("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    // A gzip member (RFC 1952 header, stored deflate block of "hi").
    let gz = dir.join("capture.pcap.gz");
    std::fs::write(
        &gz,
        [
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 0, 0xfd, 0xff, b'h', b'i', 0xac, 0x2a, 0x93,
            0xd8, 2, 0, 0, 0,
        ],
    )
    .unwrap();
    let folder = dir.join("a_folder.pcap");
    std::fs::create_dir_all(&folder).unwrap();
    for path in [&text, &empty, &gz, &folder] {
        let r = analyze_json(&[path]);
        let what = path.display().to_string();
        r.expect_code(2, &what);
        assert!(r.stdout.is_empty(), "{what}: no records: {}", r.stdout);
        let name = path.display().to_string();
        assert!(
            r.stderr.lines().any(|l| l.contains(&name)),
            "{what}: stderr should name the file:\n{}",
            r.stderr
        );
    }
    let r = analyze_json(&[&gz]);
    assert!(
        r.stderr.contains("gzip"),
        "a gzip file is recognised as such:\n{}",
        r.stderr
    );
    let r = analyze_json(&[&text]);
    assert!(r.stderr.contains("not a capture"), "{}", r.stderr);
}

#[test]
fn missing_file_exits_2_naming_it() {
    let dir = scratch("missing");
    let path = dir.join("no_such_capture.pcap");
    let r = analyze_json(&[&path]);
    r.expect_code(2, "missing file");
    assert!(
        r.stderr.contains(&path.display().to_string()),
        "{}",
        r.stderr
    );
}

#[test]
fn a_bad_file_among_good_ones_still_exits_2() {
    let dir = scratch("bad_among_good");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello\n").unwrap();
    let r = analyze_json(&[&lab(LATE_ANSWER), &text]);
    r.expect_code(2, "a file that is not a capture");
    assert!(r.stderr.contains(&text.display().to_string()));
}

#[test]
fn usage_errors_exit_2() {
    let r = run(callwatch().arg("analyze"));
    r.expect_code(2, "no capture given");
    let r = analyze(&["--format", "xml"], &[&lab(LATE_ANSWER)]);
    r.expect_code(2, "unknown format");
    let r = analyze(&["--no-such-flag"], &[&lab(LATE_ANSWER)]);
    r.expect_code(2, "unknown flag");
    let r = run(callwatch().arg("frobnicate"));
    r.expect_code(2, "unknown command");
}

// ---------------------------------------------------------------------------------
// Configuration

#[test]
fn unknown_config_key_exits_2_naming_it() {
    let dir = scratch("unknown_key");
    let cfg = dir.join("callwatch.toml");
    std::fs::write(&cfg, "[rules.late_answer]\nthreshold_msec = 5\n").unwrap();
    let r = analyze(
        &["--config", cfg.to_str().unwrap(), "--format", "json"],
        &[&lab(LATE_ANSWER)],
    );
    r.expect_code(2, "unknown key");
    assert!(r.stderr.contains("threshold_msec"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "nothing analysed: {}", r.stdout);

    let r = run(callwatch()
        .env("CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MSEC", "5")
        .args(["analyze", "--format", "json"])
        .arg(lab(LATE_ANSWER)));
    r.expect_code(2, "unknown key from the environment");
    assert!(r.stderr.contains("threshold_msec"), "{}", r.stderr);
}

#[test]
fn unknown_time_zone_exits_2_naming_time_zone() {
    let dir = scratch("bad_zone");
    let cfg = dir.join("callwatch.toml");
    std::fs::write(&cfg, "time.zone = \"Mars/Olympus\"\n").unwrap();
    let r = analyze(
        &["--config", cfg.to_str().unwrap(), "--format", "json"],
        &[&lab(LATE_ANSWER)],
    );
    r.expect_code(2, "bad zone");
    assert!(r.stderr.contains("time.zone"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
}

#[test]
fn missing_config_file_exits_2() {
    let dir = scratch("missing_config");
    let cfg = dir.join("nope.toml");
    let r = analyze(&["--config", cfg.to_str().unwrap()], &[&lab(LATE_ANSWER)]);
    r.expect_code(2, "missing config");
    assert!(r.stderr.contains("nope.toml"), "{}", r.stderr);
}

#[test]
fn environment_override_moves_the_late_answer_threshold() {
    let base = analyze_json(&[&lab(LATE_ANSWER)]);
    base.expect_code(0, "defaults");
    assert!(
        violations_by_rule(&base.legs()).contains_key("late_answer"),
        "13 s is late by default: {}",
        base.stdout
    );

    let r = run(callwatch()
        .env("CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MS", "20000")
        .args(["analyze", "--format", "json"])
        .arg(lab(LATE_ANSWER)));
    r.expect_code(0, "override");
    let legs = r.legs();
    assert_eq!(legs.len(), 1);
    assert!(
        !violations_by_rule(&legs).contains_key("late_answer"),
        "13 s is not late against 20 s: {}",
        r.stdout
    );
    assert_eq!(legs[0]["leg_id"], base.legs()[0]["leg_id"]);
}

#[test]
fn environment_override_wins_over_the_file() {
    let dir = scratch("env_over_file");
    let cfg = dir.join("callwatch.toml");
    std::fs::write(&cfg, "[rules.late_answer]\nthreshold_ms = 5000\n").unwrap();
    let r = run(callwatch()
        .env("CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MS", "20000")
        .args(["analyze", "--format", "json", "--config"])
        .arg(&cfg)
        .arg(lab(LATE_ANSWER)));
    r.expect_code(0, "override");
    assert!(!violations_by_rule(&r.legs()).contains_key("late_answer"));
}

#[test]
fn check_config_prints_the_effective_configuration_as_toml() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/callwatch.toml");
    let r = run(callwatch().arg("check-config").arg(&cfg));
    r.expect_code(0, "example config");
    let printed: toml::Table = toml::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("check-config output is not TOML ({e}):\n{}", r.stdout));
    let late = &printed["rules"]["late_answer"]["threshold_ms"];
    assert_eq!(late.as_integer(), Some(10_000), "{}", r.stdout);
    assert_eq!(
        printed["time"]["zone"].as_str(),
        Some("Asia/Shanghai"),
        "{}",
        r.stdout
    );

    let r = run(callwatch()
        .env("CALLWATCH__RULES__LATE_ANSWER__THRESHOLD_MS", "8000")
        .arg("check-config")
        .arg(&cfg));
    r.expect_code(0, "example config with an override");
    let printed: toml::Table = toml::from_str(&r.stdout).unwrap();
    assert_eq!(
        printed["rules"]["late_answer"]["threshold_ms"].as_integer(),
        Some(8000),
        "the effective value, not the file's"
    );
}

#[test]
fn check_config_output_reads_back_to_the_same_configuration() {
    let dir = scratch("check_config_round_trip");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let first = run(callwatch()
        .arg("check-config")
        .arg(src.join("callwatch.toml")));
    first.expect_code(0, "example");
    // The roster path is relative to the file: keep a copy beside the printed file.
    std::fs::copy(src.join("agents.csv"), dir.join("agents.csv")).unwrap();
    let printed = dir.join("printed.toml");
    std::fs::write(&printed, &first.stdout).unwrap();
    let second = run(callwatch().arg("check-config").arg(&printed));
    second.expect_code(0, "the printed configuration is itself valid");
    assert_eq!(first.stdout, second.stdout);
}

#[test]
fn check_config_refuses_a_bad_file_with_exit_2() {
    let dir = scratch("check_config_bad");
    for (name, text, key) in [
        (
            "unknown.toml",
            "[rules.late_answer]\nthreshold_msec = 5\n",
            "threshold_msec",
        ),
        ("zone.toml", "time.zone = \"Mars/Olympus\"\n", "time.zone"),
        ("syntax.toml", "[rules\nthreshold_ms = \n", "syntax.toml"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let r = run(callwatch().arg("check-config").arg(&path));
        r.expect_code(2, name);
        assert!(r.stdout.is_empty(), "{name}: nothing printed on stdout");
        assert!(r.stderr.contains(key), "{name}: names {key}: {}", r.stderr);
    }
    let r = run(callwatch().arg("check-config").arg(dir.join("absent.toml")));
    r.expect_code(2, "absent file");
}

// ---------------------------------------------------------------------------------
// Output formats

#[test]
fn json_lines_carry_every_contract_field_in_order() {
    let mut legs_seen = 0;
    for path in lab_captures() {
        let r = analyze_json(&[&path]);
        r.expect_code(0, &path.display().to_string());
        for line in r.stdout.lines() {
            let keys = top_level_keys(line);
            let contract: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| CONTRACT_FIELDS.contains(k))
                .collect();
            assert_eq!(
                contract,
                CONTRACT_FIELDS,
                "{}: fields missing or out of order in {line}",
                path.display()
            );
            let leg: Value = serde_json::from_str(line).unwrap();
            check_leg_types(&leg, "+08:00");
            legs_seen += 1;
        }
    }
    assert!(legs_seen >= 20, "the lab captures give legs");
}

/// Types and shapes of one record (SPEC §5).
fn check_leg_types(leg: &Value, offset: &str) {
    let ctx = || leg.to_string();
    let time = |v: &Value, nullable: bool| {
        if v.is_null() {
            assert!(nullable, "time must be set: {}", ctx());
            return;
        }
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("time {v} in {}", ctx()));
        // 2026-11-26T09:15:02.120+08:00
        assert_eq!(s.len(), 29, "RFC 3339 with milliseconds: {s}");
        assert_eq!(&s[19..20], ".", "milliseconds: {s}");
        assert!(s[20..23].bytes().all(|b| b.is_ascii_digit()), "{s}");
        assert!(s.ends_with(offset), "offset {offset}: {s}");
        micros(v);
    };
    let int = |v: &Value, nullable: bool| {
        assert!(
            v.is_u64() || (nullable && v.is_null()),
            "integer expected, got {v} in {}",
            ctx()
        );
    };
    let one_of = |v: &Value, allowed: &[&str], nullable: bool| {
        let ok = match v.as_str() {
            Some(s) => allowed.contains(&s),
            None => nullable && v.is_null(),
        };
        assert!(ok, "{v} not one of {allowed:?} in {}", ctx());
    };
    for f in ["leg_id", "call_id", "agent", "agent_id"] {
        assert!(leg[f].is_string(), "{f} in {}", ctx());
    }
    for f in ["linked_call_id", "agent_name", "team", "customer"] {
        assert!(leg[f].is_string() || leg[f].is_null(), "{f} in {}", ctx());
    }
    one_of(
        &leg["direction"],
        &["inbound", "outbound", "internal"],
        false,
    );
    time(&leg["invite_at"], false);
    for f in ["ring_start_at", "answered_at", "ended_at"] {
        time(&leg[f], true);
    }
    int(&leg["ring_ms"], true);
    one_of(
        &leg["outcome"],
        &["answered", "cancelled", "rejected", "failed"],
        true,
    );
    one_of(&leg["hangup_by"], &["agent", "customer", "none"], false);
    one_of(
        &leg["survey"],
        &["transferred", "failed", "missing", "not_required"],
        false,
    );
    assert!(leg["glare"].is_boolean(), "glare in {}", ctx());
    int(&leg["hold_ms"], false);
    for h in leg["holds"].as_array().expect("holds is a list") {
        time(&h["start_at"], false);
        int(&h["ms"], false);
        one_of(&h["by"], &["agent", "customer"], false);
    }
    for m in leg["media"].as_array().expect("media is a list") {
        let obj = m.as_object().expect("media entry is an object");
        for f in MEDIA_FIELDS {
            assert!(obj.contains_key(*f), "media field {f} in {}", ctx());
        }
        one_of(&m["from"], &["agent", "customer"], false);
        int(&m["packets"], false);
        assert!(m["expected"].is_i64() && m["lost"].is_i64(), "{}", ctx());
    }
    one_of(
        &leg["end_reason"],
        &[
            "bye",
            "cancel",
            "rejected",
            "timeout",
            "transfer",
            "capture_end",
        ],
        false,
    );
    for v in leg["violations"].as_array().expect("violations is a list") {
        assert!(
            v["rule"].is_string() && v["detail"].is_string(),
            "{}",
            ctx()
        );
        time(&v["at"], false);
    }
    if leg["end_reason"] == "capture_end" {
        assert!(
            leg["ended_at"].is_null(),
            "open legs have no end: {}",
            ctx()
        );
    }
}

#[test]
fn times_follow_the_configured_zone() {
    let r = run(callwatch()
        .env("CALLWATCH__TIME__ZONE", "UTC")
        .args(["analyze", "--format", "json"])
        .arg(lab(LATE_ANSWER)));
    r.expect_code(0, "UTC");
    let base = analyze_json(&[&lab(LATE_ANSWER)]);
    let (utc, cst) = (&r.legs()[0], &base.legs()[0]);
    check_leg_types(utc, "+00:00");
    assert_eq!(micros(&utc["invite_at"]), micros(&cst["invite_at"]));
    assert_ne!(utc["invite_at"], cst["invite_at"]);
}

#[test]
fn table_prints_a_header_and_one_row_per_leg() {
    let files = [lab(PARALLEL), lab(LATE_ANSWER), lab(REJECTS)];
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let json = analyze_json(&files);
    let table = analyze(&["--format", "table"], &files);
    table.expect_code(0, "table");
    let lines: Vec<&str> = table.stdout.lines().collect();
    let legs = json.legs();
    assert_eq!(
        lines.len(),
        legs.len() + 1,
        "a header and one row per leg:\n{}",
        table.stdout
    );
    let header = lines[0];
    for col in ["AGENT", "CUSTOMER", "OUTCOME", "VIOLATIONS"] {
        assert!(header.contains(col), "header has {col}: {header}");
    }
    for (row, leg) in lines[1..].iter().zip(&legs) {
        let invite = leg["invite_at"].as_str().unwrap();
        assert!(
            row.starts_with(&invite[..23]),
            "rows in the order of the records: {row} vs {invite}"
        );
        assert!(row.contains(leg["agent"].as_str().unwrap()), "{row}");
        if let Some(c) = leg["customer"].as_str() {
            assert!(row.contains(c), "masked customer {c} in {row}");
        }
        for v in leg["violations"].as_array().unwrap() {
            assert!(row.contains(v["rule"].as_str().unwrap()), "{row}");
        }
    }
    // The summary is the same whatever the format.
    assert_eq!(summary(&table.stderr), summary(&json.stderr));
}

#[test]
fn numbers_are_shown_only_with_show_numbers() {
    let masked = analyze_json(&[&lab(AGENT_HANGS_UP)]);
    masked.expect_code(0, "masked");
    assert_eq!(masked.legs()[0]["customer"], "138****5678");
    assert!(!masked.stdout.contains("13812345678"));
    assert!(!masked.stderr.contains("13812345678"));

    let shown = analyze(
        &["--format", "json", "--show-numbers"],
        &[&lab(AGENT_HANGS_UP)],
    );
    shown.expect_code(0, "shown");
    assert_eq!(shown.legs()[0]["customer"], "13812345678");
    let table = analyze(
        &["--format", "table", "--show-numbers"],
        &[&lab(AGENT_HANGS_UP)],
    );
    assert!(table.stdout.contains("13812345678"), "{}", table.stdout);
}

#[test]
fn no_full_number_leaves_without_show_numbers() {
    // Every number the lab captures hold, as --show-numbers prints them.
    let mut numbers = Vec::new();
    for path in lab_captures() {
        let r = analyze(&["--format", "json", "--show-numbers"], &[&path]);
        for leg in r.legs() {
            if let Some(c) = leg["customer"].as_str() {
                if c.len() >= 11 {
                    numbers.push(c.to_string());
                }
            }
        }
    }
    assert!(numbers.len() >= 10, "the lab holds customer numbers");
    for path in lab_captures() {
        for format in ["json", "table"] {
            let r = analyze(&["--format", format], &[&path]);
            for (stream, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
                let runs = digit_runs(text, 11);
                assert!(
                    runs.is_empty(),
                    "{} --format {format}: {stream} shows {runs:?}",
                    path.display()
                );
                for n in &numbers {
                    assert!(!text.contains(n.as_str()), "{stream} shows {n}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Several files

#[test]
fn several_files_give_the_union_of_their_legs_in_the_order_they_end() {
    let names = [PARALLEL, CALLER_CANCELS, REJECTS, AGENT_HANGS_UP];
    let paths: Vec<PathBuf> = names.iter().map(|n| lab(n)).collect();
    let mut union: Vec<(i64, String)> = Vec::new();
    for p in &paths {
        let r = analyze_json(&[p]);
        r.expect_code(0, &p.display().to_string());
        for leg in r.legs() {
            let end = micros(&leg["ended_at"]).expect("these stories' legs all end");
            union.push((end, leg["leg_id"].as_str().unwrap().to_string()));
        }
    }
    union.sort();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let merged = analyze_json(&refs);
    merged.expect_code(0, "merged");
    let expected: Vec<String> = union.into_iter().map(|(_, id)| id).collect();
    assert_eq!(
        merged.leg_ids(),
        expected,
        "union, in the order the legs end"
    );

    // Given in another order, the files give the same lines.
    let reversed: Vec<&Path> = refs.iter().rev().copied().collect();
    let again = analyze_json(&reversed);
    assert_eq!(again.leg_ids(), expected, "file order does not matter");
}

#[test]
fn merged_output_is_in_end_order_and_the_summary_counts_it() {
    let paths = lab_captures();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let r = analyze_json(&refs);
    r.expect_code(0, "all lab captures");
    let legs = r.legs();
    let ends: Vec<Option<i64>> = legs.iter().map(|l| micros(&l["ended_at"])).collect();
    // Legs that ended come in end order; legs still open at the end come last.
    let mut last = i64::MIN;
    let mut open_seen = false;
    for (leg, end) in legs.iter().zip(&ends) {
        match end {
            Some(t) => {
                assert!(!open_seen, "an ended leg after an open one: {leg}");
                assert!(*t >= last, "out of end order: {leg}");
                last = *t;
            }
            None => open_seen = true,
        }
    }
    let (n, by_rule) = summary(&r.stderr);
    assert_eq!(n as usize, legs.len(), "summary leg count");
    assert_eq!(by_rule, violations_by_rule(&legs), "summary counts by rule");
}

#[test]
fn summary_counts_legs_and_violations_by_rule() {
    for path in lab_captures() {
        let r = analyze_json(&[&path]);
        let legs = r.legs();
        let (n, by_rule) = summary(&r.stderr);
        assert_eq!(n as usize, legs.len(), "{}", path.display());
        assert_eq!(by_rule, violations_by_rule(&legs), "{}", path.display());
    }
}

#[test]
fn a_bye_without_response_does_not_reorder_the_output() {
    let dir = scratch("bye_without_response");
    let bytes = std::fs::read(lab(AGENT_HANGS_UP)).unwrap();
    // The same story with the 200 responses to the agent's BYE lost.
    let mut out = bytes[..24].to_vec();
    let mut dropped = 0;
    for r in pcap_records(&bytes) {
        let rec = &bytes[r.offset..r.offset + 16 + r.caplen];
        let text = String::from_utf8_lossy(&rec[16..]);
        let bye_response = text.contains("SIP/2.0 200")
            && text
                .split("CSeq:")
                .nth(1)
                .is_some_and(|c| c.lines().next().unwrap_or("").contains("BYE"));
        if bye_response {
            dropped += 1;
        } else {
            out.extend_from_slice(rec);
        }
    }
    assert!(dropped >= 1, "the story has a 200 to the BYE");
    let path = dir.join("bye_unanswered.pcap");
    std::fs::write(&path, &out).unwrap();
    // Legs of other stories that end within the 4 s after that BYE.
    let others = [
        lab("survey_transfer_failing_with_503_is_survey_missing.pcap"),
        lab("b2bua_agent_leg_is_linked_to_customer_leg.pcap"),
        lab("answered_in_4s_then_transferred_to_survey.pcap"),
    ];
    let mut files: Vec<&Path> = vec![&path];
    files.extend(others.iter().map(PathBuf::as_path));
    let r = analyze_json(&files);
    r.expect_code(0, "merged");
    let ends: Vec<Option<i64>> = r.legs().iter().map(|l| micros(&l["ended_at"])).collect();
    assert_eq!(ends.len(), 4);
    assert!(
        ends.windows(2).all(|w| w[0] <= w[1]),
        "legs out of end order:\n{}",
        r.stdout
    );
}
