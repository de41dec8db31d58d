//! Waiting on a running daemon's `/metrics` (scraped with `loadgen::scrape`, as
//! Prometheus would) until the text shows what the test waits for, with a time limit and
//! the test's own logs in the failure message.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use callwatch::loadgen::scrape;

/// Scrapes `http` every 25 ms until `pred` holds on the text, `limit` at most; the text
/// that satisfied it. On timeout it fails naming `what`, with the last scrape and `why()`.
pub async fn wait_metrics(
    http: SocketAddr,
    what: &str,
    limit: Duration,
    why: impl Fn() -> String,
    pred: impl Fn(&str) -> bool,
) -> String {
    let end = Instant::now() + limit;
    loop {
        let t = scrape(http).await.unwrap_or_default();
        if pred(&t) {
            return t;
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}\n{t}\n{}",
            why()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
