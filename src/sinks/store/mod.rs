//! The store sink: every ended leg's record goes to the database (SPEC §7), flagged
//! legs with their SIP messages and media summary, without ever making the engine wait.
//!
//! Path of a leg: the engine task hands `LegEnded` to [`StoreSink::on_event`], which
//! builds the [`LegWrite`] (plus, for a flagged leg, the SIP messages its Call-IDs
//! collected in the [`sip::SipBuffer`]) and appends it to the write-ahead [`spool`]
//! with one `write(2)`: that is the acknowledgement, and from then on the record
//! survives the process being killed. The writer task ([`run_writer`]) reads the spool
//! back, upserts batches in one transaction each and only then moves the spool's
//! checkpoint; after a crash it replays from the checkpoint and the upsert by `leg_id`
//! keeps each leg once.
//!
//! When-full policy: the spool holds at most `spool_max_bytes` not yet committed; a leg
//! beyond that is refused and counted in `callwatch_events_dropped_total{sink="store"}`
//! (and logged). The SIP text of open calls is kept in memory within a budget, spilled
//! to `<spool>/sip/` beyond it, and dropped (counted in
//! `callwatch_events_dropped_total{sink="store_sip"}`) when the disk budget is full too.
//!
//! Messages that arrive just after the leg ends (the 200 to the BYE) are caught by a
//! second write of a flagged leg `sip_linger` of capture time later, when more arrived.
//! The purge task applies `store.retention_days` once an hour.

pub mod sip;
pub mod spool;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{EventSink, Tick};
use crate::config::Validated;
use crate::engine::{Captured, Event, LegRecord};
use crate::sinks::metrics::Metrics;
use crate::store::{LegRow, LegWrite, Store, StoreError};
use sip::SipBuffer;
use spool::{SpoolReader, SpoolShared, SpoolWriter};

/// Tunables of the store path that are not configuration keys.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Most bytes spooled and not yet committed to the database.
    pub spool_max_bytes: u64,
    /// Spool segment size (a segment is deleted once the writer has passed it).
    pub segment_bytes: u64,
    /// Most legs per database transaction.
    pub batch: usize,
    /// Memory for the SIP text of open calls.
    pub sip_budget_bytes: usize,
    /// Disk for the SIP text of open calls beyond `sip_budget_bytes`.
    pub sip_spill_bytes: u64,
    /// Capture time after a flagged leg ends during which late SIP messages are added.
    pub sip_linger: Duration,
    /// Period of the retention purge.
    pub purge_every: Duration,
    /// This capture node's name, stored with each leg it writes.
    pub node: String,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            spool_max_bytes: 256 << 20,
            segment_bytes: 4 << 20,
            batch: 256,
            sip_budget_bytes: 64 << 20,
            sip_spill_bytes: 512 << 20,
            sip_linger: Duration::from_secs(4),
            purge_every: Duration::from_secs(3600),
            node: default_node_name(),
        }
    }
}

/// The host name, else "callwatch".
pub fn default_node_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "callwatch".into())
}

/// Counters of the writer task (shown to admins by the API), and the health of the
/// database as the writer sees it.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub legs_written: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    pub undecodable: AtomicU64,
    pub purged_legs: AtomicU64,
    /// False from a failed write or check until the next one that succeeds.
    pub down: AtomicBool,
    /// Exported as `callwatch_store_up`, `callwatch_store_errors_total` and
    /// `callwatch_store_backlog_bytes` when set.
    pub gauges: Option<StoreGauges>,
}

/// The metric handles the writer keeps current.
#[derive(Clone, Debug)]
pub struct StoreGauges {
    pub up: Gauge,
    pub errors: Counter,
    pub backlog_bytes: Gauge,
}

impl WriterStats {
    /// Stats that also drive the daemon's store metrics.
    pub fn with_metrics(metrics: &Metrics) -> WriterStats {
        let gauges = StoreGauges {
            up: metrics.store_up.clone(),
            errors: metrics.store_errors_total.clone(),
            backlog_bytes: metrics.store_backlog_bytes.clone(),
        };
        gauges.up.set(1);
        WriterStats {
            gauges: Some(gauges),
            ..WriterStats::default()
        }
    }

    /// Whether the database took the last write or check.
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    fn ok(&self, backlog: u64) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("store: the database takes writes again");
        }
        if let Some(g) = &self.gauges {
            g.up.set(1);
            g.backlog_bytes.set(backlog.min(i64::MAX as u64) as i64);
        }
    }

    fn failed(&self, backlog: u64) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        self.down.store(true, Ordering::Relaxed);
        if let Some(g) = &self.gauges {
            g.up.set(0);
            g.errors.inc();
            g.backlog_bytes.set(backlog.min(i64::MAX as u64) as i64);
        }
    }
}

/// A flagged leg whose late SIP messages are still awaited.
struct PendingSip {
    write: LegRow,
    call_ids: Vec<Vec<u8>>,
    count: usize,
    due: i64,
}

/// Most flagged legs awaiting late SIP messages; beyond, the oldest is written at once.
const MAX_PENDING: usize = 10_000;

/// The sink half: lives on the engine task.
pub struct StoreSink {
    spool: SpoolWriter,
    sip: SipBuffer,
    pending: Vec<PendingSip>,
    node: String,
    linger_us: i64,
    dropped: Counter,
    sip_dropped: Counter,
    /// `callwatch_store_sip_buffer_bytes` and `callwatch_store_sip_spill_bytes`.
    sip_buffer_bytes: Gauge,
    sip_spill_bytes: Gauge,
    last_warn: Option<std::time::Instant>,
    /// Keeps the spool folder claimed while the sink lives.
    _claim: Option<Arc<SpoolClaim>>,
}

impl StoreSink {
    /// `spill`: where the SIP text of open calls goes beyond its memory budget (None:
    /// it is dropped and counted).
    pub fn new(
        spool: SpoolWriter,
        spill: Option<sip::Spill>,
        metrics: &Metrics,
        opts: &StoreOptions,
        max_leg_ms: u64,
    ) -> StoreSink {
        let mut buffer = SipBuffer::new(
            opts.sip_budget_bytes,
            (max_leg_ms as i64)
                .saturating_add(120_000)
                .saturating_mul(1000),
        );
        if let Some(spill) = spill {
            buffer = buffer.with_spill(spill);
        }
        StoreSink {
            spool,
            sip: buffer,
            pending: Vec::new(),
            node: opts.node.clone(),
            linger_us: opts.sip_linger.as_micros().min(i64::MAX as u128) as i64,
            dropped: metrics.dropped("store"),
            sip_dropped: metrics.dropped("store_sip"),
            sip_buffer_bytes: metrics.store_sip_buffer_bytes.clone(),
            sip_spill_bytes: metrics.store_sip_spill_bytes.clone(),
            last_warn: None,
            _claim: None,
        }
    }

    fn call_ids(leg: &LegRecord) -> Vec<Vec<u8>> {
        let mut ids = vec![leg.call_id.clone()];
        if let Some(l) = &leg.linked_call_id {
            ids.push(l.clone());
        }
        ids
    }

    fn append(&mut self, w: &LegWrite) {
        let payload = match serde_json::to_vec(w) {
            Ok(p) => p,
            Err(e) => {
                self.dropped.inc();
                tracing::warn!(leg_id = %w.leg.leg_id, "store: cannot encode the leg: {e}");
                return;
            }
        };
        if let Err(e) = self.spool.append(&payload) {
            self.dropped.inc();
            // Logged at most once a minute: a full spool refuses every leg.
            let now = std::time::Instant::now();
            if self
                .last_warn
                .is_none_or(|t| now.duration_since(t) > Duration::from_secs(60))
            {
                self.last_warn = Some(now);
                tracing::warn!(leg_id = %w.leg.leg_id, "store: leg dropped: {e}");
            }
        }
    }

    fn flush_pending(&mut self, now: Option<i64>) {
        let mut i = 0;
        while i < self.pending.len() {
            if now.is_some_and(|n| n < self.pending[i].due) {
                i += 1;
                continue;
            }
            let p = self.pending.swap_remove(i);
            self.write_pending(p);
        }
    }

    /// Writes the leg again when its calls gathered SIP messages since it ended.
    fn write_pending(&mut self, p: PendingSip) {
        let ids: Vec<&[u8]> = p.call_ids.iter().map(Vec::as_slice).collect();
        if self.sip.count(&ids) > p.count {
            let sip = self.sip.messages(&ids);
            self.append(&LegWrite {
                leg: p.write,
                sip: Some(sip),
            });
        }
        for id in ids {
            self.sip.unpin(id);
        }
    }
}

impl EventSink for StoreSink {
    fn on_packet(&mut self, packet: &Captured<'_>) {
        self.sip.on_packet(packet);
    }

    fn on_event(&mut self, ev: &Event) {
        match ev {
            Event::LegRinging { leg, .. }
            | Event::LegAnswered { leg, .. }
            | Event::LegHeld { leg, .. }
            | Event::LegResumed { leg, .. }
            | Event::ViolationRaised { leg, .. } => {
                for id in Self::call_ids(leg) {
                    self.sip.leg_open(&id, &leg.leg_id);
                }
            }
            Event::LegEnded { leg, .. } => {
                let call_ids = Self::call_ids(leg);
                for id in &call_ids {
                    self.sip.leg_closed(id, &leg.leg_id);
                }
                let row = LegRow::from_record(leg, &self.node);
                if !row.flagged() {
                    self.append(&LegWrite {
                        leg: row,
                        sip: None,
                    });
                    for id in &call_ids {
                        self.sip.written(id);
                    }
                    return;
                }
                let ids: Vec<&[u8]> = call_ids.iter().map(Vec::as_slice).collect();
                let sip = self.sip.messages(&ids);
                let count = sip.len();
                let ended = leg.ended_at.unwrap_or(leg.invite_at).0;
                self.append(&LegWrite {
                    leg: row.clone(),
                    sip: Some(sip),
                });
                if self.pending.len() >= MAX_PENDING {
                    // The oldest is written now with what it has.
                    let oldest = (0..self.pending.len()).min_by_key(|&i| self.pending[i].due);
                    if let Some(i) = oldest {
                        let p = self.pending.swap_remove(i);
                        self.write_pending(p);
                    }
                }
                for id in &call_ids {
                    self.sip.pin(id);
                }
                self.pending.push(PendingSip {
                    write: row,
                    call_ids,
                    count,
                    due: ended.saturating_add(self.linger_us),
                });
            }
            Event::AgentRegistration(_) => {}
        }
    }

    fn on_tick(&mut self, tick: &Tick<'_>) {
        if let Some(now) = tick.now {
            self.flush_pending(Some(now.0));
            self.sip.expire(now.0);
        }
        let d = self.sip.take_drops();
        if d.messages > 0 {
            self.sip_dropped.inc_by(d.messages);
        }
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.sip_buffer_bytes.set(gauge(self.sip.bytes() as u64));
        self.sip_spill_bytes.set(gauge(self.sip.spilled_bytes()));
    }
}

impl Drop for StoreSink {
    /// The engine task is ending (shutdown): flagged legs waiting for late SIP
    /// messages are written with what arrived.
    fn drop(&mut self) {
        self.flush_pending(None);
    }
}

/// Where the daemon keeps its own files: `store.data_dir`, else the SQLite file's
/// folder, else `data`.
pub fn data_dir(cfg: &Validated) -> PathBuf {
    if !cfg.raw.store.data_dir.is_empty() {
        return PathBuf::from(&cfg.raw.store.data_dir);
    }
    crate::store::sqlite_path(&cfg.raw.store.url)
        .and_then(|p| p.parent().map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("data"))
}

/// Spool folders in use by store services of this process (tests run several daemons
/// on one data folder).
static CLAIMED: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A spool folder this process uses; released when dropped.
#[derive(Debug)]
struct SpoolClaim(PathBuf);

impl Drop for SpoolClaim {
    fn drop(&mut self) {
        if let Ok(mut c) = CLAIMED.lock() {
            c.remove(&self.0);
        }
    }
}

/// The first spool folder of `data` (`spool`, then `spool.1`, ...) that no other store
/// of this process and no other live process uses. A folder left by a dead process is
/// taken over and replayed.
fn claim_spool_dir(data: &std::path::Path) -> std::io::Result<SpoolClaim> {
    let me = std::process::id();
    for n in 0..64 {
        let dir = if n == 0 {
            data.join("spool")
        } else {
            data.join(format!("spool.{n}"))
        };
        let mut claimed = CLAIMED
            .lock()
            .map_err(|_| std::io::Error::other("spool registry poisoned"))?;
        if claimed.contains(&dir) {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join("owner"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        if owner.is_some_and(|pid| pid != me && PathBuf::from(format!("/proc/{pid}")).exists()) {
            continue;
        }
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("owner"), format!("{me}\n"))?;
        claimed.insert(dir.clone());
        return Ok(SpoolClaim(dir));
    }
    Err(std::io::Error::other(format!(
        "every spool folder of {} is in use",
        data.display()
    )))
}

/// The running store path: the database handle, the writer and purge tasks.
pub struct StoreService {
    store: Store,
    stop: watch::Sender<bool>,
    writer: JoinHandle<()>,
    purge: JoinHandle<()>,
    shared: Arc<SpoolShared>,
    stats: Arc<WriterStats>,
    _claim: Arc<SpoolClaim>,
}

impl StoreService {
    /// Opens the database (migrations applied) and the spool in `<data_dir>/spool`,
    /// starts the writer (which first replays what an earlier run left) and the
    /// purge job, and returns the sink for the engine task.
    pub async fn start(
        cfg: &Validated,
        metrics: &Metrics,
        opts: StoreOptions,
    ) -> Result<(StoreService, StoreSink), StoreError> {
        let store = Store::open(&cfg.raw.store.url).await?;
        let data = data_dir(cfg);
        let claim = Arc::new(claim_spool_dir(&data).map_err(|source| StoreError::Folder {
            path: data.clone(),
            source,
        })?);
        let dir = claim.0.clone();
        let (writer, reader) = spool::open(&dir, opts.spool_max_bytes, opts.segment_bytes)
            .map_err(|source| StoreError::Folder {
                path: dir.clone(),
                source,
            })?;
        let shared = writer.shared().clone();
        let spill = match sip::Spill::open(dir.join("sip"), opts.sip_spill_bytes) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!("store: no SIP spill folder, over-budget SIP text is dropped: {e}");
                None
            }
        };
        let mut sink = StoreSink::new(writer, spill, metrics, &opts, cfg.raw.engine.max_leg_ms);
        sink._claim = Some(claim.clone());
        let (stop, stop_rx) = watch::channel(false);
        let stats = Arc::new(WriterStats::with_metrics(metrics));
        let writer = tokio::spawn(run_writer(
            store.clone(),
            reader,
            opts.batch,
            stop_rx.clone(),
            stats.clone(),
        ));
        let retention_us = i64::from(cfg.raw.store.retention_days) * 86_400 * 1_000_000;
        let purge = tokio::spawn(run_purge(
            store.clone(),
            retention_us,
            opts.purge_every,
            stop_rx,
            stats.clone(),
        ));
        tracing::info!(
            backend = store.backend().as_str(),
            url = %crate::store::redact_url(&cfg.raw.store.url),
            spool = %dir.display(),
            "store open"
        );
        Ok((
            StoreService {
                store,
                stop,
                writer,
                purge,
                shared,
                stats,
                _claim: claim,
            },
            sink,
        ))
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    pub fn stats(&self) -> Arc<WriterStats> {
        self.stats.clone()
    }

    pub fn spool(&self) -> Arc<SpoolShared> {
        self.shared.clone()
    }

    /// Stops after the writer has committed what is spooled (the sink must be gone:
    /// the engine task ended), waiting at most `grace`; what is left stays in the
    /// spool for the next start.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(true);
        self.shared.notify.notify_one();
        let mut writer = self.writer;
        if tokio::time::timeout(grace, &mut writer).await.is_err() {
            tracing::warn!("store: the writer did not finish in time; the spool keeps the rest");
            writer.abort();
        }
        self.purge.abort();
        self.store.close().await;
    }
}

/// Longest wait between two tries while the database fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often an idle writer checks that the database still answers (so that
/// `callwatch_store_up` falls when it goes away between calls).
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// After a batch that did not fill, the writer waits this long before reading again
/// (group commit): under a steady stream of ended legs each transaction then takes what
/// arrived meanwhile instead of one leg, and each one also costs a checkpoint write.
/// A leg reaches the database at most this much later; the spool holds it meanwhile.
const GROUP_COMMIT: Duration = Duration::from_millis(50);

/// Reads the spool, commits batches, moves the checkpoint; retries with backoff (at most
/// [`MAX_BACKOFF`]) while the database fails, the pool reconnecting by itself once it
/// is back. Once stopping, ends when the spool is empty.
pub async fn run_writer(
    store: Store,
    mut reader: SpoolReader,
    batch: usize,
    mut stop: watch::Receiver<bool>,
    stats: Arc<WriterStats>,
) {
    let shared = reader.shared().clone();
    let backlog = || shared.bytes.load(Ordering::Relaxed);
    let mut backoff = Duration::from_millis(250);
    let mut stopping = *stop.borrow();
    let mut last_contact = tokio::time::Instant::now();
    loop {
        let b = match reader.read(batch.max(1), 8 << 20) {
            Ok(b) => b,
            Err(e) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("store spool: read failed: {e}");
                if stopping {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if b.records.is_empty() {
            if stopping {
                return;
            }
            let due = if stats.is_up() { IDLE_CHECK } else { backoff };
            if last_contact.elapsed() >= due {
                last_contact = tokio::time::Instant::now();
                match store.ping().await {
                    Ok(()) => {
                        backoff = Duration::from_millis(250);
                        stats.ok(backlog());
                    }
                    Err(e) => {
                        if stats.is_up() {
                            tracing::warn!("store: the database does not answer: {e}");
                        }
                        stats.failed(backlog());
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            } else if let Some(g) = &stats.gauges {
                g.backlog_bytes.set(backlog().min(i64::MAX as u64) as i64);
            }
            tokio::select! {
                _ = shared.notify.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => stopping = true,
            }
            continue;
        }
        let mut writes = Vec::with_capacity(b.records.len());
        for r in &b.records {
            match serde_json::from_slice::<LegWrite>(r) {
                Ok(w) => writes.push(w),
                Err(e) => {
                    stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("store spool: undecodable record skipped: {e}");
                }
            }
        }
        let result = store.write_batch(&writes).await;
        last_contact = tokio::time::Instant::now();
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(250);
                stats
                    .legs_written
                    .fetch_add(writes.len() as u64, Ordering::Relaxed);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = reader.commit(&b) {
                    // The batch is stored; at worst it is replayed (and upserted) again.
                    tracing::warn!("store spool: checkpoint failed: {e}");
                }
                stats.ok(backlog());
                if b.records.len() < batch.max(1) && !stopping {
                    tokio::select! {
                        _ = tokio::time::sleep(GROUP_COMMIT) => {}
                        _ = stop.changed() => stopping = true,
                    }
                }
            }
            Err(e) => {
                // Logged once per outage, then at debug: the metrics tell the rest.
                if stats.is_up() {
                    tracing::warn!(
                        legs = writes.len(),
                        "store: batch not written, kept in the spool and retried: {e}"
                    );
                } else {
                    tracing::debug!(legs = writes.len(), "store: batch not written: {e}");
                }
                stats.failed(backlog());
                if stopping && !e.is_transient() {
                    return;
                }
                if stopping {
                    tokio::time::sleep(backoff).await;
                } else {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.changed() => stopping = true,
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Removes SIP text and media older than the retention, now and every `every`.
async fn run_purge(
    store: Store,
    retention_us: i64,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    stats: Arc<WriterStats>,
) {
    loop {
        let cutoff = crate::store::wall_micros().saturating_sub(retention_us);
        match store.purge(cutoff).await {
            Ok(r) => {
                stats.purged_legs.fetch_add(r.legs, Ordering::Relaxed);
                if r.legs > 0 || r.sip_messages > 0 {
                    tracing::info!(
                        legs = r.legs,
                        sip_messages = r.sip_messages,
                        "store: retention purge"
                    );
                }
            }
            Err(e) => tracing::warn!("store: retention purge failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            r = stop.changed() => if r.is_err() || *stop.borrow() { return },
        }
    }
}
