//! Fuzz target for `wire::hep`: one packet as a datagram (v3 and v1/v2), and the TCP
//! re-framing loop over the same bytes as a stream.

#![no_main]

use callwatch::wire::hep::{frame_len, HepPacket};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = HepPacket::parse(data) {
        assert!(p.payload.len() <= data.len());
    }
    let mut rest = data;
    while let Ok(Some(n)) = frame_len(rest) {
        assert!(n >= 6 && n <= rest.len());
        let _ = HepPacket::parse(&rest[..n]);
        rest = &rest[n..];
    }
});
