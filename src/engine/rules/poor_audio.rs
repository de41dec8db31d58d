//! `poor_audio` (Art. 62, 88: speech must be clear): a stream of the leg whose estimated
//! MOS is below `rules.audio.min_mos` or whose loss is above `rules.audio.max_loss_pct`.
//! The detail names the stream's direction and the figures that triggered it.

use super::{RuleId, Violation};
use crate::engine::leg::MediaRecord;
use crate::time::CaptureTime;

pub fn check(
    streams: &[MediaRecord],
    min_mos: f64,
    max_loss_pct: f64,
    at: CaptureTime,
) -> Option<Violation> {
    let bad = streams
        .iter()
        .find(|m| m.mos.is_some_and(|x| x < min_mos) || m.loss_pct > max_loss_pct)?;
    let mos = bad.mos.map_or("-".to_string(), |m| format!("{m:.2}"));
    Some(Violation {
        rule: RuleId::PoorAudio,
        at,
        detail: format!(
            "{} audio: MOS {mos}, loss {:.1} %, jitter {:.1} ms",
            bad.from.as_str(),
            bad.loss_pct,
            bad.jitter_ms
        ),
    })
}
