//! Fuzz target for `wire::rtp` and `wire::rtcp`: classification, the RTP header view
//! feeding the per-stream statistics, and the RTCP compound walker with every report
//! block and XR block read.

#![no_main]

use callwatch::engine::media::RtpStreamStats;
use callwatch::time::CaptureTime;
use callwatch::wire::{rtcp, rtp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = rtp::classify(data);
    let mut stats = RtpStreamStats::new(8000);
    for (i, chunk) in data.chunks(16).enumerate() {
        if let Ok(h) = rtp::parse(chunk) {
            let _ = h.payload(chunk);
            stats.on_packet(CaptureTime::from_millis(i as i64 * 20), &h);
        }
    }
    let f = stats.figures();
    assert!(f.packets as usize <= data.len());
    for p in rtcp::walk(data) {
        match p {
            Ok(rtcp::RtcpPacket::SenderReport(sr)) => sr.reports.for_each(|b| {
                let _ = (b.fraction_lost_pct(), b.round_trip(0));
            }),
            Ok(rtcp::RtcpPacket::ReceiverReport(rr)) => rr.reports.for_each(drop),
            Ok(rtcp::RtcpPacket::ExtendedReport(xr)) => xr.blocks.for_each(drop),
            Ok(rtcp::RtcpPacket::Bye(b)) => b.ssrcs().for_each(drop),
            _ => {}
        }
    }
});
