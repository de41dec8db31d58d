//! Nothing reported is lost when PostgreSQL goes away (SPEC §7): the real `callwatch run`
//! binary writes to a PostgreSQL cluster of the test's own (initdb into a temporary
//! folder, `pg_ctl start` on a free loopback port), flagged calls stream in over HEP/TCP,
//! and the server is stopped mid-stream twice — `pg_ctl stop -m fast` (clients are told
//! and disconnected), then `-m immediate` (the server dies, crash recovery at the next
//! start) — while calls keep coming, and is started again each time. Afterwards every leg
//! the daemon reported (counted in `callwatch_legs_total`, which the store sink precedes)
//! before, during and after the outages is stored exactly once with all its SIP
//! messages; during each outage the daemon kept answering `/healthz` and `/readyz`,
//! said the store was down (`callwatch_store_up` 0, `callwatch_store_errors_total`
//! rising, `callwatch_store_backlog_bytes` above 0), and said so no more once the
//! database was back.
//!
//! The cluster keeps PostgreSQL's default `synchronous_commit = on` (a commit the writer
//! saw succeed survives the immediate stop); `fsync = off` only spares the disk, the
//! operating system keeps running. Fails (never skips) without PostgreSQL's binaries.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callwatch::loadgen::{hep_frame, metric_sum, scrape, CallSpec, Story};
use common::call_spec::numbered_call;
use common::callwatch_run::CallwatchRun;
use common::ports::free_port;
use common::temp_dir::TempDir;
use sqlx::Row;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A throwaway PostgreSQL cluster in a temporary folder; removed when dropped.
struct Cluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    /// The user the server runs as when the test runs as root (initdb refuses root).
    owner: Option<String>,
}

impl Cluster {
    fn bindir() -> PathBuf {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path().join("bin"))
                    .filter(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
                    .collect()
            })
            .unwrap_or_default();
        dirs.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        dirs.pop().unwrap_or_else(|| {
            panic!(
                "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: \
                 apt-get install postgresql (scripts/test.sh does)"
            )
        })
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.owner {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            panic!(
                "{tool} {args:?} failed: {}\n{}\nserver log:\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn init() -> Cluster {
        let bin = Cluster::bindir();
        let dir = TempDir::new("pgrestart");
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let owner = root.then(|| {
            let has_postgres = Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success());
            if has_postgres { "postgres" } else { "nobody" }.to_string()
        });
        if let Some(user) = &owner {
            let ok = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown {user} {}", dir.display());
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let mut c = Cluster {
            bin,
            port: 0,
            dir,
            owner,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "callwatch",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
        );
        c.port = free_port();
        c
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://callwatch@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on the cluster's port (the same one each time: the daemon's URL
    /// does not change) and waits until it takes connections.
    fn start(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &opts,
                "start",
            ],
        );
    }

    fn stop(&self, mode: &str) {
        self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", mode, "-w", "-t", "60", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The status code of `GET path`, or 0 when the daemon does not answer.
async fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let get = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await.ok()?;
        let text = String::from_utf8_lossy(&body);
        text.split_whitespace().nth(1)?.parse::<u16>().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), get)
        .await
        .ok()
        .flatten()
        .unwrap_or(0)
}

async fn metric(http: SocketAddr, name: &str) -> f64 {
    match scrape(http).await {
        Ok(t) => metric_sum(&t, name, &[]),
        Err(_) => f64::NAN,
    }
}

/// Waits until `check` holds, at most `secs` seconds; panics with `what` otherwise.
async fn wait_until<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match check().await {
            Ok(()) => return,
            Err(e) => assert!(Instant::now() < deadline, "{what} within {secs} s: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn call(i: usize) -> CallSpec {
    numbered_call("pgrestart", i)
}

/// Plays calls `from..to` over one HEP/TCP connection, one every `gap`.
fn feed(hep: SocketAddr, from: usize, to: usize, gap: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(hep).await.unwrap();
        s.set_nodelay(true).unwrap();
        for i in from..to {
            let c = call(i);
            let mut out = Vec::new();
            for step in c.steps(Story::AgentHangup) {
                out.extend_from_slice(&hep_frame(&c, &step, 1, None));
            }
            s.write_all(&out).await.unwrap();
            tokio::time::sleep(gap).await;
        }
        s.flush().await.unwrap();
    })
}

async fn reported(http: SocketAddr) -> usize {
    let n = metric(http, "callwatch_legs_total").await;
    if n.is_nan() {
        0
    } else {
        n as usize
    }
}

async fn wait_reported(http: SocketAddr, n: usize, secs: u64) {
    wait_until(secs, &format!("{n} legs reported"), || async move {
        let r = reported(http).await;
        (r >= n).then_some(()).ok_or(format!("{r} reported"))
    })
    .await;
}

async fn stored(url: &str) -> Result<i64, String> {
    let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(url)
        .await
        .map_err(|e| e.to_string())?;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM legs")
        .fetch_one(&mut c)
        .await
        .map_err(|e| e.to_string())?;
    let _ = sqlx::Connection::close(c).await;
    Ok(n)
}

async fn wait_stored(url: &str, n: usize, secs: u64) {
    wait_until(secs, &format!("{n} legs stored"), || async move {
        let s = stored(url).await?;
        (s as usize >= n).then_some(()).ok_or(format!("{s} stored"))
    })
    .await;
}

/// While the database is away: the daemon answers and says the store is down.
async fn check_outage_reported(http: SocketAddr, errors_before: f64) {
    wait_until(
        30,
        "callwatch_store_up 0 and errors counted",
        || async move {
            let up = metric(http, "callwatch_store_up").await;
            let errors = metric(http, "callwatch_store_errors_total").await;
            let backlog = metric(http, "callwatch_store_backlog_bytes").await;
            (up == 0.0 && errors > errors_before && backlog > 0.0)
                .then_some(())
                .ok_or(format!("up {up}, errors {errors}, backlog {backlog}"))
        },
    )
    .await;
    assert_eq!(
        http_status(http, "/healthz").await,
        200,
        "/healthz in the outage"
    );
    assert_eq!(
        http_status(http, "/readyz").await,
        200,
        "/readyz in the outage"
    );
}

async fn check_back_up(http: SocketAddr) {
    wait_until(
        30,
        "callwatch_store_up 1 and the backlog written",
        || async move {
            let up = metric(http, "callwatch_store_up").await;
            let backlog = metric(http, "callwatch_store_backlog_bytes").await;
            (up == 1.0 && backlog == 0.0)
                .then_some(())
                .ok_or(format!("up {up}, backlog {backlog}"))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leg_reported_across_postgres_outages_is_stored_once() {
    let started = Instant::now();
    let pg = Cluster::init();
    pg.start();
    let url = pg.url();

    let hep: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let data = pg.dir.join("callwatch");
    std::fs::create_dir_all(&data).unwrap();
    let config = data.join("callwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nhep_listen = \"{hep}\"\n[http]\nlisten = \"{http}\"\n\
             [store]\nurl = \"{url}\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut daemon = CallwatchRun::start(&config, "warn", &data.join("callwatch.log"));
    wait_until(30, "the daemon up", || async {
        let t = scrape(http).await.map_err(|e| e.to_string())?;
        t.contains("callwatch_store_up")
            .then_some(())
            .ok_or("no callwatch_store_up".into())
    })
    .await;
    assert_eq!(metric(http, "callwatch_store_up").await, 1.0);
    let gap = Duration::from_millis(8);

    // Before: 150 calls, stored as they come.
    feed(hep, 0, 150, gap).await.unwrap();
    wait_reported(http, 150, 30).await;
    wait_stored(&url, 150, 30).await;

    // A fast stop while calls stream in; they keep coming while the server is away.
    let errors = metric(http, "callwatch_store_errors_total").await;
    let sender = feed(hep, 150, 450, gap);
    wait_reported(http, 200, 30).await;
    pg.stop("fast");
    let at_stop = reported(http).await;
    assert!(at_stop < 450, "the stop came after the stream ended");
    check_outage_reported(http, errors).await;
    sender.await.unwrap();
    wait_reported(http, 450, 30).await;
    assert_eq!(metric(http, "callwatch_store_up").await, 0.0);
    pg.start();
    wait_stored(&url, 450, 60).await;
    check_back_up(http).await;
    eprintln!("fast stop: {at_stop} legs reported at the stop, 450 stored after the restart");

    // An immediate stop (the server dies; crash recovery at the next start).
    let errors = metric(http, "callwatch_store_errors_total").await;
    let sender = feed(hep, 450, 750, gap);
    wait_reported(http, 500, 30).await;
    pg.stop("immediate");
    let at_stop = reported(http).await;
    assert!(at_stop < 750, "the stop came after the stream ended");
    check_outage_reported(http, errors).await;
    sender.await.unwrap();
    wait_reported(http, 750, 30).await;
    pg.start();
    // After: more calls once it is back.
    feed(hep, 750, 900, gap).await.unwrap();
    wait_reported(http, 900, 30).await;
    wait_stored(&url, 900, 60).await;
    check_back_up(http).await;
    eprintln!("immediate stop: {at_stop} legs reported at the stop, 900 stored after");

    // A clean stop writes the late SIP messages (the 200 to the BYE) of the last legs.
    let total = reported(http).await;
    assert_eq!(total, 900, "legs reported");
    assert!(
        daemon.terminate(Duration::from_secs(30)).is_some(),
        "the daemon did not stop on SIGTERM"
    );

    let db = sqlx::PgPool::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT l.call_id, l.flagged, \
         (SELECT COUNT(*) FROM violations v WHERE v.leg_id = l.leg_id \
          AND v.rule = 'agent_hangup_first') AS hangup, \
         (SELECT COUNT(*) FROM sip_messages m WHERE m.leg_id = l.leg_id) AS msgs, \
         (SELECT COALESCE(MAX(m.seq), -1) FROM sip_messages m WHERE m.leg_id = l.leg_id) \
          AS last_seq, \
         (SELECT m.first_line FROM sip_messages m WHERE m.leg_id = l.leg_id AND m.seq = 0) \
          AS first \
         FROM legs l",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let mut per_call: BTreeMap<String, usize> = BTreeMap::new();
    let want_msgs = call(0).steps(Story::AgentHangup).len() as i64;
    for r in &rows {
        let call_id: String = r.get("call_id");
        *per_call.entry(call_id.clone()).or_default() += 1;
        let flagged: bool = r.get("flagged");
        let hangup: i64 = r.get("hangup");
        let msgs: i64 = r.get("msgs");
        let last_seq: i64 = r.get("last_seq");
        let first: Option<String> = r.get("first");
        assert!(
            flagged && hangup == 1,
            "{call_id}: flagged agent_hangup_first"
        );
        assert_eq!(msgs, want_msgs, "{call_id}: every SIP message of the call");
        assert_eq!(last_seq, msgs - 1, "{call_id}: messages numbered once each");
        assert!(
            first.as_deref().is_some_and(|f| f.starts_with("INVITE ")),
            "{call_id}: the ladder starts with the INVITE: {first:?}"
        );
    }
    let missing: Vec<usize> = (0..total)
        .filter(|i| !per_call.contains_key(&call(*i).call_id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} reported legs missing, first {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let twice: Vec<_> = per_call.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "legs stored more than once: {twice:?}");
    assert_eq!(rows.len(), total, "one row per reported leg, nothing else");
    db.close().await;
    eprintln!(
        "{total} legs across two outages stored once each with {want_msgs} SIP messages, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
