//! What the inspectors' API reads and writes in the store: flagged legs by filter and
//! page, one leg with its SIP messages and verdicts, verdicts (with their audit rows, in
//! one transaction), the audit trail, and per-agent scorecards over a time range.
//! Filters arrive here already checked (rule ids, verdicts, times); the SQL is built
//! from fixed fragments with every value bound, never spliced.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::model::{HoldRow, LegRow, SipRow, ViolationRow};
use super::{on_pool, Store, StoreError};

/// A verdict on one violation of a leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Confirmed,
    Dismissed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "confirmed" => Some(Verdict::Confirmed),
            "dismissed" => Some(Verdict::Dismissed),
            _ => None,
        }
    }
}

/// The list filter on verdicts: a leg matches when one of its violations (of the
/// filtered rule, if any) is in that state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictFilter {
    Pending,
    Is(Verdict),
}

/// Filters of the flagged-leg list; every field optional.
#[derive(Clone, Debug, Default)]
pub struct LegFilter {
    pub rule: Option<String>,
    /// Matches `agent_id` or the extension.
    pub agent: Option<String>,
    pub team: Option<String>,
    /// `invite_at` from (inclusive) and to (exclusive), capture microseconds.
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub verdict: Option<VerdictFilter>,
    pub call_id: Option<String>,
    /// Every stored leg, flagged or not (finding a call for a complaint).
    pub all: bool,
    /// Oldest invite first (the last page of the newest-first list, reversed).
    pub asc: bool,
    /// Keyset pagination: the legs after this one in list order (`offset` then counts
    /// from there; the API sends 0).
    pub after: Option<Cursor>,
    pub offset: i64,
    pub limit: i64,
}

/// Counts stop here: above it a list says "more than [`COUNT_CAP`]" (as HOMER, GitHub
/// and Kibana do), so a page never counts a million rows.
pub const COUNT_CAP: i64 = 10_000;

/// Where a page of the leg list ends: the last leg's sort key (`invite_at`, `leg_id`)
/// and the order it was listed in. Sent to clients as an opaque token
/// ([`Cursor::encode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub invite_at: i64,
    pub leg_id: String,
    pub asc: bool,
}

impl Cursor {
    /// `base64url("d|<invite_at>|<leg_id>")` (`a` for oldest first): opaque to clients.
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let dir = if self.asc { 'a' } else { 'd' };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{dir}|{}|{}", self.invite_at, self.leg_id))
    }

    /// The cursor of a token made by [`Cursor::encode`], or `None`.
    pub fn decode(token: &str) -> Option<Cursor> {
        use base64::Engine as _;
        if token.len() > 1024 {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.as_bytes())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let mut parts = text.splitn(3, '|');
        let asc = match parts.next()? {
            "a" => true,
            "d" => false,
            _ => return None,
        };
        let invite_at = parts.next()?.parse::<i64>().ok()?;
        let leg_id = parts.next()?.to_string();
        (!leg_id.is_empty()).then_some(Cursor {
            invite_at,
            leg_id,
            asc,
        })
    }
}

/// The current verdict of one violation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Review {
    pub leg_id: String,
    pub rule: String,
    pub verdict: String,
    pub reason: String,
    pub points: i64,
    pub reviewer: String,
    pub at: i64,
}

/// A leg as the API lists and shows it.
#[derive(Clone, Debug)]
pub struct StoredLeg {
    pub leg: LegRow,
    pub reviews: Vec<Review>,
    pub purged_at: Option<i64>,
}

/// One page of a list and the number of matches over all pages.
#[derive(Clone, Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matches; for the leg list at most [`COUNT_CAP`] (see `total_exact`).
    pub total: i64,
    /// `false` when more than `total` legs match (the count stopped at [`COUNT_CAP`]).
    pub total_exact: bool,
    /// The page after this one (keyset), when there is one.
    pub next: Option<Cursor>,
}

/// A row of the audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub username: String,
    pub action: String,
    pub leg_id: Option<String>,
    pub rule: Option<String>,
    pub verdict: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

/// What to append to the audit trail.
#[derive(Clone, Debug, Default)]
pub struct AuditNew {
    pub at: i64,
    pub username: String,
    pub action: String,
    pub leg_id: Option<String>,
    pub rule: Option<String>,
    pub verdict: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub leg_id: Option<String>,
    pub username: Option<String>,
    pub action: Option<String>,
    pub offset: i64,
    pub limit: i64,
}

/// One agent's figures over a range (a quarter, in the API).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScoreRow {
    pub agent_id: String,
    pub agent_name: Option<String>,
    pub team: Option<String>,
    /// Inbound legs offered to the agent.
    pub inbound: i64,
    /// Inbound legs the agent answered (the "little bee" figure, Art. 104).
    pub answered: i64,
    /// Service level numerator and denominator (SPEC §6).
    pub sl_within: i64,
    pub sl_total: i64,
    /// rule → (confirmed violations, points).
    pub confirmed: BTreeMap<String, (i64, i64)>,
    pub dismissed: i64,
    pub pending: i64,
}

impl ScoreRow {
    pub fn points(&self) -> i64 {
        self.confirmed.values().map(|(_, p)| p).sum()
    }

    pub fn service_level(&self) -> Option<f64> {
        (self.sl_total > 0).then(|| self.sl_within as f64 / self.sl_total as f64)
    }
}

/// A bound value of a built statement.
enum Param {
    Text(String),
    Int(i64),
}

/// A WHERE clause under construction: fixed fragments, numbered placeholders.
struct Where {
    sql: String,
    params: Vec<Param>,
    /// For a count by agent: the placeholder of the agent, whose two matches (id,
    /// extension) the count reads as a UNION of two index-only scans.
    agent: Option<String>,
}

impl Where {
    fn new() -> Where {
        Where {
            sql: " WHERE 1 = 1".into(),
            params: Vec::new(),
            agent: None,
        }
    }

    /// The next placeholder, binding `p`.
    fn bind(&mut self, p: Param) -> String {
        self.params.push(p);
        format!("${}", self.params.len())
    }

    fn and(&mut self, frag: &str) {
        self.sql.push_str(" AND ");
        self.sql.push_str(frag);
    }
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s.clone()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

const LEG_COLUMNS: &str = "l.leg_id, l.call_id, l.linked_call_id, l.agent, l.agent_id, \
     l.agent_name, l.team, l.direction, l.customer, l.customer_is_internal, l.invite_at, \
     l.ring_start_at, l.answered_at, l.ended_at, l.ring_ms, l.outcome, l.hangup_by, l.survey, \
     l.glare, l.hold_ms, l.end_reason, l.holds, l.media, l.node, l.purged_at";

/// Decodes a row of [`LEG_COLUMNS`] (expanded per backend).
macro_rules! leg_from_row {
    ($r:expr) => {{
        let r = $r;
        let holds: String = r.try_get("holds")?;
        let media: Option<String> = r.try_get("media")?;
        let leg = LegRow {
            leg_id: r.try_get("leg_id")?,
            call_id: r.try_get("call_id")?,
            linked_call_id: r.try_get("linked_call_id")?,
            agent: r.try_get("agent")?,
            agent_id: r.try_get("agent_id")?,
            agent_name: r.try_get("agent_name")?,
            team: r.try_get("team")?,
            direction: r.try_get("direction")?,
            customer: r.try_get("customer")?,
            customer_is_internal: r.try_get("customer_is_internal")?,
            invite_at: r.try_get("invite_at")?,
            ring_start_at: r.try_get("ring_start_at")?,
            answered_at: r.try_get("answered_at")?,
            ended_at: r.try_get("ended_at")?,
            ring_ms: r.try_get("ring_ms")?,
            outcome: r.try_get("outcome")?,
            hangup_by: r.try_get("hangup_by")?,
            survey: r.try_get("survey")?,
            glare: r.try_get("glare")?,
            hold_ms: r.try_get("hold_ms")?,
            end_reason: r.try_get("end_reason")?,
            holds: serde_json::from_str::<Vec<HoldRow>>(&holds)?,
            media: match media {
                Some(m) => Some(serde_json::from_str(&m)?),
                None => None,
            },
            violations: Vec::new(),
            node: r.try_get("node")?,
        };
        let purged_at: Option<i64> = r.try_get("purged_at")?;
        (leg, purged_at)
    }};
}

macro_rules! review_from_row {
    ($r:expr) => {{
        let r = $r;
        Review {
            leg_id: r.try_get("leg_id")?,
            rule: r.try_get("rule")?,
            verdict: r.try_get("verdict")?,
            reason: r.try_get("reason")?,
            points: r.try_get("points")?,
            reviewer: r.try_get("reviewer")?,
            at: r.try_get("at")?,
        }
    }};
}

macro_rules! audit_from_row {
    ($r:expr) => {{
        let r = $r;
        AuditEntry {
            id: r.try_get("id")?,
            at: r.try_get("at")?,
            username: r.try_get("username")?,
            action: r.try_get("action")?,
            leg_id: r.try_get("leg_id")?,
            rule: r.try_get("rule")?,
            verdict: r.try_get("verdict")?,
            reason: r.try_get("reason")?,
            detail: r.try_get("detail")?,
        }
    }};
}

fn in_list(w: &mut Where, ids: &[String]) -> String {
    let marks: Vec<String> = ids
        .iter()
        .map(|id| w.bind(Param::Text(id.clone())))
        .collect();
    marks.join(", ")
}

/// The WHERE clause of the leg list for `f`: for its count (`for_count`) or its page,
/// the same matches written for each one's best plan.
fn leg_where(f: &LegFilter, for_count: bool) -> Where {
    let mut w = Where::new();
    if !f.all {
        // `= TRUE`, not the bare column: SQLite uses an index only for a comparison.
        // With an agent, `<> FALSE` (the same for a NOT NULL column) so that SQLite
        // reads the agent's two indexes (id, extension) instead of every flagged leg.
        w.and(if f.agent.is_some() && !for_count {
            "l.flagged <> FALSE"
        } else {
            "l.flagged = TRUE"
        });
    }
    if let Some(rule) = &f.rule {
        let p = w.bind(Param::Text(rule.clone()));
        // Counting, the rule's violations drive; listing, the legs in list order
        // are probed until the page is full.
        w.and(&if for_count {
            format!("l.leg_id IN (SELECT v.leg_id FROM violations v WHERE v.rule = {p})")
        } else {
            format!(
                "EXISTS (SELECT 1 FROM violations v WHERE v.leg_id = l.leg_id \
                 AND v.rule = {p})"
            )
        });
    }
    if let Some(agent) = &f.agent {
        let p = w.bind(Param::Text(agent.clone()));
        if for_count {
            // Counting, `agent_id = p` and `agent = p` each off its own index (an OR
            // would read every matching leg's row): see `list_legs`.
            w.agent = Some(p);
        } else {
            w.and(&format!("(l.agent_id = {p} OR l.agent = {p})"));
        }
    }
    if let Some(team) = &f.team {
        let p = w.bind(Param::Text(team.clone()));
        w.and(&format!("l.team = {p}"));
    }
    if let Some(from) = f.from {
        let p = w.bind(Param::Int(from));
        w.and(&format!("l.invite_at >= {p}"));
    }
    if let Some(to) = f.to {
        let p = w.bind(Param::Int(to));
        w.and(&format!("l.invite_at < {p}"));
    }
    if let Some(call_id) = &f.call_id {
        let p = w.bind(Param::Text(call_id.clone()));
        w.and(&format!("(l.call_id = {p} OR l.linked_call_id = {p})"));
    }
    if let Some(v) = f.verdict {
        let rule = match &f.rule {
            Some(r) => format!(" AND v.rule = {}", w.bind(Param::Text(r.clone()))),
            None => String::new(),
        };
        match v {
            // `pending` counts the leg's violations without a verdict.
            VerdictFilter::Pending if f.rule.is_none() => w.and("l.pending > 0"),
            VerdictFilter::Pending => w.and(&format!(
                "l.pending > 0 AND EXISTS (SELECT 1 FROM violations v \
                 WHERE v.leg_id = l.leg_id{rule} \
                 AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.leg_id = v.leg_id \
                 AND r.rule = v.rule))"
            )),
            VerdictFilter::Is(verdict) => {
                let p = w.bind(Param::Text(verdict.as_str().into()));
                w.and(&format!(
                    "l.leg_id IN (SELECT v.leg_id FROM reviews v WHERE v.verdict = {p}{rule})"
                ));
            }
        }
    }
    w
}

impl Store {
    /// Legs matching `f`, newest invite first, with their violations and verdicts.
    pub async fn list_legs(&self, f: &LegFilter) -> Result<Page<StoredLeg>, StoreError> {
        let cw = leg_where(f, true);
        // Only a rule: its violations are counted off their index (a leg has at most
        // one row per rule, and only flagged legs have violations).
        let rule_only = !f.all
            && f.rule.is_some()
            && f.agent.is_none()
            && f.team.is_none()
            && f.from.is_none()
            && f.to.is_none()
            && f.verdict.is_none()
            && f.call_id.is_none();
        // Bounded: at most COUNT_CAP + 1 matches are read, off the list's indexes.
        let cap = COUNT_CAP + 1;
        let count_sql = if rule_only {
            format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM violations v \
                 WHERE v.rule = $1 LIMIT {cap}) t"
            )
        } else if let Some(p) = &cw.agent {
            // UNION: a leg whose id and extension are both `p` counts once.
            format!(
                "SELECT COUNT(*) AS n FROM (SELECT l.leg_id FROM legs l{w} AND l.agent_id = {p} \
                 UNION SELECT l.leg_id FROM legs l{w} AND l.agent = {p} LIMIT {cap}) t",
                w = cw.sql
            )
        } else {
            format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM legs l{} LIMIT {cap}) t",
                cw.sql
            )
        };
        let count_params = if rule_only {
            &cw.params[..1]
        } else {
            &cw.params[..]
        };
        let mut w = leg_where(f, false);
        // Newest first: invite_at DESC, leg_id ASC; oldest first is its exact reverse,
        // so both read the same indexes (backwards for one).
        let (order, before, tie) = if f.asc {
            ("l.invite_at ASC, l.leg_id DESC", ">", "<")
        } else {
            ("l.invite_at DESC, l.leg_id", "<", ">")
        };
        if let Some(c) = &f.after {
            let t = w.bind(Param::Int(c.invite_at));
            let id = w.bind(Param::Text(c.leg_id.clone()));
            // The first conjunct bounds the index range; the second skips the legs of
            // the same instant up to and including the cursor's.
            w.and(&format!(
                "l.invite_at {before}= {t} AND (l.invite_at {before} {t} OR l.leg_id {tie} {id})"
            ));
        }
        let limit = f.limit.clamp(0, 10_000);
        // One more than the page: whether a next page exists.
        let lim = w.bind(Param::Int(limit + 1));
        let off = w.bind(Param::Int(f.offset.max(0)));
        // The page's keys first, off the index in list order (a deep page skips index
        // entries, not rows), then those rows.
        let list_sql = format!(
            "SELECT {LEG_COLUMNS} FROM legs l WHERE l.leg_id IN (SELECT l.leg_id FROM legs l{} \
             ORDER BY {order} LIMIT {lim} OFFSET {off}) ORDER BY {order}",
            w.sql
        );
        let (total, mut items) = on_pool!(self, p => {
            let total: i64 = bind_all!(sqlx::query(&count_sql), count_params)
                .fetch_one(p)
                .await?
                .try_get("n")?;
            let rows = bind_all!(sqlx::query(&list_sql), &w.params).fetch_all(p).await?;
            let mut items = Vec::with_capacity(rows.len());
            for r in &rows {
                let (leg, purged_at) = leg_from_row!(r);
                items.push(StoredLeg { leg, reviews: Vec::new(), purged_at });
            }
            (total, items)
        });
        let more = items.len() as i64 > limit;
        items.truncate(limit as usize);
        let next = match items.last() {
            Some(l) if more => Some(Cursor {
                invite_at: l.leg.invite_at,
                leg_id: l.leg.leg_id.clone(),
                asc: f.asc,
            }),
            _ => None,
        };
        self.attach_violations(&mut items).await?;
        Ok(Page {
            items,
            total: total.min(COUNT_CAP),
            total_exact: total <= COUNT_CAP,
            next,
        })
    }

    /// Fills in the violations and verdicts of `legs`.
    async fn attach_violations(&self, legs: &mut [StoredLeg]) -> Result<(), StoreError> {
        if legs.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = legs.iter().map(|l| l.leg.leg_id.clone()).collect();
        let mut w = Where::new();
        let list = in_list(&mut w, &ids);
        let vsql = format!(
            "SELECT leg_id, rule, at, detail FROM violations WHERE leg_id IN ({list}) \
             ORDER BY at, rule"
        );
        let rsql = format!(
            "SELECT leg_id, rule, verdict, reason, points, reviewer, at FROM reviews \
             WHERE leg_id IN ({list}) ORDER BY rule"
        );
        let (violations, reviews) = on_pool!(self, p => {
            let mut vs: Vec<(String, ViolationRow)> = Vec::new();
            for r in bind_all!(sqlx::query(&vsql), &w.params).fetch_all(p).await? {
                vs.push((
                    r.try_get("leg_id")?,
                    ViolationRow {
                        rule: r.try_get("rule")?,
                        at: r.try_get("at")?,
                        detail: r.try_get("detail")?,
                    },
                ));
            }
            let mut rs = Vec::new();
            for r in bind_all!(sqlx::query(&rsql), &w.params).fetch_all(p).await? {
                rs.push(review_from_row!(&r));
            }
            (vs, rs)
        });
        let index: BTreeMap<String, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.clone(), i))
            .collect();
        for (leg_id, v) in violations {
            if let Some(&i) = index.get(&leg_id) {
                legs[i].leg.violations.push(v);
            }
        }
        for r in reviews {
            if let Some(&i) = index.get(&r.leg_id) {
                legs[i].reviews.push(r);
            }
        }
        Ok(())
    }

    /// One leg with its violations and verdicts, or `None`.
    pub async fn get_leg(&self, leg_id: &str) -> Result<Option<StoredLeg>, StoreError> {
        let sql = format!("SELECT {LEG_COLUMNS} FROM legs l WHERE l.leg_id = $1");
        let found = on_pool!(self, p => {
            match sqlx::query(&sql).bind(leg_id).fetch_optional(p).await? {
                Some(r) => {
                    let (leg, purged_at) = leg_from_row!(&r);
                    Some(StoredLeg { leg, reviews: Vec::new(), purged_at })
                }
                None => None,
            }
        });
        let Some(leg) = found else {
            return Ok(None);
        };
        let mut legs = [leg];
        self.attach_violations(&mut legs).await?;
        let [leg] = legs;
        Ok(Some(leg))
    }

    /// The stored SIP messages of a leg, in capture order.
    pub async fn sip_messages(&self, leg_id: &str) -> Result<Vec<SipRow>, StoreError> {
        on_pool!(self, p => {
            let rows = sqlx::query(
                "SELECT at, src, dst, transport, first_line, raw FROM sip_messages \
                 WHERE leg_id = $1 ORDER BY seq",
            )
            .bind(leg_id)
            .fetch_all(p)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                out.push(SipRow {
                    at: r.try_get("at")?,
                    src: r.try_get("src")?,
                    dst: r.try_get("dst")?,
                    transport: r.try_get("transport")?,
                    first_line: r.try_get("first_line")?,
                    raw: r.try_get("raw")?,
                });
            }
            Ok(out)
        })
    }

    /// Records a verdict on the leg's violations (`rule`: one of them; `None`: all of
    /// them), each with its points frozen from `points_of`, and one audit row per
    /// violation, in one transaction. Returns the verdicts now in force.
    #[allow(clippy::too_many_arguments)]
    pub async fn set_verdict(
        &self,
        leg_id: &str,
        rule: Option<&str>,
        verdict: Verdict,
        reason: &str,
        points_of: &(dyn Fn(&str) -> i64 + Sync),
        reviewer: &str,
        at: i64,
    ) -> Result<Vec<Review>, StoreError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let exists = sqlx::query("SELECT 1 AS one FROM legs WHERE leg_id = $1")
                .bind(leg_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                return Err(StoreError::NotFound);
            }
            let mut rules: Vec<String> = Vec::new();
            for r in sqlx::query("SELECT rule FROM violations WHERE leg_id = $1 ORDER BY rule")
                .bind(leg_id)
                .fetch_all(&mut *tx)
                .await?
            {
                rules.push(r.try_get("rule")?);
            }
            if let Some(rule) = rule {
                if !rules.iter().any(|r| r == rule) {
                    return Err(StoreError::Invalid(format!(
                        "the leg has no {rule} violation"
                    )));
                }
                rules.retain(|r| r == rule);
            }
            if rules.is_empty() {
                return Err(StoreError::Invalid("the leg has no violation".into()));
            }
            let mut out = Vec::new();
            for rule in &rules {
                let points = match verdict {
                    Verdict::Confirmed => points_of(rule),
                    Verdict::Dismissed => 0,
                };
                sqlx::query(
                    "INSERT INTO reviews (leg_id, rule, verdict, reason, points, reviewer, at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (leg_id, rule) DO UPDATE \
                     SET verdict = excluded.verdict, reason = excluded.reason, \
                     points = excluded.points, reviewer = excluded.reviewer, at = excluded.at",
                )
                .bind(leg_id)
                .bind(rule)
                .bind(verdict.as_str())
                .bind(reason)
                .bind(points)
                .bind(reviewer)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO audit (at, username, action, leg_id, rule, verdict, reason, \
                     detail) VALUES ($1, $2, 'verdict', $3, $4, $5, $6, $7)",
                )
                .bind(at)
                .bind(reviewer)
                .bind(leg_id)
                .bind(rule)
                .bind(verdict.as_str())
                .bind(reason)
                .bind(format!("points {points}"))
                .execute(&mut *tx)
                .await?;
                out.push(Review {
                    leg_id: leg_id.into(),
                    rule: rule.clone(),
                    verdict: verdict.as_str().into(),
                    reason: reason.into(),
                    points,
                    reviewer: reviewer.into(),
                    at,
                });
            }
            sqlx::query(super::RECOUNT_PENDING)
                .bind(leg_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Appends one row to the audit trail.
    pub async fn audit(&self, e: &AuditNew) -> Result<(), StoreError> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO audit (at, username, action, leg_id, rule, verdict, reason, \
                 detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(e.at)
            .bind(&e.username)
            .bind(&e.action)
            .bind(&e.leg_id)
            .bind(&e.rule)
            .bind(&e.verdict)
            .bind(&e.reason)
            .bind(&e.detail)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The audit trail, newest first.
    pub async fn list_audit(&self, f: &AuditFilter) -> Result<Page<AuditEntry>, StoreError> {
        let mut w = Where::new();
        if let Some(leg) = &f.leg_id {
            let p = w.bind(Param::Text(leg.clone()));
            w.and(&format!("leg_id = {p}"));
        }
        if let Some(u) = &f.username {
            let p = w.bind(Param::Text(u.clone()));
            w.and(&format!("username = {p}"));
        }
        if let Some(a) = &f.action {
            let p = w.bind(Param::Text(a.clone()));
            w.and(&format!("action = {p}"));
        }
        let count_sql = format!("SELECT COUNT(*) AS n FROM audit{}", w.sql);
        let n_count = w.params.len();
        let lim = w.bind(Param::Int(f.limit.clamp(0, 10_000)));
        let off = w.bind(Param::Int(f.offset.max(0)));
        let sql = format!(
            "SELECT id, at, username, action, leg_id, rule, verdict, reason, detail FROM audit{} \
             ORDER BY id DESC LIMIT {lim} OFFSET {off}",
            w.sql
        );
        on_pool!(self, p => {
            let total: i64 = bind_all!(sqlx::query(&count_sql), &w.params[..n_count])
                .fetch_one(p)
                .await?
                .try_get("n")?;
            let mut items = Vec::new();
            for r in bind_all!(sqlx::query(&sql), &w.params).fetch_all(p).await? {
                items.push(audit_from_row!(&r));
            }
            Ok(Page {
                items,
                total,
                total_exact: true,
                next: None,
            })
        })
    }

    /// Per-agent figures for legs invited in `[from, to)`: inbound legs, answered,
    /// service level parts (answered within `threshold_ms` over legs that stopped
    /// ringing, leaving out legs cancelled within the threshold and fork branches whose
    /// sibling was answered), and violations by verdict.
    pub async fn scorecards(
        &self,
        from: i64,
        to: i64,
        threshold_ms: i64,
        agent: Option<&str>,
        team: Option<&str>,
    ) -> Result<Vec<ScoreRow>, StoreError> {
        let mut w = Where::new();
        let pf = w.bind(Param::Int(from));
        let pt = w.bind(Param::Int(to));
        w.and(&format!("l.invite_at >= {pf} AND l.invite_at < {pt}"));
        if let Some(a) = agent {
            let p = w.bind(Param::Text(a.into()));
            w.and(&format!("(l.agent_id = {p} OR l.agent = {p})"));
        }
        if let Some(t) = team {
            let p = w.bind(Param::Text(t.into()));
            w.and(&format!("l.team = {p}"));
        }
        let n_base = w.params.len();
        let thr = w.bind(Param::Int(threshold_ms));
        let legs_sql = format!(
            "SELECT l.agent_id AS agent_id, MAX(l.agent_name) AS agent_name, \
             MAX(l.team) AS team, \
             CAST(COALESCE(SUM(CASE WHEN l.direction = 'inbound' THEN 1 ELSE 0 END), 0) \
             AS BIGINT) AS inbound, \
             CAST(COALESCE(SUM(CASE WHEN l.direction = 'inbound' AND l.outcome = 'answered' \
             THEN 1 ELSE 0 END), 0) AS BIGINT) AS answered, \
             CAST(COALESCE(SUM(CASE WHEN l.direction = 'inbound' AND l.outcome = 'answered' \
             AND l.ring_ms <= {thr} THEN 1 ELSE 0 END), 0) AS BIGINT) AS sl_within, \
             CAST(COALESCE(SUM(CASE WHEN l.direction = 'inbound' AND l.ring_ms IS NOT NULL \
             AND l.outcome IS NOT NULL AND NOT (l.outcome = 'cancelled' AND \
             (l.ring_ms <= {thr} OR EXISTS (SELECT 1 FROM legs s WHERE s.call_id = l.call_id \
             AND s.leg_id <> l.leg_id AND s.outcome = 'answered'))) THEN 1 ELSE 0 END), 0) \
             AS BIGINT) AS sl_total \
             FROM legs l{} GROUP BY l.agent_id ORDER BY l.agent_id",
            w.sql
        );
        let reviews_sql = format!(
            "SELECT l.agent_id AS agent_id, r.rule AS rule, r.verdict AS verdict, \
             COUNT(*) AS n, CAST(COALESCE(SUM(r.points), 0) AS BIGINT) AS points \
             FROM reviews r JOIN legs l ON l.leg_id = r.leg_id{} \
             GROUP BY l.agent_id, r.rule, r.verdict",
            w.sql
        );
        let pending_sql = format!(
            "SELECT l.agent_id AS agent_id, COUNT(*) AS n FROM violations v \
             JOIN legs l ON l.leg_id = v.leg_id \
             LEFT JOIN reviews r ON r.leg_id = v.leg_id AND r.rule = v.rule{} \
             AND r.leg_id IS NULL GROUP BY l.agent_id",
            w.sql
        );
        let mut rows: BTreeMap<String, ScoreRow> = BTreeMap::new();
        on_pool!(self, p => {
            for r in bind_all!(sqlx::query(&legs_sql), &w.params).fetch_all(p).await? {
                let agent_id: String = r.try_get("agent_id")?;
                rows.insert(
                    agent_id.clone(),
                    ScoreRow {
                        agent_id,
                        agent_name: r.try_get("agent_name")?,
                        team: r.try_get("team")?,
                        inbound: r.try_get("inbound")?,
                        answered: r.try_get("answered")?,
                        sl_within: r.try_get("sl_within")?,
                        sl_total: r.try_get("sl_total")?,
                        ..ScoreRow::default()
                    },
                );
            }
            for r in bind_all!(sqlx::query(&reviews_sql), &w.params[..n_base])
                .fetch_all(p)
                .await?
            {
                let agent_id: String = r.try_get("agent_id")?;
                let rule: String = r.try_get("rule")?;
                let verdict: String = r.try_get("verdict")?;
                let n: i64 = r.try_get("n")?;
                let points: i64 = r.try_get("points")?;
                if let Some(row) = rows.get_mut(&agent_id) {
                    if verdict == "confirmed" {
                        let e = row.confirmed.entry(rule).or_default();
                        e.0 += n;
                        e.1 += points;
                    } else {
                        row.dismissed += n;
                    }
                }
            }
            for r in bind_all!(sqlx::query(&pending_sql), &w.params[..n_base])
                .fetch_all(p)
                .await?
            {
                let agent_id: String = r.try_get("agent_id")?;
                let n: i64 = r.try_get("n")?;
                if let Some(row) = rows.get_mut(&agent_id) {
                    row.pending += n;
                }
            }
        });
        Ok(rows.into_values().collect())
    }

    /// How many legs are stored (all, and flagged).
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        on_pool!(self, p => {
            let r = sqlx::query(
                "SELECT COUNT(*) AS n, \
                 CAST(COALESCE(SUM(CASE WHEN flagged THEN 1 ELSE 0 END), 0) AS BIGINT) AS f \
                 FROM legs",
            )
            .fetch_one(p)
            .await?;
            Ok((r.try_get("n")?, r.try_get("f")?))
        })
    }
}
