//! Adapters that turn engine events into the world. The engine task owns every sink and
//! hands each [`Event`] to each of them in order, then a [`Tick`] with the engine's
//! counters after every batch of packets and at least once a second. A sink must never
//! block: anything slow (a websocket client, a database) sits behind its own bounded
//! queue with a when-full policy and a `callwatch_events_dropped_total{sink}` counter.
//!
//! [`metrics`] is the Prometheus sink (SPEC §6), [`wallboard`] the live floor for the
//! websocket and the TV page, [`store`] the flagged-call store.

pub mod metrics;
pub mod store;
pub mod wallboard;

use crate::engine::stats::EngineStats;
use crate::engine::{Captured, Event};
use crate::time::CaptureTime;

/// A Call-ID or leg id as the sinks keep it where a copy of the text would cost more
/// than it serves: its 64-bit hash (fixed seed, so the same id always gives the same key).
/// Where a collision could mix data that somebody reads, the reader checks the text.
pub fn id_key(id: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0xca11_1d5e).hash_one(id)
}

/// The calendar day of capture time `t` in the centre's `zone` (SPEC §4 `time.zone`):
/// the service level and the wallboard's figures start afresh at its midnight.
pub fn local_date(zone: chrono_tz::Tz, t: CaptureTime) -> Option<chrono::NaiveDate> {
    use chrono::TimeZone;
    let secs = t.0.div_euclid(1_000_000);
    let nanos = (t.0.rem_euclid(1_000_000) * 1000) as u32;
    zone.timestamp_opt(secs, nanos)
        .single()
        .map(|d| d.date_naive())
}

/// The engine's figures, read after a batch of packets or on the housekeeping tick.
pub struct Tick<'a> {
    pub stats: &'a EngineStats,
    /// Legs in the engine's table (ringing, active, or ended and lingering).
    pub legs_tracked: usize,
    /// The latest clock of any capture source (event time "now"), when one is known.
    pub now: Option<CaptureTime>,
    /// Packets waiting in the engine queue.
    pub queue_depth: usize,
}

/// Receives every engine event, in order, on the engine task.
pub trait EventSink: Send {
    /// Every packet, just before the engine handles it (the store keeps the SIP text of
    /// open calls for the inspectors' ladder). Must be cheap: it runs on the hot path.
    fn on_packet(&mut self, _packet: &Captured<'_>) {}
    fn on_event(&mut self, ev: &Event);
    fn on_tick(&mut self, _tick: &Tick<'_>) {}
}
