//! The HEP collector (standards.md §8): HEP v3 (and v1/v2) on UDP and TCP, as sent by
//! Kamailio `siptrace`, OpenSIPS, FreeSWITCH, Asterisk `res_hep` and heplify. Each socket
//! has one receive task that decodes the packet ([`decode`]), checks the shared auth
//! key, and pushes an owned [`IngestPacket`] into the bounded engine queue with
//! `try_send`: it never waits on the engine, and a full queue drops the packet and counts
//! it (`callwatch_events_dropped_total{sink="engine_queue"}`).
//!
//! UDP (a thread of its own, [`receive_udp`], `recvmmsg(2)` bursts): while the queue is
//! full it does not read at all, so an overload
//! costs no CPU in callwatch: datagrams wait in the socket's receive buffer and what
//! overflows it the kernel drops, counted all the same
//! (`callwatch_events_dropped_total{sink="hep_udp_socket"}`, from the kernel's count of
//! the socket, [`SocketDrops`]). On a busy link it takes the datagrams in bursts with a
//! millisecond between them, so that it and the engine task wake once per batch rather
//! than once per packet.
//!
//! TCP streams are re-framed with [`frame_len`]: frames split across reads or merged in
//! one read are both fine. A connection that sends something that is not HEP v3 is
//! closed (counted by kind), as is one whose partial frame does not complete within
//! [`HepOptions::tcp_stall`] or that stays silent for [`HepOptions::tcp_idle`]. Each
//! connection is its own task with a buffer bounded by the largest HEP frame, so a
//! stalled client never blocks the others; connections are capped.
//!
//! Payload type 1 becomes [`PayloadHint::Sip`], 5 [`PayloadHint::Rtcp`]; chunk 0x0011 is
//! the correlation id; each capture agent id (0x000c) is its own [`SourceId`] with its own
//! clock. A zero timestamp means "use the receive time" (heplify-server's rule).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::counter::Counter;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::daemon::{IngestPacket, Shutdown};
use crate::engine::{PayloadHint, SourceId};
use crate::sinks::metrics::Metrics;
use crate::time::CaptureTime;
use crate::wire::hep::{frame_len, HepPacket, HepProto};
use crate::wire::Transport;

/// `source` label of packets received over UDP.
pub const SOURCE_UDP: &str = "hep_udp";
/// `source` label of packets received over TCP.
pub const SOURCE_TCP: &str = "hep_tcp";
/// `sink` label of packets dropped because the engine queue was full.
pub const SINK_ENGINE_QUEUE: &str = "engine_queue";
/// `sink` label of datagrams the kernel dropped because the HEP UDP socket's receive
/// buffer was full (read from `/proc/net/udp` and `/proc/net/udp6`, Linux only).
pub const SINK_UDP_SOCKET: &str = "hep_udp_socket";
/// How often the kernel's drop count of the UDP socket is read.
const SOCKET_DROPS_EVERY: Duration = Duration::from_millis(250);

/// The largest HEP packet (its length field is 16 bits).
const MAX_FRAME: usize = 65_535;
/// Bytes read from a TCP connection at once.
const TCP_READ_CHUNK: usize = 16 * 1024;
/// Datagrams taken from the UDP socket per wake-up before yielding.
const UDP_BURST: usize = 64;
/// A burst that found at least this many datagrams (but drained the socket) is
/// followed by a pause of [`UDP_PAUSE`] instead of a wake-up per datagram: under load
/// the socket buffer gathers the next batch meanwhile, so the receive thread and the
/// engine task wake once per batch, not once per packet. Fewer means a quiet link,
/// where each datagram is taken as it comes.
const UDP_BUSY: usize = 4;
/// The pause between bursts on a busy link (the socket buffer holds several
/// thousand datagrams; 1 ms is 200 of them at 200,000 a second).
const UDP_PAUSE: Duration = Duration::from_millis(1);

#[derive(Clone, Debug)]
pub struct HepOptions {
    /// A TCP connection silent this long (between frames) is closed.
    pub tcp_idle: Duration,
    /// A TCP frame must complete within this time of its first byte.
    pub tcp_stall: Duration,
    /// Most TCP connections at once; further ones are closed at once and counted.
    pub max_tcp_connections: usize,
}

impl Default for HepOptions {
    fn default() -> Self {
        HepOptions {
            tcp_idle: Duration::from_secs(300),
            tcp_stall: Duration::from_secs(10),
            max_tcp_connections: 256,
        }
    }
}

/// What one HEP packet turned into.
#[derive(Debug)]
pub enum Decoded {
    Packet(IngestPacket),
    /// Well-formed but not used; the kind names why (`callwatch_ingest_ignored_total`).
    Ignored(&'static str),
    /// Malformed or refused; the kind of `callwatch_ingest_errors_total`.
    Error(&'static str),
}

/// The receive time as a capture timestamp (for agents that send none).
pub fn wall_capture_time() -> CaptureTime {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    CaptureTime(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Decodes one whole HEP packet. Pure apart from reading the wall clock for a packet
/// with no timestamp.
pub fn decode(buf: &[u8], auth_key: Option<&[u8]>, received: Instant) -> Decoded {
    let p = match HepPacket::parse(buf) {
        Ok(p) => p,
        Err(e) => return Decoded::Error(e.as_str()),
    };
    if let Some(key) = auth_key {
        if p.auth_key != Some(key) {
            return Decoded::Error("hep_auth");
        }
    }
    if p.compressed {
        return Decoded::Ignored("compressed");
    }
    let hint = match p.proto {
        HepProto::Sip => PayloadHint::Sip,
        HepProto::Rtcp => PayloadHint::Rtcp,
        HepProto::RtcpJson => return Decoded::Ignored("rtcp_json"),
        HepProto::Other(_) => return Decoded::Ignored("other_payload_type"),
    };
    if p.payload.is_empty() {
        return Decoded::Ignored("empty_payload");
    }
    let at = if p.ts_sec == 0 && p.ts_usec == 0 {
        wall_capture_time()
    } else {
        CaptureTime::from_secs_micros(i64::from(p.ts_sec), i64::from(p.ts_usec))
    };
    let transport = match p.ip_proto {
        6 => Transport::Tcp,
        132 => Transport::Sctp,
        _ => Transport::Udp,
    };
    Decoded::Packet(IngestPacket {
        at,
        received,
        source: SourceId(p.capture_id),
        src: p.src,
        dst: p.dst,
        transport,
        hint,
        payload: p.payload.to_vec(),
        correlation_id: p.correlation_id.map(Box::from),
    })
}

/// What the receive tasks share: the auth key, the options and the counters.
pub struct HepContext {
    metrics: Arc<Metrics>,
    auth_key: Option<Vec<u8>>,
    opts: HepOptions,
    dropped: Counter,
    connections: Arc<Semaphore>,
}

impl HepContext {
    pub fn new(metrics: Arc<Metrics>, auth_key: Option<Vec<u8>>, opts: HepOptions) -> HepContext {
        let dropped = metrics.dropped(SINK_ENGINE_QUEUE);
        // Zero series for the usual kinds, so that rates start from 0.
        for source in [SOURCE_UDP, SOURCE_TCP] {
            metrics.ingest_packets(source);
        }
        let connections = Arc::new(Semaphore::new(opts.max_tcp_connections.max(1)));
        HepContext {
            metrics,
            auth_key,
            opts,
            dropped,
            connections,
        }
    }
}

/// One transport's view of the context, with its hot counters fetched once.
struct Intake {
    ctx: Arc<HepContext>,
    source: &'static str,
    packets: Counter,
    tx: mpsc::Sender<IngestPacket>,
}

impl Intake {
    fn new(ctx: Arc<HepContext>, source: &'static str, tx: mpsc::Sender<IngestPacket>) -> Intake {
        let packets = ctx.metrics.ingest_packets(source);
        Intake {
            ctx,
            source,
            packets,
            tx,
        }
    }

    fn error(&self, kind: &'static str) {
        self.ctx.metrics.ingest_error(self.source, kind).inc();
    }

    /// Handles one whole HEP packet. False when the engine is gone.
    fn packet(&self, buf: &[u8]) -> bool {
        self.packets.inc();
        match decode(buf, self.ctx.auth_key.as_deref(), Instant::now()) {
            Decoded::Packet(p) => match self.tx.try_send(p) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    self.ctx.dropped.inc();
                    true
                }
                Err(TrySendError::Closed(_)) => false,
            },
            Decoded::Ignored(kind) => {
                self.ctx.metrics.ingest_ignored(self.source, kind).inc();
                true
            }
            Decoded::Error(kind) => {
                self.error(kind);
                true
            }
        }
    }
}

/// The kernel's count of datagrams dropped at one UDP socket (its receive buffer was
/// full), read from `/proc/net/udp{,6}` by the socket's inode: such a loss happens
/// before callwatch sees the datagram, and is counted all the same.
#[derive(Debug)]
pub struct SocketDrops {
    inode: u64,
    seen: u64,
}

impl SocketDrops {
    /// None where the kernel does not tell (not Linux, no /proc).
    pub fn of(socket: &impl std::os::fd::AsRawFd) -> Option<SocketDrops> {
        let fd = socket.as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
        let link = link.to_str()?;
        let inode = link
            .strip_prefix("socket:[")?
            .strip_suffix(']')?
            .parse()
            .ok()?;
        let d = SocketDrops { inode, seen: 0 };
        d.total()?;
        Some(d)
    }

    /// Every drop of the socket since it was opened.
    pub fn total(&self) -> Option<u64> {
        ["/proc/net/udp", "/proc/net/udp6"].iter().find_map(|path| {
            let text = std::fs::read_to_string(path).ok()?;
            proc_net_udp_drops(&text, self.inode)
        })
    }

    /// Drops since the last call.
    pub fn take_new(&mut self) -> u64 {
        let Some(total) = self.total() else {
            return 0;
        };
        let new = total.saturating_sub(self.seen);
        self.seen = self.seen.max(total);
        new
    }
}

/// The `drops` column of the line of `/proc/net/udp` (or `udp6`) whose inode is `inode`.
pub fn proc_net_udp_drops(text: &str, inode: u64) -> Option<u64> {
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.get(9)?.parse::<u64>().ok()? != inode {
            return None;
        }
        cols.get(12)?.parse().ok()
    })
}

/// Receives HEP datagrams until shutdown, on a thread of its own ([`receive_udp`]).
///
/// Not a runtime task: a socket registered with the runtime's poller wakes a parked
/// worker for every datagram that arrives, whatever the task does. A thread of its own
/// waits in the kernel only on a quiet link; on a busy one it takes bursts with a short
/// pause between them, and nothing wakes it per packet.
pub async fn run_udp(
    socket: UdpSocket,
    tx: mpsc::Sender<IngestPacket>,
    ctx: Arc<HepContext>,
    mut shutdown: Shutdown,
) {
    let socket = match socket.into_std() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("HEP UDP: cannot take the socket from the runtime: {e}");
            return;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let intake = Intake::new(ctx, SOURCE_UDP, tx);
    let thread_stop = stop.clone();
    let thread = std::thread::Builder::new()
        .name("hep-udp".into())
        .spawn(move || receive_udp(&socket, &intake, &thread_stop));
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("HEP UDP: cannot start the receive thread: {e}");
            return;
        }
    };
    shutdown.wait().await;
    stop.store(true, Ordering::Release);
    // The thread sees the flag within UDP_QUIET_WAIT.
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;
}

/// How long the receive thread waits in the kernel on a quiet link before it looks at
/// the stop flag and the kernel's drop count again.
const UDP_QUIET_WAIT: Duration = Duration::from_millis(100);

/// The receive loop (a thread): while the engine queue is full it does not read at all
/// (datagrams wait in the socket buffer; the kernel drops and counts what overflows it),
/// else it takes up to [`UDP_BURST`] datagrams with one `recvmmsg(2)` (`MSG_WAITFORONE`:
/// it blocks, up to [`UDP_QUIET_WAIT`], only until the first one), and pauses
/// [`UDP_PAUSE`] after a burst of [`UDP_BUSY`] or more that drained the socket.
fn receive_udp(socket: &std::net::UdpSocket, intake: &Intake, stop: &AtomicBool) {
    use nix::sys::socket::{recvmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    let kernel_dropped = intake.ctx.metrics.dropped(SINK_UDP_SOCKET);
    let mut socket_drops = SocketDrops::of(socket);
    if socket_drops.is_none() {
        tracing::warn!("HEP UDP: the kernel's drop count of the socket cannot be read; drops at a full receive buffer are not counted");
    }
    let count_drops = |drops: &mut Option<SocketDrops>| {
        if let Some(d) = drops.as_mut() {
            kernel_dropped.inc_by(d.take_new());
        }
    };
    // Blocking with a timeout: MSG_WAITFORONE makes each call wait for the first
    // datagram only, and the timeout lets the loop look at the stop flag.
    let _ = socket.set_nonblocking(false);
    let _ = socket.set_read_timeout(Some(UDP_QUIET_WAIT));
    let fd = socket.as_raw_fd();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(UDP_BURST, None);
    // One slot per datagram of a burst, each one byte more than the largest HEP packet
    // (a longer datagram shows as too long). Only the bytes received are ever touched.
    let mut slots = vec![0u8; UDP_BURST * UDP_SLOT];
    let mut lens = [0usize; UDP_BURST];
    let mut drops_checked = std::time::Instant::now();
    while !stop.load(Ordering::Acquire) {
        if drops_checked.elapsed() >= SOCKET_DROPS_EVERY {
            count_drops(&mut socket_drops);
            drops_checked = std::time::Instant::now();
        }
        if intake.tx.is_closed() {
            return;
        }
        let room = intake.tx.capacity().min(UDP_BURST);
        if room == 0 {
            std::thread::sleep(UDP_PAUSE);
            continue;
        }
        let taken = {
            let mut iovs: Vec<[IoSliceMut<'_>; 1]> = slots
                .chunks_mut(UDP_SLOT)
                .take(room)
                .map(|s| [IoSliceMut::new(s)])
                .collect();
            match recvmmsg(
                fd,
                &mut headers,
                iovs.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            ) {
                Ok(results) => {
                    let mut n = 0;
                    for (len, r) in lens.iter_mut().zip(results) {
                        *len = r.bytes;
                        n += 1;
                    }
                    n
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => 0,
                Err(e) => {
                    // ICMP errors surface here on some systems; nothing to do but go on.
                    tracing::debug!("HEP UDP receive: {e}");
                    0
                }
            }
        };
        for (slot, &len) in slots.chunks(UDP_SLOT).zip(&lens[..taken]) {
            if !intake.packet(&slot[..len.min(UDP_SLOT)]) {
                return;
            }
        }
        if taken < room && taken >= UDP_BUSY {
            // The socket is drained but busy: let the next batch gather.
            std::thread::sleep(UDP_PAUSE);
        }
    }
    count_drops(&mut socket_drops);
}

/// Bytes per datagram slot of a receive burst.
const UDP_SLOT: usize = MAX_FRAME + 1;

/// Accepts HEP TCP connections until shutdown; each is served by its own task.
pub async fn run_tcp(
    listener: TcpListener,
    tx: mpsc::Sender<IngestPacket>,
    ctx: Arc<HepContext>,
    mut shutdown: Shutdown,
) {
    let stop = shutdown.clone();
    let wait = shutdown.wait();
    tokio::pin!(wait);
    loop {
        tokio::select! {
            _ = &mut wait => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
                        ctx.metrics.ingest_error(SOURCE_TCP, "hep_tcp_too_many_connections").inc();
                        drop(stream);
                        continue;
                    };
                    let intake = Intake::new(ctx.clone(), SOURCE_TCP, tx.clone());
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        ctx_gauge(&intake, 1);
                        serve_connection(stream, &intake, stop).await;
                        ctx_gauge(&intake, -1);
                        tracing::debug!(%peer, "HEP TCP connection closed");
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors, most likely: back off instead of spinning.
                    tracing::warn!("HEP TCP accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

fn ctx_gauge(intake: &Intake, d: i64) {
    intake.ctx.metrics.hep_tcp_connections.inc_by(d);
}

/// Reads one connection, re-framing HEP v3 packets, until EOF, an error, garbage, a
/// timeout or shutdown.
async fn serve_connection(mut stream: TcpStream, intake: &Intake, mut shutdown: Shutdown) {
    let opts = intake.ctx.opts.clone();
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; TCP_READ_CHUNK];
    // When the first byte of the frame still incomplete in `pending` arrived.
    let mut partial_since: Option<Instant> = None;
    let mut last_read = Instant::now();
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        let deadline = match partial_since {
            Some(t) => t + opts.tcp_stall,
            None => last_read + opts.tcp_idle,
        };
        let n = tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep_until(deadline) => {
                if partial_since.is_some() {
                    intake.error("hep_tcp_stalled");
                }
                return;
            }
            r = stream.read(&mut chunk) => match r {
                Ok(0) => {
                    if !pending.is_empty() {
                        intake.error("hep_truncated");
                    }
                    return;
                }
                Ok(n) => n,
                Err(_) => return,
            }
        };
        last_read = Instant::now();
        pending.extend_from_slice(&chunk[..n]);
        let mut at = 0;
        while at < pending.len() {
            match frame_len(&pending[at..]) {
                Ok(Some(len)) => {
                    if !intake.packet(&pending[at..at + len]) {
                        return;
                    }
                    at += len;
                }
                Ok(None) => break,
                Err(e) => {
                    // Not HEP v3: the stream cannot be re-synchronised safely.
                    intake.error(e.as_str());
                    return;
                }
            }
        }
        pending.drain(..at);
        if pending.is_empty() {
            partial_since = None;
        } else if at > 0 || partial_since.is_none() {
            partial_since = Some(last_read);
        }
        // Cannot happen with a correct frame_len (a frame is at most 64 KiB); a guard
        // so that no input can grow the buffer.
        if pending.len() > MAX_FRAME + TCP_READ_CHUNK {
            intake.error("hep_bad_length");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hep::HepBuilder;

    fn sip(ts_sec: u32, capture_id: u32) -> HepBuilder {
        HepBuilder::packet(
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.1.1:5062".parse().unwrap(),
            ts_sec,
            250_000,
            1,
            capture_id,
            b"INVITE sip:8001@x SIP/2.0\r\n\r\n",
        )
    }

    #[test]
    fn sip_packet_becomes_an_owned_engine_packet() {
        let b = sip(1_800_000_000, 42).chunk(0x0011, b"corr").build();
        let Decoded::Packet(p) = decode(&b, None, Instant::now()) else {
            panic!("not decoded")
        };
        assert_eq!(p.at, CaptureTime::from_secs_micros(1_800_000_000, 250_000));
        assert_eq!(p.source, SourceId(42));
        assert_eq!(p.hint, PayloadHint::Sip);
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(p.correlation_id.as_deref(), Some(&b"corr"[..]));
        assert!(p.payload.starts_with(b"INVITE"));
    }

    #[tokio::test]
    async fn a_full_engine_queue_drops_and_counts_without_waiting() {
        let metrics = Arc::new(Metrics::new(10_000, 3.6));
        let ctx = Arc::new(HepContext::new(
            metrics.clone(),
            None,
            HepOptions::default(),
        ));
        let (tx, mut rx) = mpsc::channel(1);
        let intake = Intake::new(ctx, SOURCE_UDP, tx);
        let b = sip(1_800_000_000, 1).build();
        assert!(intake.packet(&b));
        assert!(intake.packet(&b));
        assert!(intake.packet(&b));
        let text = metrics.encode();
        assert!(
            text.contains(r#"callwatch_events_dropped_total{sink="engine_queue"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"callwatch_ingest_packets_total{source="hep_udp"} 3"#));
        assert!(rx.try_recv().is_ok());
        drop(rx);
        // The engine is gone: the receive task is told to stop.
        assert!(!intake.packet(&b));
    }

    #[test]
    fn proc_net_udp_drops_reads_the_line_of_the_inode() {
        let text = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  281: 0100007F:4C04 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 569341 2 0000000059dd2480 0\n\
12366: 0100007F:BB39 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 587059 2 00000000da564e18 1234\n";
        assert_eq!(proc_net_udp_drops(text, 587059), Some(1234));
        assert_eq!(proc_net_udp_drops(text, 569341), Some(0));
        assert_eq!(proc_net_udp_drops(text, 1), None);
    }

    /// A socket nobody reads, with a small receive buffer: what the kernel throws away
    /// shows in its drop count, and every datagram sent is either queued or dropped.
    #[test]
    fn kernel_drops_at_a_full_receive_buffer_are_counted() {
        let rx = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        rx.set_recv_buffer_size(4096).unwrap();
        rx.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        let rx: std::net::UdpSocket = rx.into();
        let mut drops = SocketDrops::of(&rx).expect("/proc/net/udp is readable on Linux");
        assert_eq!(drops.take_new(), 0);
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 500u64;
        for _ in 0..sent {
            tx.send_to(&[0u8; 200], rx.local_addr().unwrap()).unwrap();
        }
        rx.set_nonblocking(true).unwrap();
        let mut queued = 0u64;
        let mut buf = [0u8; 512];
        while rx.recv_from(&mut buf).is_ok() {
            queued += 1;
        }
        let dropped = drops.take_new();
        assert!(dropped > 0, "a 4 KiB buffer cannot hold {sent} datagrams");
        assert_eq!(queued + dropped, sent);
        assert_eq!(drops.take_new(), 0, "counted once");
    }

    #[test]
    fn auth_key_must_match_when_configured() {
        let good = sip(1, 1).chunk(0x000e, b"k3y").build();
        let bad = sip(1, 1).chunk(0x000e, b"nope").build();
        let none = sip(1, 1).build();
        assert!(matches!(
            decode(&good, Some(b"k3y"), Instant::now()),
            Decoded::Packet(_)
        ));
        assert!(matches!(
            decode(&bad, Some(b"k3y"), Instant::now()),
            Decoded::Error("hep_auth")
        ));
        assert!(matches!(
            decode(&none, Some(b"k3y"), Instant::now()),
            Decoded::Error("hep_auth")
        ));
        assert!(matches!(
            decode(&bad, None, Instant::now()),
            Decoded::Packet(_)
        ));
    }

    #[test]
    fn hep_v2_is_taken_with_its_capture_id() {
        let mut b = vec![2u8, 28, 2, 17];
        b.extend_from_slice(&5060u16.to_be_bytes());
        b.extend_from_slice(&5062u16.to_be_bytes());
        b.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
        b.extend_from_slice(&1_800_000_000u32.to_le_bytes());
        b.extend_from_slice(&5u32.to_le_bytes());
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(b"OPTIONS sip:x SIP/2.0\r\n\r\n");
        let Decoded::Packet(p) = decode(&b, None, Instant::now()) else {
            panic!("not decoded")
        };
        assert_eq!(p.source, SourceId(9));
        assert_eq!(p.hint, PayloadHint::Sip);
        assert_eq!(p.at, CaptureTime::from_secs_micros(1_800_000_000, 5));
        // v2 has no auth chunk: refused when a key is configured.
        assert!(matches!(
            decode(&b, Some(b"k"), Instant::now()),
            Decoded::Error("hep_auth")
        ));
    }

    #[test]
    fn zero_timestamp_is_the_receive_time() {
        let b = HepBuilder::packet(
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.1.1:5062".parse().unwrap(),
            0,
            0,
            1,
            0,
            b"OPTIONS sip:x SIP/2.0\r\n\r\n",
        )
        .build();
        let before = wall_capture_time();
        let Decoded::Packet(p) = decode(&b, None, Instant::now()) else {
            panic!("not decoded")
        };
        assert!(p.at >= before && p.at <= wall_capture_time());
    }

    #[test]
    fn unused_payloads_are_ignored_and_garbage_is_an_error() {
        let rtcp_json = HepBuilder::packet(
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.1.1:5062".parse().unwrap(),
            1,
            0,
            5,
            0,
            b"{\"type\":200}",
        )
        .build();
        assert!(matches!(
            decode(&rtcp_json, None, Instant::now()),
            Decoded::Ignored("rtcp_json")
        ));
        let log = HepBuilder::packet(
            "10.0.0.1:5060".parse().unwrap(),
            "10.0.1.1:5062".parse().unwrap(),
            1,
            0,
            100,
            0,
            b"log line",
        )
        .build();
        assert!(matches!(
            decode(&log, None, Instant::now()),
            Decoded::Ignored("other_payload_type")
        ));
        assert!(matches!(
            decode(b"GET / HTTP/1.1\r\n", None, Instant::now()),
            Decoded::Error("hep_not_hep")
        ));
        let b = sip(1, 1).build();
        assert!(matches!(
            decode(&b[..b.len() - 3], None, Instant::now()),
            Decoded::Error("hep_truncated")
        ));
    }
}
