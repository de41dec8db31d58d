//! Today's and this quarter's figures of the wallboard (SPEC §6), per roster team: the
//! service level (through [`ServiceLevel`], the same logic as the Prometheus gauge),
//! inbound legs answered, violations per rule, the latest violations (the ticker) and
//! the agents who answered most calls today and this quarter (the "little bee" award,
//! Art. 104).
//!
//! Input is the engine's events, on the engine task, through [`Figures::on_event`]; the
//! wallboard hub renders [`Figures::json`] into `snapshot` and `stats` frames. A leg
//! counts in the day and the quarter of its `invite_at` in `time.zone`; a later day (from
//! a leg or from the clock, [`Figures::roll`]) starts new daily figures, a later quarter
//! new quarterly ones. Figures start at zero when the process starts (the store keeps
//! history). Every table is bounded: agents per period at [`MAX_AGENTS`], the ticker at
//! [`TICKER_LEN`].

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{Datelike, NaiveDate};
use serde_json::{json, Value};

use super::json::Obj;
use crate::engine::leg::{Direction, LegRecord};
use crate::engine::rules::{RuleId, Violation};
use crate::engine::Event;
use crate::report::Renderer;
use crate::sinks::local_date;
use crate::sinks::metrics::ServiceLevel;
use crate::time::CaptureTime;

/// Distinct agents counted per period; further agents are not ranked (counted in teams).
pub const MAX_AGENTS: usize = 5_000;
/// Violations kept for the ticker.
pub const TICKER_LEN: usize = 30;
/// Agents listed in each leaderboard.
pub const TOP_N: usize = 5;

/// The team of a leg as the figures group it (as the metrics do).
pub fn team_key(team: Option<&str>) -> String {
    team.unwrap_or("none").to_string()
}

#[derive(Clone, Debug, Default)]
struct TeamDay {
    answered: u64,
    rules: BTreeMap<RuleId, u64>,
}

#[derive(Clone, Debug)]
struct AgentCount {
    name: Option<String>,
    team: Option<String>,
    answered: u64,
}

/// One entry of the violation ticker.
#[derive(Clone, Debug)]
pub struct TickerItem {
    pub rule: RuleId,
    pub at: CaptureTime,
    pub detail: String,
    pub leg_id: String,
    pub agent: String,
    pub agent_id: String,
    pub name: Option<String>,
    pub team: Option<String>,
}

/// A ticker entry borrowed from a violation and its leg: the `violation` object of a
/// frame, written without copying the leg's strings first.
#[derive(Clone, Copy, Debug)]
pub struct TickerRef<'a> {
    pub rule: RuleId,
    pub at: CaptureTime,
    pub detail: &'a str,
    pub leg_id: &'a str,
    pub agent: &'a str,
    pub agent_id: &'a str,
    pub name: Option<&'a str>,
    pub team: Option<&'a str>,
}

impl<'a> TickerRef<'a> {
    pub fn new(v: &'a Violation, leg: &'a LegRecord) -> TickerRef<'a> {
        TickerRef {
            rule: v.rule,
            at: v.at,
            detail: &v.detail,
            leg_id: &leg.leg_id,
            agent: &leg.agent,
            agent_id: &leg.agent_id,
            name: leg.agent_name.as_deref(),
            team: leg.team.as_deref(),
        }
    }

    /// Keys in byte order, as the `serde_json::Value` it replaces had them.
    pub fn write_json(&self, out: &mut String, r: &Renderer) {
        let mut o = Obj::new(out);
        o.str("agent", self.agent);
        o.str("agent_id", self.agent_id);
        o.str("article", self.rule.article());
        o.time("at", r, self.at);
        o.str("detail", self.detail);
        o.str("leg_id", self.leg_id);
        o.opt_str("name", self.name);
        o.str("rule", self.rule.as_str());
        o.opt_str("team", self.team);
        o.end();
    }
}

impl TickerItem {
    pub fn new(v: &Violation, leg: &LegRecord) -> TickerItem {
        TickerItem {
            rule: v.rule,
            at: v.at,
            detail: v.detail.clone(),
            leg_id: leg.leg_id.clone(),
            agent: leg.agent.clone(),
            agent_id: leg.agent_id.clone(),
            name: leg.agent_name.clone(),
            team: leg.team.clone(),
        }
    }

    /// The `violation` object of a frame, a ticker entry.
    pub fn write_json(&self, out: &mut String, r: &Renderer) {
        TickerRef {
            rule: self.rule,
            at: self.at,
            detail: &self.detail,
            leg_id: &self.leg_id,
            agent: &self.agent,
            agent_id: &self.agent_id,
            name: self.name.as_deref(),
            team: self.team.as_deref(),
        }
        .write_json(out, r);
    }

    /// What the hub built before [`TickerItem::write_json`] (the tests' reference).
    #[cfg(test)]
    pub fn json(&self, r: &Renderer) -> Value {
        json!({
            "rule": self.rule.as_str(),
            "article": self.rule.article(),
            "at": r.time(self.at),
            "detail": self.detail,
            "leg_id": self.leg_id,
            "agent": self.agent,
            "agent_id": self.agent_id,
            "name": self.name,
            "team": self.team,
        })
    }
}

/// Calendar quarter of a date: (year, 1..=4).
fn quarter_of(d: NaiveDate) -> (i32, u32) {
    (d.year(), (d.month() - 1) / 3 + 1)
}

pub struct Figures {
    zone: chrono_tz::Tz,
    threshold_ms: u64,
    sl: ServiceLevel,
    day: Option<NaiveDate>,
    quarter: Option<(i32, u32)>,
    /// Teams always listed (the roster's), even with nothing today.
    roster_teams: Vec<String>,
    teams: BTreeMap<String, TeamDay>,
    agents_day: HashMap<String, AgentCount>,
    agents_quarter: HashMap<String, AgentCount>,
    ticker: VecDeque<TickerItem>,
}

impl Figures {
    pub fn new(zone: chrono_tz::Tz, threshold_ms: u64, roster_teams: Vec<String>) -> Figures {
        Figures {
            zone,
            threshold_ms,
            sl: ServiceLevel::new(zone, threshold_ms),
            day: None,
            quarter: None,
            roster_teams,
            teams: BTreeMap::new(),
            agents_day: HashMap::new(),
            agents_quarter: HashMap::new(),
            ticker: VecDeque::new(),
        }
    }

    fn date(&self, t: CaptureTime) -> Option<NaiveDate> {
        local_date(self.zone, t)
    }

    /// Moves forward to the day (and quarter) of `d`; true when anything was reset.
    fn advance(&mut self, d: NaiveDate) -> bool {
        let mut reset = false;
        if self.day.is_none_or(|cur| d > cur) {
            self.day = Some(d);
            reset |= !self.teams.is_empty() || !self.agents_day.is_empty();
            self.teams.clear();
            self.agents_day.clear();
        }
        let q = quarter_of(d);
        if self.quarter.is_none_or(|cur| q > cur) {
            self.quarter = Some(q);
            reset |= !self.agents_quarter.is_empty();
            self.agents_quarter.clear();
        }
        reset
    }

    /// Whether a leg invited at `t` counts today and this quarter (moving forward first
    /// when it is newer than the current day).
    fn periods(&mut self, t: CaptureTime) -> (bool, bool) {
        let Some(d) = self.date(t) else {
            return (false, false);
        };
        self.advance(d);
        (Some(d) == self.day, Some(quarter_of(d)) == self.quarter)
    }

    /// The clock says `now`: a new day or quarter starts new figures. True when changed.
    pub fn roll(&mut self, now: CaptureTime) -> bool {
        let sl = self.sl.roll(now);
        let ours = self.date(now).is_some_and(|d| self.advance(d));
        sl || ours
    }

    fn count_answer(map: &mut HashMap<String, AgentCount>, leg: &LegRecord) {
        if let Some(a) = map.get_mut(&leg.agent_id) {
            a.answered += 1;
            a.name.clone_from(&leg.agent_name);
            a.team.clone_from(&leg.team);
        } else if map.len() < MAX_AGENTS {
            map.insert(
                leg.agent_id.clone(),
                AgentCount {
                    name: leg.agent_name.clone(),
                    team: leg.team.clone(),
                    answered: 1,
                },
            );
        }
    }

    /// Takes one engine event; true when the figures changed.
    pub fn on_event(&mut self, ev: &Event) -> bool {
        match ev {
            Event::LegAnswered { leg, .. } => {
                let sl = self.sl.on_answered(leg);
                if leg.direction != Direction::Inbound {
                    return sl;
                }
                let (today, quarter) = self.periods(leg.invite_at);
                if today {
                    self.teams
                        .entry(team_key(leg.team.as_deref()))
                        .or_default()
                        .answered += 1;
                    Self::count_answer(&mut self.agents_day, leg);
                }
                if quarter {
                    Self::count_answer(&mut self.agents_quarter, leg);
                }
                sl || today || quarter
            }
            Event::LegEnded { leg, .. } if leg.answered_at.is_none() => {
                let changed = self.sl.on_unanswered(leg);
                self.periods(leg.invite_at);
                changed
            }
            Event::ViolationRaised { violation, leg, .. } => {
                let (today, _) = self.periods(leg.invite_at);
                if today {
                    *self
                        .teams
                        .entry(team_key(leg.team.as_deref()))
                        .or_default()
                        .rules
                        .entry(violation.rule)
                        .or_default() += 1;
                }
                self.ticker.push_front(TickerItem::new(violation, leg));
                self.ticker.truncate(TICKER_LEN);
                true
            }
            _ => false,
        }
    }

    /// The latest violations, newest first.
    pub fn ticker(&self) -> impl Iterator<Item = &TickerItem> {
        self.ticker.iter()
    }

    fn top(map: &HashMap<String, AgentCount>) -> Value {
        let mut v: Vec<(&String, &AgentCount)> = map.iter().collect();
        v.sort_by(|a, b| b.1.answered.cmp(&a.1.answered).then_with(|| a.0.cmp(b.0)));
        Value::Array(
            v.into_iter()
                .take(TOP_N)
                .map(|(id, a)| {
                    json!({"agent_id": id, "name": a.name, "team": a.team, "answered": a.answered})
                })
                .collect(),
        )
    }

    fn rules_json(rules: &BTreeMap<RuleId, u64>) -> Value {
        let mut m = serde_json::Map::new();
        for r in RuleId::ALL {
            m.insert(
                r.as_str().to_string(),
                json!(rules.get(r).copied().unwrap_or(0)),
            );
        }
        Value::Object(m)
    }

    fn sl_json(within: u64, total: u64) -> Value {
        json!({
            "within": within,
            "total": total,
            "ratio": if total == 0 { Value::Null } else { json!(within as f64 / total as f64) },
        })
    }

    /// Every figure, for `snapshot` and `stats` frames.
    pub fn json(&self) -> Value {
        let sl: HashMap<&str, (u64, u64)> = self.sl.counts().map(|(t, n, d)| (t, (n, d))).collect();
        let mut names: Vec<String> = self.roster_teams.clone();
        names.extend(self.teams.keys().cloned());
        names.extend(sl.keys().map(|t| t.to_string()));
        names.sort();
        names.dedup();
        let empty = TeamDay::default();
        let (mut within, mut total, mut answered) = (0u64, 0u64, 0u64);
        let mut all_rules: BTreeMap<RuleId, u64> = BTreeMap::new();
        let teams: Vec<Value> = names
            .iter()
            .map(|t| {
                let day = self.teams.get(t).unwrap_or(&empty);
                let (n, d) = sl.get(t.as_str()).copied().unwrap_or((0, 0));
                within += n;
                total += d;
                answered += day.answered;
                for (r, c) in &day.rules {
                    *all_rules.entry(*r).or_default() += c;
                }
                json!({
                    "team": t,
                    "service_level": Self::sl_json(n, d),
                    "answered": day.answered,
                    "violations": Self::rules_json(&day.rules),
                })
            })
            .collect();
        json!({
            "day": self.day.map(|d| d.format("%Y-%m-%d").to_string()),
            "quarter": self.quarter.map(|(y, q)| format!("{y}-Q{q}")),
            "threshold_ms": self.threshold_ms,
            "teams": teams,
            "total": {
                "service_level": Self::sl_json(within, total),
                "answered": answered,
                "violations": Self::rules_json(&all_rules),
            },
            "top_today": Self::top(&self.agents_day),
            "top_quarter": Self::top(&self.agents_quarter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::leg::Outcome;

    /// 2027-03-31 23:00 in Shanghai (15:00 UTC), the last hour of a quarter.
    const T0: i64 = 1_806_505_200;

    fn leg(call: &str, agent: &str, team: &str, at_s: i64, ring_ms: u64) -> LegRecord {
        let invite_at = CaptureTime::from_secs_micros(at_s, 0);
        LegRecord {
            agent_id: format!("A{agent}"),
            agent_name: Some(format!("N{agent}")),
            team: Some(team.into()),
            customer: Some("13812345678".into()),
            ring_start_at: Some(invite_at),
            answered_at: Some(invite_at.plus_millis(ring_ms)),
            ring_ms: Some(ring_ms),
            outcome: Some(Outcome::Answered),
            ..LegRecord::invited_for_tests(call, agent, invite_at)
        }
    }

    fn answered(l: LegRecord) -> Event {
        Event::LegAnswered {
            at: l.invite_at,
            leg: Box::new(l),
        }
    }

    #[test]
    fn counts_by_team_and_agent_and_rolls_day_and_quarter() {
        let mut f = Figures::new(
            chrono_tz::Asia::Shanghai,
            10_000,
            vec!["A".into(), "C".into()],
        );
        assert!(f.on_event(&answered(leg("c1", "8001", "A", T0, 3_000))));
        assert!(f.on_event(&answered(leg("c2", "8001", "A", T0 + 60, 12_000))));
        assert!(f.on_event(&answered(leg("c3", "8002", "B", T0 + 60, 1_000))));
        let late = leg("c2", "8001", "A", T0 + 60, 12_000);
        f.on_event(&Event::ViolationRaised {
            at: late.invite_at,
            violation: Violation {
                rule: RuleId::LateAnswer,
                at: late.invite_at.plus_millis(10_000),
                detail: "rang 12.0 s".into(),
            },
            leg: Box::new(late),
        });
        let j = f.json();
        assert_eq!(j["day"], "2027-03-31");
        assert_eq!(j["quarter"], "2027-Q1");
        let teams = j["teams"].as_array().unwrap();
        assert_eq!(
            teams
                .iter()
                .map(|t| t["team"].as_str().unwrap())
                .collect::<Vec<_>>(),
            vec!["A", "B", "C"],
            "roster teams are listed even when empty"
        );
        assert_eq!(teams[0]["service_level"]["within"], 1);
        assert_eq!(teams[0]["service_level"]["total"], 2);
        assert_eq!(teams[0]["violations"]["late_answer"], 1);
        assert_eq!(teams[2]["service_level"]["ratio"], Value::Null);
        assert_eq!(j["total"]["service_level"]["within"], 2);
        assert_eq!(j["total"]["service_level"]["total"], 3);
        assert_eq!(j["total"]["answered"], 3);
        assert_eq!(j["top_today"][0]["agent_id"], "A8001");
        assert_eq!(j["top_today"][0]["answered"], 2);
        assert_eq!(f.ticker().count(), 1);

        // Two hours later it is a new day and a new quarter in Shanghai.
        assert!(f.roll(CaptureTime::from_secs_micros(T0 + 7_200, 0)));
        let j = f.json();
        assert_eq!(j["day"], "2027-04-01");
        assert_eq!(j["quarter"], "2027-Q2");
        assert_eq!(j["total"]["answered"], 0);
        assert_eq!(j["top_quarter"], json!([]));
        // A leg of the old day arriving late counts in neither.
        f.on_event(&answered(leg("c4", "8003", "A", T0 + 120, 1_000)));
        assert_eq!(f.json()["total"]["answered"], 0);
        assert_eq!(f.json()["top_quarter"], json!([]));
    }

    #[test]
    fn a_new_day_in_the_same_quarter_keeps_the_quarter() {
        let mut f = Figures::new(chrono_tz::Asia::Shanghai, 10_000, vec![]);
        let monday = T0 - 20 * 86_400;
        f.on_event(&answered(leg("c1", "8001", "A", monday, 3_000)));
        f.on_event(&answered(leg("c2", "8002", "A", monday + 86_400, 3_000)));
        let j = f.json();
        assert_eq!(j["top_today"].as_array().unwrap().len(), 1);
        assert_eq!(j["top_quarter"].as_array().unwrap().len(), 2);
    }
}
