//! The rows the store keeps, as plain owned values: what the store sink writes ahead to
//! its spool (serde JSON) and what the writer upserts. Built from the engine's
//! [`LegRecord`] at the edge; times stay capture microseconds (UTC) until an API
//! response renders them in `time.zone`.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::engine::leg::LegRecord;
use crate::report::Renderer;

/// One ended agent leg: the analyze fields (SPEC §5) with the customer unmasked (only the
/// API masks, per caller), plus what the store adds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegRow {
    pub leg_id: String,
    pub call_id: String,
    pub linked_call_id: Option<String>,
    pub agent: String,
    pub agent_id: String,
    pub agent_name: Option<String>,
    pub team: Option<String>,
    pub direction: String,
    pub customer: Option<String>,
    pub customer_is_internal: bool,
    pub invite_at: i64,
    pub ring_start_at: Option<i64>,
    pub answered_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub ring_ms: Option<i64>,
    pub outcome: Option<String>,
    pub hangup_by: String,
    pub survey: String,
    pub glare: bool,
    pub hold_ms: i64,
    pub end_reason: Option<String>,
    pub holds: Vec<HoldRow>,
    /// The `media` array of the analyze record; kept for flagged legs until the purge.
    pub media: Option<serde_json::Value>,
    pub violations: Vec<ViolationRow>,
    /// The capture node that wrote the row last.
    pub node: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRow {
    pub start_at: i64,
    pub end_at: Option<i64>,
    pub by: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationRow {
    pub rule: String,
    pub at: i64,
    pub detail: String,
}

/// One captured SIP message of a flagged leg.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipRow {
    pub at: i64,
    pub src: String,
    pub dst: String,
    pub transport: String,
    pub first_line: String,
    #[serde(with = "b64")]
    pub raw: Vec<u8>,
}

/// One unit of work for the writer: a leg, with its SIP messages when it is flagged
/// (`None` leaves any stored messages alone, `Some` replaces them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LegWrite {
    pub leg: LegRow,
    pub sip: Option<Vec<SipRow>>,
}

impl LegRow {
    /// The row of an ended leg; `node` names the capture node.
    pub fn from_record(rec: &LegRecord, node: &str) -> LegRow {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let flagged = !rec.violations.is_empty();
        let media = if flagged {
            // The zone does not matter: the media entries carry no times.
            let r = Renderer {
                zone: chrono_tz::UTC,
                show_numbers: false,
            };
            r.json(rec).get("media").cloned()
        } else {
            None
        };
        LegRow {
            leg_id: rec.leg_id.clone(),
            call_id: lossy(&rec.call_id),
            linked_call_id: rec.linked_call_id.as_deref().map(lossy),
            agent: rec.agent.clone(),
            agent_id: rec.agent_id.clone(),
            agent_name: rec.agent_name.clone(),
            team: rec.team.clone(),
            direction: rec.direction.as_str().into(),
            customer: rec.customer.clone(),
            customer_is_internal: rec.customer_is_internal,
            invite_at: rec.invite_at.0,
            ring_start_at: rec.ring_start_at.map(|t| t.0),
            answered_at: rec.answered_at.map(|t| t.0),
            ended_at: rec.ended_at.map(|t| t.0),
            ring_ms: rec.ring_ms.map(|m| m.min(i64::MAX as u64) as i64),
            outcome: rec.outcome.map(|o| o.as_str().into()),
            hangup_by: rec.hangup_by.as_str().into(),
            survey: rec.survey.as_str().into(),
            glare: rec.glare,
            hold_ms: rec.hold_ms.min(i64::MAX as u64) as i64,
            end_reason: rec.end_reason.map(|e| e.as_str().into()),
            holds: rec
                .holds
                .iter()
                .map(|h| HoldRow {
                    start_at: h.start_at.0,
                    end_at: h.end_at.or(rec.ended_at).map(|t| t.0),
                    by: h.by.as_str().into(),
                })
                .collect(),
            media,
            violations: rec
                .violations
                .iter()
                .map(|v| ViolationRow {
                    rule: v.rule.as_str().into(),
                    at: v.at.0,
                    detail: v.detail.clone(),
                })
                .collect(),
            node: node.into(),
        }
    }

    pub fn flagged(&self) -> bool {
        !self.violations.is_empty()
    }
}

/// Raw SIP bytes as base64 in the spool's JSON.
mod b64 {
    use super::*;

    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}
