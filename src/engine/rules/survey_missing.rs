//! `survey_missing` (Art. 76): an answered inbound leg that the agent ended with the
//! survey transfer `missing` or `failed`. Legs that talked less than
//! `rules.survey.min_talk_ms` are exempt.

use super::{secs, RuleId, Violation};
use crate::engine::leg::Survey;
use crate::time::CaptureTime;

pub fn check(
    inbound: bool,
    answered: bool,
    agent_ended: bool,
    survey: Survey,
    talk_ms: u64,
    min_talk_ms: u64,
    bye_at: CaptureTime,
) -> Option<Violation> {
    if !(inbound && answered && agent_ended) || talk_ms < min_talk_ms {
        return None;
    }
    let detail = match survey {
        Survey::Missing => format!(
            "agent left after {} without a survey transfer",
            secs(talk_ms)
        ),
        Survey::Failed => "the survey transfer failed and the agent left".to_string(),
        Survey::Transferred | Survey::NotRequired => return None,
    };
    Some(Violation {
        rule: RuleId::SurveyMissing,
        at: bye_at,
        detail,
    })
}
