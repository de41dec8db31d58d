//! One direction of one TCP connection, put back in order and cut into SIP messages.
//!
//! Input is the segments of that direction (sequence number, flags, payload) and the
//! acknowledgements the other direction sends; output is each complete SIP message, as
//! one [`Datagram`] with [`Transport::Tcp`]. In-order bytes are framed straight from the
//! segment when nothing is pending (no copy for the usual one-message segment); the
//! rest waits in a buffer bounded by the per-stream cap. Out-of-order segments wait
//! within the same cap until the hole is filled, or until it is known never to be:
//! the peer acknowledged bytes the capture never saw, the wait passed the gap timeout,
//! or the cap is reached. The stream then resynchronises at the next line that starts
//! a SIP message (RFC 3261 §18.3 leaves no other way to find one).

use std::net::SocketAddr;

use smallvec::SmallVec;

use super::counters::{DecodeCounters, DecodeErrorKind};
use super::sip_framing::{find_start, start_line, HeaderScan, Scan, Search, Verdict};
use super::tcp::Flags;
use super::Datagram;
use crate::time::CaptureTime;
use crate::wire::Transport;

/// Bytes a stream that never carried SIP may be hunted through for a start line before
/// it is declared not SIP (a connection joined mid-way may start inside a big body).
const HUNT_LIMIT: usize = 16 * 1024;

/// Largest message skipped by its Content-Length when it is over the per-stream cap;
/// a larger length is taken for garbage and the stream resynchronises instead.
const MAX_SKIP: usize = 16 << 20;

/// Above this many idle bytes of capacity an empty buffer gives its memory back.
const SHRINK_ABOVE: usize = 16 * 1024;

/// What the caller passes down with each call: where messages go and the limits.
pub(crate) struct StreamCx<'c> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub max_bytes: usize,
    pub gap_timeout_us: i64,
    pub counters: &'c mut DecodeCounters,
}

/// What the table should do with the stream after a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    Keep,
    /// FIN or RST: the direction is over.
    Closed,
    /// Not SIP (already counted): forget it and ignore the rest of it cheaply.
    NotSip,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// At a message boundary or inside a message.
    Sync,
    /// Looking for the next start line; `line_start` says whether the next byte begins
    /// a line.
    Resync {
        line_start: bool,
    },
    /// Inside a well-framed message too large to hold: this many bytes to pass over.
    Skip {
        remaining: usize,
    },
    NotSip,
}

/// Splits in-order bytes into messages.
#[derive(Debug)]
struct Framer {
    mode: Mode,
    scan: HeaderScan,
    /// The current message was found by resync: vet it before believing it.
    candidate: bool,
    seen_sip: bool,
    hunted: usize,
}

impl Framer {
    fn new(mode: Mode) -> Self {
        Framer {
            mode,
            scan: HeaderScan::default(),
            candidate: false,
            seen_sip: false,
            hunted: 0,
        }
    }

    fn resync(&mut self, line_start: bool) {
        if self.mode != Mode::NotSip {
            self.mode = Mode::Resync { line_start };
        }
        self.scan = HeaderScan::default();
        self.candidate = false;
    }

    /// Frames as many messages of `data` as are complete, emitting each; returns how
    /// many leading bytes are done with (the rest is the start of a message, or of a
    /// line that may be one, and must be kept).
    fn run(
        &mut self,
        data: &[u8],
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) -> usize {
        let mut pos = 0usize;
        loop {
            let rest = data.get(pos..).unwrap_or_default();
            match self.mode {
                Mode::NotSip => return data.len(),
                Mode::Skip { remaining } => {
                    let n = remaining.min(rest.len());
                    pos += n;
                    if n < remaining {
                        self.mode = Mode::Skip {
                            remaining: remaining - n,
                        };
                        return pos;
                    }
                    self.mode = Mode::Sync;
                    self.scan = HeaderScan::default();
                }
                Mode::Resync { line_start } => match find_start(rest, line_start) {
                    Search::Found(i) => {
                        pos += i;
                        self.mode = Mode::Sync;
                        self.scan = HeaderScan::default();
                        self.candidate = true;
                        self.hunted = 0;
                    }
                    Search::NotFound {
                        keep_from,
                        line_start,
                    } => {
                        self.mode = Mode::Resync { line_start };
                        self.hunted = self.hunted.saturating_add(keep_from);
                        if !self.seen_sip && self.hunted > HUNT_LIMIT {
                            self.not_sip(cx);
                            return data.len();
                        }
                        return pos + keep_from;
                    }
                },
                Mode::Sync => {
                    if self.scan.is_fresh() {
                        // CRLF keep-alives (RFC 5626 §3.5.1) between messages.
                        let skip = rest
                            .iter()
                            .take_while(|&&c| c == b'\r' || c == b'\n')
                            .count();
                        pos += skip;
                        let rest = data.get(pos..).unwrap_or_default();
                        if rest.is_empty() {
                            return pos;
                        }
                        match start_line(rest) {
                            Verdict::Yes => {}
                            Verdict::NeedMore => return pos,
                            Verdict::No if !self.seen_sip && !self.candidate => {
                                self.not_sip(cx);
                                return data.len();
                            }
                            Verdict::No => {
                                cx.counters.bump(DecodeErrorKind::SipFraming);
                                self.resync(false);
                                continue;
                            }
                        }
                    }
                    let msg = data.get(pos..).unwrap_or_default();
                    match self.scan.advance(msg, cx.max_bytes) {
                        Scan::NeedMore => return pos,
                        Scan::Complete(len) => {
                            let payload = msg.get(..len).unwrap_or_default();
                            if self.candidate && !self.scan.has_dialog_headers() {
                                // Resync landed on something that only looks like a
                                // start line (a sipfrag body, quoted text): drop it and
                                // look again after it.
                                cx.counters.bump(DecodeErrorKind::SipFraming);
                                self.resync(false);
                                pos += 1;
                                continue;
                            }
                            emit(Datagram {
                                src: cx.src,
                                dst: cx.dst,
                                transport: Transport::Tcp,
                                payload,
                            });
                            self.seen_sip = true;
                            self.candidate = false;
                            self.scan = HeaderScan::default();
                            pos += len;
                        }
                        Scan::TooLarge { total } => {
                            cx.counters.bump(DecodeErrorKind::TcpBufferOverflow);
                            match total.filter(|&t| t <= MAX_SKIP && !self.candidate) {
                                Some(t) => {
                                    self.mode = Mode::Skip { remaining: t };
                                    self.scan = HeaderScan::default();
                                }
                                None => {
                                    self.resync(false);
                                    pos += 1;
                                }
                            }
                        }
                        Scan::BadLength => {
                            cx.counters.bump(DecodeErrorKind::SipFraming);
                            self.resync(false);
                            pos += 1;
                        }
                    }
                }
            }
        }
    }

    fn not_sip(&mut self, cx: &mut StreamCx<'_>) {
        if self.mode != Mode::NotSip {
            cx.counters.bump(DecodeErrorKind::TcpNotSip);
        }
        self.mode = Mode::NotSip;
        self.scan = HeaderScan::default();
    }
}

/// A segment that arrived ahead of the bytes before it.
#[derive(Debug)]
struct Ahead {
    seq: u32,
    data: Vec<u8>,
}

/// One direction of a TCP connection.
#[derive(Debug)]
pub(crate) struct SipStream {
    /// The sequence number of the next in-order byte; unknown until the SYN or the
    /// first data segment.
    next_seq: Option<u32>,
    /// In-order bytes not framed yet: the beginning of a message (or of a line, while
    /// resynchronising).
    buf: Vec<u8>,
    ahead: SmallVec<[Ahead; 2]>,
    ahead_bytes: usize,
    /// When the oldest unfilled hole appeared.
    gap_since: Option<CaptureTime>,
    /// The highest acknowledgement the other direction sent for this one's bytes.
    peer_acked: Option<u32>,
    framer: Framer,
}

/// `a` is after `b` in sequence space (RFC 9293 §3.4, modulo 2^32).
fn seq_after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl SipStream {
    /// A stream whose first segment is `flags` (a SYN gives the initial sequence
    /// number; anything else means the capture joined the connection mid-way, and the
    /// first message boundary has to be found).
    pub(crate) fn new(syn: bool) -> Self {
        let mode = if syn {
            Mode::Sync
        } else {
            Mode::Resync { line_start: true }
        };
        SipStream {
            next_seq: None,
            buf: Vec::new(),
            ahead: SmallVec::new(),
            ahead_bytes: 0,
            gap_since: None,
            peer_acked: None,
            framer: Framer::new(mode),
        }
    }

    /// Bytes held (buffered and out of order), for the caps.
    pub(crate) fn held(&self) -> usize {
        self.buf.len().saturating_add(self.ahead_bytes)
    }

    /// When the current unfilled hole appeared, if there is one.
    pub(crate) fn gap_since(&self) -> Option<CaptureTime> {
        self.gap_since
    }

    pub(crate) fn is_not_sip(&self) -> bool {
        self.framer.mode == Mode::NotSip
    }

    /// Whether a SIP message was read from this direction.
    pub(crate) fn has_seen_sip(&self) -> bool {
        self.framer.seen_sip
    }

    /// Takes one segment of this direction.
    pub(crate) fn segment(
        &mut self,
        at: CaptureTime,
        seq: u32,
        flags: Flags,
        payload: &[u8],
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) -> Status {
        if flags.rst {
            return Status::Closed;
        }
        let mut seq = seq;
        if flags.syn {
            let data_seq = seq.wrapping_add(1);
            if self.next_seq != Some(data_seq) {
                // A new connection on the same addresses (or the first SYN).
                *self = SipStream::new(true);
                self.next_seq = Some(data_seq);
            }
            seq = data_seq;
        }
        if self.framer.mode == Mode::NotSip {
            return Status::NotSip;
        }
        if !payload.is_empty() {
            self.accept(at, seq, payload, cx, emit);
        }
        self.check_gap(at, false, cx, emit);
        if self.framer.mode == Mode::NotSip {
            return Status::NotSip;
        }
        let end = seq.wrapping_add(payload.len() as u32);
        if flags.fin && self.ahead.is_empty() && self.next_seq.is_none_or(|n| n == end) {
            return Status::Closed;
        }
        Status::Keep
    }

    /// Records an acknowledgement from the other direction: bytes it acknowledges that
    /// the capture never saw will not be retransmitted, so a hole there is final.
    pub(crate) fn peer_ack(
        &mut self,
        at: CaptureTime,
        ack: u32,
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        if self.peer_acked.is_none_or(|old| seq_after(ack, old)) {
            self.peer_acked = Some(ack);
        }
        if !self.ahead.is_empty() {
            self.check_gap(at, false, cx, emit);
        }
    }

    /// Gives up on a hole that the timeout says will not be filled (or, `force`, on
    /// any hole: the stream is about to be dropped), and frames what lies after it.
    pub(crate) fn check_gap(
        &mut self,
        at: CaptureTime,
        force: bool,
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        let (Some(next), Some(first)) = (self.next_seq, self.ahead.first()) else {
            return;
        };
        let acked_past = self.peer_acked.is_some_and(|a| seq_after(a, next));
        let waited = self
            .gap_since
            .is_some_and(|since| at.0.saturating_sub(since.0) >= cx.gap_timeout_us);
        if force || acked_past || waited {
            let to = first.seq;
            self.skip_to(to, cx);
            self.drain_ahead(at, cx, emit);
        }
    }

    /// Declares the bytes before `seq` lost: what is buffered can no longer complete.
    fn skip_to(&mut self, seq: u32, cx: &mut StreamCx<'_>) {
        cx.counters.bump(DecodeErrorKind::TcpGap);
        self.buf.clear();
        self.framer.resync(true);
        self.next_seq = Some(seq);
        self.gap_since = None;
    }

    fn accept(
        &mut self,
        at: CaptureTime,
        seq: u32,
        payload: &[u8],
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        let next = *self.next_seq.get_or_insert(seq);
        let diff = seq.wrapping_sub(next) as i32;
        if diff <= 0 {
            // In order, or a retransmission that may carry some new bytes at its end.
            let old = diff.unsigned_abs() as usize;
            if let Some(new) = payload.get(old..).filter(|n| !n.is_empty()) {
                self.deliver(new, cx, emit);
                self.drain_ahead(at, cx, emit);
            }
            return;
        }
        let distance = diff.unsigned_abs() as usize;
        let fits =
            distance <= cx.max_bytes && self.held().saturating_add(payload.len()).le(&cx.max_bytes);
        if !fits {
            // The hole cannot be waited for within the cap: give it up now.
            let to = self.ahead.first().map_or(seq, |a| a.seq);
            let to = if seq_after(to, seq) { seq } else { to };
            self.skip_to(to, cx);
            self.drain_ahead(at, cx, emit);
            let next = self.next_seq.unwrap_or(seq);
            if seq.wrapping_sub(next) as i32 <= 0 {
                let old = seq.wrapping_sub(next) as i32;
                if let Some(new) = payload
                    .get(old.unsigned_abs() as usize..)
                    .filter(|n| !n.is_empty())
                {
                    self.deliver(new, cx, emit);
                    self.drain_ahead(at, cx, emit);
                }
            } else if self.held().saturating_add(payload.len()) <= cx.max_bytes {
                self.store_ahead(at, seq, payload);
            } else {
                cx.counters.bump(DecodeErrorKind::TcpBufferOverflow);
            }
            return;
        }
        self.store_ahead(at, seq, payload);
    }

    fn store_ahead(&mut self, at: CaptureTime, seq: u32, payload: &[u8]) {
        let Some(next) = self.next_seq else { return };
        let rel = seq.wrapping_sub(next);
        let mut idx = self.ahead.len();
        for (i, a) in self.ahead.iter().enumerate() {
            let a_rel = a.seq.wrapping_sub(next);
            if a_rel == rel && a.data.len() >= payload.len() {
                return; // a retransmission of a segment already waiting
            }
            if a_rel >= rel {
                idx = i;
                break;
            }
        }
        self.ahead.insert(
            idx,
            Ahead {
                seq,
                data: payload.to_vec(),
            },
        );
        self.ahead_bytes = self.ahead_bytes.saturating_add(payload.len());
        self.gap_since.get_or_insert(at);
    }

    /// Delivers waiting segments that the in-order bytes have reached.
    fn drain_ahead(
        &mut self,
        at: CaptureTime,
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        while let (Some(next), Some(first)) = (self.next_seq, self.ahead.first()) {
            let diff = first.seq.wrapping_sub(next) as i32;
            if diff > 0 {
                return;
            }
            let a = self.ahead.remove(0);
            self.ahead_bytes = self.ahead_bytes.saturating_sub(a.data.len());
            if let Some(new) = a
                .data
                .get(diff.unsigned_abs() as usize..)
                .filter(|n| !n.is_empty())
            {
                self.deliver(new, cx, emit);
            }
            if self.framer.mode == Mode::NotSip {
                self.ahead.clear();
                self.ahead_bytes = 0;
            }
        }
        if self.ahead.is_empty() {
            self.gap_since = None;
        } else {
            // Another hole further on: its wait starts now.
            self.gap_since.get_or_insert(at);
        }
    }

    /// Feeds in-order bytes to the framer, keeping what it has not finished with.
    fn deliver(
        &mut self,
        mut bytes: &[u8],
        cx: &mut StreamCx<'_>,
        emit: &mut dyn FnMut(Datagram<'_>),
    ) {
        if let Some(n) = self.next_seq.as_mut() {
            *n = n.wrapping_add(bytes.len() as u32);
        }
        if self.buf.is_empty() {
            let used = self.framer.run(bytes, cx, emit).min(bytes.len());
            bytes = bytes.get(used..).unwrap_or_default();
        }
        // Whatever is left joins the buffer, at most up to the cap at a time so that the
        // buffer never outgrows it: the framer gives up on a message of the cap's size.
        while !bytes.is_empty() {
            let room = cx.max_bytes.saturating_sub(self.buf.len()).max(1);
            let take = room.min(bytes.len());
            let (now, later) = bytes.split_at(take);
            self.buf.extend_from_slice(now);
            bytes = later;
            let used = self.framer.run(&self.buf, cx, emit).min(self.buf.len());
            if used == 0 && self.buf.len() >= cx.max_bytes {
                cx.counters.bump(DecodeErrorKind::TcpBufferOverflow);
                self.buf.clear();
                self.framer.resync(false);
            } else {
                self.buf.drain(..used);
            }
        }
        if self.framer.mode == Mode::NotSip {
            self.buf.clear();
        }
        if self.buf.is_empty() && self.buf.capacity() > SHRINK_ABOVE {
            self.buf = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "10.0.0.1:5060";
    const B: &str = "10.0.0.2:40000";

    struct Harness {
        stream: SipStream,
        counters: DecodeCounters,
        out: Vec<String>,
        max: usize,
    }

    fn data() -> Flags {
        Flags {
            ack: true,
            ..Flags::default()
        }
    }

    impl Harness {
        fn new(syn_at: Option<u32>) -> Self {
            let mut h = Harness {
                stream: SipStream::new(syn_at.is_some()),
                counters: DecodeCounters::default(),
                out: Vec::new(),
                max: 4096,
            };
            if let Some(isn) = syn_at {
                let syn = Flags {
                    syn: true,
                    ..Flags::default()
                };
                h.seg(0, isn, syn, b"");
            }
            h
        }

        fn seg(&mut self, t: i64, seq: u32, flags: Flags, payload: &[u8]) -> Status {
            let mut cx = StreamCx {
                src: A.parse().unwrap(),
                dst: B.parse().unwrap(),
                max_bytes: self.max,
                gap_timeout_us: 2_000_000,
                counters: &mut self.counters,
            };
            let out = &mut self.out;
            let at = CaptureTime(t);
            self.stream
                .segment(at, seq, flags, payload, &mut cx, &mut |d| {
                    assert_eq!(d.transport, Transport::Tcp);
                    out.push(String::from_utf8_lossy(d.payload).into_owned())
                })
        }

        fn ack(&mut self, t: i64, ack: u32) {
            let mut cx = StreamCx {
                src: A.parse().unwrap(),
                dst: B.parse().unwrap(),
                max_bytes: self.max,
                gap_timeout_us: 2_000_000,
                counters: &mut self.counters,
            };
            let out = &mut self.out;
            self.stream
                .peer_ack(CaptureTime(t), ack, &mut cx, &mut |d| {
                    out.push(String::from_utf8_lossy(d.payload).into_owned())
                });
        }
    }

    fn msg(cseq: u32, body: &str) -> String {
        format!(
            "INFO sip:8001@pbx SIP/2.0\r\nCall-ID: c{cseq}\r\nCSeq: {cseq} INFO\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn two_messages_in_one_segment() {
        let mut h = Harness::new(Some(1000));
        let both = msg(1, "one") + &msg(2, "");
        h.seg(1, 1001, data(), both.as_bytes());
        assert_eq!(h.out, vec![msg(1, "one"), msg(2, "")]);
        assert_eq!(h.counters.total(), 0);
        assert_eq!(h.stream.held(), 0);
    }

    #[test]
    fn one_message_over_three_segments() {
        let mut h = Harness::new(Some(0));
        let m = msg(1, "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n");
        let b = m.as_bytes();
        let (p1, rest) = b.split_at(20);
        let (p2, p3) = rest.split_at(40);
        h.seg(1, 1, data(), p1);
        h.seg(2, 21, data(), p2);
        assert!(h.out.is_empty());
        h.seg(3, 61, data(), p3);
        assert_eq!(h.out, vec![m]);
        assert_eq!(h.stream.held(), 0);
    }

    #[test]
    fn out_of_order_segments_are_put_back_in_order() {
        let mut h = Harness::new(Some(0));
        let m = msg(1, "body") + &msg(2, "x");
        let b = m.as_bytes();
        h.seg(1, 61, data(), &b[60..]);
        h.seg(2, 31, data(), &b[30..60]);
        assert!(h.out.is_empty());
        assert!(h.stream.gap_since().is_some());
        h.seg(3, 1, data(), &b[..30]);
        assert_eq!(h.out, vec![msg(1, "body"), msg(2, "x")]);
        assert_eq!(h.counters.total(), 0);
        assert!(h.stream.gap_since().is_none());
    }

    #[test]
    fn retransmissions_are_ignored() {
        let mut h = Harness::new(Some(0));
        let m = msg(1, "abc");
        let b = m.as_bytes();
        h.seg(1, 1, data(), &b[..30]);
        h.seg(2, 1, data(), &b[..30]);
        // overlaps the old bytes and brings the rest
        h.seg(3, 11, data(), &b[10..]);
        h.seg(4, 1, data(), b);
        assert_eq!(h.out, vec![m]);
        assert_eq!(h.counters.total(), 0);
    }

    #[test]
    fn a_gap_resyncs_at_the_next_start_line_when_the_peer_acks_past_it() {
        let mut h = Harness::new(Some(0));
        // SDP-like bodies end in CRLF, so the next start line begins a line.
        let m1 = msg(1, "aaaa\r\n");
        let m2 = msg(2, "bbbb\r\n");
        let m3 = msg(3, "");
        let all = format!("{m1}{m2}{m3}");
        let b = all.as_bytes();
        let lost = 20..m1.len() + 10; // tail of m1 and head of m2 never captured
        h.seg(1, 1, data(), &b[..lost.start]);
        h.seg(2, 1 + lost.end as u32, data(), &b[lost.end..]);
        assert!(h.out.is_empty(), "still waiting for the hole");
        h.ack(3, 1 + b.len() as u32);
        assert_eq!(h.out, vec![m3]);
        assert_eq!(h.counters.get(DecodeErrorKind::TcpGap), 1);
    }

    #[test]
    fn a_gap_is_given_up_after_the_timeout() {
        let mut h = Harness::new(Some(0));
        let m1 = msg(1, "aaaa");
        let m2 = msg(2, "");
        let lost = m1.len() as u32;
        h.seg(1, 1 + lost, data(), m2.as_bytes());
        h.seg(1_000_000, 1 + lost, data(), m2.as_bytes());
        assert!(h.out.is_empty());
        h.seg(2_500_000, 1 + lost + m2.len() as u32, data(), b"\r\n\r\n");
        assert_eq!(h.out, vec![m2]);
        assert_eq!(h.counters.get(DecodeErrorKind::TcpGap), 1);
    }

    #[test]
    fn keep_alives_are_skipped() {
        let mut h = Harness::new(Some(0));
        let s = format!("\r\n\r\n{}\r\n{}", msg(1, ""), msg(2, ""));
        h.seg(1, 1, data(), s.as_bytes());
        h.seg(2, 1 + s.len() as u32, data(), b"\r\n\r\n");
        assert_eq!(h.out, vec![msg(1, ""), msg(2, "")]);
        assert_eq!(h.stream.held(), 0);
    }

    #[test]
    fn compact_length_and_missing_length() {
        let mut h = Harness::new(Some(0));
        let a = "SIP/2.0 200 OK\r\nCall-ID: x\r\nCSeq: 1 INFO\r\nl: 2\r\n\r\nok";
        let b = "SIP/2.0 100 Trying\r\nCall-ID: x\r\nCSeq: 1 INFO\r\n\r\n";
        h.seg(1, 1, data(), format!("{a}{b}").as_bytes());
        assert_eq!(h.out, vec![a.to_string(), b.to_string()]);
    }

    #[test]
    fn tls_on_a_syn_started_stream_is_not_sip_once() {
        let mut h = Harness::new(Some(0));
        let st = h.seg(1, 1, data(), &[0x16, 0x03, 0x01, 0x00, 0xa5, 0x01]);
        assert_eq!(st, Status::NotSip);
        assert_eq!(
            h.seg(2, 7, data(), b"INVITE sip:x SIP/2.0\r\n"),
            Status::NotSip
        );
        assert_eq!(h.counters.get(DecodeErrorKind::TcpNotSip), 1);
        assert!(h.out.is_empty());
        assert_eq!(h.stream.held(), 0);
    }

    #[test]
    fn joining_mid_stream_skips_to_the_first_start_line() {
        let mut h = Harness::new(None);
        let m = msg(2, "");
        let s = format!("tail of a body\r\n{m}");
        h.seg(1, 5000, data(), s.as_bytes());
        assert_eq!(h.out, vec![m]);
        assert_eq!(h.counters.total(), 0);
    }

    #[test]
    fn joining_mid_stream_of_http_gives_up_after_the_hunt_limit() {
        let mut h = Harness::new(None);
        let chunk = vec![b'x'; 1400];
        let mut seq = 1u32;
        for i in 0..20 {
            h.seg(i, seq, data(), &chunk);
            seq += 1400;
        }
        assert_eq!(h.counters.get(DecodeErrorKind::TcpNotSip), 1);
        assert!(h.stream.is_not_sip());
        assert_eq!(h.stream.held(), 0);
    }

    #[test]
    fn a_fake_start_line_in_a_body_is_vetted() {
        let mut h = Harness::new(None);
        let s = format!("SIP/2.0 200 OK\r\n\r\n{}", msg(7, ""));
        h.seg(1, 1, data(), s.as_bytes());
        assert_eq!(h.out, vec![msg(7, "")]);
        assert_eq!(h.counters.get(DecodeErrorKind::SipFraming), 1);
    }

    #[test]
    fn oversized_message_is_skipped_by_its_length() {
        let mut h = Harness::new(Some(0));
        h.max = 256;
        let big = msg(1, &"b".repeat(1000));
        let small = msg(2, "");
        let s = format!("{big}{small}");
        let mut seq = 1u32;
        for chunk in s.as_bytes().chunks(100) {
            h.seg(1, seq, data(), chunk);
            seq += chunk.len() as u32;
            assert!(h.stream.held() <= 256);
        }
        assert_eq!(h.out, vec![small]);
        assert_eq!(h.counters.get(DecodeErrorKind::TcpBufferOverflow), 1);
        assert_eq!(h.counters.total(), 1);
    }

    #[test]
    fn oversized_header_block_resyncs_at_the_next_start_line() {
        let mut h = Harness::new(Some(0));
        h.max = 256;
        let big = format!("INFO sip:x SIP/2.0\r\nX-Pad: {}\r\n\r\n", "p".repeat(600));
        let small = msg(2, "");
        let s = format!("{big}{small}");
        let mut seq = 1u32;
        for chunk in s.as_bytes().chunks(100) {
            h.seg(1, seq, data(), chunk);
            seq += chunk.len() as u32;
            assert!(h.stream.held() <= 256);
        }
        assert_eq!(h.out, vec![small]);
        assert_eq!(h.counters.get(DecodeErrorKind::TcpBufferOverflow), 1);
    }

    #[test]
    fn fin_in_order_closes_and_rst_closes() {
        let mut h = Harness::new(Some(0));
        let m = msg(1, "");
        let fin = Flags {
            fin: true,
            ack: true,
            ..Flags::default()
        };
        assert_eq!(h.seg(1, 1, fin, m.as_bytes()), Status::Closed);
        assert_eq!(h.out, vec![m]);
        let rst = Flags {
            rst: true,
            ..Flags::default()
        };
        assert_eq!(h.seg(2, 1, rst, b""), Status::Closed);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let isn = u32::MAX - 10;
        let mut h = Harness::new(Some(isn));
        let m = msg(1, "wrap");
        let b = m.as_bytes();
        h.seg(1, isn.wrapping_add(1), data(), &b[..5]);
        h.seg(2, isn.wrapping_add(6), data(), &b[5..]);
        assert_eq!(h.out, vec![m]);
    }
}
