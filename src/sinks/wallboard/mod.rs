//! The wallboard sink and its hub (SPEC §6): the live state of the floor for the TV page
//! and any websocket client.
//!
//! [`WallboardSink`] runs on the engine task and hands every engine [`Event`] and
//! [`Tick`] to the shared [`Hub`]. The hub keeps the [`board::Board`] (ringing and
//! active legs, each agent's state) and the [`figures::Figures`] (today's service level,
//! answers and violations per team, the ticker, the leaderboards), turns each change
//! into a JSON frame with `seq` (from 1, per process), `boot` (random per run) and `at`,
//! keeps the latest frames in a bounded replay buffer for `GET /ws?since=N`, and offers
//! each frame to every client's own bounded queue. The websocket side
//! ([`crate::api::ws`]) drains one queue per connection.
//!
//! When-full policy: the engine never waits for a client. A frame that a client's queue
//! cannot take disconnects that client (it reconnects with `since=` and gets the frames
//! it missed from the replay buffer, or a fresh snapshot); the frames it lost are counted
//! in `callwatch_events_dropped_total{sink="wallboard"}`. A connection whose socket does
//! not take a frame within [`HubOptions::send_timeout`] is closed the same way. The hub's
//! lock is held only to update the state and push frames, never across I/O.
//!
//! No frame carries an unmasked customer number: `leg` objects are
//! [`Renderer::json`] with numbers masked, and long digit runs in Call-IDs masked too.

pub mod board;
pub mod figures;
pub mod json;
pub mod leg;

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use prometheus_client::metrics::counter::Counter;
#[cfg(test)]
use serde_json::Value;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use self::board::Board;
use self::figures::{Figures, TickerRef};
use self::json::Obj;
use self::leg::{write_leg_entry, LegView};
use super::{EventSink, Tick};
use crate::config::Validated;
#[cfg(test)]
use crate::engine::leg::LegRecord;
use crate::engine::Event;
use crate::report::Renderer;
use crate::sinks::metrics::Metrics;
use crate::time::CaptureTime;

/// The hub's tunables.
#[derive(Clone, Debug)]
pub struct HubOptions {
    /// Frames queued per client before the client is disconnected.
    pub client_queue: usize,
    /// Frames kept for `since=` resumption.
    pub replay_frames: usize,
    /// Bytes kept for `since=` resumption.
    pub replay_bytes: usize,
    /// Longest wait for a client's socket to take one frame.
    pub send_timeout: Duration,
    /// Most websocket clients at once; more are refused (503). A floor has a few TVs,
    /// but browsers left open on desks add up: 1,000 clients are measured in
    /// docs/performance.md (`scripts/bench_wallboard.sh`). Each costs one task, one
    /// socket and at most `client_queue` shared frames.
    pub max_clients: usize,
    /// A `stats` frame at least this often.
    pub stats_every: Duration,
    /// And at most this often when the figures change.
    pub stats_min_gap: Duration,
}

impl Default for HubOptions {
    fn default() -> Self {
        HubOptions {
            client_queue: 512,
            replay_frames: 4096,
            replay_bytes: 8 << 20,
            send_timeout: Duration::from_secs(10),
            max_clients: 2048,
            stats_every: Duration::from_millis(750),
            stats_min_gap: Duration::from_millis(100),
        }
    }
}

/// Capacity a frame is written into (most `leg.*` frames fit; the text is shrunk to
/// its length before it is kept).
const FRAME_CAPACITY: usize = 1024;

/// One outgoing JSON text frame.
#[derive(Clone, Debug)]
pub struct Frame {
    pub seq: u64,
    pub text: Utf8Bytes,
}

struct Client {
    id: u64,
    tx: mpsc::Sender<Frame>,
    kick: Arc<Notify>,
}

/// "Now" on the capture clock: the latest tick's source clock plus the wall time since.
#[derive(Clone, Copy, Debug)]
struct Clock {
    capture: Option<CaptureTime>,
    wall: Instant,
}

impl Clock {
    fn now(&self) -> Option<CaptureTime> {
        let c = self.capture?;
        Some(c.plus_millis(self.wall.elapsed().as_millis() as u64))
    }
}

struct Inner {
    seq: u64,
    board: Board,
    figures: Figures,
    replay: VecDeque<Frame>,
    replay_bytes: usize,
    clients: Vec<Client>,
    clock: Clock,
    last_stats: Option<Instant>,
    figures_dirty: bool,
}

/// What the page needs to know of the configuration.
#[derive(Clone, Debug)]
struct BoardConfig {
    threshold_ms: u64,
    long_hold_ms: u64,
    zone: String,
}

/// The wallboard's shared state: written by [`WallboardSink`], read by the websocket
/// connections. Cheap to share (`Arc`).
pub struct Hub {
    boot: String,
    opts: HubOptions,
    renderer: Renderer,
    config: BoardConfig,
    dropped: Counter,
    next_client: AtomicU64,
    inner: Mutex<Inner>,
}

/// A client's end: the frames to send first (a snapshot, or the replay of what it
/// missed), then its queue. Dropping it unregisters the client.
pub struct Subscription {
    pub initial: Vec<Frame>,
    pub rx: mpsc::Receiver<Frame>,
    /// Notified when the hub gave up on this client (its queue overflowed).
    pub kicked: Arc<Notify>,
    id: u64,
    hub: Arc<Hub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().clients.retain(|c| c.id != self.id);
    }
}

/// Why a client was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("too many wallboard clients ({0})")]
    TooManyClients(usize),
}

/// A random id of this process run (std's per-process random hasher keys, no extra crate).
fn boot_id() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// The `leg` object of a frame as the hub built it before [`leg::LegView::write_json`]
/// (the tests' reference): the analyze fields known so far, masked.
#[cfg(test)]
pub fn leg_json(r: &Renderer, rec: &LegRecord) -> Value {
    let mut v = r.json(rec);
    for key in ["call_id", "linked_call_id"] {
        if let Some(Value::String(s)) = v.get(key) {
            let masked = crate::report::mask_digit_runs(s);
            v[key] = Value::String(masked);
        }
    }
    v
}

impl Hub {
    pub fn new(cfg: &Validated, metrics: &Metrics, opts: HubOptions) -> Arc<Hub> {
        let renderer = Renderer {
            zone: cfg.zone,
            show_numbers: false,
        };
        let dropped = metrics.dropped("wallboard");
        let teams = cfg.roster.teams();
        Arc::new(Hub {
            boot: boot_id(),
            renderer: renderer.clone(),
            config: BoardConfig {
                threshold_ms: cfg.raw.rules.late_answer.threshold_ms,
                long_hold_ms: cfg.raw.rules.long_hold.threshold_ms,
                zone: cfg.raw.time.zone.clone(),
            },
            dropped,
            next_client: AtomicU64::new(1),
            inner: Mutex::new(Inner {
                seq: 0,
                board: Board::new(&cfg.roster, &cfg.raw.agents.extensions, renderer),
                figures: Figures::new(cfg.zone, cfg.raw.rules.late_answer.threshold_ms, teams),
                replay: VecDeque::new(),
                replay_bytes: 0,
                clients: Vec::new(),
                clock: Clock {
                    capture: None,
                    wall: Instant::now(),
                },
                last_stats: None,
                figures_dirty: false,
            }),
            opts,
        })
    }

    /// The id of this process run, carried by every frame.
    pub fn boot(&self) -> &str {
        &self.boot
    }

    pub fn options(&self) -> &HubOptions {
        &self.opts
    }

    /// Clients connected now.
    pub fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// Counts frames a connection lost (its socket did not take them in time).
    pub fn count_dropped(&self, frames: u64) {
        self.dropped.inc_by(frames);
    }

    /// Drops every client's queue: their connections send what is queued and close.
    pub fn close_all(&self) {
        self.lock().clients.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent-enough state for a display.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a client: with `since` (and the `boot` it came from, if known) still
    /// covered by the replay buffer, the frames after it; else a snapshot.
    pub fn subscribe(
        self: &Arc<Self>,
        since: Option<u64>,
        boot: Option<&str>,
    ) -> Result<Subscription, SubscribeError> {
        let mut g = self.lock();
        if g.clients.len() >= self.opts.max_clients {
            return Err(SubscribeError::TooManyClients(g.clients.len()));
        }
        let same_boot = boot.is_none_or(|b| b == self.boot);
        let replay = match since {
            Some(n) if same_boot && n <= g.seq => {
                let covered = match g.replay.front() {
                    Some(first) => first.seq <= n + 1,
                    None => n == g.seq,
                };
                covered.then(|| {
                    g.replay
                        .iter()
                        .filter(|f| f.seq > n)
                        .cloned()
                        .collect::<Vec<_>>()
                })
            }
            _ => None,
        };
        let initial = match replay {
            Some(frames) => frames,
            None => vec![self.snapshot(&g)],
        };
        let (tx, rx) = mpsc::channel(self.opts.client_queue.max(1));
        let kicked = Arc::new(Notify::new());
        let id = self.next_client.fetch_add(1, Ordering::Relaxed);
        g.clients.push(Client {
            id,
            tx,
            kick: kicked.clone(),
        });
        drop(g);
        Ok(Subscription {
            initial,
            rx,
            kicked,
            id,
            hub: self.clone(),
        })
    }

    fn now(&self, g: &Inner, at: Option<CaptureTime>) -> CaptureTime {
        match (g.clock.now(), at) {
            (Some(c), Some(a)) => c.max(a),
            (Some(c), None) => c,
            (None, Some(a)) => a,
            (None, None) => wall_now(),
        }
    }

    /// The `snapshot` frame: everything a fresh page needs. Its `seq` is the latest
    /// frame's (the next delta is `seq + 1`); it takes no number of its own.
    fn snapshot(&self, g: &Inner) -> Frame {
        let now = self.now(g, None);
        let r = &self.renderer;
        let legs = g.board.legs();
        let (ringing, active) = g.board.counts();
        let mut out = String::with_capacity(4096 + legs.len() * 640);
        // Keys in byte order, as the `serde_json::Value` this replaced had them.
        let mut o = Obj::new(&mut out);
        o.u64("active", active as u64);
        let list = o.key("agents");
        list.push('[');
        for (i, a) in g.board.agents().enumerate() {
            if i > 0 {
                list.push(',');
            }
            a.write_json(list, r, now);
        }
        list.push(']');
        o.time("at", r, now);
        o.str("boot", &self.boot);
        let mut c = Obj::new(o.key("config"));
        c.u64("amber_ms", self.config.threshold_ms * 7 / 10);
        c.u64("long_hold_ms", self.config.long_hold_ms);
        c.u64("threshold_ms", self.config.threshold_ms);
        c.str("version", env!("CARGO_PKG_VERSION"));
        c.str("zone", &self.config.zone);
        c.end();
        o.raw("figures", &g.figures.json().to_string());
        let list = o.key("legs");
        list.push('[');
        for (i, (id, view)) in legs.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            let mut e = Obj::new(list);
            write_leg_entry(&mut e, r, id, view, view.timers(now), |_| {});
            e.end();
        }
        list.push(']');
        o.u64("ringing", ringing as u64);
        o.u64("seq", g.seq);
        let list = o.key("ticker");
        list.push('[');
        for (i, t) in g.figures.ticker().enumerate() {
            if i > 0 {
                list.push(',');
            }
            t.write_json(list, r);
        }
        list.push(']');
        o.str("type", "snapshot");
        o.end();
        Frame {
            seq: g.seq,
            text: out.into(),
        }
    }

    /// Numbers the frame that `write` writes (given its `seq`), keeps it for replay and
    /// offers it to every client: the text is written once and shared by all.
    fn publish(&self, g: &mut Inner, write: impl FnOnce(&Inner, &mut String, u64)) {
        let mut text = String::with_capacity(FRAME_CAPACITY);
        write(g, &mut text, g.seq + 1);
        g.seq += 1;
        // The replay buffer keeps thousands of frames: no slack in them.
        if text.capacity() - text.len() > 64 {
            text.shrink_to_fit();
        }
        let frame = Frame {
            seq: g.seq,
            text: text.into(),
        };
        g.replay_bytes += frame.text.len();
        g.replay.push_back(frame.clone());
        while g.replay.len() > self.opts.replay_frames || g.replay_bytes > self.opts.replay_bytes {
            match g.replay.pop_front() {
                Some(old) => g.replay_bytes -= old.text.len(),
                None => break,
            }
        }
        let dropped = &self.dropped;
        g.clients.retain(|c| match c.tx.try_send(frame.clone()) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // This frame and every one still queued are lost to this client.
                let queued = c.tx.max_capacity() - c.tx.capacity();
                dropped.inc_by(1 + queued as u64);
                c.kick.notify_one();
                false
            }
            // The connection is gone; its subscription is being dropped.
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
    }

    /// A `leg.*` or `violation` frame (keys in byte order).
    #[allow(clippy::too_many_arguments)]
    fn write_leg_frame(
        &self,
        out: &mut String,
        seq: u64,
        kind: &str,
        at: CaptureTime,
        now: CaptureTime,
        leg_id: &str,
        view: &LegView,
        violation: Option<TickerRef<'_>>,
    ) {
        let r = &self.renderer;
        let mut o = Obj::new(out);
        o.time("at", r, at);
        o.str("boot", &self.boot);
        write_leg_entry(&mut o, r, leg_id, view, view.timers(now), |o| {
            o.u64("seq", seq)
        });
        o.str("type", kind);
        if let Some(v) = violation {
            v.write_json(o.key("violation"), r);
        }
        o.end();
    }

    fn on_event(&self, ev: &Event) {
        let mut g = self.lock();
        let g = &mut *g;
        let at = ev.at();
        let now = self.now(g, Some(at));
        let kind = match ev {
            Event::LegRinging { .. } => "leg.ringing",
            Event::LegAnswered { .. } => "leg.answered",
            Event::LegHeld { .. } => "leg.held",
            Event::LegResumed { .. } => "leg.resumed",
            Event::LegEnded { .. } => "leg.ended",
            Event::ViolationRaised { .. } => "violation",
            Event::AgentRegistration(_) => "",
        };
        // The leg's view is made once: rendered into the frame, then kept on the board.
        let view = ev.leg().map(|leg| {
            let view = g.board.view(leg);
            let violation = match ev {
                Event::ViolationRaised { violation, .. } => Some(TickerRef::new(violation, leg)),
                _ => None,
            };
            self.publish(g, |_, out, seq| {
                self.write_leg_frame(out, seq, kind, at, now, &leg.leg_id, &view, violation)
            });
            view
        });
        let changed_agent = g.board.apply(ev, view);
        if g.figures.on_event(ev) {
            g.figures_dirty = true;
        }
        if let Some(ext) = changed_agent {
            if g.board.agent(&ext).is_some() {
                self.publish(g, |g, out, seq| {
                    // Present: checked above.
                    let Some(a) = g.board.agent(&ext) else { return };
                    let mut o = Obj::new(out);
                    a.write_json(o.key("agent"), &self.renderer, now);
                    o.time("at", &self.renderer, at);
                    o.str("boot", &self.boot);
                    o.u64("seq", seq);
                    o.str("type", "agent.state");
                    o.end();
                });
            }
        }
    }

    fn on_tick(&self, capture_now: Option<CaptureTime>) {
        let mut g = self.lock();
        let g = &mut *g;
        if let Some(c) = capture_now {
            // The clock only moves forward.
            if g.clock.now().is_none_or(|cur| c >= cur) {
                g.clock = Clock {
                    capture: Some(c),
                    wall: Instant::now(),
                };
            }
            if g.figures.roll(c) {
                g.figures_dirty = true;
            }
        }
        let since = g.last_stats.map(|t| t.elapsed());
        let due = match since {
            None => true,
            Some(s) => {
                s >= self.opts.stats_every || (g.figures_dirty && s >= self.opts.stats_min_gap)
            }
        };
        if !due {
            return;
        }
        g.last_stats = Some(Instant::now());
        g.figures_dirty = false;
        let now = self.now(g, None);
        let (ringing, active) = g.board.counts();
        let clients = g.clients.len();
        let figures = g.figures.json().to_string();
        self.publish(g, |_, out, seq| {
            let mut o = Obj::new(out);
            o.u64("active", active as u64);
            o.time("at", &self.renderer, now);
            o.str("boot", &self.boot);
            o.u64("clients", clients as u64);
            o.raw("figures", &figures);
            o.u64("ringing", ringing as u64);
            o.u64("seq", seq);
            o.str("type", "stats");
            o.end();
        });
    }
}

fn wall_now() -> CaptureTime {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    CaptureTime(d.as_micros() as i64)
}

/// The engine-task side of the wallboard.
pub struct WallboardSink {
    hub: Arc<Hub>,
}

impl WallboardSink {
    pub fn new(hub: Arc<Hub>) -> WallboardSink {
        WallboardSink { hub }
    }
}

impl Drop for WallboardSink {
    /// The engine task is over (shutdown): let every connection close.
    fn drop(&mut self) {
        self.hub.close_all();
    }
}

impl EventSink for WallboardSink {
    fn on_event(&mut self, ev: &Event) {
        self.hub.on_event(ev);
    }

    fn on_tick(&mut self, tick: &Tick<'_>) {
        self.hub.on_tick(tick.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn hub(opts: HubOptions) -> Arc<Hub> {
        let cfg = Config::default().validate(None).unwrap();
        let m = Metrics::new(10_000, 3.6);
        Hub::new(&cfg, &m, opts)
    }

    fn tick(h: &Hub) {
        h.lock().last_stats = None;
        h.on_tick(Some(CaptureTime::from_secs_micros(1_800_000_000, 0)));
    }

    fn seqs(frames: &[Frame]) -> Vec<u64> {
        frames.iter().map(|f| f.seq).collect()
    }

    /// The frames as the hub built them through `serde_json::Value` before they were
    /// written directly (commit 7a4459a): the oracle of the byte-for-byte test.
    mod reference {
        use serde_json::{json, Map, Value};

        use super::super::board::on_hold;
        use super::super::{leg_json, Hub, Inner};
        use crate::engine::leg::LegRecord;
        use crate::engine::rules::Violation;
        use crate::sinks::wallboard::figures::TickerItem;
        use crate::time::CaptureTime;

        fn timers(o: &mut Map<String, Value>, l: &LegRecord, now: CaptureTime) {
            if l.ended_at.is_some() {
                return;
            }
            match l.answered_at {
                None => {
                    let start = l.ring_start_at.unwrap_or(l.invite_at);
                    o.insert("ring_elapsed_ms".into(), json!(now.millis_since(start)));
                }
                Some(ans) => {
                    o.insert("talk_elapsed_ms".into(), json!(now.millis_since(ans)));
                    if on_hold(l) {
                        if let Some(h) = l.holds.iter().rev().find(|h| h.end_at.is_none()) {
                            o.insert(
                                "hold_elapsed_ms".into(),
                                json!(now.millis_since(h.start_at)),
                            );
                        }
                    }
                }
            }
        }

        fn frame(
            h: &Hub,
            kind: &str,
            seq: u64,
            at: CaptureTime,
            body: Map<String, Value>,
        ) -> String {
            let mut m = Map::new();
            m.insert("type".into(), json!(kind));
            m.insert("seq".into(), json!(seq));
            m.insert("boot".into(), json!(h.boot));
            m.insert("at".into(), json!(h.renderer.time(at)));
            m.extend(body);
            Value::Object(m).to_string()
        }

        #[allow(clippy::too_many_arguments)]
        pub fn leg_frame(
            h: &Hub,
            kind: &str,
            seq: u64,
            at: CaptureTime,
            now: CaptureTime,
            leg: &LegRecord,
            violation: Option<&Violation>,
        ) -> String {
            let mut o = Map::new();
            o.insert("leg".into(), leg_json(&h.renderer, leg));
            timers(&mut o, leg, now);
            if let Some(v) = violation {
                o.insert(
                    "violation".into(),
                    TickerItem::new(v, leg).json(&h.renderer),
                );
            }
            frame(h, kind, seq, at, o)
        }

        pub fn agent_frame(
            h: &Hub,
            g: &Inner,
            ext: &str,
            seq: u64,
            at: CaptureTime,
            now: CaptureTime,
        ) -> String {
            let mut body = Map::new();
            body.insert(
                "agent".into(),
                g.board.agent(ext).unwrap().json(&h.renderer, now),
            );
            frame(h, "agent.state", seq, at, body)
        }

        /// `clients`: connected when the frame was made.
        pub fn stats(h: &Hub, g: &Inner, clients: usize, seq: u64, now: CaptureTime) -> String {
            let (ringing, active) = g.board.counts();
            let mut body = Map::new();
            body.insert("figures".into(), g.figures.json());
            body.insert("ringing".into(), json!(ringing));
            body.insert("active".into(), json!(active));
            body.insert("clients".into(), json!(clients));
            frame(h, "stats", seq, now, body)
        }

        /// `legs`: the latest record of every open leg, oldest first.
        pub fn snapshot(h: &Hub, g: &Inner, legs: &[&LegRecord], now: CaptureTime) -> String {
            let r = &h.renderer;
            let legs: Vec<Value> = legs
                .iter()
                .map(|l| {
                    let mut o = Map::new();
                    o.insert("leg".into(), leg_json(r, l));
                    timers(&mut o, l, now);
                    Value::Object(o)
                })
                .collect();
            let agents: Vec<Value> = g.board.agents().map(|a| a.json(r, now)).collect();
            let ticker: Vec<Value> = g.figures.ticker().map(|t| t.json(r)).collect();
            let (ringing, active) = g.board.counts();
            let mut m = Map::new();
            m.insert("type".into(), json!("snapshot"));
            m.insert("seq".into(), json!(g.seq));
            m.insert("boot".into(), json!(h.boot));
            m.insert("at".into(), json!(r.time(now)));
            m.insert(
                "config".into(),
                json!({
                    "threshold_ms": h.config.threshold_ms,
                    "amber_ms": h.config.threshold_ms * 7 / 10,
                    "long_hold_ms": h.config.long_hold_ms,
                    "zone": h.config.zone,
                    "version": env!("CARGO_PKG_VERSION"),
                }),
            );
            m.insert("legs".into(), Value::Array(legs));
            m.insert("agents".into(), Value::Array(agents));
            m.insert("figures".into(), g.figures.json());
            m.insert("ticker".into(), Value::Array(ticker));
            m.insert("ringing".into(), json!(ringing));
            m.insert("active".into(), json!(active));
            Value::Object(m).to_string()
        }
    }

    /// Every kind of frame is byte for byte what the `Value` path built: leg events of
    /// every kind (holds, media, violations, a linked Call-ID, no customer), agent
    /// states, stats and snapshots with open legs, ringing and held.
    #[tokio::test(start_paused = true)]
    async fn frames_are_the_bytes_the_value_path_built() {
        use crate::engine::leg::{EndReason, HangupBy};
        use crate::engine::registrations::{RegChange, RegState};
        use crate::engine::rules::{RuleId, Violation};

        let roster = crate::engine::agents::Roster::from_csv_bytes(
            "extension,agent_id,name,team\n8001,A0001,李娜,Inbound-1\n".as_bytes(),
        )
        .unwrap();
        let mut cfg = Config::default().validate(None).unwrap();
        cfg.roster = roster;
        cfg.raw.agents.extensions = vec!["8001-8003".into()];
        let h = Hub::new(&cfg, &Metrics::new(10_000, 3.6), HubOptions::default());
        let t0 = CaptureTime::from_secs_micros(1_800_000_000, 0);
        h.on_tick(Some(t0));
        let mut sub = h.subscribe(Some(0), None).unwrap();
        let now = || {
            let g = h.lock();
            h.now(&g, None)
        };
        let stats = sub.initial.remove(0);
        let t = now();
        assert_eq!(
            stats.text.as_str(),
            reference::stats(&h, &h.lock(), 0, 1, t)
        );

        let full = leg::tests::full_record();
        let mut a = full.clone();
        a.ended_at = None;
        a.answered_at = None;
        a.ring_ms = None;
        a.outcome = None;
        a.holds.clear();
        a.media.clear();
        a.violations.clear();
        a.linked_call_id = None;
        a.hold_ms = 0;
        let mut b = a.clone();
        b.leg_id = "b".into();
        b.agent = "8002".into();
        b.agent_id = "8002".into();
        b.agent_name = None;
        b.team = None;
        b.customer = None;
        b.invite_at = t0.plus_millis(500);
        b.ring_start_at = None;
        let ringing_a = a.clone();
        let mut answered_a = a.clone();
        answered_a.answered_at = full.answered_at;
        answered_a.ring_ms = full.ring_ms;
        answered_a.outcome = full.outcome;
        let mut held_a = full.clone();
        held_a.violations.clear();
        let long_hold = full.violations[0].clone();
        let mut ended_a = full.clone();
        ended_a.ended_at = Some(ended_a.invite_at.plus_millis(90_000));
        ended_a.end_reason = Some(EndReason::Bye);
        ended_a.hangup_by = HangupBy::Customer;
        ended_a.violations.push(Violation {
            rule: RuleId::PoorAudio,
            at: ended_a.invite_at.plus_millis(90_000),
            detail: "MOS 2.9 < 3.6".into(),
        });
        let at = |ms| t0.plus_millis(ms);
        let mut seq = 1;
        let mut step = |ev: Event, open: &[&LegRecord]| {
            h.on_event(&ev);
            let now = now().max(ev.at());
            while let Ok(f) = sub.rx.try_recv() {
                seq += 1;
                assert_eq!(f.seq, seq);
                let g = h.lock();
                let want = if f.text.as_str().contains("\"type\":\"agent.state\"") {
                    let ext = match &ev {
                        Event::AgentRegistration(c) => c.agent.clone(),
                        _ => ev.leg().unwrap().agent.clone(),
                    };
                    reference::agent_frame(&h, &g, &ext, seq, ev.at(), now)
                } else {
                    let (kind, violation) = match &ev {
                        Event::LegRinging { .. } => ("leg.ringing", None),
                        Event::LegAnswered { .. } => ("leg.answered", None),
                        Event::LegHeld { .. } => ("leg.held", None),
                        Event::LegResumed { .. } => ("leg.resumed", None),
                        Event::LegEnded { .. } => ("leg.ended", None),
                        Event::ViolationRaised { violation, .. } => ("violation", Some(violation)),
                        Event::AgentRegistration(_) => unreachable!("no leg frame"),
                    };
                    let leg = ev.leg().unwrap();
                    reference::leg_frame(&h, kind, seq, ev.at(), now, leg, violation)
                };
                assert_eq!(f.text.as_str(), want);
            }
            let g = h.lock();
            let snap = h.snapshot(&g);
            assert_eq!(
                snap.text.as_str(),
                reference::snapshot(&h, &g, open, h.now(&g, None))
            );
        };
        let ev = |kind: &str, at: CaptureTime, leg: &LegRecord| {
            let leg = Box::new(leg.clone());
            match kind {
                "ringing" => Event::LegRinging { at, leg },
                "answered" => Event::LegAnswered { at, leg },
                "held" => Event::LegHeld { at, leg },
                "resumed" => Event::LegResumed { at, leg },
                _ => Event::LegEnded { at, leg },
            }
        };
        step(ev("ringing", at(100), &ringing_a), &[&ringing_a]);
        step(ev("ringing", at(600), &b), &[&ringing_a, &b]);
        step(ev("answered", at(2_100), &answered_a), &[&answered_a, &b]);
        step(ev("held", at(9_100), &held_a), &[&held_a, &b]);
        let mut violated = held_a.clone();
        violated.violations.push(long_hold.clone());
        step(
            Event::ViolationRaised {
                at: at(70_100),
                violation: long_hold,
                leg: Box::new(violated.clone()),
            },
            &[&violated, &b],
        );
        step(
            Event::AgentRegistration(RegChange {
                at: at(71_000),
                agent: "8003".into(),
                state: RegState::Registered {
                    until: at(3_671_000),
                },
                contact: None,
            }),
            &[&violated, &b],
        );
        step(ev("ended", at(90_100), &ended_a), &[&b]);
        step(ev("ended", at(91_000), &b), &[]);
        assert_eq!(seq, 15, "every event's frames were compared");
    }

    #[test]
    fn resume_replays_what_was_missed_else_a_snapshot() {
        let h = hub(HubOptions {
            replay_frames: 4,
            ..HubOptions::default()
        });
        for _ in 0..3 {
            tick(&h);
        }
        let s = h.subscribe(Some(1), None).unwrap();
        assert_eq!(seqs(&s.initial), vec![2, 3]);
        let s = h.subscribe(Some(3), Some(h.boot())).unwrap();
        assert!(s.initial.is_empty(), "nothing missed");
        let s = h.subscribe(Some(2), Some("another-boot")).unwrap();
        assert!(s.initial[0].text.as_str().contains("\"type\":\"snapshot\""));
        for _ in 0..5 {
            tick(&h);
        }
        // 8 frames, 4 kept (5..=8): since=3 is too old, since=4 is just covered.
        let s = h.subscribe(Some(3), None).unwrap();
        assert!(s.initial[0].text.as_str().contains("\"type\":\"snapshot\""));
        assert_eq!(s.initial[0].seq, 8);
        assert_eq!(
            seqs(&h.subscribe(Some(4), None).unwrap().initial),
            vec![5, 6, 7, 8]
        );
        // A `since` from the future (another run) gets a snapshot.
        let s = h.subscribe(Some(99), None).unwrap();
        assert!(s.initial[0].text.as_str().contains("\"type\":\"snapshot\""));
    }

    #[test]
    fn a_full_client_queue_disconnects_that_client_and_counts() {
        let h = hub(HubOptions {
            client_queue: 2,
            ..HubOptions::default()
        });
        let mut slow = h.subscribe(None, None).unwrap();
        let mut fast = h.subscribe(None, None).unwrap();
        assert_eq!(h.clients(), 2);
        for _ in 0..2 {
            tick(&h);
            assert!(fast.rx.try_recv().is_ok());
        }
        tick(&h);
        assert_eq!(h.clients(), 1, "the slow client is gone");
        assert_eq!(
            h.dropped.get(),
            3,
            "the frame that did not fit and the two queued"
        );
        assert!(fast.rx.try_recv().is_ok());
        // The slow one gets what was queued, then the end.
        assert!(slow.rx.try_recv().is_ok());
        assert!(slow.rx.try_recv().is_ok());
        assert!(matches!(
            slow.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        drop(fast);
        assert_eq!(h.clients(), 0);
    }
}
