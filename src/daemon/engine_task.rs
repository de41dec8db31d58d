//! The one task that owns the [`Engine`]. It takes owned packets from the bounded ingest
//! queue (filled by the sources, which never wait on it), keeps each capture source's
//! clock ([`SourceClocks`]), sleeps until the engine's next deadline converted to wall
//! time on the clock of the source it belongs to, and hands every event to the sinks.
//!
//! So a phone still ringing at the late-answer threshold raises `late_answer` then, with
//! no further packet (SPEC §3). Timers are never starved by load: after every batch of
//! packets the due deadlines are fired too. The task ends when every sender of the
//! queue is gone (the sources stopped): whatever was queued is processed first.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::clock::SourceClocks;
use super::Health;
use crate::engine::{Captured, Engine, PayloadHint, SourceId};
use crate::sinks::metrics::Metrics;
use crate::sinks::{EventSink, Tick};
use crate::time::CaptureTime;
use crate::wire::Transport;

/// One packet for the engine, owned (it crossed a queue).
#[derive(Clone, Debug)]
pub struct IngestPacket {
    /// Capture time as the agent stamped it (the receive time when it did not).
    pub at: CaptureTime,
    /// When the packet was received, for the source's clock.
    pub received: Instant,
    pub source: SourceId,
    pub src: std::net::SocketAddr,
    pub dst: std::net::SocketAddr,
    pub transport: Transport,
    pub hint: PayloadHint,
    pub payload: Vec<u8>,
    pub correlation_id: Option<Box<[u8]>>,
}

/// How the engine task runs.
#[derive(Clone, Debug)]
pub struct EngineLoopOptions {
    /// How far a source's clock runs behind "latest timestamp + wall time since"
    /// (packets in flight arrive before a deadline fires). `callwatch run` sets it from
    /// `capture.clock_grace_ms`.
    pub grace: Duration,
    /// Most capture sources with a clock; packets of further sources are dropped and
    /// counted (`callwatch_ingest_errors_total{source="engine",kind="too_many_sources"}`).
    pub max_sources: usize,
    /// Most packets handled between two looks at the deadlines.
    pub batch: usize,
    /// Housekeeping period: heartbeat and gauges.
    pub tick: Duration,
}

impl Default for EngineLoopOptions {
    fn default() -> Self {
        EngineLoopOptions {
            grace: Duration::from_millis(50),
            max_sources: 4096,
            batch: 256,
            tick: Duration::from_millis(250),
        }
    }
}

/// Everything the engine task shares with the rest of the daemon.
pub struct EngineContext {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub opts: EngineLoopOptions,
}

struct State {
    engine: Engine,
    clocks: SourceClocks,
    sinks: Vec<Box<dyn EventSink>>,
    ctx: EngineContext,
}

impl State {
    fn accept(&mut self, p: IngestPacket) {
        if !self.clocks.observe(p.source, p.at, p.received) {
            self.ctx
                .metrics
                .ingest_error("engine", "too_many_sources")
                .inc();
            return;
        }
        let captured = Captured {
            at: p.at,
            source: p.source,
            src: p.src,
            dst: p.dst,
            transport: p.transport,
            hint: p.hint,
            payload: &p.payload,
            correlation_id: p.correlation_id.as_deref(),
        };
        for s in self.sinks.iter_mut() {
            s.on_packet(&captured);
        }
        self.engine.handle_packet(&captured);
    }

    /// Fires every deadline due on its source's clock at wall instant `wall`.
    fn fire_due(&mut self, wall: Instant) {
        let due: Vec<(SourceId, CaptureTime)> = self
            .engine
            .poll_timeouts()
            .filter_map(|(src, t)| {
                let now = self.clocks.now(src, wall)?;
                (t <= now).then_some((src, now))
            })
            .collect();
        for (src, now) in due {
            self.engine.handle_timeout(src, now);
        }
    }

    /// When to wake up for the next deadline: the earliest in wall time over every
    /// source, each deadline converted on its own source's clock.
    fn next_wake(&self) -> Option<Instant> {
        self.engine
            .poll_timeouts()
            .filter_map(|(src, t)| self.clocks.wall_at(src, t))
            .min()
    }

    fn deliver(&mut self, queue_depth: usize) {
        while let Some(ev) = self.engine.poll_event() {
            for s in self.sinks.iter_mut() {
                s.on_event(&ev);
            }
        }
        let now = self.clocks.latest_now(Instant::now());
        let tick = Tick {
            stats: self.engine.stats(),
            legs_tracked: self.engine.legs_tracked(),
            now,
            queue_depth,
        };
        for s in self.sinks.iter_mut() {
            s.on_tick(&tick);
        }
        self.ctx
            .metrics
            .capture_sources
            .set(self.clocks.len() as i64);
    }
}

/// Runs the engine until every sender of `rx` is dropped and the queue is empty, then
/// returns the engine (tests read its state).
pub async fn run_engine(
    engine: Engine,
    mut rx: mpsc::Receiver<IngestPacket>,
    sinks: Vec<Box<dyn EventSink>>,
    ctx: EngineContext,
) -> Engine {
    let opts = ctx.opts.clone();
    let mut st = State {
        engine,
        clocks: SourceClocks::new(opts.grace, opts.max_sources),
        sinks,
        ctx,
    };
    let mut tick = tokio::time::interval(opts.tick);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    st.ctx.health.engine_beat();
    loop {
        let wake = st.next_wake();
        tokio::select! {
            p = rx.recv() => match p {
                None => break,
                Some(p) => {
                    st.accept(p);
                    for _ in 1..opts.batch.max(1) {
                        match rx.try_recv() {
                            Ok(p) => st.accept(p),
                            Err(_) => break,
                        }
                    }
                    st.fire_due(Instant::now());
                }
            },
            _ = sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                st.fire_due(Instant::now());
            }
            _ = tick.tick() => {
                st.fire_due(Instant::now());
                st.ctx.health.engine_beat();
            }
        }
        st.deliver(rx.len());
    }
    st.deliver(0);
    st.ctx.health.engine_stopped();
    st.engine
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
