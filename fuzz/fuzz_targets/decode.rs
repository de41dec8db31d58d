//! Fuzz target for `wire::decode`: the first byte picks a link type, the rest is a
//! frame, fed several times with advancing capture times so that the IPv4/IPv6
//! defragmentation pools and the SIP-over-TCP reassembly keep state between frames.
//! Any panic, overflow or cap overrun surfaces.

#![no_main]

use callwatch::time::CaptureTime;
use callwatch::wire::decode::{DecodeLimits, Decoder, LinkType};
use libfuzzer_sys::fuzz_target;

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let link = LINKS[usize::from(pick) % LINKS.len()];
    let mut d = Decoder::new(DecodeLimits {
        max_fragment_bytes: 64 * 1024,
        max_fragment_datagrams: 8,
        max_tcp_streams: 8,
        max_tcp_stream_bytes: 16 * 1024,
        ..DecodeLimits::default()
    });
    // The input as one frame, then cut in pieces fed as consecutive frames.
    for (i, chunk) in std::iter::once(rest).chain(rest.chunks(97)).enumerate() {
        let at = CaptureTime::from_millis(1_000 + i as i64 * 10);
        d.decode(link, at, chunk, &mut |dg| {
            assert!(dg.payload.len() <= 1 << 20);
        });
    }
});
