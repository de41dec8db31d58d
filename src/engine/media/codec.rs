//! Payload types: which codec an RTP payload type number means and at which clock rate
//! its timestamps run.
//!
//! Static assignments come from RFC 3551 §6 (table 4); dynamic ones (96-127) from the
//! SDP `a=rtpmap` lines of the leg, which the caller passes in as encoding name and
//! clock rate. A [`PayloadMap`] holds both for one stream and tells the statistics
//! ([`super::stats`]) the clock to use for each packet, with Wireshark 4.0's rules
//! (static table wins below 96; telephone-event has no usable clock). Fixed size, `Copy`,
//! no allocation.

/// The codecs callwatch knows by name. Anything else is [`CodecId::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodecId {
    Pcmu,
    Pcma,
    G722,
    G729,
    Gsm,
    G723,
    G728,
    /// Comfort noise (RFC 3389): PT 13, or the pre-RFC 3551 PT 19.
    ComfortNoise,
    /// DTMF and other named events (RFC 4733).
    TelephoneEvent,
    Opus,
    Amr,
    AmrWb,
    Ilbc,
    Speex,
    G726,
    /// A known payload type number or name callwatch has no special knowledge of.
    Other,
}

impl CodecId {
    /// Short lowercase name, as reported in the leg record.
    pub fn as_str(self) -> &'static str {
        match self {
            CodecId::Pcmu => "pcmu",
            CodecId::Pcma => "pcma",
            CodecId::G722 => "g722",
            CodecId::G729 => "g729",
            CodecId::Gsm => "gsm",
            CodecId::G723 => "g723",
            CodecId::G728 => "g728",
            CodecId::ComfortNoise => "cn",
            CodecId::TelephoneEvent => "telephone-event",
            CodecId::Opus => "opus",
            CodecId::Amr => "amr",
            CodecId::AmrWb => "amr-wb",
            CodecId::Ilbc => "ilbc",
            CodecId::Speex => "speex",
            CodecId::G726 => "g726",
            CodecId::Other => "other",
        }
    }

    /// Maps an SDP rtpmap encoding name (case-insensitive, RFC 4566 §6) to a codec.
    pub fn from_encoding_name(name: &str) -> CodecId {
        const NAMES: &[(&str, CodecId)] = &[
            ("PCMU", CodecId::Pcmu),
            ("PCMA", CodecId::Pcma),
            ("G722", CodecId::G722),
            ("G729", CodecId::G729),
            ("G729A", CodecId::G729),
            ("GSM", CodecId::Gsm),
            ("G723", CodecId::G723),
            ("G728", CodecId::G728),
            ("CN", CodecId::ComfortNoise),
            ("telephone-event", CodecId::TelephoneEvent),
            ("opus", CodecId::Opus),
            ("AMR", CodecId::Amr),
            ("AMR-WB", CodecId::AmrWb),
            ("iLBC", CodecId::Ilbc),
            ("speex", CodecId::Speex),
            ("G726-16", CodecId::G726),
            ("G726-24", CodecId::G726),
            ("G726-32", CodecId::G726),
            ("G726-40", CodecId::G726),
        ];
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(CodecId::Other, |&(_, c)| c)
    }

    /// True for the payloads that carry no audio samples at the stream's pace: comfort
    /// noise and named events. They count for loss but not as the stream's codec.
    pub fn is_auxiliary(self) -> bool {
        matches!(self, CodecId::ComfortNoise | CodecId::TelephoneEvent)
    }
}

/// What a payload type number stands for on one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadInfo {
    pub codec: CodecId,
    /// RTP clock rate in Hz (the timestamp unit), not the audio sampling rate: G.722 is
    /// 8000 (RFC 3551 §4.5.2), Opus always 48000 (RFC 7587 §4.1).
    pub clock_rate: u32,
}

/// Static payload types of RFC 3551 table 4 (audio and video), with their RTP clock.
/// The clock column equals Wireshark's `clock_map` in `ui/tap-rtp-analysis.c`.
pub fn static_payload(pt: u8) -> Option<PayloadInfo> {
    let (codec, clock_rate) = match pt {
        0 => (CodecId::Pcmu, 8000),
        3 => (CodecId::Gsm, 8000),
        4 => (CodecId::G723, 8000),
        8 => (CodecId::Pcma, 8000),
        9 => (CodecId::G722, 8000),
        13 | 19 => (CodecId::ComfortNoise, 8000),
        15 => (CodecId::G728, 8000),
        18 => (CodecId::G729, 8000),
        // 1016, G721, DVI4/8000, LPC, QCELP
        1 | 2 | 5 | 7 | 12 => (CodecId::Other, 8000),
        6 => (CodecId::Other, 16000),       // DVI4/16000
        10 | 11 => (CodecId::Other, 44100), // L16
        16 => (CodecId::Other, 11025),      // DVI4/11025
        17 => (CodecId::Other, 22050),      // DVI4/22050
        14 | 25 | 26 | 28 | 31 | 32 | 33 | 34 => (CodecId::Other, 90000), // MPA and video
        _ => return None,
    };
    Some(PayloadInfo { codec, clock_rate })
}

/// How many dynamic payload types one stream's map can hold. An SDP answer names a
/// handful (codec, telephone-event, maybe CN or a second codec); extra entries are
/// refused and counted by the caller rather than grown.
pub const MAX_DYNAMIC: usize = 8;

/// The payload types of one stream: the static table plus up to [`MAX_DYNAMIC`]
/// dynamic entries from SDP, and a fallback clock for dynamic types SDP did not name.
/// Kept as parallel arrays (52 bytes, not 104 with an array of padded entries): every
/// open leg and each of its streams holds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadMap {
    pts: [u8; MAX_DYNAMIC],
    codecs: [CodecId; MAX_DYNAMIC],
    clocks: [u32; MAX_DYNAMIC],
    len: u8,
    fallback_clock: u32,
}

impl Default for PayloadMap {
    fn default() -> Self {
        PayloadMap::new()
    }
}

impl PayloadMap {
    /// The static table only; unnamed dynamic types have no clock.
    pub const fn new() -> Self {
        PayloadMap {
            pts: [0; MAX_DYNAMIC],
            codecs: [CodecId::Other; MAX_DYNAMIC],
            clocks: [0; MAX_DYNAMIC],
            len: 0,
            fallback_clock: 0,
        }
    }

    /// A map where dynamic types without an rtpmap run at `clock_rate` (for a stream
    /// whose codec the caller knows but whose SDP was not seen).
    pub const fn with_fallback_clock(clock_rate: u32) -> Self {
        let mut m = PayloadMap::new();
        m.fallback_clock = clock_rate;
        m
    }

    /// Records `a=rtpmap:<pt> <encoding>/<clock_rate>`. Returns false when the entry
    /// was refused: a static type (below 96, where the static table is authoritative
    /// as in Wireshark), a number above 127, or a full map. A second rtpmap for the
    /// same number replaces the first (a re-INVITE may renumber).
    pub fn insert_rtpmap(&mut self, pt: u8, encoding: &str, clock_rate: u32) -> bool {
        if !(96..=127).contains(&pt) {
            return false;
        }
        let codec = CodecId::from_encoding_name(encoding);
        let len = usize::from(self.len);
        let at = match self.pts[..len].iter().position(|&p| p == pt) {
            Some(i) => i,
            None if len < MAX_DYNAMIC => {
                self.len += 1;
                len
            }
            None => return false,
        };
        self.pts[at] = pt;
        self.codecs[at] = codec;
        self.clocks[at] = clock_rate;
        true
    }

    /// What `pt` means on this stream, if known.
    pub fn resolve(&self, pt: u8) -> Option<PayloadInfo> {
        if pt < 96 {
            return static_payload(pt);
        }
        if let Some(i) = self.pts[..usize::from(self.len)]
            .iter()
            .position(|&p| p == pt)
        {
            return Some(PayloadInfo {
                codec: self.codecs[i],
                clock_rate: self.clocks[i],
            });
        }
        (self.fallback_clock != 0).then_some(PayloadInfo {
            codec: CodecId::Other,
            clock_rate: self.fallback_clock,
        })
    }

    /// The clock Wireshark 4.0's RTP analysis uses for a packet of type `pt`
    /// (`rtppacket_analyse`): the static table below 96, else the rtpmap clock; 0 (no
    /// jitter for this packet) for telephone-event, whose timestamp stays at the
    /// event start (RFC 4733 §2.2.1), and for unknown types. Clocks below 1000 Hz are
    /// also 0 here: Wireshark divides by `clock_rate / 1000` in integers, which is
    /// zero for them and would give an infinite jitter.
    pub fn analysis_clock(&self, pt: u8) -> u32 {
        match self.resolve(pt) {
            Some(info) if info.codec == CodecId::TelephoneEvent => 0,
            Some(info) if info.clock_rate >= 1000 => info.clock_rate,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_types_follow_rfc_3551() {
        let c = |pt| static_payload(pt).map(|i| (i.codec, i.clock_rate));
        assert_eq!(c(0), Some((CodecId::Pcmu, 8000)));
        assert_eq!(c(8), Some((CodecId::Pcma, 8000)));
        // G.722 samples at 16 kHz but its RTP clock is 8000 (RFC 3551 §4.5.2).
        assert_eq!(c(9), Some((CodecId::G722, 8000)));
        assert_eq!(c(18), Some((CodecId::G729, 8000)));
        assert_eq!(c(3), Some((CodecId::Gsm, 8000)));
        assert_eq!(c(4), Some((CodecId::G723, 8000)));
        assert_eq!(c(13), Some((CodecId::ComfortNoise, 8000)));
        assert_eq!(c(19), Some((CodecId::ComfortNoise, 8000)));
        assert_eq!(c(11), Some((CodecId::Other, 44100)));
        assert_eq!(c(34), Some((CodecId::Other, 90000)));
        assert_eq!(c(20), None);
        assert_eq!(c(96), None);
    }

    #[test]
    fn dynamic_types_come_from_rtpmap() {
        let mut m = PayloadMap::new();
        assert!(m.insert_rtpmap(101, "telephone-event", 8000));
        assert!(m.insert_rtpmap(111, "OPUS", 48000));
        assert_eq!(
            m.resolve(111),
            Some(PayloadInfo {
                codec: CodecId::Opus,
                clock_rate: 48000
            })
        );
        assert_eq!(
            m.resolve(101).map(|i| i.codec),
            Some(CodecId::TelephoneEvent)
        );
        assert_eq!(m.analysis_clock(111), 48000);
        // Events carry no clock for jitter purposes.
        assert_eq!(m.analysis_clock(101), 0);
        assert_eq!(m.analysis_clock(0), 8000);
        assert_eq!(m.resolve(100), None);
        assert_eq!(m.analysis_clock(100), 0);
    }

    #[test]
    fn static_table_wins_below_96_and_map_is_bounded() {
        let mut m = PayloadMap::new();
        assert!(!m.insert_rtpmap(0, "PCMU", 16000));
        assert!(!m.insert_rtpmap(128, "opus", 48000));
        assert_eq!(m.analysis_clock(0), 8000);
        for pt in 96..96 + MAX_DYNAMIC as u8 {
            assert!(m.insert_rtpmap(pt, "AMR-WB", 16000));
        }
        assert!(!m.insert_rtpmap(120, "opus", 48000));
        // Renumbering an existing entry still works when full.
        assert!(m.insert_rtpmap(96, "opus", 48000));
        assert_eq!(m.resolve(96).map(|i| i.codec), Some(CodecId::Opus));
        assert_eq!(m.resolve(97).map(|i| i.codec), Some(CodecId::AmrWb));
    }

    #[test]
    fn fallback_clock_covers_unnamed_dynamic_types() {
        let m = PayloadMap::with_fallback_clock(48000);
        assert_eq!(m.analysis_clock(111), 48000);
        assert_eq!(m.analysis_clock(8), 8000);
        // A tiny clock from a broken SDP never reaches the division.
        let mut t = PayloadMap::new();
        t.insert_rtpmap(98, "t140", 100);
        assert_eq!(t.analysis_clock(98), 0);
    }

    #[test]
    fn auxiliary_payloads_are_recognised() {
        assert!(CodecId::from_encoding_name("Telephone-Event").is_auxiliary());
        assert!(CodecId::from_encoding_name("cn").is_auxiliary());
        assert!(!CodecId::Pcma.is_auxiliary());
        assert_eq!(CodecId::from_encoding_name("VP8"), CodecId::Other);
    }
}
