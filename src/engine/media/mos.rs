//! Estimated MOS from a simplified ITU-T G.107 E-model.
//!
//! Input: a stream's codec constants ([`CodecImpairment`]), its loss % and jitter (from
//! [`super::stats`]); output: the R factor and the MOS (G.107 Annex B), used by the
//! `poor_audio` rule and shown next to the figures. A passive tap measures neither
//! mouth-to-ear delay nor jitter-buffer discards, so the delay is estimated
//! ([`DelayModel`]) and loss is the network loss only; `docs/media-quality.md` lists
//! the limits. Wireshark computes no MOS, so there is no tshark reference here: the
//! tests check hand-computed values instead.
//!
//! ```text
//! R      = 93.2 - Id - Ie,eff                        (G.107 defaults for Ro, Is; A = 0)
//! Id     = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)   (Cole & Rosenbluth 2001 fit)
//! Ie,eff = Ie + (95 - Ie) Ppl / (Ppl / BurstR + Bpl) (G.107 §7.2)
//! MOS    = 1 + 0.035 R + R (R - 60) (100 - R) 7e-6   (G.107 Annex B, 0 <= R <= 100)
//! ```

use super::codec::CodecId;

/// R with every G.107 parameter at its default except the impairments (Ro - Is).
pub const R_DEFAULT: f64 = 93.2;

/// E-model constants of one codec: equipment impairment `Ie` and packet-loss
/// robustness `Bpl` (ITU-T G.113 Appendix I, narrow-band scale), and the delay the
/// codec adds (packetisation at 20 ms per packet plus look-ahead).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CodecImpairment {
    pub ie: f64,
    pub bpl: f64,
    pub codec_delay_ms: f64,
    /// True when ITU-T gives no constants for this codec and these are assumed; the
    /// MOS is then labelled "codec constants assumed".
    pub assumed: bool,
}

impl CodecImpairment {
    /// G.711 with packet-loss concealment (G.711 Appendix I): Ie 0, Bpl 25.1.
    pub const G711_PLC: CodecImpairment = CodecImpairment {
        ie: 0.0,
        bpl: 25.1,
        codec_delay_ms: 20.0,
        assumed: false,
    };
    /// G.711 without concealment: Ie 0, Bpl 4.3 (harsher; what simple calculators use).
    pub const G711_NO_PLC: CodecImpairment = CodecImpairment {
        ie: 0.0,
        bpl: 4.3,
        codec_delay_ms: 20.0,
        assumed: false,
    };
    /// G.729A with VAD: Ie 11, Bpl 19.0; two 10 ms frames per packet + 5 ms look-ahead.
    pub const G729A: CodecImpairment = CodecImpairment {
        ie: 11.0,
        bpl: 19.0,
        codec_delay_ms: 25.0,
        assumed: false,
    };
    /// G.723.1 at 6.3 kbit/s with VAD: Ie 15, Bpl 16.1; one 30 ms frame + 7.5 ms.
    pub const G723_1: CodecImpairment = CodecImpairment {
        ie: 15.0,
        bpl: 16.1,
        codec_delay_ms: 37.5,
        assumed: false,
    };
    /// GSM-EFR: Ie 5, Bpl 10.0.
    pub const GSM_EFR: CodecImpairment = CodecImpairment {
        ie: 5.0,
        bpl: 10.0,
        codec_delay_ms: 20.0,
        assumed: false,
    };
    /// GSM full rate (RTP PT 3): Ie 20 from G.113; no Bpl there, EFR's 10 assumed.
    pub const GSM_FR: CodecImpairment = CodecImpairment {
        ie: 20.0,
        bpl: 10.0,
        codec_delay_ms: 20.0,
        assumed: true,
    };
    /// Codecs without narrow-band E-model constants (Opus, G.722, AMR-WB, unknown):
    /// treated as G.711 with PLC and flagged as assumed. Override per deployment.
    pub const ASSUMED: CodecImpairment = CodecImpairment {
        ie: 0.0,
        bpl: 25.1,
        codec_delay_ms: 20.0,
        assumed: true,
    };

    /// The default constants for a codec.
    pub fn for_codec(codec: CodecId) -> CodecImpairment {
        match codec {
            CodecId::Pcmu | CodecId::Pcma => Self::G711_PLC,
            CodecId::G729 => Self::G729A,
            CodecId::G723 => Self::G723_1,
            CodecId::Gsm => Self::GSM_FR,
            // AMR 12.2 kbit/s is GSM-EFR; other modes are worse: assumed.
            CodecId::Amr => CodecImpairment {
                assumed: true,
                ..Self::GSM_EFR
            },
            CodecId::Opus => CodecImpairment {
                codec_delay_ms: 26.5, // 20 ms frame + 6.5 ms look-ahead (RFC 6716 §2)
                ..Self::ASSUMED
            },
            _ => Self::ASSUMED,
        }
    }
}

impl Default for CodecImpairment {
    fn default() -> Self {
        Self::G711_PLC
    }
}

/// How the one-way mouth-to-ear delay is estimated, since a tap cannot measure it:
/// `codec delay + network + jitter buffer`, the buffer sized at `jitter_buffer_factor`
/// times the measured jitter but never below `min_jitter_buffer_ms`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DelayModel {
    /// One-way network transit, assumed (a LAN or a metro link to the PBX).
    pub network_ms: f64,
    pub jitter_buffer_factor: f64,
    pub min_jitter_buffer_ms: f64,
}

impl DelayModel {
    pub const LAN: DelayModel = DelayModel {
        network_ms: 20.0,
        jitter_buffer_factor: 2.0,
        min_jitter_buffer_ms: 20.0,
    };

    /// Estimated one-way delay in ms for a stream with this codec and jitter.
    pub fn one_way_delay_ms(&self, imp: &CodecImpairment, jitter_ms: f64) -> f64 {
        let buffer =
            (self.jitter_buffer_factor * non_negative(jitter_ms)).max(self.min_jitter_buffer_ms);
        imp.codec_delay_ms + self.network_ms + buffer
    }
}

impl Default for DelayModel {
    fn default() -> Self {
        Self::LAN
    }
}

/// Delay impairment `Id` for a one-way delay of `d_ms` (Cole & Rosenbluth's fit to
/// G.107: 0.024 per ms, plus 0.11 per ms beyond 177.3 ms).
pub fn delay_impairment(d_ms: f64) -> f64 {
    let d = non_negative(d_ms);
    let mut id = 0.024 * d;
    if d > 177.3 {
        id += 0.11 * (d - 177.3);
    }
    id
}

/// Effective equipment impairment `Ie,eff` (G.107 §7.2) at `loss_pct` percent packet
/// loss with burst ratio `burst_ratio` (1 = random loss).
pub fn effective_equipment_impairment(
    imp: &CodecImpairment,
    loss_pct: f64,
    burst_ratio: f64,
) -> f64 {
    let ppl = non_negative(loss_pct).min(100.0);
    let burst = if burst_ratio.is_finite() && burst_ratio >= 1.0 {
        burst_ratio
    } else {
        1.0
    };
    if ppl == 0.0 {
        return imp.ie;
    }
    imp.ie + (95.0 - imp.ie) * ppl / (ppl / burst + imp.bpl)
}

/// R factor with explicit delay model and burst ratio.
pub fn r_factor_with(
    imp: &CodecImpairment,
    delay: &DelayModel,
    loss_pct: f64,
    burst_ratio: f64,
    jitter_ms: f64,
) -> f64 {
    let id = delay_impairment(delay.one_way_delay_ms(imp, jitter_ms));
    R_DEFAULT - id - effective_equipment_impairment(imp, loss_pct, burst_ratio)
}

/// R factor for random loss of `loss_pct` percent and `jitter_ms` of jitter, with the
/// [`DelayModel::LAN`] delay estimate. Negative loss (duplicates) counts as none.
pub fn r_factor(imp: &CodecImpairment, loss_pct: f64, jitter_ms: f64) -> f64 {
    r_factor_with(imp, &DelayModel::LAN, loss_pct, 1.0, jitter_ms)
}

/// MOS (1.0 to 4.5) from R, ITU-T G.107 Annex B.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        1.0
    } else if r > 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
    }
}

/// Estimated MOS of a stream: [`r_factor`] then [`mos_from_r`].
pub fn estimate_mos(imp: &CodecImpairment, loss_pct: f64, jitter_ms: f64) -> f64 {
    mos_from_r(r_factor(imp, loss_pct, jitter_ms))
}

/// Loss and jitter figures from the wire are never negative for the model; NaN is none.
fn non_negative(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        0.0
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn r_to_mos_matches_g107_annex_b_check_values() {
        // 1 + 0.035*93.2 + 93.2*33.2*6.8*7e-6 = 1 + 3.262 + 0.147286 = 4.409
        assert!(close(mos_from_r(93.2), 4.409, 0.001));
        // 1 + 2.8 + 80*20*20*7e-6 = 4.024
        assert!(close(mos_from_r(80.0), 4.024, 1e-9));
        // 1 + 2.45 + 70*10*30*7e-6 = 3.597
        assert!(close(mos_from_r(70.0), 3.597, 1e-9));
        // 1 + 2.1 + 0 = 3.1
        assert!(close(mos_from_r(60.0), 3.1, 1e-9));
        // 1 + 1.75 + 50*(-10)*50*7e-6 = 2.575
        assert!(close(mos_from_r(50.0), 2.575, 1e-9));
        assert_eq!(mos_from_r(-3.0), 1.0);
        assert_eq!(mos_from_r(101.0), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
    }

    #[test]
    fn clean_g711_is_about_4_4() {
        // d = 20 codec + 20 network + max(20, 2*0) buffer = 60 ms; Id = 0.024*60 = 1.44
        // R = 93.2 - 1.44 - 0 = 91.76
        // MOS = 1 + 0.035*91.76 + 91.76*31.76*8.24*7e-6 = 1 + 3.2116 + 0.168097 = 4.379697
        let imp = CodecImpairment::G711_PLC;
        assert!(close(r_factor(&imp, 0.0, 0.0), 91.76, 1e-9));
        assert!(close(estimate_mos(&imp, 0.0, 0.0), 4.379697, 1e-6));
    }

    #[test]
    fn random_loss_on_g711_gives_known_r() {
        let imp = CodecImpairment::G711_PLC;
        // 1 %: Ie,eff = 95*1/(1 + 25.1) = 3.639847; R = 91.76 - 3.639847 = 88.120153
        assert!(close(r_factor(&imp, 1.0, 0.0), 88.120153, 1e-6));
        // 5 %: Ie,eff = 95*5/(5 + 25.1) = 15.780731; R = 75.979269
        // MOS = 1 + 2.659274 + 75.979269*15.979269*24.020731*7e-6 = 3.863418
        assert!(close(r_factor(&imp, 5.0, 0.0), 75.979269, 1e-6));
        assert!(close(estimate_mos(&imp, 5.0, 0.0), 3.863418, 1e-6));
        // Without PLC 5 % hurts far more: 95*5/(5 + 4.3) = 51.075269; R = 40.684731
        let harsh = CodecImpairment::G711_NO_PLC;
        assert!(close(r_factor(&harsh, 5.0, 0.0), 40.684731, 1e-6));
        // Duplicates can make loss negative: counts as no loss.
        assert_eq!(r_factor(&imp, -0.5, 0.0), r_factor(&imp, 0.0, 0.0));
    }

    #[test]
    fn g729_loss_and_codec_delay() {
        // d = 25 + 20 + 20 = 65 ms; Id = 1.56. 2 %: Ie,eff = 11 + 84*2/(2 + 19) = 19
        // R = 93.2 - 1.56 - 19 = 72.64
        let imp = CodecImpairment::for_codec(CodecId::G729);
        assert!(close(r_factor(&imp, 2.0, 0.0), 72.64, 1e-9));
    }

    #[test]
    fn jitter_enters_through_the_jitter_buffer_delay() {
        let imp = CodecImpairment::G711_PLC;
        // 30 ms jitter: buffer 60 ms, d = 20 + 20 + 60 = 100, Id = 2.4, R = 90.8
        assert!(close(r_factor(&imp, 0.0, 30.0), 90.8, 1e-9));
        // 100 ms jitter: buffer 200, d = 240; Id = 5.76 + 0.11*(240 - 177.3) = 12.657
        // R = 93.2 - 12.657 = 80.543
        assert!(close(r_factor(&imp, 0.0, 100.0), 80.543, 1e-9));
    }

    #[test]
    fn bursty_loss_hurts_more_than_random_loss() {
        let imp = CodecImpairment::G711_PLC;
        // BurstR 2 at 5 %: Ie,eff = 95*5/(2.5 + 25.1) = 17.210145; R = 74.549855
        let bursty = r_factor_with(&imp, &DelayModel::LAN, 5.0, 2.0, 0.0);
        assert!(close(bursty, 74.549855, 1e-6));
        assert!(bursty < r_factor(&imp, 5.0, 0.0));
    }

    #[test]
    fn total_loss_is_bad_and_never_nan() {
        let imp = CodecImpairment::G711_PLC;
        // 100 %: Ie,eff = 95*100/(100 + 25.1) = 75.939249; R = 15.820751 -> MOS ~1.2
        assert!(estimate_mos(&imp, 100.0, 0.0) < 1.5);
        assert!(estimate_mos(&imp, f64::NAN, f64::INFINITY) >= 1.0);
        assert!(!estimate_mos(&imp, 1e9, 1e9).is_nan());
    }

    #[test]
    fn codec_defaults_are_labelled() {
        assert!(!CodecImpairment::for_codec(CodecId::Pcma).assumed);
        assert!(CodecImpairment::for_codec(CodecId::Opus).assumed);
        assert!(CodecImpairment::for_codec(CodecId::G722).assumed);
        assert_eq!(CodecImpairment::default(), CodecImpairment::G711_PLC);
    }
}
