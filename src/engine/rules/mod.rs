//! The service rules, one file per rule id (ids are stable: they appear in JSON, metrics,
//! the store and the scorecards). Each file decides when its rule becomes true for a leg;
//! the engine calls them at the moments the leg changes and at their deadlines.

pub mod agent_hangup_first;
pub mod late_answer;
pub mod long_hold;
pub mod one_way_audio;
pub mod personal_call;
pub mod poor_audio;
pub mod survey_missing;

use crate::time::CaptureTime;

/// A rule id of SPEC §3 and `context/service-rules.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RuleId {
    LateAnswer,
    AgentHangupFirst,
    SurveyMissing,
    LongHold,
    PoorAudio,
    OneWayAudio,
    PersonalCall,
}

impl RuleId {
    pub const ALL: &'static [RuleId] = &[
        RuleId::LateAnswer,
        RuleId::AgentHangupFirst,
        RuleId::SurveyMissing,
        RuleId::LongHold,
        RuleId::PoorAudio,
        RuleId::OneWayAudio,
        RuleId::PersonalCall,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::LateAnswer => "late_answer",
            RuleId::AgentHangupFirst => "agent_hangup_first",
            RuleId::SurveyMissing => "survey_missing",
            RuleId::LongHold => "long_hold",
            RuleId::PoorAudio => "poor_audio",
            RuleId::OneWayAudio => "one_way_audio",
            RuleId::PersonalCall => "personal_call",
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn from_str(s: &str) -> Option<RuleId> {
        RuleId::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// The article of the centre's rules (客服代表管理办法) the rule enforces.
    pub fn article(self) -> &'static str {
        match self {
            RuleId::LateAnswer => "Art. 60",
            RuleId::AgentHangupFirst => "Art. 74",
            RuleId::SurveyMissing => "Art. 76",
            RuleId::LongHold => "Art. 67",
            RuleId::PoorAudio | RuleId::OneWayAudio => "Art. 62, 88",
            RuleId::PersonalCall => "Art. 105.4",
        }
    }

    /// Points per confirmed breach when `scorecard.points` does not say (Art. 105.4
    /// names 2 points for personal calls; the other articles leave it to the centre).
    pub fn default_points(self) -> u32 {
        match self {
            RuleId::PersonalCall => 2,
            _ => 1,
        }
    }
}

/// A rule that became true for a leg: `at` is when it became true.
#[derive(Clone, Debug, PartialEq)]
pub struct Violation {
    pub rule: RuleId,
    pub at: CaptureTime,
    pub detail: String,
}

/// Renders milliseconds as seconds with one decimal, as the details read ("rang 13.0 s").
pub(crate) fn secs(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}
