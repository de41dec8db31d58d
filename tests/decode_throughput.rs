//! Decode throughput on a large capture (ignored by default: it needs a big file).
//!
//! ```text
//! python3 /work/shared/tools/gen_sip_rtp_pcap.py /tmp/big.pcap 2000 500
//! CALLWATCH_BENCH_PCAP=/tmp/big.pcap \
//!     cargo test --release --test decode_throughput -- --ignored --nocapture
//! ```
//!
//! Prints frames per second for reading alone and for reading plus decoding, so the
//! decoder's own cost is the difference.

use std::path::PathBuf;
use std::time::Instant;

use callwatch::sources::pcap_file::read_captures;
use callwatch::wire::decode::{DecodeLimits, Decoder};

/// Runs `f` `n` times; the fastest run in seconds (the others pay for cold caches and
/// neighbours on a shared machine).
fn best_of(n: usize, mut f: impl FnMut()) -> f64 {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore = "needs CALLWATCH_BENCH_PCAP pointing at a large capture"]
fn decode_throughput() {
    let Some(path) = std::env::var_os("CALLWATCH_BENCH_PCAP") else {
        panic!("set CALLWATCH_BENCH_PCAP to a capture file");
    };
    let paths = vec![PathBuf::from(path)];
    let size = std::fs::metadata(&paths[0]).map(|m| m.len()).unwrap_or(0);
    let mb = size as f64 / 1e6;

    let mut frames = 0u64;
    let read_s = best_of(3, || {
        frames = 0;
        let report = read_captures(&paths, &mut |_| frames += 1, &mut |_, _| {});
        assert_eq!(report.exit_code(), 0, "{report}");
    });

    let mut emitted = 0u64;
    let mut errors = 0u64;
    let both_s = best_of(3, || {
        let mut d = Decoder::new(DecodeLimits::default());
        emitted = 0;
        read_captures(
            &paths,
            &mut |f| d.decode(f.link, f.at, f.data, &mut |_| emitted += 1),
            &mut |_, _| {},
        );
        errors = d.counters().total();
    });

    // The decoder alone, on frames already in memory.
    let mut sample = Vec::new();
    read_captures(
        &paths,
        &mut |f| {
            if sample.len() < 250_000 {
                sample.push((f.link, f.at, f.data.to_vec()));
            }
        },
        &mut |_, _| {},
    );
    let mut sink = 0usize;
    let decode_s = best_of(5, || {
        let mut d = Decoder::new(DecodeLimits::default());
        for (link, at, data) in &sample {
            d.decode(*link, *at, data, &mut |g| sink += g.payload.len());
        }
    });
    assert!(sink > 0);

    println!("file: {mb:.0} MB, {frames} frames; {emitted} datagrams emitted; {errors} errors");
    println!(
        "read only:     {read_s:.3} s  {:.2} Mframes/s  {:.0} MB/s",
        frames as f64 / read_s / 1e6,
        mb / read_s
    );
    println!(
        "read + decode: {both_s:.3} s  {:.2} Mframes/s  {:.0} MB/s",
        frames as f64 / both_s / 1e6,
        mb / both_s
    );
    println!(
        "decode only (in memory, {} frames): {:.1} ns/frame, {:.1} Mframes/s",
        sample.len(),
        decode_s / sample.len() as f64 * 1e9,
        sample.len() as f64 / decode_s / 1e6
    );
}
