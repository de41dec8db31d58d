//! The live floor as the wallboard shows it: every ringing and active leg (the latest
//! record the engine reported), and each agent's state derived from those legs and the
//! phone's registration (SPEC §6 `agent.state`):
//!
//! - `talking`: an answered leg is open and not on hold by the agent;
//! - `held`: every answered open leg is on hold by the agent (Art. 67);
//! - `ringing`: no answered leg, a leg is ringing;
//! - otherwise from the registration (Art. 46, 88): `idle` when registered, `offline`
//!   when unregistered or expired, `unknown` when no REGISTER was seen since start.
//!
//! Agents are keyed by extension (a seat's phone) and listed from the roster at start
//! (extensions of `agents.extensions` that the roster names), then as seen. Input is
//! the engine's events, on the engine task; output is the set of agents whose state
//! changed, and JSON views for the hub. Both tables are bounded ([`MAX_LEGS`],
//! [`MAX_AGENTS`]), and every event costs O(log n) whatever the number of open legs:
//! each agent keeps a tally of its open legs by kind instead of a list to rescan (a flood
//! of INVITEs to one extension must not make each event slower than the last), and the
//! oldest leg is found through an index by INVITE time.
//!
//! An open leg is kept as a [`LegView`] (the fields the wallboard shows, masked, about
//! 100 bytes plus its Call-ID and customer), not as the engine's whole record; the
//! agent's identity is shared by its legs, and the leg id by both indexes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::HashMap;
#[cfg(test)]
use serde_json::{json, Value};

use super::json::Obj;
pub use super::leg::on_hold;
use super::leg::{Ident, LegKind, LegView};
use crate::engine::agents::Roster;
use crate::engine::leg::LegRecord;
use crate::engine::registrations::RegState;
use crate::engine::Event;
use crate::report::Renderer;
use crate::time::CaptureTime;

/// Open legs kept; beyond, the oldest by INVITE time is forgotten (a leg whose end was
/// never reported cannot pin memory).
pub const MAX_LEGS: usize = 20_000;
/// Agents on the board; beyond, agents not in the roster are not added.
pub const MAX_AGENTS: usize = 5_000;
/// Extensions enumerated from `agents.extensions` ranges to find roster agents.
const MAX_ROSTER_SCAN: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentState {
    Unknown,
    Offline,
    Idle,
    Ringing,
    Talking,
    Held,
}

impl AgentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Unknown => "unknown",
            AgentState::Offline => "offline",
            AgentState::Idle => "idle",
            AgentState::Ringing => "ringing",
            AgentState::Talking => "talking",
            AgentState::Held => "held",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Agent {
    pub extension: String,
    pub agent_id: String,
    pub name: Option<String>,
    pub team: Option<String>,
    /// None until a REGISTER of the phone got its final answer.
    pub reg: Option<RegState>,
    /// The agent's open legs, by kind.
    pub open: OpenLegs,
    pub state: AgentState,
    /// When the current state began (None: since start, unknown).
    pub since: Option<CaptureTime>,
    /// The identity the agent's latest leg gave, shared by its legs' views.
    ident: Option<Arc<Ident>>,
}

impl Agent {
    fn new(
        extension: String,
        agent_id: String,
        name: Option<String>,
        team: Option<String>,
    ) -> Agent {
        Agent {
            extension,
            agent_id,
            name,
            team,
            reg: None,
            open: OpenLegs::default(),
            state: AgentState::Unknown,
            since: None,
            ident: None,
        }
    }

    /// The `agent` object of `snapshot` and `agent.state` frames.
    pub fn write_json(&self, out: &mut String, r: &Renderer, now: CaptureTime) {
        let mut o = Obj::new(out);
        o.str("agent", &self.extension);
        o.str("agent_id", &self.agent_id);
        o.opt_u64("elapsed_ms", self.since.map(|t| now.millis_since(t)));
        o.opt_str("name", self.name.as_deref());
        o.opt_str("phone", self.reg.map(|s| s.as_str()));
        o.opt_time("since", r, self.since);
        o.str("state", self.state.as_str());
        o.opt_str("team", self.team.as_deref());
        o.end();
    }

    /// What [`Agent::write_json`] writes, as the hub built it before (the tests' reference).
    #[cfg(test)]
    pub fn json(&self, r: &Renderer, now: CaptureTime) -> Value {
        json!({
            "agent": self.extension,
            "agent_id": self.agent_id,
            "name": self.name,
            "team": self.team,
            "state": self.state.as_str(),
            "since": self.since.map(|t| r.time(t)),
            "elapsed_ms": self.since.map(|t| now.millis_since(t)),
            "phone": self.reg.map(|s| s.as_str()),
        })
    }
}

pub struct Board {
    /// The open legs by leg id. Boxed: the table keeps a pointer per slot, not a whole
    /// view, so its unused slots (up to half of them after it grows) cost 8 bytes each.
    legs: HashMap<Arc<str>, Box<Open>>,
    /// The open legs by (INVITE time, leg id): the oldest is forgotten first.
    by_age: BTreeSet<(CaptureTime, Arc<str>)>,
    agents: BTreeMap<String, Agent>,
    /// Open legs not answered yet.
    ringing: usize,
    renderer: Renderer,
}

/// An open leg and whether it is counted in its agent's tally (not when the agent
/// table was full when the leg appeared: it is on the board but not in a tally).
struct Open {
    view: LegView,
    counted: bool,
}

/// An agent's open legs, counted by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenLegs {
    pub ringing: u32,
    pub talking: u32,
    pub held: u32,
}

impl OpenLegs {
    fn slot(&mut self, kind: LegKind) -> &mut u32 {
        match kind {
            LegKind::Ringing => &mut self.ringing,
            LegKind::Talking => &mut self.talking,
            LegKind::Held => &mut self.held,
        }
    }

    /// Open legs in all.
    pub fn total(&self) -> u32 {
        self.ringing + self.talking + self.held
    }
}

/// Every extension named by `patterns` ("8001-8099" ranges keep their width, or exact
/// users), at most [`MAX_ROSTER_SCAN`].
fn extensions_of(patterns: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for p in patterns {
        let p = p.trim();
        match p.split_once('-') {
            Some((a, b)) => {
                let (Ok(lo), Ok(hi)) = (a.trim().parse::<u64>(), b.trim().parse::<u64>()) else {
                    continue;
                };
                let width = a.trim().len();
                for n in lo..=hi {
                    if out.len() >= MAX_ROSTER_SCAN {
                        return out;
                    }
                    out.push(format!("{n:0width$}"));
                }
            }
            None => {
                if out.len() >= MAX_ROSTER_SCAN {
                    return out;
                }
                out.push(p.to_string());
            }
        }
    }
    out
}

impl Board {
    /// A board listing the roster's agents whose extensions `patterns` cover.
    /// `renderer` masks the legs' numbers as the frames show them.
    pub fn new(roster: &Roster, patterns: &[String], renderer: Renderer) -> Board {
        let mut agents = BTreeMap::new();
        for ext in extensions_of(patterns) {
            if agents.len() >= MAX_AGENTS {
                break;
            }
            if let Some(info) = roster.lookup(&ext) {
                agents.insert(
                    ext.clone(),
                    Agent::new(
                        ext,
                        info.agent_id.clone(),
                        info.name.clone(),
                        info.team.clone(),
                    ),
                );
            }
        }
        Board {
            legs: HashMap::default(),
            by_age: BTreeSet::new(),
            agents,
            ringing: 0,
            renderer,
        }
    }

    pub fn agents(&self) -> impl Iterator<Item = &Agent> {
        self.agents.values()
    }

    pub fn agent(&self, extension: &str) -> Option<&Agent> {
        self.agents.get(extension)
    }

    /// Open legs (id and view), oldest first.
    pub fn legs(&self) -> Vec<(&str, &LegView)> {
        // The index by age is in that order already.
        self.by_age
            .iter()
            .filter_map(|(_, id)| self.legs.get(id).map(|o| (&**id, &o.view)))
            .collect()
    }

    pub fn leg(&self, leg_id: &str) -> Option<&LegView> {
        self.legs.get(leg_id).map(|o| &o.view)
    }

    /// (ringing, active) legs now.
    pub fn counts(&self) -> (usize, usize) {
        (self.ringing, self.legs.len() - self.ringing)
    }

    /// The wallboard's view of a leg's record, its agent's identity shared with the
    /// agent's other legs.
    pub fn view(&mut self, rec: &LegRecord) -> LegView {
        let ident = match self.agents.get_mut(&rec.agent) {
            Some(a) => match &a.ident {
                Some(i) if i.matches(rec) => i.clone(),
                _ => a.ident.insert(Arc::new(Ident::of(rec))).clone(),
            },
            None => Arc::new(Ident::of(rec)),
        };
        LegView::new(&self.renderer, rec, ident)
    }

    fn agent_entry(&mut self, ident: &Ident) -> Option<&mut Agent> {
        if !self.agents.contains_key(&*ident.agent) {
            if self.agents.len() >= MAX_AGENTS {
                return None;
            }
            self.agents.insert(
                ident.agent.to_string(),
                Agent::new(
                    ident.agent.to_string(),
                    ident.agent_id.to_string(),
                    ident.name.as_deref().map(str::to_string),
                    ident.team.as_deref().map(str::to_string),
                ),
            );
        }
        self.agents.get_mut(&*ident.agent)
    }

    fn forget_oldest_leg(&mut self) {
        let Some((_, id)) = self.by_age.first().cloned() else {
            return;
        };
        self.remove_leg(&id);
    }

    /// Takes a leg off the board and out of its agent's tally; returns its id.
    fn remove_leg(&mut self, leg_id: &str) -> Option<Arc<str>> {
        let (id, old) = self.legs.remove_entry(leg_id)?;
        self.by_age.remove(&(old.view.invite_at, id.clone()));
        if old.view.kind == LegKind::Ringing {
            self.ringing -= 1;
        }
        if let (true, Some(a)) = (old.counted, self.agents.get_mut(&*old.view.ident.agent)) {
            let n = a.open.slot(old.view.kind);
            *n = n.saturating_sub(1);
        }
        Some(id)
    }

    /// Puts the latest view of an open leg on the board, replacing the previous one.
    fn upsert_leg(&mut self, leg_id: &str, view: LegView) {
        if !self.legs.contains_key(leg_id) && self.legs.len() >= MAX_LEGS {
            self.forget_oldest_leg();
        }
        // The id's allocation is kept from one event of the leg to the next.
        let id = self.remove_leg(leg_id);
        let kind = view.kind;
        let counted = self
            .agent_entry(&view.ident)
            .map(|a| {
                *a.open.slot(kind) += 1;
                if a.ident.is_none() {
                    a.ident = Some(view.ident.clone());
                }
            })
            .is_some();
        if kind == LegKind::Ringing {
            self.ringing += 1;
        }
        let id = id.unwrap_or_else(|| leg_id.into());
        self.by_age.insert((view.invite_at, id.clone()));
        self.legs.insert(id, Box::new(Open { view, counted }));
    }

    /// Takes one event (with the view of its leg when the caller made it already);
    /// returns the extension whose state changed, if any.
    pub fn apply(&mut self, ev: &Event, view: Option<LegView>) -> Option<String> {
        let at = ev.at();
        let ext = match ev {
            Event::AgentRegistration(c) => {
                if !self.agents.contains_key(&c.agent) && self.agents.len() < MAX_AGENTS {
                    self.agents.insert(
                        c.agent.clone(),
                        Agent::new(c.agent.clone(), c.agent.clone(), None, None),
                    );
                }
                let a = self.agents.get_mut(&c.agent)?;
                a.reg = Some(c.state);
                c.agent.clone()
            }
            Event::LegEnded { leg, .. } => {
                self.remove_leg(&leg.leg_id);
                leg.agent.clone()
            }
            Event::LegRinging { leg, .. }
            | Event::LegAnswered { leg, .. }
            | Event::LegHeld { leg, .. }
            | Event::LegResumed { leg, .. }
            | Event::ViolationRaised { leg, .. } => {
                let view = view.unwrap_or_else(|| self.view(leg));
                self.upsert_leg(&leg.leg_id, view);
                leg.agent.clone()
            }
        };
        let state = self.derive(&ext)?;
        let a = self.agents.get_mut(&ext)?;
        if a.state == state {
            return None;
        }
        a.state = state;
        a.since = Some(a.since.map_or(at, |s| s.max(at)));
        Some(ext)
    }

    fn derive(&self, ext: &str) -> Option<AgentState> {
        let a = self.agents.get(ext)?;
        let (talking, held, ringing) = (a.open.talking > 0, a.open.held > 0, a.open.ringing > 0);
        Some(if talking {
            AgentState::Talking
        } else if held {
            AgentState::Held
        } else if ringing {
            AgentState::Ringing
        } else {
            match a.reg {
                None => AgentState::Unknown,
                Some(RegState::Registered { .. }) => AgentState::Idle,
                Some(RegState::Unregistered | RegState::Expired) => AgentState::Offline,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::leg::{Hold, Party};
    use crate::engine::registrations::RegChange;

    fn rec(agent: &str) -> LegRecord {
        let t = CaptureTime::from_secs_micros(1_800_000_000, 0);
        LegRecord {
            leg_id: format!("leg-{agent}"),
            ..LegRecord::invited_for_tests("c1", agent, t)
        }
    }

    fn renderer() -> Renderer {
        Renderer {
            zone: chrono_tz::Asia::Shanghai,
            show_numbers: false,
        }
    }

    impl Board {
        fn apply_ev(&mut self, ev: &Event) -> Option<String> {
            self.apply(ev, None)
        }
    }

    fn reg(agent: &str, state: RegState, s: i64) -> Event {
        Event::AgentRegistration(RegChange {
            at: CaptureTime::from_secs_micros(s, 0),
            agent: agent.into(),
            state,
            contact: None,
        })
    }

    #[test]
    fn roster_agents_in_the_ranges_are_listed_unknown() {
        let roster = Roster::from_csv_bytes(
            "extension,agent_id,name,team\n8001,A1,李娜,A\n8002,A2,王伟,B\n9001,X,Out,C\n"
                .as_bytes(),
        )
        .unwrap();
        let b = Board::new(&roster, &["8001-8099".into()], renderer());
        let v: Vec<_> = b
            .agents()
            .map(|a| (a.extension.as_str(), a.state))
            .collect();
        assert_eq!(
            v,
            vec![("8001", AgentState::Unknown), ("8002", AgentState::Unknown)]
        );
        assert_eq!(
            extensions_of(&["0800-0802".into(), "7000".into()]),
            vec!["0800", "0801", "0802", "7000"]
        );
    }

    /// The tally of each agent equals a recount of the open legs on the board.
    fn assert_tallies_match(b: &Board) {
        for a in b.agents() {
            let mut want = OpenLegs::default();
            for o in b
                .legs
                .values()
                .filter(|o| *o.view.ident.agent == *a.extension)
            {
                if o.counted {
                    *want.slot(o.view.kind) += 1;
                }
            }
            assert_eq!(a.open, want, "tally of {}", a.extension);
        }
        assert_eq!(b.by_age.len(), b.legs.len());
    }

    #[test]
    fn a_flood_of_legs_to_one_extension_keeps_the_state_and_the_tally_right() {
        let mut b = Board::new(&Roster::default(), &[], renderer());
        let base = rec("8001");
        let t = base.invite_at;
        let n = 3_000;
        let mut legs = Vec::new();
        for i in 0..n {
            let mut l = base.clone();
            l.leg_id = format!("flood-{i}");
            l.invite_at = t.plus_millis(i as u64);
            b.apply_ev(&Event::LegRinging {
                at: l.invite_at,
                leg: Box::new(l.clone()),
            });
            legs.push(l);
        }
        assert_eq!(b.agent("8001").unwrap().open.ringing, n as u32);
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Ringing);
        // One answered, then held: held wins over ringing, talking over held.
        legs[7].answered_at = Some(t.plus_millis(9_000));
        b.apply_ev(&Event::LegAnswered {
            at: t,
            leg: Box::new(legs[7].clone()),
        });
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Talking);
        legs[7].holds.push(Hold {
            start_at: t.plus_millis(9_500),
            end_at: None,
            by: Party::Agent,
        });
        b.apply_ev(&Event::LegHeld {
            at: t,
            leg: Box::new(legs[7].clone()),
        });
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Held);
        assert_tallies_match(&b);
        // Ended in an interleaved order (each twice: a repeated end changes nothing).
        for i in (0..n).step_by(2).chain((1..n).step_by(2)) {
            let ev = Event::LegEnded {
                at: t,
                leg: Box::new(legs[i].clone()),
            };
            b.apply_ev(&ev);
            b.apply_ev(&ev);
            if i == 7 {
                assert_eq!(b.agent("8001").unwrap().state, AgentState::Ringing);
            }
        }
        assert_tallies_match(&b);
        assert_eq!(b.agent("8001").unwrap().open, OpenLegs::default());
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Unknown);
        assert_eq!(b.counts(), (0, 0));
    }

    #[test]
    fn beyond_max_legs_the_oldest_leg_is_forgotten_and_untallied() {
        let mut b = Board::new(&Roster::default(), &[], renderer());
        let base = rec("8001");
        let t = base.invite_at;
        for i in 0..MAX_LEGS + 5 {
            let mut l = base.clone();
            l.leg_id = format!("old-{i}");
            l.agent = format!("{}", 8000 + i % 7);
            // Newest first, so the oldest is not simply the first inserted.
            l.invite_at = t.plus_millis((MAX_LEGS + 5 - i) as u64);
            b.apply_ev(&Event::LegRinging {
                at: l.invite_at,
                leg: Box::new(l),
            });
        }
        assert_eq!(b.legs.len(), MAX_LEGS);
        // Each newcomer is older than all on the board; from the first one over the cap on,
        // the oldest on the board (the previous newcomer) made way for it.
        assert!(b.leg("old-0").is_some());
        assert!(b.leg(&format!("old-{}", MAX_LEGS - 2)).is_some());
        for i in MAX_LEGS - 1..MAX_LEGS + 4 {
            assert!(b.leg(&format!("old-{i}")).is_none(), "old-{i}");
        }
        assert!(b.leg(&format!("old-{}", MAX_LEGS + 4)).is_some());
        assert_tallies_match(&b);
        let total: u32 = b.agents().map(|a| a.open.total()).sum();
        assert_eq!(total as usize, MAX_LEGS);
    }

    #[test]
    fn states_follow_legs_holds_and_registration() {
        let mut b = Board::new(&Roster::default(), &[], renderer());
        let mut l = rec("8001");
        let t = l.invite_at;
        assert_eq!(
            b.apply_ev(&Event::LegRinging {
                at: t,
                leg: Box::new(l.clone())
            })
            .as_deref(),
            Some("8001")
        );
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Ringing);
        l.answered_at = Some(t.plus_millis(3_000));
        b.apply_ev(&Event::LegAnswered {
            at: t,
            leg: Box::new(l.clone()),
        });
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Talking);
        l.holds.push(Hold {
            start_at: t.plus_millis(5_000),
            end_at: None,
            by: Party::Agent,
        });
        b.apply_ev(&Event::LegHeld {
            at: t.plus_millis(5_000),
            leg: Box::new(l.clone()),
        });
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Held);
        assert_eq!(b.counts(), (0, 1));
        // A violation changes nothing of the state: no change reported.
        assert!(b
            .apply_ev(&Event::ViolationRaised {
                at: t,
                violation: crate::engine::rules::Violation {
                    rule: crate::engine::rules::RuleId::LongHold,
                    at: t,
                    detail: String::new(),
                },
                leg: Box::new(l.clone()),
            })
            .is_none());
        b.apply_ev(&Event::LegEnded {
            at: t.plus_millis(9_000),
            leg: Box::new(l),
        });
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Unknown);
        assert_eq!(b.counts(), (0, 0));
        b.apply_ev(&reg(
            "8001",
            RegState::Registered {
                until: t.plus_millis(60_000),
            },
            1_800_000_010,
        ));
        assert_eq!(b.agent("8001").unwrap().state, AgentState::Idle);
        b.apply_ev(&reg("8001", RegState::Expired, 1_800_000_070));
        let a = b.agent("8001").unwrap();
        assert_eq!(a.state, AgentState::Offline);
        assert_eq!(
            a.since,
            Some(CaptureTime::from_secs_micros(1_800_000_070, 0))
        );
        assert_eq!(a.phone_json(), "expired");
    }

    impl Agent {
        fn phone_json(&self) -> &'static str {
            self.reg.map_or("-", |s| s.as_str())
        }
    }
}
