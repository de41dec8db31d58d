//! The flagged-call store (SPEC §7): SQLite (a file, the default) or PostgreSQL (several
//! capture nodes writing one database), through `sqlx`. One migration set per backend
//! (`migrations/sqlite`, `migrations/postgres`: same tables, same meaning) is applied when
//! the store opens.
//!
//! Input comes from the store sink's writer ([`crate::sinks::store`]) as batches of
//! [`LegWrite`]s, upserted by `leg_id` so that a leg seen by two nodes, or replayed from
//! the spool after a crash, is one row. Output goes to the inspectors' API through
//! [`query`]. The retention purge ([`Store::purge`]) removes SIP text and media only:
//! legs, violations, verdicts and the audit trail stay, so past scorecards never change.
//!
//! Both backends run the same SQL (`$N` placeholders work on both); [`on_pool!`] expands
//! each statement once per backend so each gets its native types.

pub mod model;
pub mod query;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

pub use model::{HoldRow, LegRow, LegWrite, SipRow, ViolationRow};

/// What went wrong with the store, with the statement or URL at fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: cannot open {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store: cannot create the folder {path}: {source}")]
    Folder {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("store: {0}")]
    Db(#[from] sqlx::Error),
    #[error("store: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("not found")]
    NotFound,
    #[error("invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    /// A failure worth another try: lock contention, a deadlock or serialization
    /// failure between two nodes, a dropped connection.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(sqlx::Error::Database(e)) => {
                let code = e.code().unwrap_or_default();
                // SQLite BUSY/LOCKED; PostgreSQL serialization_failure, deadlock_detected,
                // connection exceptions (class 08), the server shutting down or starting
                // up (57P01-57P03).
                matches!(
                    code.as_ref(),
                    "5" | "6" | "517" | "262" | "40001" | "40P01" | "57P01" | "57P02" | "57P03"
                ) || code.starts_with("08")
            }
            StoreError::Db(sqlx::Error::Io(_))
            | StoreError::Db(sqlx::Error::Tls(_))
            | StoreError::Db(sqlx::Error::Protocol(_))
            | StoreError::Db(sqlx::Error::WorkerCrashed)
            | StoreError::Db(sqlx::Error::PoolTimedOut)
            | StoreError::Db(sqlx::Error::PoolClosed) => true,
            _ => false,
        }
    }
}

/// Which database the URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$p` bound to the backend's pool: the body is compiled once per
/// backend, so rows and binds use each driver's native types.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::store::Pool::Sqlite($p) => $body,
            $crate::store::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Bound parameters one statement may carry: SQLite's default limit
/// (SQLITE_MAX_VARIABLE_NUMBER, 32,766 since 3.32) and PostgreSQL's (65,535).
const SQLITE_MAX_PARAMS: usize = 32_766;
const PG_MAX_PARAMS: usize = 65_535;

/// Columns bound per row of each multi-row statement of [`write_run!`].
const LEG_BINDS: usize = 26;
const VIOLATION_BINDS: usize = 4;
const SIP_BINDS: usize = 8;

/// Writes one run of distinct legs (sorted by `leg_id`) in the open transaction `$tx`:
/// multi-row statements (legs, violations, the pending recount, the SIP messages),
/// each within `$max` bound parameters, instead of one statement per row.
macro_rules! write_run {
    ($tx:expr, $run:expr, $now:expr, $max:expr) => {{
        let run: &[(&LegWrite, String, Option<String>)] = $run;
        let max: usize = $max;
        for chunk in run.chunks((max / LEG_BINDS).max(1)) {
            let mut q = sqlx::QueryBuilder::new(UPSERT_LEG_HEAD);
            q.push_values(chunk, |mut b, (w, holds, media)| {
                let l = &w.leg;
                b.push_bind(&l.leg_id)
                    .push_bind(&l.call_id)
                    .push_bind(&l.linked_call_id)
                    .push_bind(&l.agent)
                    .push_bind(&l.agent_id)
                    .push_bind(&l.agent_name)
                    .push_bind(&l.team)
                    .push_bind(&l.direction)
                    .push_bind(&l.customer)
                    .push_bind(l.customer_is_internal)
                    .push_bind(l.invite_at)
                    .push_bind(l.ring_start_at)
                    .push_bind(l.answered_at)
                    .push_bind(l.ended_at)
                    .push_bind(l.ring_ms)
                    .push_bind(&l.outcome)
                    .push_bind(&l.hangup_by)
                    .push_bind(&l.survey)
                    .push_bind(l.glare)
                    .push_bind(l.hold_ms)
                    .push_bind(&l.end_reason)
                    .push_bind(holds.as_str())
                    .push_bind(media.as_deref())
                    .push_bind(l.flagged())
                    .push_bind(&l.node)
                    .push_bind($now);
            });
            q.push(UPSERT_LEG_TAIL);
            q.build().execute(&mut *$tx).await?;
        }
        let violations: Vec<(&str, &ViolationRow)> = run
            .iter()
            .flat_map(|(w, _, _)| {
                w.leg
                    .violations
                    .iter()
                    .map(move |v| (w.leg.leg_id.as_str(), v))
            })
            .collect();
        for chunk in violations.chunks((max / VIOLATION_BINDS).max(1)) {
            let mut q =
                sqlx::QueryBuilder::new("INSERT INTO violations (leg_id, rule, at, detail) ");
            q.push_values(chunk, |mut b, (leg_id, v)| {
                b.push_bind(*leg_id)
                    .push_bind(&v.rule)
                    .push_bind(v.at)
                    .push_bind(&v.detail);
            });
            q.push(" ON CONFLICT (leg_id, rule) DO NOTHING");
            q.build().execute(&mut *$tx).await?;
        }
        let flagged: Vec<&str> = run
            .iter()
            .filter(|(w, _, _)| !w.leg.violations.is_empty())
            .map(|(w, _, _)| w.leg.leg_id.as_str())
            .collect();
        for chunk in flagged.chunks(max.max(1)) {
            let mut q = sqlx::QueryBuilder::new(RECOUNT_PENDING_IN);
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *$tx).await?;
        }
        // SIP messages replace the stored ones, except on a purged leg.
        let with_sip: Vec<&str> = run
            .iter()
            .filter(|(w, _, _)| w.sip.is_some())
            .map(|(w, _, _)| w.leg.leg_id.as_str())
            .collect();
        let mut live: std::collections::HashSet<String> = std::collections::HashSet::new();
        for chunk in with_sip.chunks(max.max(1)) {
            let mut q = sqlx::QueryBuilder::new(
                "SELECT leg_id FROM legs WHERE purged_at IS NULL AND leg_id IN (",
            );
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")");
            for r in q.build().fetch_all(&mut *$tx).await? {
                live.insert(r.try_get("leg_id")?);
            }
        }
        let live_ids: Vec<&str> = with_sip
            .iter()
            .copied()
            .filter(|id| live.contains(*id))
            .collect();
        for chunk in live_ids.chunks(max.max(1)) {
            let mut q = sqlx::QueryBuilder::new("DELETE FROM sip_messages WHERE leg_id IN (");
            let mut ids = q.separated(", ");
            for id in chunk {
                ids.push_bind(*id);
            }
            q.push(")");
            q.build().execute(&mut *$tx).await?;
        }
        let messages: Vec<(&str, i64, &SipRow)> = run
            .iter()
            .filter(|(w, _, _)| live.contains(&w.leg.leg_id))
            .flat_map(|(w, _, _)| {
                let id = w.leg.leg_id.as_str();
                w.sip
                    .iter()
                    .flatten()
                    .enumerate()
                    .map(move |(seq, m)| (id, seq as i64, m))
            })
            .collect();
        for chunk in messages.chunks((max / SIP_BINDS).max(1)) {
            let mut q = sqlx::QueryBuilder::new(
                "INSERT INTO sip_messages (leg_id, seq, at, src, dst, transport, first_line, raw) ",
            );
            q.push_values(chunk, |mut b, (leg_id, seq, m)| {
                b.push_bind(*leg_id)
                    .push_bind(*seq)
                    .push_bind(m.at)
                    .push_bind(&m.src)
                    .push_bind(&m.dst)
                    .push_bind(&m.transport)
                    .push_bind(&m.first_line)
                    .push_bind(&m.raw);
            });
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// A handle on the database (cheap to clone: the pool is shared).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) pool: Pool,
    backend: Backend,
}

/// The file a `sqlite:` URL names, when it names one (not `:memory:`).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path.starts_with(":memory:") {
        None
    } else {
        Some(PathBuf::from(path))
    }
}

impl Store {
    /// Opens the database at `url` (creating a SQLite file and its folder when missing)
    /// and applies the backend's migrations.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let store = match Backend::of_url(url) {
            Some(Backend::Sqlite) => {
                if let Some(parent) = sqlite_path(url).as_deref().and_then(Path::parent) {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent).map_err(|source| StoreError::Folder {
                            path: parent.to_path_buf(),
                            source,
                        })?;
                    }
                }
                let opts = SqliteConnectOptions::from_str(url)
                    .map_err(open_err)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(opts)
                    .await
                    .map_err(open_err)?;
                // Customer numbers and SIP text: readable by the daemon's user only
                // (SQLite gives its WAL and shared-memory files the same mode).
                #[cfg(unix)]
                if let Some(path) = sqlite_path(url) {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                }
                Store {
                    pool: Pool::Sqlite(pool),
                    backend: Backend::Sqlite,
                }
            }
            Some(Backend::Postgres) => {
                // A server that went away fails a write within 10 s (the pool keeps
                // trying to connect until then); the writer retries it.
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(open_err)?;
                Store {
                    pool: Pool::Postgres(pool),
                    backend: Backend::Postgres,
                }
            }
            None => {
                return Err(StoreError::Invalid(format!(
                    "store.url {:?} is neither sqlite: nor postgres://",
                    redact_url(url)
                )))
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations. PostgreSQL serialises concurrent runs with an advisory
    /// lock; SQLite has none, so runs of this process take turns and a run that lost a
    /// race with another process tries again once that one is done.
    async fn migrate(&self) -> Result<(), StoreError> {
        static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
        let _turn = TURN.lock().await;
        let mut tries = 0;
        loop {
            let r = match &self.pool {
                Pool::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await,
                Pool::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await,
            };
            match r {
                Ok(()) => return Ok(()),
                Err(e) if tries < 5 && self.backend == Backend::Sqlite => {
                    tries += 1;
                    tracing::debug!("store: migration attempt {tries} failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, p => {
            sqlx::query("SELECT 1").execute(p).await?;
        });
        Ok(())
    }

    /// Closes the pool (waits for connections in use).
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }

    /// Upserts a batch in one transaction. A leg is keyed by `leg_id`: a second write
    /// (another node, a replay) updates the row; violations are merged (a node that saw
    /// less never removes one), SIP messages are replaced when the write carries them,
    /// and nothing is written back into a purged leg's SIP text or media.
    pub async fn write_batch(&self, batch: &[LegWrite]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // The same lock order on every node: two nodes writing overlapping batches to
        // PostgreSQL cannot deadlock. Stable, so two writes of one leg keep their order.
        let mut order: Vec<&LegWrite> = batch.iter().collect();
        order.sort_by(|a, b| a.leg.leg_id.cmp(&b.leg.leg_id));
        let now = wall_micros();
        let mut encoded = Vec::with_capacity(order.len());
        for w in &order {
            let holds = serde_json::to_string(&w.leg.holds)?;
            let media = match &w.leg.media {
                Some(m) => Some(serde_json::to_string(m)?),
                None => None,
            };
            encoded.push((holds, media));
        }
        let rows: Vec<(&LegWrite, String, Option<String>)> = order
            .iter()
            .zip(encoded)
            .map(|(w, (holds, media))| (*w, holds, media))
            .collect();
        // Runs of distinct legs: one multi-row statement may not touch a row twice
        // (PostgreSQL refuses it), so a second write of one leg starts the next run.
        let mut runs: Vec<&[(&LegWrite, String, Option<String>)]> = Vec::new();
        let mut start = 0;
        for i in 1..=rows.len() {
            if i == rows.len() || rows[i].0.leg.leg_id == rows[i - 1].0.leg.leg_id {
                runs.push(&rows[start..i]);
                start = i;
            }
        }
        let max_params = match self.backend {
            Backend::Sqlite => SQLITE_MAX_PARAMS,
            Backend::Postgres => PG_MAX_PARAMS,
        };
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            for run in runs {
                write_run!(&mut *tx, run, now, max_params);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Removes the SIP text and media of legs invited before `cutoff` (capture
    /// microseconds, UTC). Legs, violations, verdicts and the audit trail stay.
    pub async fn purge(&self, cutoff: i64) -> Result<PurgeReport, StoreError> {
        let now = wall_micros();
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let sip = sqlx::query(
                "DELETE FROM sip_messages WHERE leg_id IN \
                 (SELECT leg_id FROM legs WHERE invite_at < $1)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let legs = sqlx::query(
                "UPDATE legs SET media = NULL, purged_at = $2 \
                 WHERE invite_at < $1 AND purged_at IS NULL",
            )
            .bind(cutoff)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok(PurgeReport {
                sip_messages: sip,
                legs,
            })
        })
    }
}

/// What a purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub sip_messages: u64,
    /// Legs whose media and SIP text were dropped by this run.
    pub legs: u64,
}

/// The upsert of legs, around its rows (`VALUES (...), (...)`): a second write of a leg
/// updates it; violations only add (`flagged` never goes back), a purged leg's media
/// stays empty.
const UPSERT_LEG_HEAD: &str =
    "INSERT INTO legs (leg_id, call_id, linked_call_id, agent, agent_id, \
     agent_name, team, direction, customer, customer_is_internal, invite_at, ring_start_at, \
     answered_at, ended_at, ring_ms, outcome, hangup_by, survey, glare, hold_ms, end_reason, \
     holds, media, flagged, node, stored_at) ";
const UPSERT_LEG_TAIL: &str = " ON CONFLICT (leg_id) DO UPDATE SET \
     call_id = excluded.call_id, linked_call_id = excluded.linked_call_id, \
     agent = excluded.agent, agent_id = excluded.agent_id, agent_name = excluded.agent_name, \
     team = excluded.team, direction = excluded.direction, customer = excluded.customer, \
     customer_is_internal = excluded.customer_is_internal, invite_at = excluded.invite_at, \
     ring_start_at = excluded.ring_start_at, answered_at = excluded.answered_at, \
     ended_at = excluded.ended_at, ring_ms = excluded.ring_ms, outcome = excluded.outcome, \
     hangup_by = excluded.hangup_by, survey = excluded.survey, glare = excluded.glare, \
     hold_ms = excluded.hold_ms, end_reason = excluded.end_reason, holds = excluded.holds, \
     media = CASE WHEN legs.purged_at IS NULL THEN COALESCE(excluded.media, legs.media) \
     ELSE NULL END, \
     flagged = (legs.flagged OR excluded.flagged), node = excluded.node, \
     stored_at = excluded.stored_at";

/// Recounts `legs.pending` (violations without a verdict) of leg `$1`: after its
/// violations or its verdicts change, in the same transaction.
pub(crate) const RECOUNT_PENDING: &str = "UPDATE legs SET pending = (SELECT COUNT(*) \
     FROM violations v WHERE v.leg_id = legs.leg_id AND NOT EXISTS (SELECT 1 FROM reviews r \
     WHERE r.leg_id = v.leg_id AND r.rule = v.rule)) WHERE leg_id = $1";

/// [`RECOUNT_PENDING`] of the legs whose ids follow, comma-separated, then `)`.
const RECOUNT_PENDING_IN: &str = "UPDATE legs SET pending = (SELECT COUNT(*) \
     FROM violations v WHERE v.leg_id = legs.leg_id AND NOT EXISTS (SELECT 1 FROM reviews r \
     WHERE r.leg_id = v.leg_id AND r.rule = v.rule)) WHERE leg_id IN (";

/// Now, in microseconds since the Unix epoch (wall clock: the store's own bookkeeping,
/// never a leg's time).
pub fn wall_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            let user = cred.split(':').next().unwrap_or("");
            return format!("{scheme}://{user}:***@{host}");
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://data/callwatch.db"),
            Some(PathBuf::from("data/callwatch.db"))
        );
        assert_eq!(
            sqlite_path("sqlite:///var/lib/cw.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/cw.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    #[test]
    fn passwords_never_leave_in_messages() {
        assert_eq!(
            redact_url("postgres://cw:s3cret@db:5432/cw"),
            "postgres://cw:***@db:5432/cw"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
    }
}
