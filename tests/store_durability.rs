//! Nothing acknowledged to the engine is lost when the daemon is killed (SPEC §7): the
//! real `callwatch run` binary takes flagged calls over HEP (the agent hangs up first),
//! is killed with SIGKILL in the middle of the stream, is started again on the same data
//! folder, and every leg it had acknowledged before the kill is then in the store, once.
//!
//! "Acknowledged" is read from outside: the store sink runs before the metrics sink, so
//! a leg counted in `callwatch_legs_total` had been written to the store's spool. Calls
//! are played one after the other, so the legs end in the order they were sent. The test
//! holds the database's write lock during the first run, so nothing reaches the
//! database before the kill: what is stored afterwards came through the spool.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callwatch::loadgen::{hep_frame, metric_sum, scrape, CallSpec, Story};
use callwatch::store::query::LegFilter;
use callwatch::store::Store;
use common::call_spec::numbered_call;
use common::callwatch_run::CallwatchRun;
use common::ports::free_port;
use common::temp_dir::TempDir;

async fn wait_ready(http: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(t) = scrape(http).await {
            if t.contains("callwatch_legs_ringing") {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the daemon did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn call(i: usize) -> CallSpec {
    numbered_call("durable", i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leg_acknowledged_before_a_sigkill_is_stored_once_after_the_restart() {
    let dir = TempDir::new("durability");
    let log = dir.join("callwatch.log");
    let hep: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let db = dir.join("callwatch.db");
    let config = dir.join("callwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[capture]\nhep_listen = \"{hep}\"\n[http]\nlisten = \"{http}\"\n\
             [store]\nurl = \"sqlite://{}\"\n",
            db.display()
        ),
    )
    .unwrap();

    let mut daemon = CallwatchRun::start(&config, "warn", &log);
    wait_ready(http).await;
    // Hold the database's write lock while the calls stream in: the daemon's writer
    // cannot commit anything, so every leg it acknowledges lives only in its spool.
    let lock = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let mut held = lock.acquire().await.unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut *held)
        .await
        .unwrap();

    // Play flagged calls one after the other while watching what was acknowledged.
    let total = 1500;
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.connect(hep).await.unwrap();
    let sender = tokio::spawn(async move {
        for i in 0..total {
            let c = call(i);
            for step in c.steps(Story::AgentHangup) {
                let _ = sock.send(&hep_frame(&c, &step, 1, None)).await;
            }
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    });
    let mut acknowledged = 0.0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while acknowledged < 300.0 {
        assert!(Instant::now() < deadline, "legs do not end: {acknowledged}");
        if let Ok(t) = scrape(http).await {
            acknowledged = metric_sum(&t, "callwatch_legs_total", &[]);
        }
    }
    // SIGKILL while calls still stream in: no shutdown path runs.
    daemon.kill();
    sender.abort();
    let acknowledged = acknowledged as usize;
    assert!(acknowledged < total, "the kill came after the stream ended");
    sqlx::query("ROLLBACK").execute(&mut *held).await.unwrap();
    let committed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM legs")
        .fetch_one(&mut *held)
        .await
        .unwrap();
    assert_eq!(
        committed, 0,
        "the database was locked: nothing was committed"
    );
    drop(held);
    lock.close().await;

    let daemon = CallwatchRun::start(&config, "warn", &log);
    wait_ready(http).await;
    let store = Store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let page = store
            .list_legs(&LegFilter {
                all: true,
                limit: 10_000,
                ..LegFilter::default()
            })
            .await
            .unwrap();
        let ids: std::collections::BTreeSet<String> =
            page.items.iter().map(|l| l.leg.call_id.clone()).collect();
        let missing: Vec<usize> = (0..acknowledged)
            .filter(|i| !ids.contains(&call(*i).call_id))
            .collect();
        if missing.is_empty() {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {acknowledged} acknowledged legs missing after the restart, first {:?}",
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(daemon);
    // Once each: one row per leg, one leg per call, every one flagged with its SIP.
    let mut per_call = std::collections::BTreeMap::new();
    for l in &stored.items {
        *per_call.entry(l.leg.call_id.clone()).or_insert(0) += 1;
    }
    assert!(per_call.values().all(|&n| n == 1), "a call stored twice");
    assert_eq!(stored.total as usize, stored.items.len());
    let first = store
        .get_leg(&stored.items.last().unwrap().leg.leg_id)
        .await
        .unwrap()
        .unwrap();
    assert!(first
        .leg
        .violations
        .iter()
        .any(|v| v.rule == "agent_hangup_first"));
    assert!(!store
        .sip_messages(&first.leg.leg_id)
        .await
        .unwrap()
        .is_empty());
    eprintln!(
        "acknowledged {acknowledged} before the kill, {} stored after the restart",
        stored.items.len()
    );
}
