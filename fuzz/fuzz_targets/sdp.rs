//! Fuzz target for `wire::sdp`: parses arbitrary bytes as SDP and calls every accessor.

#![no_main]

use callwatch::wire::sdp::Sdp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Sdp::parse(data) {
        let _ = s.audio();
        for m in &s.media {
            let _ = (
                m.effective_direction(&s),
                m.effective_connection(&s),
                m.is_hold(&s),
            );
            for r in &m.rtpmap {
                let _ = m.rtpmap_for(r.payload_type);
            }
        }
    }
});
