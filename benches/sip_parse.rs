//! The SIP hot path of the engine: `wire::sip::SipMessage::parse` on one message, then
//! the getters the engine calls on every message (Call-ID, CSeq, From tag, To, top Via
//! branch, Contact, and the SDP body of offers and answers).
//!
//! Messages are what a switch and a desk phone exchange through a proxy: an INVITE with
//! SDP (two Vias, Record-Route, P-Asserted-Identity), a 180, a 200 with SDP and a BYE,
//! about 400 to 1,100 bytes each. Target: more than 1 M messages/s on one core over the
//! mix. Before criterion starts, a plain timed loop over two million messages prints the
//! rate (wall clock, and per second of the thread's CPU time, which other tenants of a
//! shared machine do not inflate) and the heap allocations the loop made (a counting
//! global allocator, `stats_alloc`); typical messages are expected to parse without
//! allocating. Run with `cargo bench --bench sip_parse`.

use std::alloc::System;
use std::hint::black_box;
use std::time::Instant;

use callwatch::wire::sip::SipMessage;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SDP_SWITCH: &str = "v=0\r\n\
o=FreeSWITCH 1795735595 1795735596 IN IP4 10.20.0.5\r\n\
s=FreeSWITCH\r\n\
c=IN IP4 10.20.0.5\r\n\
t=0 0\r\n\
m=audio 24012 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

const SDP_PHONE: &str = "v=0\r\n\
o=- 20518 0 IN IP4 10.30.1.21\r\n\
s=SDP data\r\n\
c=IN IP4 10.30.1.21\r\n\
t=0 0\r\n\
m=audio 11780 RTP/AVP 8 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn with_body(head: &str, body: &str) -> Vec<u8> {
    let mut m = head.to_string();
    if !body.is_empty() {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m.into_bytes()
}

/// The four messages of a typical inbound call leg as seen between proxy and phone.
fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let invite = with_body(
        "INVITE sip:8001@10.30.1.21:5060;transport=udp SIP/2.0\r\n\
Record-Route: <sip:10.20.0.2;lr;ftag=as6a1c82f3;did=1b2.0a51>\r\n\
Via: SIP/2.0/UDP 10.20.0.2;branch=z9hG4bK4b1c.86d2a4e2e1f0b8a55a6c3b2c97e5ec0f.0\r\n\
Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;branch=z9hG4bK6a1c82f3f1a0b\r\n\
Max-Forwards: 69\r\n\
From: \"13812345678\" <sip:13812345678@10.20.0.5>;tag=as6a1c82f3\r\n\
To: <sip:8001@10.20.0.2>\r\n\
Contact: <sip:13812345678@10.20.0.5:5060>\r\n\
Call-ID: 3f1e5c0a6b2d4e8f9a7b1c2d3e4f5a6b@10.20.0.5\r\n\
CSeq: 102 INVITE\r\n\
User-Agent: FreeSWITCH-mod_sofia/1.10.9\r\n\
P-Asserted-Identity: <sip:13812345678@10.20.0.5>\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, UPDATE, INFO\r\n\
Supported: replaces, timer\r\n\
X-Call-ID: 7c9e6679-7425-40de-944b-e07fc1f90ae7\r\n",
        SDP_SWITCH,
    );
    let ringing = with_body(
        "SIP/2.0 180 Ringing\r\n\
Via: SIP/2.0/UDP 10.20.0.2;branch=z9hG4bK4b1c.86d2a4e2e1f0b8a55a6c3b2c97e5ec0f.0\r\n\
Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;branch=z9hG4bK6a1c82f3f1a0b\r\n\
Record-Route: <sip:10.20.0.2;lr;ftag=as6a1c82f3;did=1b2.0a51>\r\n\
From: \"13812345678\" <sip:13812345678@10.20.0.5>;tag=as6a1c82f3\r\n\
To: <sip:8001@10.20.0.2>;tag=1928301774\r\n\
Call-ID: 3f1e5c0a6b2d4e8f9a7b1c2d3e4f5a6b@10.20.0.5\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:8001@10.30.1.21:5060>\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.20\r\n",
        "",
    );
    let ok = with_body(
        "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 10.20.0.2;branch=z9hG4bK4b1c.86d2a4e2e1f0b8a55a6c3b2c97e5ec0f.0\r\n\
Via: SIP/2.0/UDP 10.20.0.5:5060;rport=5060;branch=z9hG4bK6a1c82f3f1a0b\r\n\
Record-Route: <sip:10.20.0.2;lr;ftag=as6a1c82f3;did=1b2.0a51>\r\n\
From: \"13812345678\" <sip:13812345678@10.20.0.5>;tag=as6a1c82f3\r\n\
To: <sip:8001@10.20.0.2>;tag=1928301774\r\n\
Call-ID: 3f1e5c0a6b2d4e8f9a7b1c2d3e4f5a6b@10.20.0.5\r\n\
CSeq: 102 INVITE\r\n\
Contact: <sip:8001@10.30.1.21:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, UPDATE, INFO\r\n\
Supported: replaces, timer\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.20\r\n",
        SDP_PHONE,
    );
    let bye = with_body(
        "BYE sip:13812345678@10.20.0.5:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.30.1.21:5060;branch=z9hG4bK1392446585;rport\r\n\
Route: <sip:10.20.0.2;lr;ftag=as6a1c82f3;did=1b2.0a51>\r\n\
From: <sip:8001@10.20.0.2>;tag=1928301774\r\n\
To: \"13812345678\" <sip:13812345678@10.20.0.5>;tag=as6a1c82f3\r\n\
Call-ID: 3f1e5c0a6b2d4e8f9a7b1c2d3e4f5a6b@10.20.0.5\r\n\
CSeq: 2 BYE\r\n\
Max-Forwards: 70\r\n\
User-Agent: Yealink SIP-T46U 108.86.0.20\r\n",
        "",
    );
    vec![
        ("invite_sdp", invite),
        ("ringing_180", ringing),
        ("ok_200_sdp", ok),
        ("bye", bye),
    ]
}

/// Parse plus what the engine reads of every message; returns a value depending on all
/// of it so that nothing is optimised away.
#[inline(never)]
fn parse_and_read(bytes: &[u8]) -> usize {
    let Ok(m) = SipMessage::parse(bytes) else {
        return 0;
    };
    let mut acc = m.status().map_or(0, usize::from);
    acc += m.call_id().map_or(0, <[u8]>::len);
    acc += m.cseq().map_or(0, |c| c.seq as usize);
    acc += m.from().and_then(|f| f.tag().map(<[u8]>::len)).unwrap_or(0);
    acc += m.to().map_or(0, |t| {
        t.uri.user.map_or(0, <[u8]>::len) + t.tag().map_or(0, <[u8]>::len)
    });
    acc += m
        .top_via()
        .and_then(|v| v.branch.map(<[u8]>::len))
        .unwrap_or(0);
    acc += m.contact().map_or(0, |c| c.uri.user.map_or(0, <[u8]>::len));
    acc += m.sdp().map_or(0, <[u8]>::len);
    acc
}

/// CPU time of this thread in seconds (Linux `/proc/thread-self/stat`, 10 ms ticks):
/// on a shared machine the wall-clock rate depends on the other tenants, this does not.
fn thread_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = stat.rsplit_once(") ")?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn rate_and_allocations(msgs: &[(&str, Vec<u8>)]) {
    // The counter must see an allocation when there is one, or the check proves nothing.
    let probe = Region::new(GLOBAL);
    black_box(vec![0u8; 64]);
    assert!(
        probe.change().allocations >= 1,
        "the counting allocator is not installed"
    );
    for (name, bytes) in msgs {
        assert!(
            parse_and_read(bytes) > 0 && SipMessage::parse(bytes).is_ok(),
            "{name} does not parse"
        );
    }
    // `cargo test --all-targets` runs this binary without `--bench` (criterion's test
    // mode, unoptimised): a short loop there checks parsing and allocations only.
    let n: usize = if std::env::args().any(|a| a == "--bench") {
        2_000_000
    } else {
        10_000
    };
    let cpu_start = thread_cpu_secs();
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let mut sum = 0usize;
    for i in 0..n {
        sum = sum.wrapping_add(parse_and_read(black_box(&msgs[i % msgs.len()].1)));
    }
    let elapsed = start.elapsed();
    let stats = region.change();
    let cpu = match (cpu_start, thread_cpu_secs()) {
        (Some(a), Some(b)) if b > a => format!("{:.2} M/s on CPU time", n as f64 / (b - a) / 1e6),
        _ => "CPU time unavailable".to_string(),
    };
    black_box(sum);
    let bytes: usize = msgs.iter().map(|(_, b)| b.len()).sum();
    println!(
        "sip_parse: {n} messages (mix of {} kinds, {} bytes on average), {:.2} M messages/s \
         wall clock (one core; {cpu}), {:.0} MB/s, {} allocations, {} reallocations",
        msgs.len(),
        bytes / msgs.len(),
        n as f64 / elapsed.as_secs_f64() / 1e6,
        (n * bytes / msgs.len()) as f64 / elapsed.as_secs_f64() / 1e6,
        stats.allocations,
        stats.reallocations
    );
}

fn bench(c: &mut Criterion) {
    let msgs = messages();
    rate_and_allocations(&msgs);

    let mut group = c.benchmark_group("sip_parse");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in &msgs {
        group.bench_function(format!("parse_and_getters/{name}"), |b| {
            b.iter(|| parse_and_read(black_box(bytes)));
        });
    }
    // Where the time goes: framing alone, then framing plus validation of the
    // headers the engine relies on (what `parse` does).
    group.bench_function("parse_lenient_only/invite_sdp", |b| {
        b.iter(|| SipMessage::parse_lenient(black_box(&msgs[0].1)).map(|m| m.len()));
    });
    group.bench_function("parse_only/invite_sdp", |b| {
        b.iter(|| SipMessage::parse(black_box(&msgs[0].1)).map(|m| m.len()));
    });
    group.finish();

    let mut mix = c.benchmark_group("sip_parse_mix");
    mix.throughput(Throughput::Elements(msgs.len() as u64));
    mix.bench_function("invite_180_200_bye", |b| {
        b.iter(|| {
            msgs.iter()
                .map(|(_, m)| parse_and_read(black_box(m)))
                .sum::<usize>()
        });
    });
    mix.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
