//! Media figures agree with Wireshark 4.0's `tshark -q -z rtp,streams` (SPEC §3 "media").
//!
//! For every capture in `tests/data/media/` (written by `gen_media_pcaps.py` there), run
//! tshark, parse its stream table, run `RtpStreamStats` over the same file's RTP packets
//! and compare stream by stream: the same streams, packets, lost and expected exactly,
//! loss % as printed, delta and jitter within max(0.5 ms, 5 %). tshark missing or of
//! another version is a failure, not a skip: these numbers are a contract.
//!
//! The captures are read with callwatch's own reader and decoder (`sources::pcap_file`,
//! `wire::decode`), so the comparison covers the path `callwatch analyze` takes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use callwatch::engine::media::{PayloadMap, RtpStreamStats, StreamFigures};
use callwatch::sources::pcap_file::read_captures;
use callwatch::time::CaptureTime;
use callwatch::wire::decode::{DecodeLimits, Decoder};
use callwatch::wire::rtp::{self, Classified};
use callwatch::wire::Transport;

const SIP_PORT: u16 = 5060;

/// Stream identity, as tshark keys it: addresses, ports and SSRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct StreamKey {
    src: IpAddr,
    src_port: u16,
    dst: IpAddr,
    dst_port: u16,
    ssrc: u32,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{} ssrc {:#010x}",
            self.src, self.src_port, self.dst, self.dst_port, self.ssrc
        )
    }
}

/// One row of tshark's "RTP Streams" table.
#[derive(Debug)]
struct TsharkRow {
    key: StreamKey,
    payload: String,
    packets: u64,
    lost: i64,
    loss_pct: String,
    min_delta: f64,
    mean_delta: f64,
    max_delta: f64,
    min_jitter: f64,
    mean_jitter: f64,
    max_jitter: f64,
    problems: bool,
}

struct UdpDatagram {
    at: CaptureTime,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/media");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    files.sort();
    files
}

/// Every UDP datagram of a capture, read with callwatch's own capture reader and
/// decoder (the `analyze` path), in file order.
fn read_udp(path: &Path) -> Vec<UdpDatagram> {
    let mut decoder = Decoder::new(DecodeLimits::default());
    let mut out = Vec::new();
    let report = read_captures(
        &[path.to_path_buf()],
        &mut |frame| {
            decoder.decode(frame.link, frame.at, frame.data, &mut |d| {
                if d.transport == Transport::Udp {
                    out.push(UdpDatagram {
                        at: frame.at,
                        src: d.src,
                        dst: d.dst,
                        payload: d.payload.to_vec(),
                    });
                }
            });
        },
        &mut |_, _| {},
    );
    assert!(
        !out.is_empty(),
        "{}: no UDP datagram read: {report}",
        path.display()
    );
    out
}

/// `a=rtpmap:<pt> <name>/<rate>[/<channels>]` lines of the SIP bodies.
fn scan_rtpmap(sip: &[u8], map: &mut PayloadMap) {
    let text = String::from_utf8_lossy(sip);
    for line in text.lines() {
        let Some(rest) = line.trim_end().strip_prefix("a=rtpmap:") else {
            continue;
        };
        let mut it = rest.splitn(2, ' ');
        let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
            continue;
        };
        let mut parts = enc.split('/');
        let (Ok(pt), Some(name), Some(Ok(rate))) = (
            pt.parse::<u8>(),
            parts.next(),
            parts.next().map(str::parse::<u32>),
        ) else {
            continue;
        };
        map.insert_rtpmap(pt, name, rate);
    }
}

/// callwatch's figures for every RTP stream of a capture.
fn callwatch_streams(path: &Path) -> HashMap<StreamKey, StreamFigures> {
    let mut payloads = PayloadMap::new();
    let mut streams: HashMap<StreamKey, RtpStreamStats> = HashMap::new();
    for d in read_udp(path) {
        if d.src.port() == SIP_PORT || d.dst.port() == SIP_PORT {
            scan_rtpmap(&d.payload, &mut payloads);
            continue;
        }
        if rtp::classify(&d.payload) != Classified::Rtp {
            continue;
        }
        let Ok(hdr) = rtp::parse(&d.payload) else {
            continue;
        };
        let key = StreamKey {
            src: d.src.ip(),
            src_port: d.src.port(),
            dst: d.dst.ip(),
            dst_port: d.dst.port(),
            ssrc: hdr.ssrc,
        };
        streams
            .entry(key)
            .or_insert_with(|| RtpStreamStats::with_payloads(payloads))
            .on_packet(d.at, &hdr);
    }
    streams.into_iter().map(|(k, s)| (k, s.figures())).collect()
}

fn tshark_version() -> String {
    let out = Command::new("tshark")
        .arg("-v")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "tshark is required by this test and could not be run ({e}); \
             install Wireshark 4.0's tshark (Debian 12: apt-get install tshark)"
            )
        });
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().next().unwrap_or_default().to_string()
}

fn tshark_streams(path: &Path) -> Vec<TsharkRow> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-q", "-z", "rtp,streams", "-o", "rtp.heuristic_rtp:TRUE"])
        .output()
        .unwrap_or_else(|e| panic!("tshark could not be run: {e}"));
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<TsharkRow> = text.lines().filter_map(parse_row).collect();
    assert!(
        text.contains("RTP Streams"),
        "no stream table from tshark for {}:\n{text}",
        path.display()
    );
    rows
}

/// Parses one data row; the header, rulers and anything else give `None`.
/// Columns: start end src sport dst dport ssrc payload... pkts lost (pct%) 6 floats [X].
/// The payload column can hold spaces ("g711U, telephone-event"), so the row is read
/// from both ends around the "(pct%)" token.
fn parse_row(line: &str) -> Option<TsharkRow> {
    let t: Vec<&str> = line.split_whitespace().collect();
    let pct = t
        .iter()
        .position(|s| s.starts_with('(') && s.ends_with("%)"))?;
    if pct < 9 || t.len() < pct + 7 {
        return None;
    }
    let f = |i: usize| t[i].parse::<f64>().ok();
    let key = StreamKey {
        src: t[2].parse().ok()?,
        src_port: t[3].parse().ok()?,
        dst: t[4].parse().ok()?,
        dst_port: t[5].parse().ok()?,
        ssrc: u32::from_str_radix(t[6].strip_prefix("0x")?, 16).ok()?,
    };
    Some(TsharkRow {
        key,
        payload: t[7..pct - 2].join(" "),
        packets: t[pct - 2].parse().ok()?,
        lost: t[pct - 1].parse().ok()?,
        loss_pct: t[pct]
            .trim_start_matches('(')
            .trim_end_matches("%)")
            .to_string(),
        min_delta: f(pct + 1)?,
        mean_delta: f(pct + 2)?,
        max_delta: f(pct + 3)?,
        min_jitter: f(pct + 4)?,
        mean_jitter: f(pct + 5)?,
        max_jitter: f(pct + 6)?,
        problems: t.get(pct + 7) == Some(&"X"),
    })
}

/// Largest deviation seen per figure, for the summary.
#[derive(Default)]
struct Deviation {
    worst: Vec<(&'static str, f64, String)>,
}

impl Deviation {
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
        if dev > allowed || dev.is_nan() {
            failures.push(format!("{ctx}: {what} ours {ours:.3} tshark {theirs:.3}"));
        }
        match self.worst.iter_mut().find(|w| w.0 == what) {
            Some(w) if dev > w.1 => {
                w.1 = dev;
                w.2 = ctx.to_string();
            }
            Some(_) => {}
            None => self.worst.push((what, dev, ctx.to_string())),
        }
    }
}

#[test]
fn rtp_figures_agree_with_tshark_4_0_on_every_fixture() {
    let version = tshark_version();
    assert!(
        version.contains("4.0."),
        "these figures are pinned to Wireshark 4.0 (standards.md §6), found: {version}"
    );
    let files = fixtures();
    assert!(
        files.len() >= 9,
        "expected the generated fixtures in tests/data/media, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    let mut dev = Deviation::default();
    let mut compared = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let theirs = tshark_streams(file);
        let ours = callwatch_streams(file);
        assert!(!theirs.is_empty(), "{name}: tshark saw no RTP stream");
        let mut their_keys: Vec<_> = theirs.iter().map(|r| r.key).collect();
        let mut our_keys: Vec<_> = ours.keys().copied().collect();
        their_keys.sort();
        our_keys.sort();
        if their_keys != our_keys {
            failures.push(format!(
                "{name}: streams differ\n  tshark:    {their_keys:?}\n  callwatch: {our_keys:?}"
            ));
            continue;
        }
        for row in &theirs {
            let ctx = format!("{name} {} ({})", row.key, row.payload);
            let f = &ours[&row.key];
            compared += 1;
            if f.packets != row.packets {
                failures.push(format!(
                    "{ctx}: packets ours {} tshark {}",
                    f.packets, row.packets
                ));
            }
            if f.lost != row.lost {
                failures.push(format!("{ctx}: lost ours {} tshark {}", f.lost, row.lost));
            }
            // tshark does not print expected; it is Pkts + Lost by construction.
            let expected = row.packets as i64 + row.lost;
            if f.expected != expected {
                failures.push(format!(
                    "{ctx}: expected ours {} tshark {expected}",
                    f.expected
                ));
            }
            let pct = format!("{:.1}", f.loss_pct);
            if pct != row.loss_pct {
                failures.push(format!("{ctx}: loss % ours {pct} tshark {}", row.loss_pct));
            }
            if f.problems != row.problems {
                failures.push(format!(
                    "{ctx}: problems ours {} tshark {}",
                    f.problems, row.problems
                ));
            }
            // Wireshark prints -1 for a minimum never set.
            let min_delta = f.min_delta_ms.unwrap_or(-1.0);
            let min_jitter = f.min_jitter_ms.unwrap_or(-1.0);
            dev.check(&mut failures, "min delta", min_delta, row.min_delta, &ctx);
            dev.check(
                &mut failures,
                "mean delta",
                f.mean_delta_ms,
                row.mean_delta,
                &ctx,
            );
            dev.check(
                &mut failures,
                "max delta",
                f.max_delta_ms,
                row.max_delta,
                &ctx,
            );
            dev.check(
                &mut failures,
                "min jitter",
                min_jitter,
                row.min_jitter,
                &ctx,
            );
            dev.check(
                &mut failures,
                "mean jitter",
                f.mean_jitter_ms,
                row.mean_jitter,
                &ctx,
            );
            dev.check(
                &mut failures,
                "max jitter",
                f.max_jitter_ms,
                row.max_jitter,
                &ctx,
            );
        }
    }
    println!(
        "{version}: compared {compared} streams in {} captures",
        files.len()
    );
    for (what, d, ctx) in &dev.worst {
        println!("  max |{what} deviation| = {d:.4} ms ({ctx})");
    }
    assert!(
        failures.is_empty(),
        "disagreements with tshark:\n{}",
        failures.join("\n")
    );
}

#[test]
fn row_parser_reads_tshark_4_0_lines() {
    let line = "     0.100000      4.260673        10.0.5.1 40010        10.0.5.2 50010 \
                0xC0DE0001 g711U, telephone-event   209    -2 (-1.0%)          18.245          \
                20.003          21.830           0.000           1.136          11.220 X";
    let r = parse_row(line).expect("row");
    assert_eq!(r.key.src, IpAddr::V4(Ipv4Addr::new(10, 0, 5, 1)));
    assert_eq!(r.key.dst_port, 50010);
    assert_eq!(r.key.ssrc, 0xc0de_0001);
    assert_eq!(r.payload, "g711U, telephone-event");
    assert_eq!((r.packets, r.lost), (209, -2));
    assert_eq!(r.loss_pct, "-1.0");
    assert_eq!((r.min_delta, r.max_jitter), (18.245, 11.220));
    assert!(r.problems);
    assert!(parse_row("========================= RTP Streams ========================").is_none());
    assert!(
        parse_row("   Start time      End time     Src IP addr  Port    Dest IP addr").is_none()
    );
}
