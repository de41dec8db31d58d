//! `callwatch run`: the live daemon's wiring, mini-redis style. [`Listeners::bind`] opens
//! the sockets (HEP on UDP and TCP on one port, HTTP), [`run`] takes them with a
//! shutdown future and starts:
//!
//! - one receive task per HEP socket ([`crate::sources::hep`]) that decodes, checks the
//!   auth key and pushes owned packets into the bounded engine queue, dropping and
//!   counting when it is full (`callwatch_events_dropped_total{sink="engine_queue"}`);
//! - the engine task ([`engine_task`]), sole owner of the engine, which keeps each
//!   capture source's clock ([`clock`]), fires deadlines live and feeds the sinks
//!   ([`crate::sinks`]);
//! - the HTTP server ([`crate::api`]): `/metrics`, `/healthz`, `/readyz`;
//! - with the cargo feature `live-capture`, one reading thread per interface of
//!   `capture.interfaces` (`crate::sources::live`), opened before anything starts (an
//!   interface that cannot be opened refuses the start) and feeding the same queue.
//!
//! Shutdown (SIGTERM/SIGINT in `main`): intake stops first, the engine drains what was
//! queued and flushes its events to the sinks, then HTTP stops.

pub mod clock;
pub mod engine_task;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::Validated;
use crate::engine::{Engine, EngineSettings};
use crate::sinks::metrics::{Metrics, MetricsSink};
use crate::sinks::store::{StoreOptions, StoreService};
use crate::sinks::EventSink;
use crate::sources::hep::{HepContext, HepOptions};

pub use engine_task::{EngineContext, EngineLoopOptions, IngestPacket};

/// Receive buffer asked for the HEP sockets (the kernel caps it at `net.core.rmem_max`).
const SOCKET_RCVBUF: usize = 8 << 20;

/// The daemon's tunables that are not (yet) configuration keys.
#[derive(Clone, Debug)]
pub struct Options {
    /// Capacity of the queue between the sources and the engine, in packets. When it is
    /// full a packet is dropped and counted, never waited for.
    pub queue_capacity: usize,
    pub engine: EngineLoopOptions,
    pub hep: HepOptions,
    pub store: StoreOptions,
    pub wallboard: crate::sinks::wallboard::HubOptions,
    #[cfg(feature = "live-capture")]
    pub live: crate::sources::live::LiveOptions,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            queue_capacity: 16_384,
            engine: EngineLoopOptions::default(),
            hep: HepOptions::default(),
            store: StoreOptions::default(),
            wallboard: crate::sinks::wallboard::HubOptions::default(),
            #[cfg(feature = "live-capture")]
            live: crate::sources::live::LiveOptions::default(),
        }
    }
}

/// A shutdown signal the tasks can wait on (cheap to clone).
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// A signal and the sender that trips it.
    pub fn new() -> (watch::Sender<bool>, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (tx, Shutdown(rx))
    }

    /// Resolves once shutdown is asked for (or the sender is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// What `/healthz` and `/readyz` report: listeners bound, engine task alive.
#[derive(Debug)]
pub struct Health {
    start: Instant,
    listeners_bound: AtomicBool,
    engine_running: AtomicBool,
    /// Milliseconds since `start` of the engine task's last heartbeat.
    engine_beat_ms: AtomicU64,
}

/// The engine task beats every housekeeping tick; silent longer than this means stuck.
const ENGINE_STALL: Duration = Duration::from_secs(5);

impl Health {
    pub fn new() -> Health {
        Health {
            start: Instant::now(),
            listeners_bound: AtomicBool::new(false),
            engine_running: AtomicBool::new(false),
            engine_beat_ms: AtomicU64::new(0),
        }
    }

    pub fn set_listeners_bound(&self, bound: bool) {
        self.listeners_bound.store(bound, Ordering::Release);
    }

    pub fn engine_beat(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.engine_beat_ms.store(ms, Ordering::Release);
        self.engine_running.store(true, Ordering::Release);
    }

    pub fn engine_stopped(&self) {
        self.engine_running.store(false, Ordering::Release);
    }

    /// Ok when ready to take traffic, else why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if !self.listeners_bound.load(Ordering::Acquire) {
            return Err("listeners not bound");
        }
        if !self.engine_running.load(Ordering::Acquire) {
            return Err("engine task not running");
        }
        let beat = Duration::from_millis(self.engine_beat_ms.load(Ordering::Acquire));
        if self.start.elapsed().saturating_sub(beat) > ENGINE_STALL {
            return Err("engine task stalled");
        }
        Ok(())
    }
}

impl Default for Health {
    fn default() -> Self {
        Health::new()
    }
}

/// The daemon's sockets, bound before [`run`] so that tests can bind port 0 and read
/// the addresses back.
#[derive(Debug)]
pub struct Listeners {
    pub hep_udp: UdpSocket,
    pub hep_tcp: TcpListener,
    pub http: TcpListener,
}

impl Listeners {
    /// Binds HEP on UDP and TCP at `hep` (the same port on both; with port 0 the UDP
    /// socket picks it and TCP follows) and HTTP at `http`. Needs a tokio runtime.
    pub async fn bind(hep: SocketAddr, http: SocketAddr) -> anyhow::Result<Listeners> {
        let mut tries = 0;
        let (udp, tcp) = loop {
            let udp = udp_socket(hep).with_context(|| format!("binding HEP UDP on {hep}"))?;
            let port = udp.local_addr()?.port();
            match tcp_listener(SocketAddr::new(hep.ip(), port)) {
                Ok(tcp) => break (udp, tcp),
                // Port 0: the UDP port may be taken on TCP; pick another.
                Err(_) if hep.port() == 0 && tries < 16 => tries += 1,
                Err(e) => {
                    return Err(e).with_context(|| format!("binding HEP TCP on {hep}"));
                }
            }
        };
        let http = TcpListener::bind(http)
            .await
            .with_context(|| format!("binding HTTP on {http}"))?;
        Ok(Listeners {
            hep_udp: UdpSocket::from_std(udp)?,
            hep_tcp: TcpListener::from_std(tcp)?,
            http,
        })
    }

    pub fn hep_addr(&self) -> std::io::Result<SocketAddr> {
        self.hep_udp.local_addr()
    }

    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }
}

fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer than asked is not fatal, drops are counted by the kernel.
    let _ = s.set_recv_buffer_size(SOCKET_RCVBUF);
    s.bind(&addr.into())?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    let _ = s.set_recv_buffer_size(SOCKET_RCVBUF);
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Creates the metrics with a zero series for each rule and team, so that alert rules
/// on `increase()` see the first violation of a team.
pub fn metrics_for(cfg: &Validated) -> Arc<Metrics> {
    let m = Metrics::new(
        cfg.raw.rules.late_answer.threshold_ms,
        cfg.raw.rules.audio.min_mos,
    );
    let mut teams = cfg.roster.teams();
    teams.push("none".to_string());
    let mut agents: Vec<(String, String)> = cfg
        .roster
        .iter()
        .map(|(_, a)| {
            let team = a.team.clone().unwrap_or_else(|| "none".to_string());
            (a.agent_id.clone(), team)
        })
        .collect();
    agents.sort();
    agents.dedup();
    m.declare_zero_series(&teams, &agents);
    Arc::new(m)
}

/// Runs the daemon on `listeners` until `shutdown` resolves, then stops intake, drains
/// the engine queue, flushes the sinks and stops HTTP.
pub async fn run(
    cfg: &Validated,
    listeners: Listeners,
    opts: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    // Live interfaces first: one that cannot be opened refuses the start.
    #[cfg(feature = "live-capture")]
    let live = crate::sources::live::LiveCaptures::open(&cfg.raw.capture, &opts.live)?;
    let metrics = metrics_for(cfg);
    let health = Arc::new(Health::new());
    let (stop_tx, stop) = Shutdown::new();
    let (tx, rx) = mpsc::channel::<IngestPacket>(opts.queue_capacity.max(1));

    let hep_addr = listeners.hep_addr()?;
    let http_addr = listeners.http_addr()?;

    let engine = Engine::new(EngineSettings::from_config(cfg));
    let (store, store_sink) = StoreService::start(cfg, &metrics, opts.store.clone()).await?;
    let inspect = crate::api::inspect::Inspect::from_config(cfg, store.store())?;
    let mut sinks: Vec<Box<dyn EventSink>> = vec![Box::new(MetricsSink::new(
        metrics.clone(),
        cfg.zone,
        cfg.raw.rules.late_answer.threshold_ms,
    ))];
    // The store first: a leg any other sink has shown was acknowledged by the store.
    sinks.insert(0, Box::new(store_sink));
    let wallboard = crate::sinks::wallboard::Hub::new(cfg, &metrics, opts.wallboard.clone());
    sinks.push(Box::new(crate::sinks::wallboard::WallboardSink::new(
        wallboard.clone(),
    )));
    let mut engine_task = tokio::spawn(engine_task::run_engine(
        engine,
        rx,
        sinks,
        EngineContext {
            metrics: metrics.clone(),
            health: health.clone(),
            opts: EngineLoopOptions {
                grace: std::time::Duration::from_millis(cfg.raw.capture.clock_grace_ms),
                ..opts.engine.clone()
            },
        },
    ));

    let auth = Some(cfg.raw.capture.hep_auth_key.as_bytes().to_vec()).filter(|k| !k.is_empty());
    let hep = Arc::new(HepContext::new(metrics.clone(), auth, opts.hep.clone()));
    let udp_task = tokio::spawn(crate::sources::hep::run_udp(
        listeners.hep_udp,
        tx.clone(),
        hep.clone(),
        stop.clone(),
    ));
    #[cfg(feature = "live-capture")]
    let live = live.start(tx.clone(), metrics.clone())?;
    let tcp_task = tokio::spawn(crate::sources::hep::run_tcp(
        listeners.hep_tcp,
        tx,
        hep,
        stop.clone(),
    ));
    health.set_listeners_bound(true);

    let router = crate::api::router(crate::api::ApiState {
        metrics: metrics.clone(),
        health: health.clone(),
    });
    let router = router.merge(crate::api::inspect::router(Arc::new(inspect)));
    let router = router.merge(crate::api::ws::router(wallboard));
    let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
    let http_task = tokio::spawn(async move {
        // With the peer address: failed logins are limited per client too.
        // No Nagle delay: a websocket frame leaves at once (else ~40 ms behind an ACK).
        let http = axum::serve::ListenerExt::tap_io(listeners.http, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(
            http,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = http_stop_rx.await;
        })
        .await
    });
    tracing::info!(%hep_addr, %http_addr, "callwatch listening: HEP on UDP and TCP, HTTP");

    let mut engine_failed = None;
    tokio::select! {
        _ = shutdown => tracing::info!("shutting down: stopping intake"),
        r = &mut engine_task => {
            // The engine task only ends by itself if it panicked.
            engine_failed = Some(match r {
                Ok(_) => anyhow::anyhow!("the engine task ended unexpectedly"),
                Err(e) => anyhow::anyhow!("the engine task failed: {e}"),
            });
        }
    }
    health.set_listeners_bound(false);
    let _ = stop_tx.send(true);
    let _ = udp_task.await;
    let _ = tcp_task.await;
    #[cfg(feature = "live-capture")]
    live.stop().await;
    if engine_failed.is_none() {
        // Every sender is gone once the connection tasks have seen the signal: the
        // engine processes what is queued, flushes its events to the sinks and ends.
        match engine_task.await {
            Ok(engine) => tracing::info!(
                sip_messages = engine.stats().sip_messages,
                legs_open = engine.open_leg_count(),
                "engine drained"
            ),
            Err(e) => engine_failed = Some(anyhow::anyhow!("the engine task failed: {e}")),
        }
    }
    let _ = http_stop_tx.send(());
    match http_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("HTTP server: {e}"),
        Err(e) => tracing::warn!("HTTP task: {e}"),
    }
    // The engine task is over (its store sink with it): commit what is spooled.
    store.shutdown(Duration::from_secs(10)).await;
    match engine_failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
