//! The per-packet RTP path: classify, parse the header, update the stream statistics.
//!
//! Target: at least 5 M packets/s on one core, and zero heap allocations per packet.
//! The allocation count comes from a counting global allocator (`stats_alloc`, which
//! wraps the system allocator) over one million packets before criterion starts; the
//! bench panics if any packet allocated. Run with `cargo bench --bench rtp_path`.

use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

use callwatch::engine::media::{PayloadMap, RtpStreamStats};
use callwatch::time::CaptureTime;
use callwatch::wire::rtp::{self, Classified};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Concurrent streams in the synthetic load (a busy floor: 100 calls, both ways).
const STREAMS: usize = 200;
/// Packets per pass: 50 per stream, i.e. one second of 20 ms audio for every stream.
const PACKETS: usize = STREAMS * 50;

/// One captured datagram: capture time and UDP payload (12-byte header + 160 PCMU).
struct Datagram {
    at: CaptureTime,
    bytes: [u8; 172],
}

/// A second of traffic: every stream sends one packet per 20 ms, with a little jitter,
/// a lost packet now and then and telephone-event packets on some streams.
fn traffic() -> Vec<Datagram> {
    let mut out = Vec::with_capacity(PACKETS);
    let mut x: u32 = 12345;
    for i in 0..PACKETS / STREAMS {
        for s in 0..STREAMS {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let jitter = i64::from(x >> 22); // 0..1023 µs
            let at =
                CaptureTime(1_700_000_000_000_000 + (i as i64) * 20_000 + s as i64 * 50 + jitter);
            let seq = (s as u16).wrapping_mul(1000).wrapping_add(i as u16);
            let ts = (i as u32) * 160;
            let pt = if s % 10 == 0 && (20..25).contains(&i) {
                101
            } else {
                0
            };
            let mut bytes = [0xffu8; 172];
            bytes[0] = 0x80;
            bytes[1] = pt | if i == 0 { 0x80 } else { 0 };
            bytes[2..4].copy_from_slice(&seq.to_be_bytes());
            bytes[4..8].copy_from_slice(&ts.to_be_bytes());
            bytes[8..12].copy_from_slice(&(0x1000_0000 + s as u32).to_be_bytes());
            out.push(Datagram { at, bytes });
        }
    }
    out
}

fn new_streams() -> Vec<RtpStreamStats> {
    let mut map = PayloadMap::new();
    map.insert_rtpmap(101, "telephone-event", 8000);
    vec![RtpStreamStats::with_payloads(map); STREAMS]
}

/// The measured path. The stream lookup is an index from the SSRC here; the engine's
/// keyed table is measured with the engine.
#[inline(never)]
fn run_pass(packets: &[Datagram], streams: &mut [RtpStreamStats]) -> u64 {
    let mut n = 0;
    for d in packets {
        if rtp::classify(&d.bytes) != Classified::Rtp {
            continue;
        }
        let Ok(hdr) = rtp::parse(&d.bytes) else {
            continue;
        };
        let slot = (hdr.ssrc as usize) % STREAMS;
        streams[slot].on_packet(d.at, &hdr);
        n += 1;
    }
    n
}

fn allocation_check_and_rate(packets: &[Datagram]) {
    // The counter must see an allocation when there is one, or the check proves nothing.
    let probe = Region::new(GLOBAL);
    black_box(vec![0u8; 64]);
    assert!(
        probe.change().allocations >= 1,
        "the counting allocator is not installed"
    );

    let mut streams = new_streams();
    let passes = 1_000_000 / PACKETS;
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let mut handled = 0;
    for _ in 0..passes {
        handled += run_pass(black_box(packets), black_box(&mut streams));
    }
    let elapsed = start.elapsed();
    let stats = region.change();
    assert_eq!(
        stats.allocations + stats.reallocations,
        0,
        "the RTP path allocated: {stats:?}"
    );
    let rate = handled as f64 / elapsed.as_secs_f64();
    println!(
        "rtp_path: {handled} packets, {} allocations, {} reallocations, {:.1} M packets/s (one core)",
        stats.allocations,
        stats.reallocations,
        rate / 1e6
    );
    black_box(streams[0].figures());
}

fn bench(c: &mut Criterion) {
    let packets = traffic();
    allocation_check_and_rate(&packets);
    let mut group = c.benchmark_group("rtp_path");
    group.throughput(Throughput::Elements(PACKETS as u64));
    group.bench_function("classify_parse_stats", |b| {
        let mut streams = new_streams();
        b.iter(|| run_pass(black_box(&packets), &mut streams));
    });
    group.bench_function("parse_only", |b| {
        b.iter(|| {
            let mut sum = 0u32;
            for d in black_box(&packets) {
                if let Ok(h) = rtp::parse(&d.bytes) {
                    sum = sum.wrapping_add(u32::from(h.sequence));
                }
            }
            sum
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
