//! The daemon in-process, as mini-redis tests its server: [`daemon::run`] as a tokio task
//! on HEP and HTTP listeners bound to loopback port 0 (their addresses known before the
//! task starts), stopped through the shutdown future it takes.

use std::net::SocketAddr;
use std::time::Duration;

use callwatch::config::Validated;
use callwatch::daemon::{self, Listeners, Options};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// `daemon::run` on a task of the test's runtime.
pub struct DaemonTask {
    pub hep: SocketAddr,
    pub http: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl DaemonTask {
    /// Binds HEP (UDP and TCP) and HTTP on `127.0.0.1:0` and starts the daemon on them.
    /// Returns at once: the sockets accept, the daemon may still be starting.
    pub async fn start(cfg: Validated, opts: Options) -> DaemonTask {
        let l = Listeners::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let (hep, http) = (l.hep_addr().unwrap(), l.http_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            daemon::run(&cfg, l, opts, async move {
                let _ = stopped.await;
            })
            .await
        });
        DaemonTask {
            hep,
            http,
            stop,
            task,
        }
    }

    /// Asks the daemon to stop and waits for `daemon::run` to return, which must be `Ok`.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }

    /// As [`DaemonTask::stop`], failing the test when the daemon takes over `limit`.
    pub async fn stop_within(self, limit: Duration) {
        let _ = self.stop.send(());
        tokio::time::timeout(limit, self.task)
            .await
            .unwrap_or_else(|_| panic!("the daemon did not stop within {limit:?}"))
            .unwrap()
            .unwrap();
    }
}
