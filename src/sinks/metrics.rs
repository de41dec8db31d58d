//! The Prometheus sink (SPEC §6): every metric callwatch exports, defined once here with
//! the official `prometheus-client` crate, and [`MetricsSink`], which moves them from
//! engine events on the engine task. The sources ([`crate::sources::hep`]) count their
//! own packets, errors and drops on the same [`Metrics`]; `GET /metrics`
//! ([`crate::api`]) encodes it as OpenMetrics text. `docs/metrics.md` lists every name.
//!
//! Counters move when the event happens (violations when raised, legs when they end);
//! the engine's own error counters are cumulative, so each [`Tick`] exports their deltas.
//! Label values are bounded: `team` comes from the roster, `agent` is capped at
//! [`MAX_AGENT_SERIES`] distinct values (the rest are `other`), kinds and rules are
//! fixed strings. No label or exemplar carries a customer number.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use chrono::NaiveDate;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::{local_date, EventSink, Tick};
use crate::engine::leg::{Direction, LegRecord, Outcome};
use crate::engine::rules::RuleId;
use crate::engine::Event;
use crate::time::CaptureTime;

/// Distinct `agent` label values before new agents are folded into `agent="other"`.
pub const MAX_AGENT_SERIES: usize = 5_000;
/// Call-IDs of answered legs remembered to recognise fork branches cancelled because a
/// sibling answered (service level).
const MAX_ANSWERED_CALLS: usize = 65_536;
/// OpenMetrics caps an exemplar's label names and values at 128 characters together.
const MAX_EXEMPLAR_CALL_ID: usize = 96;

/// The ring-time buckets (seconds): fine around the 10 s rule, coarse up to the 180 s
/// ring timeout. The configured threshold is always added as a boundary.
const RING_BUCKETS: &[f64] = &[
    1.0, 2.0, 3.0, 5.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 15.0, 20.0, 30.0, 60.0, 120.0, 180.0,
];
/// MOS buckets: the E-model's range, fine around the usual 3.6 floor (the configured
/// `rules.audio.min_mos` is always a boundary).
const MOS_BUCKETS: &[f64] = &[1.0, 2.0, 2.5, 3.0, 3.3, 3.6, 3.8, 4.0, 4.2, 4.3, 4.4, 4.5];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LegLabels {
    pub direction: &'static str,
    pub outcome: &'static str,
    pub team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamLabels {
    pub team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleTeamLabels {
    pub rule: &'static str,
    pub team: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLegLabels {
    pub agent: String,
    pub team: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentRuleLabels {
    pub agent: String,
    pub team: String,
    pub rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceKindLabels {
    pub source: &'static str,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkLabels {
    pub sink: &'static str,
}

/// A live capture interface (`capture.interfaces`): bounded by the configuration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterfaceLabels {
    pub interface: String,
}

/// The exemplar of a ring-time observation: which leg it was.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RingExemplar {
    pub leg_id: String,
    pub call_id: String,
}

/// Builds each team's ring-time histogram with the configured buckets.
#[derive(Clone, Debug)]
pub struct RingBuckets(Vec<f64>);

impl MetricConstructor<HistogramWithExemplars<RingExemplar>> for RingBuckets {
    fn new_metric(&self) -> HistogramWithExemplars<RingExemplar> {
        HistogramWithExemplars::new(self.0.iter().copied())
    }
}

/// Every exported metric. Each handle is an `Arc` inside, so clones count on the same
/// series; the registry is only read by [`Metrics::encode`].
pub struct Metrics {
    registry: Registry,
    pub legs_total: Family<LegLabels, Counter>,
    pub ring_seconds: Family<TeamLabels, HistogramWithExemplars<RingExemplar>, RingBuckets>,
    pub violations_total: Family<RuleTeamLabels, Counter>,
    pub agent_legs_total: Family<AgentLegLabels, Counter>,
    pub agent_violations_total: Family<AgentRuleLabels, Counter>,
    pub legs_ringing: Gauge,
    pub legs_active: Gauge,
    pub legs_tracked: Gauge,
    pub service_level_ratio: Family<TeamLabels, Gauge<f64, AtomicU64>>,
    pub rtp_mos: Histogram,
    pub rtp_lost_packets_total: Counter,
    pub ingest_packets_total: Family<SourceLabels, Counter>,
    pub ingest_errors_total: Family<SourceKindLabels, Counter>,
    pub ingest_ignored_total: Family<SourceKindLabels, Counter>,
    pub events_dropped_total: Family<SinkLabels, Counter>,
    pub engine_queue_depth: Gauge,
    pub hep_tcp_connections: Gauge,
    pub capture_sources: Gauge,
    /// Live capture: packets the kernel dropped for want of buffer room (pcap `ps_drop`).
    pub capture_kernel_drops_total: Family<InterfaceLabels, Counter>,
    /// Live capture: packets the interface or its driver dropped (pcap `ps_ifdrop`).
    pub capture_interface_drops_total: Family<InterfaceLabels, Counter>,
    pub store_up: Gauge,
    pub store_errors_total: Counter,
    pub store_backlog_bytes: Gauge,
    /// SIP text of open calls the store sink holds in memory, and spilled to disk.
    pub store_sip_buffer_bytes: Gauge,
    pub store_sip_spill_bytes: Gauge,
}

/// Sorted, de-duplicated bucket bounds with `extra` added.
fn buckets_with(base: &[f64], extra: f64) -> Vec<f64> {
    let mut b: Vec<f64> = base.to_vec();
    if extra.is_finite() && extra > 0.0 {
        b.push(extra);
    }
    b.sort_by(f64::total_cmp);
    b.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
    b
}

impl Metrics {
    /// `late_answer_ms` and `min_mos` become bucket boundaries of the ring-time and MOS
    /// histograms, so that "within the threshold" is exact in PromQL.
    pub fn new(late_answer_ms: u64, min_mos: f64) -> Metrics {
        let mut r = Registry::default();
        let ring_buckets = RingBuckets(buckets_with(RING_BUCKETS, late_answer_ms as f64 / 1000.0));
        let m = Metrics {
            legs_total: Family::default(),
            ring_seconds: Family::new_with_constructor(ring_buckets),
            violations_total: Family::default(),
            agent_legs_total: Family::default(),
            agent_violations_total: Family::default(),
            legs_ringing: Gauge::default(),
            legs_active: Gauge::default(),
            legs_tracked: Gauge::default(),
            service_level_ratio: Family::default(),
            rtp_mos: Histogram::new(buckets_with(MOS_BUCKETS, min_mos)),
            rtp_lost_packets_total: Counter::default(),
            ingest_packets_total: Family::default(),
            ingest_errors_total: Family::default(),
            ingest_ignored_total: Family::default(),
            events_dropped_total: Family::default(),
            engine_queue_depth: Gauge::default(),
            hep_tcp_connections: Gauge::default(),
            capture_sources: Gauge::default(),
            capture_kernel_drops_total: Family::default(),
            capture_interface_drops_total: Family::default(),
            store_up: Gauge::default(),
            store_errors_total: Counter::default(),
            store_backlog_bytes: Gauge::default(),
            store_sip_buffer_bytes: Gauge::default(),
            store_sip_spill_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        r.register(
            "callwatch_legs",
            "Agent legs ended, by direction, outcome and team",
            m.legs_total.clone(),
        );
        r.register(
            "callwatch_ring_seconds",
            "Ring time of inbound legs, observed when the ringing ends",
            m.ring_seconds.clone(),
        );
        r.register(
            "callwatch_violations",
            "Rule violations raised, by rule and team",
            m.violations_total.clone(),
        );
        r.register(
            "callwatch_agent_legs",
            "Agent legs ended, by agent, team and outcome",
            m.agent_legs_total.clone(),
        );
        r.register(
            "callwatch_agent_violations",
            "Rule violations raised, by agent, team and rule",
            m.agent_violations_total.clone(),
        );
        r.register(
            "callwatch_legs_ringing",
            "Agent legs ringing now",
            m.legs_ringing.clone(),
        );
        r.register(
            "callwatch_legs_active",
            "Agent legs answered and not ended now",
            m.legs_active.clone(),
        );
        r.register(
            "callwatch_legs_tracked",
            "Agent legs in the engine's table (ringing, active, or ended and lingering)",
            m.legs_tracked.clone(),
        );
        r.register(
            "callwatch_service_level_ratio",
            "Today's inbound legs answered within the late-answer threshold over those that stopped ringing",
            m.service_level_ratio.clone(),
        );
        r.register(
            "callwatch_rtp_mos",
            "Estimated MOS of each RTP stream, observed when its leg ends",
            m.rtp_mos.clone(),
        );
        r.register(
            "callwatch_rtp_lost_packets",
            "RTP packets lost (max(0, lost) per stream), counted when the leg ends",
            m.rtp_lost_packets_total.clone(),
        );
        r.register(
            "callwatch_ingest_packets",
            "Packets received, by source",
            m.ingest_packets_total.clone(),
        );
        r.register(
            "callwatch_ingest_errors",
            "Malformed or refused input, by source and kind",
            m.ingest_errors_total.clone(),
        );
        r.register(
            "callwatch_ingest_ignored",
            "Well-formed input that callwatch does not use, by source and kind",
            m.ingest_ignored_total.clone(),
        );
        r.register(
            "callwatch_events_dropped",
            "Packets or events lost because a bounded queue was full, by sink",
            m.events_dropped_total.clone(),
        );
        r.register(
            "callwatch_engine_queue_depth",
            "Packets waiting for the engine",
            m.engine_queue_depth.clone(),
        );
        r.register(
            "callwatch_hep_tcp_connections",
            "Open HEP TCP connections",
            m.hep_tcp_connections.clone(),
        );
        r.register(
            "callwatch_capture_sources",
            "Capture sources (HEP capture agent ids) seen since start",
            m.capture_sources.clone(),
        );
        r.register(
            "callwatch_capture_kernel_drops",
            "Live capture: packets dropped by the kernel because the capture buffer was full (pcap ps_drop), by interface",
            m.capture_kernel_drops_total.clone(),
        );
        r.register(
            "callwatch_capture_interface_drops",
            "Live capture: packets dropped by the network interface or its driver (pcap ps_ifdrop), by interface",
            m.capture_interface_drops_total.clone(),
        );
        r.register(
            "callwatch_store_up",
            "1 while the store's database takes writes, 0 while it fails (legs wait in the spool)",
            m.store_up.clone(),
        );
        r.register(
            "callwatch_store_errors",
            "Failed database writes and checks of the store (each retried)",
            m.store_errors_total.clone(),
        );
        r.register(
            "callwatch_store_backlog_bytes",
            "Bytes of legs spooled and not yet committed to the database",
            m.store_backlog_bytes.clone(),
        );
        r.register(
            "callwatch_store_sip_buffer_bytes",
            "SIP text of open calls held in memory for flagged legs, as counted against its budget",
            m.store_sip_buffer_bytes.clone(),
        );
        r.register(
            "callwatch_store_sip_spill_bytes",
            "SIP text of open calls spilled to disk once the memory budget was full",
            m.store_sip_spill_bytes.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing to a String cannot fail; an encoder error would only truncate.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn ingest_error(&self, source: &'static str, kind: &'static str) -> Counter {
        self.ingest_errors_total
            .get_or_create_owned(&SourceKindLabels { source, kind })
    }

    pub fn ingest_ignored(&self, source: &'static str, kind: &'static str) -> Counter {
        self.ingest_ignored_total
            .get_or_create_owned(&SourceKindLabels { source, kind })
    }

    pub fn ingest_packets(&self, source: &'static str) -> Counter {
        self.ingest_packets_total
            .get_or_create_owned(&SourceLabels { source })
    }

    /// The kernel and interface drop counters of one live capture interface.
    pub fn capture_drops(&self, interface: &str) -> (Counter, Counter) {
        let l = InterfaceLabels {
            interface: interface.to_string(),
        };
        (
            self.capture_kernel_drops_total.get_or_create_owned(&l),
            self.capture_interface_drops_total.get_or_create_owned(&l),
        )
    }

    pub fn dropped(&self, sink: &'static str) -> Counter {
        self.events_dropped_total
            .get_or_create_owned(&SinkLabels { sink })
    }
}

fn team_of(rec: &LegRecord) -> String {
    rec.team.clone().unwrap_or_else(|| "none".to_string())
}

/// Every `direction` label value of `callwatch_legs_total`.
const DIRECTIONS: [Direction; 3] = [Direction::Inbound, Direction::Outbound, Direction::Internal];
/// Every `outcome` label value of the leg counters.
const OUTCOMES: [Outcome; 4] = [
    Outcome::Answered,
    Outcome::Cancelled,
    Outcome::Rejected,
    Outcome::Failed,
];
/// Rosters up to this size get per-agent zero series at start; a larger one gets them as
/// agents are seen (the series count stays bounded by [`MAX_AGENT_SERIES`] either way).
pub const MAX_PREDECLARED_AGENTS: usize = 1_000;

impl Metrics {
    /// Creates at 0 the series that events will move, so that `rate()` and `increase()`
    /// count the first leg of a team after a restart (a series born at 1 has no earlier
    /// sample to increase from) and dashboards show 0 rather than "no data":
    /// `callwatch_legs_total` for every direction and outcome of every team, the ring
    /// histogram of every team, the per-rule violation counters of every team, and, for
    /// rosters of at most [`MAX_PREDECLARED_AGENTS`], the per-agent leg and violation
    /// counters. `agents` are (agent id, team) pairs.
    pub fn declare_zero_series(&self, teams: &[String], agents: &[(String, String)]) {
        for team in teams {
            for d in DIRECTIONS {
                for o in OUTCOMES {
                    self.legs_total.get_or_create_owned(&LegLabels {
                        direction: d.as_str(),
                        outcome: o.as_str(),
                        team: team.clone(),
                    });
                }
            }
            self.ring_seconds
                .get_or_create_owned(&TeamLabels { team: team.clone() });
            for rule in RuleId::ALL {
                self.violations_total.get_or_create_owned(&RuleTeamLabels {
                    rule: rule.as_str(),
                    team: team.clone(),
                });
            }
        }
        if agents.len() > MAX_PREDECLARED_AGENTS {
            return;
        }
        for (agent, team) in agents {
            for o in OUTCOMES {
                self.agent_legs_total.get_or_create_owned(&AgentLegLabels {
                    agent: agent.clone(),
                    team: team.clone(),
                    outcome: o.as_str(),
                });
            }
            for rule in RuleId::ALL {
                self.agent_violations_total
                    .get_or_create_owned(&AgentRuleLabels {
                        agent: agent.clone(),
                        team: team.clone(),
                        rule: rule.as_str(),
                    });
            }
        }
    }
}

fn outcome_of(rec: &LegRecord) -> &'static str {
    // A leg always has an outcome when it ends live; a missing one can only mean no
    // final response was seen.
    rec.outcome.unwrap_or(Outcome::Failed).as_str()
}

/// A Call-ID fit for an exemplar: bounded, and with any long digit run masked as a
/// customer number would be (some switches build Call-IDs from the caller's number).
fn exemplar_call_id(call_id: &[u8]) -> String {
    let text = String::from_utf8_lossy(call_id);
    let mut out = String::with_capacity(text.len().min(MAX_EXEMPLAR_CALL_ID));
    crate::report::mask_digit_runs_into(&mut out, &text);
    if out.len() > MAX_EXEMPLAR_CALL_ID {
        let mut cut = MAX_EXEMPLAR_CALL_ID;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Today's service level per team (SPEC §6): inbound legs answered within the threshold
/// over inbound legs that stopped ringing, leaving out legs cancelled within the
/// threshold and fork branches cancelled because a sibling branch (same Call-ID) was
/// answered. A leg counts in the day of its `invite_at` in `time.zone`; only the
/// current day is kept.
pub struct ServiceLevel {
    zone: chrono_tz::Tz,
    threshold_ms: u64,
    day: Option<NaiveDate>,
    /// team → (answered within the threshold, stopped ringing)
    teams: BTreeMap<String, (u64, u64)>,
    /// Answered Call-IDs, as 64-bit hashes (a few bytes each where two copies of the
    /// Call-ID took about 150): a collision could only leave one cancelled leg out of the
    /// service level, once in 2^64.
    answered_calls: HashSet<u64, foldhash::fast::FixedState>,
    answered_order: VecDeque<u64>,
}

impl ServiceLevel {
    pub fn new(zone: chrono_tz::Tz, threshold_ms: u64) -> ServiceLevel {
        ServiceLevel {
            zone,
            threshold_ms,
            day: None,
            teams: BTreeMap::new(),
            answered_calls: HashSet::default(),
            answered_order: VecDeque::new(),
        }
    }

    fn date(&self, t: CaptureTime) -> Option<NaiveDate> {
        local_date(self.zone, t)
    }

    /// Moves to the day of `now` when it is later; true when the figures were reset.
    pub fn roll(&mut self, now: CaptureTime) -> bool {
        match self.date(now) {
            Some(d) if self.day.is_none_or(|cur| d > cur) => {
                self.day = Some(d);
                let had = !self.teams.is_empty();
                self.teams.clear();
                had
            }
            _ => false,
        }
    }

    /// The team's counts when the leg belongs to today (rolling forward when it is newer).
    fn slot(&mut self, rec: &LegRecord) -> Option<&mut (u64, u64)> {
        let d = self.date(rec.invite_at)?;
        match self.day {
            Some(cur) if d < cur => return None,
            Some(cur) if d == cur => {}
            _ => {
                self.day = Some(d);
                self.teams.clear();
            }
        }
        Some(self.teams.entry(team_of(rec)).or_default())
    }

    /// An inbound leg was answered. True when the figures changed.
    pub fn on_answered(&mut self, rec: &LegRecord) -> bool {
        let key = super::id_key(&rec.call_id);
        if self.answered_calls.insert(key) {
            self.answered_order.push_back(key);
            while self.answered_order.len() > MAX_ANSWERED_CALLS {
                if let Some(old) = self.answered_order.pop_front() {
                    self.answered_calls.remove(&old);
                }
            }
        }
        if rec.direction != Direction::Inbound {
            return false;
        }
        let within = rec.ring_ms.is_some_and(|r| r <= self.threshold_ms);
        match self.slot(rec) {
            Some(s) => {
                s.1 += 1;
                if within {
                    s.0 += 1;
                }
                true
            }
            None => false,
        }
    }

    /// An inbound leg ended without being answered. True when the figures changed.
    pub fn on_unanswered(&mut self, rec: &LegRecord) -> bool {
        if rec.direction != Direction::Inbound {
            return false;
        }
        if rec.outcome == Some(Outcome::Cancelled) {
            let within = rec.ring_ms.is_some_and(|r| r <= self.threshold_ms);
            if within || self.answered_calls.contains(&super::id_key(&rec.call_id)) {
                return false;
            }
        }
        match self.slot(rec) {
            Some(s) => {
                s.1 += 1;
                true
            }
            None => false,
        }
    }

    /// (team, ratio) for every team with at least one leg today.
    pub fn ratios(&self) -> impl Iterator<Item = (&str, f64)> {
        self.teams
            .iter()
            .filter(|(_, (_, den))| *den > 0)
            .map(|(t, (num, den))| (t.as_str(), *num as f64 / *den as f64))
    }

    /// (team, answered within the threshold, stopped ringing) for every team with a
    /// counted leg today (the wallboard shows both numbers beside the ratio).
    pub fn counts(&self) -> impl Iterator<Item = (&str, u64, u64)> {
        self.teams
            .iter()
            .map(|(t, (num, den))| (t.as_str(), *num, *den))
    }
}

/// Moves [`Metrics`] from engine events. Lives on the engine task.
pub struct MetricsSink {
    m: Arc<Metrics>,
    sl: ServiceLevel,
    agents: HashSet<String>,
    engine_errors_seen: HashMap<&'static str, u64>,
    legs_table_full_seen: u64,
}

impl MetricsSink {
    pub fn new(m: Arc<Metrics>, zone: chrono_tz::Tz, late_answer_ms: u64) -> MetricsSink {
        MetricsSink {
            m,
            sl: ServiceLevel::new(zone, late_answer_ms),
            agents: HashSet::new(),
            engine_errors_seen: HashMap::new(),
            legs_table_full_seen: 0,
        }
    }

    /// The `agent` label: the roster's agent id (the extension without a roster), or
    /// `other` once [`MAX_AGENT_SERIES`] agents have series.
    fn agent_label(&mut self, rec: &LegRecord) -> String {
        if self.agents.contains(&rec.agent_id) {
            return rec.agent_id.clone();
        }
        if self.agents.len() < MAX_AGENT_SERIES {
            self.agents.insert(rec.agent_id.clone());
            return rec.agent_id.clone();
        }
        "other".to_string()
    }

    fn observe_ring(&self, rec: &LegRecord) {
        let (Direction::Inbound, Some(ms)) = (rec.direction, rec.ring_ms) else {
            return;
        };
        let exemplar = RingExemplar {
            leg_id: rec.leg_id.clone(),
            call_id: exemplar_call_id(&rec.call_id),
        };
        self.m
            .ring_seconds
            .get_or_create(&TeamLabels { team: team_of(rec) })
            .observe(ms as f64 / 1000.0, Some(exemplar), None);
    }

    fn publish_service_level(&self) {
        // Teams with no leg today have no series (the wallboard's "—").
        self.m.service_level_ratio.clear();
        for (team, ratio) in self.sl.ratios() {
            self.m
                .service_level_ratio
                .get_or_create(&TeamLabels {
                    team: team.to_string(),
                })
                .set(ratio);
        }
    }
}

impl EventSink for MetricsSink {
    fn on_event(&mut self, ev: &Event) {
        match ev {
            Event::LegRinging { .. } => {
                self.m.legs_ringing.inc();
            }
            Event::LegAnswered { leg, .. } => {
                self.m.legs_ringing.dec();
                self.m.legs_active.inc();
                self.observe_ring(leg);
                if self.sl.on_answered(leg) {
                    self.publish_service_level();
                }
            }
            Event::ViolationRaised { violation, leg, .. } => {
                let rule = violation.rule.as_str();
                let team = team_of(leg);
                self.m
                    .violations_total
                    .get_or_create(&RuleTeamLabels {
                        rule,
                        team: team.clone(),
                    })
                    .inc();
                let agent = self.agent_label(leg);
                self.m
                    .agent_violations_total
                    .get_or_create(&AgentRuleLabels { agent, team, rule })
                    .inc();
            }
            Event::LegEnded { leg, .. } => {
                let team = team_of(leg);
                let outcome = outcome_of(leg);
                if leg.answered_at.is_some() {
                    self.m.legs_active.dec();
                } else {
                    self.m.legs_ringing.dec();
                    self.observe_ring(leg);
                    if self.sl.on_unanswered(leg) {
                        self.publish_service_level();
                    }
                }
                self.m
                    .legs_total
                    .get_or_create(&LegLabels {
                        direction: leg.direction.as_str(),
                        outcome,
                        team: team.clone(),
                    })
                    .inc();
                let agent = self.agent_label(leg);
                self.m
                    .agent_legs_total
                    .get_or_create(&AgentLegLabels {
                        agent,
                        team,
                        outcome,
                    })
                    .inc();
                for s in &leg.media {
                    if let Some(mos) = s.mos {
                        self.m.rtp_mos.observe(mos);
                    }
                    self.m.rtp_lost_packets_total.inc_by(s.lost.max(0) as u64);
                }
            }
            Event::LegHeld { .. } | Event::LegResumed { .. } | Event::AgentRegistration(_) => {}
        }
    }

    fn on_tick(&mut self, tick: &Tick<'_>) {
        for (&kind, &n) in &tick.stats.errors {
            let seen = self.engine_errors_seen.entry(kind).or_insert(0);
            if n > *seen {
                self.m.ingest_error("engine", kind).inc_by(n - *seen);
                *seen = n;
            }
        }
        let full = tick.stats.legs_dropped_table_full;
        if full > self.legs_table_full_seen {
            self.m
                .ingest_error("engine", "legs_table_full")
                .inc_by(full - self.legs_table_full_seen);
            self.legs_table_full_seen = full;
        }
        self.m.legs_tracked.set(tick.legs_tracked as i64);
        self.m.engine_queue_depth.set(tick.queue_depth as i64);
        if let Some(now) = tick.now {
            if self.sl.roll(now) {
                self.publish_service_level();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(call: &str, agent: &str, ring_ms: u64, outcome: Outcome) -> LegRecord {
        let invite_at = CaptureTime::from_secs_micros(1_800_000_000, 0);
        LegRecord {
            team: Some("A".into()),
            ring_start_at: Some(invite_at),
            answered_at: (outcome == Outcome::Answered).then(|| invite_at.plus_millis(ring_ms)),
            ring_ms: Some(ring_ms),
            outcome: Some(outcome),
            ..LegRecord::invited_for_tests(call, agent, invite_at)
        }
    }

    #[test]
    fn service_level_leaves_out_quick_cancels_and_lost_fork_branches() {
        let mut sl = ServiceLevel::new(chrono_tz::Asia::Shanghai, 10_000);
        assert!(sl.on_answered(&leg("c1", "8001", 4_000, Outcome::Answered)));
        assert!(sl.on_answered(&leg("c2", "8001", 12_000, Outcome::Answered)));
        // Cancelled within the threshold: left out.
        assert!(!sl.on_unanswered(&leg("c3", "8001", 5_000, Outcome::Cancelled)));
        // Cancelled after the threshold: counts against.
        assert!(sl.on_unanswered(&leg("c4", "8001", 15_000, Outcome::Cancelled)));
        // The losing branch of a fork answered by 8001 (c1), cancelled late: left out.
        assert!(!sl.on_unanswered(&leg("c1", "8002", 11_000, Outcome::Cancelled)));
        // Rejected within the threshold still counts against.
        assert!(sl.on_unanswered(&leg("c5", "8001", 2_000, Outcome::Rejected)));
        let r: Vec<_> = sl.ratios().collect();
        assert_eq!(r, vec![("A", 1.0 / 4.0)]);
    }

    #[test]
    fn service_level_keeps_only_the_current_day() {
        let mut sl = ServiceLevel::new(chrono_tz::Asia::Shanghai, 10_000);
        sl.on_answered(&leg("c1", "8001", 4_000, Outcome::Answered));
        assert_eq!(sl.ratios().count(), 1);
        let next_day = CaptureTime::from_secs_micros(1_800_000_000 + 86_400, 0);
        assert!(sl.roll(next_day));
        assert_eq!(sl.ratios().count(), 0);
        // A leg of the previous day arriving late is not today's.
        assert!(!sl.on_answered(&leg("c2", "8001", 4_000, Outcome::Answered)));
    }

    #[test]
    fn exemplar_call_ids_are_bounded_and_masked() {
        assert_eq!(
            exemplar_call_id(b"a84b4c76e66710@pc33"),
            "a84b4c76e66710@pc33"
        );
        assert_eq!(
            exemplar_call_id(b"13812345678-1@10.0.0.1"),
            "138****5678-1@10.0.0.1"
        );
        assert!(exemplar_call_id(&[b'x'; 500]).len() <= MAX_EXEMPLAR_CALL_ID);
    }

    #[test]
    fn zero_series_are_declared_for_every_team_and_roster_agent() {
        let m = Metrics::new(10_000, 3.6);
        m.declare_zero_series(
            &["A".into(), "none".into()],
            &[("A1001".into(), "A".into())],
        );
        let text = m.encode();
        for want in [
            r#"callwatch_legs_total{direction="inbound",outcome="answered",team="A"} 0"#,
            r#"callwatch_legs_total{direction="internal",outcome="failed",team="none"} 0"#,
            r#"callwatch_ring_seconds_count{team="A"} 0"#,
            r#"callwatch_violations_total{rule="survey_missing",team="none"} 0"#,
            r#"callwatch_agent_legs_total{agent="A1001",team="A",outcome="cancelled"} 0"#,
            r#"callwatch_agent_violations_total{agent="A1001",team="A",rule="late_answer"} 0"#,
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
        // A roster too big for per-agent series at start gets them as agents are seen.
        let big: Vec<(String, String)> = (0..=MAX_PREDECLARED_AGENTS)
            .map(|i| (format!("X{i}"), "A".to_string()))
            .collect();
        let m = Metrics::new(10_000, 3.6);
        m.declare_zero_series(&["A".into()], &big);
        assert!(!m.encode().contains("callwatch_agent_legs_total{"));
    }

    #[test]
    fn names_and_threshold_bucket_are_exported() {
        let m = Arc::new(Metrics::new(10_000, 3.6));
        let mut sink = MetricsSink::new(m.clone(), chrono_tz::Asia::Shanghai, 10_000);
        let l = leg("c1", "8001", 12_345, Outcome::Answered);
        let at = l.invite_at;
        sink.on_event(&Event::LegRinging {
            at,
            leg: Box::new(l.clone()),
        });
        sink.on_event(&Event::LegAnswered {
            at,
            leg: Box::new(l.clone()),
        });
        sink.on_event(&Event::LegEnded {
            at,
            leg: Box::new(l),
        });
        let text = m.encode();
        assert!(
            text.contains(
                r#"callwatch_legs_total{direction="inbound",outcome="answered",team="A"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"callwatch_ring_seconds_bucket{le="10.0",team="A"} 0"#),
            "{text}"
        );
        assert!(text.contains(r#"callwatch_ring_seconds_bucket{le="15.0",team="A"} 1 # {leg_id="c1-8001",call_id="c1"} 12.345"#), "{text}");
        assert!(
            text.contains(r#"callwatch_service_level_ratio{team="A"} 0.0"#),
            "{text}"
        );
        assert!(text.contains("callwatch_legs_ringing 0"), "{text}");
        assert!(text.contains("callwatch_legs_active 0"), "{text}");
    }
}
