//! Store benchmark, run by a person (not in CI): `scripts/bench_store.sh` runs it on
//! SQLite and on a throwaway PostgreSQL.
//!
//! 1. **Write throughput**: flagged legs, each with `--sip-messages` SIP messages of
//!    about 800 bytes, go through the daemon's real path: encoded and appended to the
//!    write-ahead spool (as the store sink does on the engine task), then committed by
//!    the writer task ([`run_writer`]: batches of 256 legs, one transaction each). The
//!    figure is legs committed per second, spool full at the start (the writer's pace,
//!    not the engine's); the append rate is printed beside it.
//! 2. **List latency** with `--legs` stored legs (1,000,000 by default, 20 % flagged):
//!    bulk-loaded (multi-row INSERTs, 1,000 rows a statement, one transaction per
//!    10,000 legs), then each query of the inspectors' list route (`GET /api/legs`:
//!    [`Store::list_legs`], which counts the matches up to 10,000 and reads one page of
//!    50 with the violations and verdicts) is timed `--runs` times: p50 and p99. Deep
//!    pages go as the API sends them: by keyset cursor (`next`), the last page as the
//!    first of `order=asc`, offsets up to the API's bound of 10,000 legs.
//!
//! ```sh
//! scripts/bench_store.sh                       # both backends, 1M legs
//! scripts/bench_store.sh --legs 100000 --runs 20
//! cargo run --release --example store_bench -- --backend sqlite
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callwatch::sinks::store::{run_writer, spool, WriterStats};
use callwatch::store::query::{Cursor, LegFilter, VerdictFilter};
use callwatch::store::{HoldRow, LegRow, LegWrite, SipRow, Store, ViolationRow};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "callwatch store benchmark: write throughput and list latency")]
struct Args {
    /// sqlite, postgres or both.
    #[arg(long, default_value = "both")]
    backend: String,
    /// PostgreSQL server URL (a database is created per run); default
    /// $CALLWATCH_TEST_PG_URL, which scripts/pg_test.sh sets.
    #[arg(long)]
    pg_url: Option<String>,
    /// Legs stored for the list-latency part (0: skip it).
    #[arg(long, default_value_t = 1_000_000)]
    legs: usize,
    /// Flagged legs written for the throughput part (0: skip it).
    #[arg(long, default_value_t = 10_000)]
    write_legs: usize,
    /// SIP messages per flagged leg in the throughput part.
    #[arg(long, default_value_t = 10)]
    sip_messages: usize,
    /// Timed runs per list query.
    #[arg(long, default_value_t = 50)]
    runs: usize,
    /// Work folder (SQLite files, spools); emptied first.
    #[arg(long, default_value = "target/store_bench")]
    dir: PathBuf,
}

/// 2026-11-26T09:00:00+08:00 in capture microseconds: the newest leg's invite.
const T0: i64 = 1_795_654_800_000_000;
const SEC: i64 = 1_000_000;
const DAY: i64 = 86_400 * SEC;
/// The loaded legs span this many days, newest at T0.
const SPAN_DAYS: i64 = 180;
const AGENTS: usize = 200;
const RULES: [&str; 7] = [
    "late_answer",
    "agent_hangup_first",
    "survey_missing",
    "long_hold",
    "poor_audio",
    "one_way_audio",
    "personal_call",
];

/// A fast deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn agent_of(i: usize) -> String {
    format!("{}", 8001 + (i * 7919) % AGENTS)
}

fn team_of(agent: &str) -> String {
    let n: usize = agent.parse().unwrap_or(8001);
    format!("T{}", (n - 8001) / 20)
}

/// Leg `i` of `n`: invites spread over [`SPAN_DAYS`], one in five flagged.
fn leg(i: usize, n: usize, rng: &mut Rng) -> LegRow {
    let step = SPAN_DAYS * DAY / n.max(1) as i64;
    let invite = T0 - (n - i) as i64 * step;
    let agent = agent_of(i);
    let flagged = i % 5 == 0;
    let mut violations = Vec::new();
    if flagged {
        let first = rng.below(RULES.len() as u64) as usize;
        violations.push(ViolationRow {
            rule: RULES[first].into(),
            at: invite + 10 * SEC,
            detail: "bench".into(),
        });
        if rng.below(4) == 0 {
            violations.push(ViolationRow {
                rule: RULES[(first + 1) % RULES.len()].into(),
                at: invite + 20 * SEC,
                detail: "bench".into(),
            });
        }
    }
    let answered = rng.below(10) < 8;
    LegRow {
        leg_id: format!("bench-{i:08}"),
        call_id: format!("call-{i:08}@bench"),
        linked_call_id: None,
        agent_id: format!("A{agent}"),
        agent_name: Some(format!("坐席{agent}")),
        team: Some(team_of(&agent)),
        agent,
        direction: if rng.below(10) < 8 {
            "inbound"
        } else {
            "outbound"
        }
        .into(),
        customer: Some(format!("138{:08}", rng.below(100_000_000))),
        customer_is_internal: false,
        invite_at: invite,
        ring_start_at: Some(invite + 100_000),
        answered_at: answered.then_some(invite + 4 * SEC),
        ended_at: Some(invite + 60 * SEC),
        ring_ms: Some(3_900),
        outcome: Some(if answered { "answered" } else { "cancelled" }.into()),
        hangup_by: "customer".into(),
        survey: "not_required".into(),
        glare: false,
        hold_ms: 0,
        end_reason: Some("bye".into()),
        holds: if flagged {
            vec![HoldRow {
                start_at: invite + 20 * SEC,
                end_at: Some(invite + 25 * SEC),
                by: "agent".into(),
            }]
        } else {
            Vec::new()
        },
        media: flagged.then(|| {
            serde_json::json!([{"ssrc": "0x01020304", "from": "customer",
                "src": "10.1.2.3:20000", "dst": "10.1.9.20:30000", "codec": "PCMA",
                "packets": 1500, "expected": 1500, "lost": 0, "loss_pct": 0.0,
                "jitter_ms": 0.8, "max_jitter_ms": 2.1, "max_delta_ms": 21.3, "mos": 4.4}])
        }),
        violations,
        node: "bench".into(),
    }
}

/// `n` SIP messages of about 800 bytes each, as a flagged call's ladder.
fn sip(call_id: &str, at: i64, n: usize) -> Vec<SipRow> {
    (0..n)
        .map(|k| {
            let first = if k == 0 {
                "INVITE sip:8001@10.1.9.1 SIP/2.0".to_string()
            } else {
                format!("SIP/2.0 {} OK", 100 + k)
            };
            let mut raw = format!(
                "{first}\r\nVia: SIP/2.0/UDP 10.1.0.10:5060;branch=z9hG4bK-{call_id}-{k}\r\n\
                 Max-Forwards: 70\r\nFrom: \"客户\" <sip:13812345678@10.1.0.10>;tag=c1\r\n\
                 To: <sip:8001@10.1.9.1>;tag=a1\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
                 Contact: <sip:13812345678@10.1.0.10:5060>\r\n\
                 Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS\r\n\
                 User-Agent: bench-switch 1.0\r\nContent-Type: application/sdp\r\n"
            );
            let body = "v=0\r\no=- 1 1 IN IP4 10.1.0.10\r\ns=-\r\nc=IN IP4 10.1.0.10\r\n\
                        t=0 0\r\nm=audio 10000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n\
                        a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
            let pad = 800usize.saturating_sub(raw.len() + body.len() + 40);
            raw.push_str(&format!("X-Pad: {}\r\n", "x".repeat(pad)));
            raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            SipRow {
                at: at + k as i64 * 1000,
                src: "10.1.0.10:5060".into(),
                dst: "10.1.9.1:5060".into(),
                transport: "udp".into(),
                first_line: first,
                raw: raw.into_bytes(),
            }
        })
        .collect()
}

/// A fresh database on the PostgreSQL server `server`: the URL naming it.
async fn pg_database(server: &str, name: &str) -> anyhow::Result<String> {
    let admin = sqlx::PgPool::connect(server).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&admin)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await?;
    admin.close().await;
    let (base, query) = match server.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (server.to_string(), String::new()),
    };
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => base[..i].to_string(),
        _ => base,
    };
    Ok(format!("{base}/{name}{query}"))
}

async fn database(backend: &str, args: &Args, name: &str) -> anyhow::Result<String> {
    if backend == "sqlite" {
        let dir = args.dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        return Ok(format!("sqlite://{}/callwatch.db", dir.display()));
    }
    let server = args
        .pg_url
        .clone()
        .or_else(|| std::env::var("CALLWATCH_TEST_PG_URL").ok())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!("PostgreSQL: pass --pg-url or run under scripts/pg_test.sh")
        })?;
    pg_database(&server, name).await
}

struct Throughput {
    legs: usize,
    append_per_s: f64,
    commit_per_s: f64,
    spool_mb: f64,
}

/// Flagged legs through the spool and the writer task.
async fn throughput(url: &str, args: &Args, spool_dir: &Path) -> anyhow::Result<Throughput> {
    let n = args.write_legs;
    let store = Store::open(url).await?;
    let _ = std::fs::remove_dir_all(spool_dir);
    let (mut w, reader) = spool::open(spool_dir, 64 << 30, 4 << 20)?;
    let mut rng = Rng(7);
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..n {
        let mut l = leg(i, n, &mut rng);
        if l.violations.is_empty() {
            l.violations.push(ViolationRow {
                rule: "late_answer".into(),
                at: l.invite_at + 10 * SEC,
                detail: "bench".into(),
            });
        }
        let s = sip(&l.call_id, l.invite_at, args.sip_messages);
        let payload = serde_json::to_vec(&LegWrite {
            leg: l,
            sip: Some(s),
        })?;
        bytes += payload.len();
        w.append(&payload)?;
    }
    let append = t.elapsed();
    let stats = Arc::new(WriterStats::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t = Instant::now();
    let writer = tokio::spawn(run_writer(
        store.clone(),
        reader,
        256,
        stop_rx,
        stats.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(600);
    while (stats.legs_written.load(Ordering::Relaxed) as usize) < n {
        anyhow::ensure!(Instant::now() < deadline, "the writer did not finish");
        anyhow::ensure!(
            stats.errors.load(Ordering::Relaxed) == 0,
            "the writer failed (see the log)"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let commit = t.elapsed();
    let _ = stop_tx.send(true);
    let _ = writer.await;
    let (stored, flagged) = store.counts().await?;
    anyhow::ensure!(
        stored as usize == n && flagged as usize == n,
        "stored {stored} of {n}"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(spool_dir);
    Ok(Throughput {
        legs: n,
        append_per_s: n as f64 / append.as_secs_f64(),
        commit_per_s: n as f64 / commit.as_secs_f64(),
        spool_mb: bytes as f64 / 1e6,
    })
}

/// Rows of one multi-row INSERT; legs per transaction.
const ROWS_PER_INSERT: usize = 1_000;
const LEGS_PER_TX: usize = 10_000;

/// Multi-row inserts of legs, violations and reviews (expanded once per backend).
macro_rules! bulk_load {
    ($pool:expr, $db:ty, $n:expr) => {{
        let pool = $pool;
        let n: usize = $n;
        let mut rng = Rng(42);
        let mut i = 0usize;
        while i < n {
            let end = (i + LEGS_PER_TX).min(n);
            let legs: Vec<LegRow> = (i..end).map(|k| leg(k, n, &mut rng)).collect();
            let mut tx = pool.begin().await?;
            for chunk in legs.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO legs (leg_id, call_id, linked_call_id, agent, agent_id, \
                     agent_name, team, direction, customer, customer_is_internal, invite_at, \
                     ring_start_at, answered_at, ended_at, ring_ms, outcome, hangup_by, survey, \
                     glare, hold_ms, end_reason, holds, media, flagged, node, stored_at) ",
                );
                q.push_values(chunk, |mut b, l| {
                    b.push_bind(l.leg_id.clone())
                        .push_bind(l.call_id.clone())
                        .push_bind(l.linked_call_id.clone())
                        .push_bind(l.agent.clone())
                        .push_bind(l.agent_id.clone())
                        .push_bind(l.agent_name.clone())
                        .push_bind(l.team.clone())
                        .push_bind(l.direction.clone())
                        .push_bind(l.customer.clone())
                        .push_bind(l.customer_is_internal)
                        .push_bind(l.invite_at)
                        .push_bind(l.ring_start_at)
                        .push_bind(l.answered_at)
                        .push_bind(l.ended_at)
                        .push_bind(l.ring_ms)
                        .push_bind(l.outcome.clone())
                        .push_bind(l.hangup_by.clone())
                        .push_bind(l.survey.clone())
                        .push_bind(l.glare)
                        .push_bind(l.hold_ms)
                        .push_bind(l.end_reason.clone())
                        .push_bind(serde_json::to_string(&l.holds).unwrap_or_default())
                        .push_bind(l.media.as_ref().map(|m| m.to_string()))
                        .push_bind(l.flagged())
                        .push_bind(l.node.clone())
                        .push_bind(T0);
                });
                q.build().execute(&mut *tx).await?;
            }
            let vs: Vec<(&LegRow, &ViolationRow)> = legs
                .iter()
                .flat_map(|l| l.violations.iter().map(move |v| (l, v)))
                .collect();
            for chunk in vs.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO violations (leg_id, rule, at, detail) ",
                );
                q.push_values(chunk, |mut b, (l, v)| {
                    b.push_bind(l.leg_id.clone())
                        .push_bind(v.rule.clone())
                        .push_bind(v.at)
                        .push_bind(v.detail.clone());
                });
                q.build().execute(&mut *tx).await?;
            }
            // A verdict on the first violation of one flagged leg in three.
            let rs: Vec<(&LegRow, &ViolationRow, usize)> = legs
                .iter()
                .enumerate()
                .filter(|(k, l)| l.flagged() && (i + k) % 15 == 0)
                .map(|(k, l)| (l, &l.violations[0], i + k))
                .collect();
            for chunk in rs.chunks(ROWS_PER_INSERT) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO reviews (leg_id, rule, verdict, reason, points, reviewer, at) ",
                );
                q.push_values(chunk, |mut b, (l, v, k)| {
                    let confirmed = k % 2 == 0;
                    b.push_bind(l.leg_id.clone())
                        .push_bind(v.rule.clone())
                        .push_bind(if confirmed { "confirmed" } else { "dismissed" })
                        .push_bind(if confirmed { "" } else { "Art. 65" })
                        .push_bind(if confirmed { 1i64 } else { 0 })
                        .push_bind("zhang.wei")
                        .push_bind(T0);
                });
                q.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            i = end;
        }
        // What the writer keeps per leg: violations without a verdict.
        sqlx::query(
            "UPDATE legs SET pending = (SELECT COUNT(*) FROM violations v \
             WHERE v.leg_id = legs.leg_id AND NOT EXISTS (SELECT 1 FROM reviews r \
             WHERE r.leg_id = v.leg_id AND r.rule = v.rule)) WHERE flagged",
        )
        .execute(pool)
        .await?;
    }};
}

/// Loads `n` legs into a fresh database at `url`; the load time.
async fn load(url: &str, n: usize) -> anyhow::Result<Duration> {
    // Migrations through the store itself.
    Store::open(url).await?.close().await;
    let t = Instant::now();
    if url.starts_with("sqlite:") {
        use std::str::FromStr;
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await?;
        bulk_load!(&pool, sqlx::Sqlite, n);
        pool.close().await;
    } else {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?;
        bulk_load!(&pool, sqlx::Postgres, n);
        // What autovacuum does on its own after such a load (statistics, and the
        // visibility map that lets a count read the index alone).
        sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
        pool.close().await;
    }
    Ok(t.elapsed())
}

/// The list route's queries: name and filter (50 a page, as the route's default).
fn list_queries(n: usize) -> Vec<(&'static str, LegFilter)> {
    let page = |offset: i64| LegFilter {
        limit: 50,
        offset,
        ..LegFilter::default()
    };
    let week_to = T0 - 30 * DAY;
    let week_from = week_to - 7 * DAY;
    let flagged = (n / 5) as i64;
    vec![
        ("first page", page(0)),
        (
            "rule=late_answer",
            LegFilter {
                rule: Some("late_answer".into()),
                ..page(0)
            },
        ),
        (
            "agent=A8041",
            LegFilter {
                agent: Some("A8041".into()),
                ..page(0)
            },
        ),
        (
            "team=T3",
            LegFilter {
                team: Some("T3".into()),
                ..page(0)
            },
        ),
        (
            "one week (from, to)",
            LegFilter {
                from: Some(week_from),
                to: Some(week_to),
                ..page(0)
            },
        ),
        (
            "verdict=pending",
            LegFilter {
                verdict: Some(VerdictFilter::Pending),
                ..page(0)
            },
        ),
        (
            "rule+team+week",
            LegFilter {
                rule: Some("late_answer".into()),
                team: Some("T3".into()),
                from: Some(week_from),
                to: Some(week_to),
                ..page(0)
            },
        ),
        // The API bounds offsets at 10,000 legs; deeper pages follow the keyset
        // cursor (`next`), and the last page is the first of the oldest-first order.
        ("offset 10,000 (the API's bound)", page(10_000.min(flagged))),
        (
            "deep page (middle, cursor)",
            LegFilter {
                after: Some(cursor_at(((flagged / 2) * 5) as usize, n)),
                ..page(0)
            },
        ),
        (
            "last page (order=asc)",
            LegFilter {
                asc: true,
                ..page(0)
            },
        ),
        (
            "all=true (every leg)",
            LegFilter {
                all: true,
                ..page(0)
            },
        ),
        (
            "call_id (complaint)",
            LegFilter {
                all: true,
                call_id: Some(format!("call-{:08}@bench", n / 3)),
                ..page(0)
            },
        ),
    ]
}

/// The keyset cursor just after leg `i` of `n` (newest first), as a `next` token
/// would carry it.
fn cursor_at(i: usize, n: usize) -> Cursor {
    let mut rng = Rng(0);
    let l = leg(i.min(n.saturating_sub(1)), n, &mut rng);
    Cursor {
        invite_at: l.invite_at,
        leg_id: l.leg_id,
        asc: false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Latency {
    name: &'static str,
    p50: Duration,
    p99: Duration,
    total: i64,
    exact: bool,
}

async fn latencies(url: &str, n: usize, runs: usize) -> anyhow::Result<Vec<Latency>> {
    let store = Store::open(url).await?;
    let mut out = Vec::new();
    for (name, f) in list_queries(n) {
        // One untimed run warms the cache, as on a daemon that has been serving.
        let page = store.list_legs(&f).await?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let t = Instant::now();
            let p = store.list_legs(&f).await?;
            times.push(t.elapsed());
            anyhow::ensure!(p.total == page.total, "{name}: the count changed");
        }
        times.sort();
        out.push(Latency {
            name,
            p50: percentile(&times, 0.5),
            p99: percentile(&times, 0.99),
            total: page.total,
            exact: page.total_exact,
        });
        eprintln!(
            "  {name}: {}{} matches, p50 {:.1} ms",
            page.total,
            if page.total_exact { "" } else { "+" },
            ms(out.last().map_or(Duration::ZERO, |l| l.p50))
        );
    }
    store.close().await;
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let backends: Vec<&str> = match args.backend.as_str() {
        "both" => vec!["sqlite", "postgres"],
        "sqlite" => vec!["sqlite"],
        "postgres" => vec!["postgres"],
        b => anyhow::bail!("--backend {b}: sqlite, postgres or both"),
    };
    std::fs::create_dir_all(&args.dir)?;
    let started = Instant::now();
    let mut report = String::new();
    for backend in backends {
        if args.write_legs > 0 {
            let url = database(backend, &args, "cw_bench_write").await?;
            eprintln!("{backend}: writing {} flagged legs…", args.write_legs);
            let t = throughput(&url, &args, &args.dir.join(format!("spool-{backend}"))).await?;
            report.push_str(&format!(
                "| {backend} | write | {} flagged legs × {} SIP messages (~800 B), spool {:.0} MB \
                 | {:.0} legs/s committed | {:.0} legs/s appended |\n",
                t.legs, args.sip_messages, t.spool_mb, t.commit_per_s, t.append_per_s
            ));
        }
        if args.legs > 0 {
            let url = database(backend, &args, "cw_bench_list").await?;
            eprintln!("{backend}: loading {} legs…", args.legs);
            let took = load(&url, args.legs).await?;
            eprintln!("{backend}: loaded in {:.1} s", took.as_secs_f64());
            report.push_str(&format!(
                "| {backend} | bulk load | {} legs ({} flagged) | {:.0} legs/s | {:.1} s |\n",
                args.legs,
                args.legs / 5,
                args.legs as f64 / took.as_secs_f64(),
                took.as_secs_f64()
            ));
            for l in latencies(&url, args.legs, args.runs).await? {
                report.push_str(&format!(
                    "| {backend} | list: {} | {}{} matches | p50 {:.1} ms | p99 {:.1} ms |\n",
                    l.name,
                    l.total,
                    if l.exact { "" } else { "+" },
                    ms(l.p50),
                    ms(l.p99)
                ));
            }
        }
        if backend == "sqlite" {
            let _ = std::fs::remove_dir_all(args.dir.join("cw_bench_write"));
        }
    }
    println!("| backend | what | size | figure | figure |");
    println!("|---|---|---|---|---|");
    print!("{report}");
    println!(
        "\n{} runs per list query (50 legs a page, counted up to 10,000: \"10000+\" = more); total {:.0} s",
        args.runs,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
