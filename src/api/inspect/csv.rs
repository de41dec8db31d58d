//! CSV exports that open in Excel with Chinese text intact: UTF-8 with a byte-order mark
//! (Excel reads BOM-less CSV in the machine's ANSI code page), CRLF line ends, every
//! field quoted when it needs to be, and a leading `'` on fields Excel would run as a
//! formula (`=`, `+`, `-`, `@`). Headers are bilingual. Customer numbers are masked.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::view::{self, review_state};
use super::Scorecards;
use crate::engine::rules::RuleId;
use crate::report::mask_number;
use crate::store::query::StoredLeg;

const BOM: &str = "\u{feff}";

/// One CSV field.
pub fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn row(out: &mut String, fields: &[String]) {
    let line: Vec<String> = fields.iter().map(|f| field(f)).collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

/// The per-agent scorecards of a quarter.
pub fn scorecards(c: &Scorecards) -> String {
    let mut out = String::from(BOM);
    let mut head: Vec<String> = [
        "季度 quarter",
        "工号 agent_id",
        "姓名 name",
        "班组 team",
        "呼入 inbound",
        "接听 answered",
        "服务水平 service_level",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for r in RuleId::ALL {
        head.push(format!("确认 confirmed {}", r.as_str()));
        head.push(format!("扣分 points {}", r.as_str()));
    }
    head.extend(
        ["扣分合计 points_total", "已驳回 dismissed", "待审 pending"]
            .iter()
            .map(|s| s.to_string()),
    );
    row(&mut out, &head);
    for r in &c.rows {
        let mut f = vec![
            c.quarter.to_string(),
            r.agent_id.clone(),
            r.agent_name.clone().unwrap_or_default(),
            r.team.clone().unwrap_or_default(),
            r.inbound.to_string(),
            r.answered.to_string(),
            r.service_level()
                .map_or(String::new(), |x| format!("{:.1}%", x * 100.0)),
        ];
        for rule in RuleId::ALL {
            let (n, p) = r.confirmed.get(rule.as_str()).copied().unwrap_or_default();
            f.push(n.to_string());
            f.push(p.to_string());
        }
        f.push(r.points().to_string());
        f.push(r.dismissed.to_string());
        f.push(r.pending.to_string());
        row(&mut out, &f);
    }
    out
}

/// A list of flagged legs, one line per leg.
pub fn legs(zone: chrono_tz::Tz, legs: &[StoredLeg]) -> String {
    let mut out = String::from(BOM);
    row(
        &mut out,
        &[
            "呼叫时间 invite_at",
            "工号 agent_id",
            "分机 agent",
            "姓名 name",
            "班组 team",
            "方向 direction",
            "客户 customer",
            "振铃 ring_ms",
            "结果 outcome",
            "挂机方 hangup_by",
            "违规 rules",
            "审核 review",
            "理由 reasons",
            "leg_id",
        ]
        .map(String::from),
    );
    for l in legs {
        let r = &l.leg;
        let customer = r.customer.as_deref().map_or(String::new(), |c| {
            if r.customer_is_internal {
                c.to_string()
            } else {
                mask_number(c)
            }
        });
        let rules: Vec<&str> = r.violations.iter().map(|v| v.rule.as_str()).collect();
        let reasons: Vec<String> = l
            .reviews
            .iter()
            .filter(|x| !x.reason.is_empty())
            .map(|x| format!("{}: {} ({})", x.rule, x.reason, x.verdict))
            .collect();
        row(
            &mut out,
            &[
                view::time(zone, r.invite_at),
                r.agent_id.clone(),
                r.agent.clone(),
                r.agent_name.clone().unwrap_or_default(),
                r.team.clone().unwrap_or_default(),
                r.direction.clone(),
                customer,
                r.ring_ms.map_or(String::new(), |m| m.to_string()),
                r.outcome.clone().unwrap_or_default(),
                r.hangup_by.clone(),
                rules.join(" "),
                review_state(l).to_string(),
                crate::report::mask_digit_runs(&reasons.join("; ")),
                r.leg_id.clone(),
            ],
        );
    }
    out
}

/// A CSV download.
pub fn response(filename: &str, body: String) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("李娜"), "李娜");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(field("-1"), "'-1");
    }
}
