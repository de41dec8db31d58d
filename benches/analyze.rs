//! The whole `callwatch analyze` pipeline in one process, as `analyze::run` drives it:
//! pcap reading with the k-way time merge, link/IP/UDP/TCP decoding, SIP parsing, the
//! engine (legs, copies, rules, RTP statistics) and rendering the JSON lines into a
//! sink. Input: every lab capture of `tests/data/lab/` merged (about 4,500 frames, the
//! SIPp/Kamailio stories). Reports frames per second; the large-capture figure against
//! tshark comes from `scripts/bench_analyze.sh`. Run with `cargo bench --bench analyze`.

use std::hint::black_box;
use std::path::{Path, PathBuf};

use callwatch::analyze::{self, Format, Options};
use callwatch::config::Config;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn lab_captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lab");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    out.sort();
    out
}

/// Frames in the captures, from the summary line `analyze` writes on stderr.
fn frames_of(summary: &[u8]) -> u64 {
    // "callwatch: 25 agent legs; violations: ...; 4539 frames, 447 SIP messages; ..."
    let text = String::from_utf8_lossy(summary);
    text.split(';')
        .find_map(|part| {
            part.trim()
                .split_once(" frames")
                .and_then(|(n, _)| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no frame count in the summary: {text}"))
}

fn bench(c: &mut Criterion) {
    let cfg = Config::load_validated(None).expect("embedded defaults");
    let opts = Options {
        files: lab_captures(),
        format: Format::Json,
        show_numbers: false,
        progress: false,
    };
    let mut err = Vec::new();
    let outcome = analyze::run(&cfg, &opts, &mut std::io::sink(), &mut err).expect("analyze");
    assert_eq!(outcome.exit_code, 0, "{}", String::from_utf8_lossy(&err));
    let frames = frames_of(&err);

    let mut group = c.benchmark_group("analyze");
    group.throughput(Throughput::Elements(frames));
    group.bench_function("lab_captures_merged_json", |b| {
        b.iter(|| {
            let mut err = Vec::new();
            let o = analyze::run(&cfg, black_box(&opts), &mut std::io::sink(), &mut err)
                .expect("analyze");
            black_box(o.legs)
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
