//! The engine's counters: what it saw, what it dropped and why. Adapters export them
//! (`callwatch_ingest_errors_total{kind}`, the analyze summary); the engine only counts.

use std::collections::BTreeMap;

use super::rules::RuleId;

#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    pub sip_packets: u64,
    pub sip_messages: u64,
    pub other_packets: u64,
    pub rtp_packets: u64,
    pub rtcp_packets: u64,
    /// RTP whose addresses match no leg's SDP: reported, never guessed into a leg.
    pub rtp_unmatched: u64,
    pub legs_created: u64,
    pub legs_answered: u64,
    pub legs_ended: u64,
    pub legs_dropped_table_full: u64,
    /// Malformed or unusable input by kind (`sip_bad_start_line`, `sip_missing_header`...).
    pub errors: BTreeMap<&'static str, u64>,
    pub violations: BTreeMap<&'static str, u64>,
}

impl EngineStats {
    pub fn count_error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    pub fn count_violation(&mut self, rule: RuleId) {
        *self.violations.entry(rule.as_str()).or_default() += 1;
    }
}
