//! Fuzz target for the engine: arbitrary bytes cut into packets (SIP-looking or not),
//! fed at advancing capture times with a small leg cap, then the deadlines and the end
//! of input. Nothing may panic and the leg table never exceeds its cap.

#![no_main]

use callwatch::config::Config;
use callwatch::engine::{Captured, Engine, EngineSettings, PayloadHint, SourceId};
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = Config::default().validate(None) else {
        return;
    };
    let mut settings = EngineSettings::from_config(&cfg);
    settings.max_legs = 4;
    let mut engine = Engine::new(settings);
    let addrs = [
        "10.0.0.1:5060",
        "10.0.1.1:5060",
        "10.0.1.1:30000",
        "10.0.0.9:40000",
    ];
    let mut t = 1_800_000_000_000i64;
    for (i, packet) in data.split(|&b| b == 0xfe).enumerate() {
        t += 700;
        let (src, dst) = (addrs[i % 4], addrs[(i + 1) % 4]);
        engine.handle_packet(&Captured {
            at: CaptureTime::from_millis(t),
            source: SourceId(0),
            src: src.parse().unwrap_or_else(|_| unreachable!()),
            dst: dst.parse().unwrap_or_else(|_| unreachable!()),
            transport: Transport::Udp,
            hint: if i % 3 == 0 {
                PayloadHint::Sip
            } else {
                PayloadHint::Unknown
            },
            payload: packet,
            correlation_id: None,
        });
        assert!(engine.legs_tracked() <= 4);
        while engine.poll_event().is_some() {}
    }
    engine.handle_timeout(SourceId(0), CaptureTime::from_millis(t + 20_000_000));
    engine.finish();
    while engine.poll_event().is_some() {}
});
