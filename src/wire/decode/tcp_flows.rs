//! The table of TCP stream directions being reassembled, with its caps.
//!
//! Input is every parsed TCP segment with its addresses and capture time; each segment
//! goes to the [`SipStream`] of its direction (created on a SYN or on the first data
//! seen), and its acknowledgement to the opposite direction. Output is the SIP messages
//! those streams complete. Memory is bounded by a stream count, a per-stream byte cap
//! and a total byte cap; the least recently active stream is dropped to make room
//! (counted), idle streams expire in capture time, and holes that will not be filled
//! are given up on at their deadline. Directions found not to carry SIP move to a
//! bounded set where their later segments cost one hash lookup.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use super::counters::{DecodeCounters, DecodeErrorKind};
use super::tcp::TcpSegment;
use super::tcp_sip_stream::{SipStream, Status, StreamCx};
use super::{Datagram, DecodeLimits};
use crate::time::CaptureTime;

/// One direction of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey {
    pub src: SocketAddr,
    pub dst: SocketAddr,
}

impl FlowKey {
    fn reversed(self) -> FlowKey {
        FlowKey {
            src: self.dst,
            dst: self.src,
        }
    }
}

struct Slot {
    generation: u64,
    last_seen: CaptureTime,
    stream: SipStream,
}

/// A stream in activity order (or a hole's deadline); stale once the stream it names
/// is gone (generation mismatch).
struct Mark {
    at: CaptureTime,
    key: FlowKey,
    generation: u64,
}

/// Directions known not to carry SIP, forgotten first-in first-out past the cap
/// (a forgotten one is recognised again at the cost of a little scanning).
struct NotSipSet {
    keys: HashSet<FlowKey>,
    fifo: VecDeque<FlowKey>,
    cap: usize,
}

impl NotSipSet {
    fn insert(&mut self, key: FlowKey) {
        while self.keys.len() >= self.cap {
            match self.fifo.pop_front() {
                Some(old) => {
                    self.keys.remove(&old);
                }
                None => break,
            }
        }
        if self.keys.insert(key) {
            self.fifo.push_back(key);
        }
        if self.fifo.len() > self.cap.saturating_mul(2).saturating_add(64) {
            let keys = &self.keys;
            self.fifo.retain(|k| keys.contains(k));
        }
    }
}

/// All TCP stream directions being reassembled.
pub(crate) struct TcpFlows {
    streams: HashMap<FlowKey, Slot>,
    activity: VecDeque<Mark>,
    gap_deadlines: VecDeque<Mark>,
    not_sip: NotSipSet,
    held_bytes: usize,
    next_generation: u64,
    max_streams: usize,
    max_stream_bytes: usize,
    max_total_bytes: usize,
    idle_timeout_us: i64,
    gap_timeout_us: i64,
}

impl TcpFlows {
    pub(crate) fn new(limits: &DecodeLimits) -> Self {
        let max_streams = limits.max_tcp_streams.max(1);
        TcpFlows {
            streams: HashMap::new(),
            activity: VecDeque::new(),
            gap_deadlines: VecDeque::new(),
            not_sip: NotSipSet {
                keys: HashSet::new(),
                fifo: VecDeque::new(),
                cap: max_streams,
            },
            held_bytes: 0,
            next_generation: 0,
            max_streams,
            max_stream_bytes: limits.max_tcp_stream_bytes.max(1),
            max_total_bytes: limits.max_tcp_total_bytes,
            idle_timeout_us: limits.tcp_idle_timeout_us.max(0),
            gap_timeout_us: limits.tcp_gap_timeout_us.max(0),
        }
    }

    /// Stream directions held.
    pub(crate) fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes held by all streams.
    pub(crate) fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    fn cx<'c>(&self, key: FlowKey, counters: &'c mut DecodeCounters) -> StreamCx<'c> {
        StreamCx {
            src: key.src,
            dst: key.dst,
            max_bytes: self.max_stream_bytes,
            gap_timeout_us: self.gap_timeout_us,
            counters,
        }
    }

    /// Takes one segment travelling `key.src` → `key.dst`.
    pub(crate) fn segment(
        &mut self,
        at: CaptureTime,
        key: FlowKey,
        seg: &TcpSegment<'_>,
        counters: &mut DecodeCounters,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        if seg.flags.rst {
            self.remove(&key);
            self.remove(&key.reversed());
            return;
        }
        if seg.flags.syn && !seg.flags.ack {
            // A new connection (reusing the addresses, maybe): look at it afresh.
            self.not_sip.keys.remove(&key);
            self.not_sip.keys.remove(&key.reversed());
        } else if self.not_sip.keys.contains(&key) {
            return;
        }
        if seg.flags.ack {
            let reverse = key.reversed();
            let mut cx = self.cx(reverse, counters);
            if let Some(slot) = self.streams.get_mut(&reverse) {
                let before = slot.stream.held();
                slot.stream.peer_ack(at, seg.ack, &mut cx, emit);
                let after = slot.stream.held();
                self.held_bytes = self.held_bytes.saturating_sub(before).saturating_add(after);
            }
        }
        if !self.streams.contains_key(&key) {
            if !seg.flags.syn && seg.payload.is_empty() {
                return;
            }
            while self.streams.len() >= self.max_streams {
                if !self.evict_least_recent(counters) {
                    break;
                }
            }
            let generation = self.next_generation;
            self.next_generation = self.next_generation.wrapping_add(1);
            self.streams.insert(
                key,
                Slot {
                    generation,
                    last_seen: at,
                    stream: SipStream::new(seg.flags.syn),
                },
            );
            self.activity.push_back(Mark {
                at,
                key,
                generation,
            });
        }
        let mut cx = self.cx(key, counters);
        let Some(slot) = self.streams.get_mut(&key) else {
            return;
        };
        slot.last_seen = at;
        let before = slot.stream.held();
        let had_gap = slot.stream.gap_since().is_some();
        let status = slot
            .stream
            .segment(at, seg.seq, seg.flags, seg.payload, &mut cx, emit);
        let after = slot.stream.held();
        let new_gap = !had_gap && slot.stream.gap_since().is_some();
        let generation = slot.generation;
        self.held_bytes = self.held_bytes.saturating_sub(before).saturating_add(after);
        if new_gap {
            self.gap_deadlines.push_back(Mark {
                at: CaptureTime(at.0.saturating_add(self.gap_timeout_us)),
                key,
                generation,
            });
        }
        match status {
            Status::Keep => {}
            Status::Closed => self.remove(&key),
            Status::NotSip => self.not_sip_connection(key),
        }
        while self.held_bytes > self.max_total_bytes {
            if !self.evict_least_recent(counters) {
                break;
            }
        }
        self.compact();
    }

    /// Runs what is due at `now`: holes past their deadline are given up (and what
    /// follows them framed), idle streams are dropped.
    pub(crate) fn expire(
        &mut self,
        now: CaptureTime,
        counters: &mut DecodeCounters,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        while let Some(mark) = self.gap_deadlines.front() {
            if mark.at > now {
                break;
            }
            let (key, generation) = (mark.key, mark.generation);
            self.gap_deadlines.pop_front();
            let mut cx = self.cx(key, counters);
            if let Some(slot) = self.streams.get_mut(&key) {
                if slot.generation != generation {
                    continue;
                }
                let before = slot.stream.held();
                slot.stream.check_gap(now, false, &mut cx, emit);
                let after = slot.stream.held();
                self.held_bytes = self.held_bytes.saturating_sub(before).saturating_add(after);
                let not_sip = slot.stream.is_not_sip();
                // A newer hole than the one this deadline was for: wait for its own.
                if let Some(since) = slot.stream.gap_since() {
                    let due = CaptureTime(since.0.saturating_add(self.gap_timeout_us));
                    if due > now {
                        self.gap_deadlines.push_back(Mark {
                            at: due,
                            key,
                            generation,
                        });
                    }
                }
                if not_sip {
                    self.not_sip_connection(key);
                }
            }
        }
        while let Some(mark) = self.activity.front() {
            if now.0.saturating_sub(mark.at.0) < self.idle_timeout_us {
                break;
            }
            let (key, generation) = (mark.key, mark.generation);
            self.activity.pop_front();
            let mut cx = self.cx(key, counters);
            let Some(slot) = self.streams.get_mut(&key) else {
                continue;
            };
            if slot.generation != generation {
                continue;
            }
            if now.0.saturating_sub(slot.last_seen.0) < self.idle_timeout_us {
                // Active since this mark was queued: requeue at its last activity.
                let at = slot.last_seen;
                self.activity.push_back(Mark {
                    at,
                    key,
                    generation,
                });
                continue;
            }
            // Whatever complete messages wait behind a hole are still worth having.
            let before = slot.stream.held();
            slot.stream.check_gap(now, true, &mut cx, emit);
            let after = slot.stream.held();
            self.held_bytes = self.held_bytes.saturating_sub(before).saturating_add(after);
            if after > 0 {
                cx.counters.bump(DecodeErrorKind::TcpStreamTimeout);
            }
            self.remove(&key);
        }
    }

    /// Forgets a direction found not to carry SIP, and its opposite with it (SIP over
    /// TCP is SIP both ways), so that a connection is counted once and neither of its
    /// directions is scanned again. An opposite direction that did carry SIP is kept.
    fn not_sip_connection(&mut self, key: FlowKey) {
        self.remove(&key);
        self.not_sip.insert(key);
        let reverse = key.reversed();
        let keep = self
            .streams
            .get(&reverse)
            .is_some_and(|s| s.stream.has_seen_sip());
        if !keep {
            self.remove(&reverse);
            self.not_sip.insert(reverse);
        }
    }

    /// Drops the stream least recently active (approximately: marks are requeued at
    /// most once per call); false when there is none.
    fn evict_least_recent(&mut self, counters: &mut DecodeCounters) -> bool {
        let mut requeued = 0usize;
        while let Some(mark) = self.activity.pop_front() {
            let Some(slot) = self.streams.get(&mark.key) else {
                continue;
            };
            if slot.generation != mark.generation {
                continue;
            }
            if slot.last_seen > mark.at && requeued < self.streams.len() {
                requeued += 1;
                self.activity.push_back(Mark {
                    at: slot.last_seen,
                    ..mark
                });
                continue;
            }
            counters.bump(DecodeErrorKind::TcpStreamEvicted);
            self.remove(&mark.key);
            return true;
        }
        false
    }

    fn remove(&mut self, key: &FlowKey) {
        if let Some(slot) = self.streams.remove(key) {
            self.held_bytes = self.held_bytes.saturating_sub(slot.stream.held());
        }
    }

    /// Sweeps stale marks once they outnumber live streams, so that the queues stay
    /// bounded by the stream cap whatever the traffic.
    fn compact(&mut self) {
        let limit = self.max_streams.saturating_mul(2).saturating_add(64);
        let streams = &self.streams;
        let live = |m: &Mark| {
            streams
                .get(&m.key)
                .is_some_and(|s| s.generation == m.generation)
        };
        if self.activity.len() > limit {
            self.activity.retain(live);
        }
        if self.gap_deadlines.len() > limit {
            self.gap_deadlines.retain(live);
        }
    }
}
