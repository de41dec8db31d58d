//! Live capture on mirror/SPAN interfaces (SPEC §1 item 2), through libpcap; built
//! only with the cargo feature `live-capture`.
//!
//! [`LiveCaptures::open`] opens every interface of `capture.interfaces` at start
//! (promiscuous, snaplen 65535, immediate mode, a 32 MiB kernel buffer) and sets the
//! `capture.bpf` filter on it; an interface that cannot be opened, a link type the
//! decoder does not read or a filter that does not compile refuses the start with the
//! configuration key and libpcap's reason. [`LiveCaptures::start`] then gives each
//! interface a dedicated blocking thread that reads frames, decodes them with its own
//! [`Decoder`] (fragments and TCP streams of two interfaces never meet) and pushes one
//! owned [`IngestPacket`] per UDP datagram or SIP-over-TCP message into the bounded
//! engine queue, exactly as the HEP source does: `try_send`, never waiting, a full
//! queue drops the packet and counts it (`callwatch_events_dropped_total{sink=
//! "engine_queue"}`).
//!
//! Each interface is its own capture source ([`SourceId`] counted down from
//! `u32::MAX`), so it keeps its own clock in the engine task and a phone still ringing
//! at the late-answer threshold raises `late_answer` then, with no further packet.
//! Counters, all labelled with `source="live:<interface>"` or `interface`: frames read
//! (`callwatch_ingest_packets_total`), frames or decoder state dropped by the decoder
//! (`callwatch_ingest_errors_total{kind}`), read errors (`kind="capture_read"`), and,
//! polled from `pcap_stats` every second, the kernel's drops for want of buffer room
//! (`callwatch_capture_kernel_drops_total`) and the interface's own drops
//! (`callwatch_capture_interface_drops_total`).
//!
//! Shutdown: [`Running::stop`] raises a flag and breaks libpcap's wait; each thread
//! notices within its read timeout, exports its last counters and drops its queue
//! sender, so the engine drains and ends as with HEP.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pcap::{Active, BreakLoop, Capture, Linktype};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::Instant;

use crate::config::{CaptureConfig, ConfigError};
use crate::daemon::IngestPacket;
use crate::engine::{PayloadHint, SourceId};
use crate::sinks::metrics::Metrics;
use crate::sources::hep::SINK_ENGINE_QUEUE;
use crate::time::CaptureTime;
use crate::wire::decode::{DecodeErrorKind, DecodeLimits, Decoder, LinkType};

/// `callwatch_ingest_errors_total{kind}` of a failed read on a live interface.
pub const KIND_CAPTURE_READ: &str = "capture_read";

/// How the interfaces are opened and read.
#[derive(Clone, Debug)]
pub struct LiveOptions {
    /// Bytes kept of each frame: the whole of any frame a SPAN port delivers.
    pub snaplen: i32,
    /// The kernel's capture buffer per interface: what absorbs a burst while the
    /// reading thread is behind; when it is full the kernel drops (`ps_drop`).
    pub buffer_bytes: i32,
    /// libpcap's read timeout: how long a read waits with no packet before the thread
    /// looks at the stop flag and the statistics again.
    pub read_timeout: Duration,
    /// How often `pcap_stats` and the decoder's counters are exported.
    pub stats_every: Duration,
    /// Promiscuous mode (a mirror port delivers frames addressed to other hosts).
    pub promiscuous: bool,
    /// Caps on each interface's decoder state.
    pub decode: DecodeLimits,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            snaplen: 65_535,
            buffer_bytes: 32 << 20,
            read_timeout: Duration::from_millis(100),
            stats_every: Duration::from_secs(1),
            promiscuous: true,
            decode: DecodeLimits::default(),
        }
    }
}

/// The capture source id of the `index`-th configured interface. HEP capture agents
/// use small ids (Kamailio's default is 0, heplify's 0 or a site number); the
/// interfaces count down from the top of the range so that the two do not meet.
pub fn source_id(index: usize) -> SourceId {
    SourceId(u32::MAX - u32::try_from(index).unwrap_or(u32::MAX))
}

/// The `source` label of an interface's counters.
pub fn source_label(interface: &str) -> String {
    format!("live:{interface}")
}

/// Checks that `bpf` compiles (against Ethernet frames; the real link type is checked
/// again when the interface is opened). Needs no privilege.
pub fn check_filter(bpf: &str) -> Result<(), String> {
    let dead = Capture::dead(Linktype::ETHERNET).map_err(|e| e.to_string())?;
    dead.compile(bpf, true)
        .map(|_| ())
        .map_err(|e| reason(&e.to_string()))
}

/// Checks the interface names of `capture.interfaces`: neither empty nor listed twice.
pub fn check_interfaces(names: &[String]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for n in names {
        if n.trim().is_empty() || n.contains('\0') {
            return Err(format!("{n:?} is not an interface name"));
        }
        if !seen.insert(n.as_str()) {
            return Err(format!("{n:?} is listed twice"));
        }
    }
    Ok(())
}

fn reason(msg: &str) -> String {
    let msg = msg.trim();
    if msg.is_empty() {
        "libpcap gave no reason".to_string()
    } else {
        msg.to_string()
    }
}

fn invalid(key: &str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        reason,
    }
}

/// One interface opened and filtered, not yet read.
struct Opened {
    name: String,
    index: usize,
    link: LinkType,
    cap: Capture<Active>,
}

/// The configured interfaces, opened: the daemon refuses to start when this fails.
pub struct LiveCaptures {
    opened: Vec<Opened>,
    opts: LiveOptions,
}

impl std::fmt::Debug for LiveCaptures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCaptures")
            .field(
                "interfaces",
                &self.opened.iter().map(|o| &o.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl LiveCaptures {
    /// Opens every interface of `cfg.interfaces` with `cfg.bpf` (none: an empty set).
    pub fn open(cfg: &CaptureConfig, opts: &LiveOptions) -> Result<LiveCaptures, ConfigError> {
        check_interfaces(&cfg.interfaces).map_err(|r| invalid("capture.interfaces", r))?;
        let mut opened = Vec::with_capacity(cfg.interfaces.len());
        for (index, name) in cfg.interfaces.iter().enumerate() {
            opened.push(open_one(name, index, &cfg.bpf, opts)?);
        }
        Ok(LiveCaptures {
            opened,
            opts: opts.clone(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.opened.is_empty()
    }

    /// The interfaces opened, in configuration order.
    pub fn interfaces(&self) -> impl Iterator<Item = &str> {
        self.opened.iter().map(|o| o.name.as_str())
    }

    /// Starts one reading thread per interface, feeding `tx`.
    pub fn start(
        self,
        tx: mpsc::Sender<IngestPacket>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Running> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(self.opened.len());
        let mut breaks = Vec::with_capacity(self.opened.len());
        for mut o in self.opened {
            breaks.push(o.cap.breakloop_handle());
            let reader = Reader::new(
                (&o.name, o.index, o.link),
                &metrics,
                tx.clone(),
                stop.clone(),
                &self.opts,
            );
            tracing::info!(
                interface = %o.name,
                link = ?o.link,
                "live capture started"
            );
            let handle = std::thread::Builder::new()
                .name(format!("capture-{}", o.name))
                .spawn(move || reader.run(&mut o.cap))?;
            threads.push(handle);
        }
        Ok(Running {
            stop,
            breaks,
            threads,
        })
    }
}

fn open_one(
    name: &str,
    index: usize,
    bpf: &str,
    opts: &LiveOptions,
) -> Result<Opened, ConfigError> {
    let key = "capture.interfaces";
    let cannot = |e: pcap::Error| {
        let why = reason(&e.to_string());
        let hint = if why.contains("not permitted") || why.contains("permission") {
            " (capturing needs CAP_NET_RAW: see docs/feeds.md, \"Live capture\")"
        } else {
            ""
        };
        invalid(key, format!("cannot open {name:?}: {why}{hint}"))
    };
    // libpcap's "any" pseudo-device has no promiscuous mode (asking is an error).
    let promisc = opts.promiscuous && name != "any";
    let mut cap = Capture::from_device(name)
        .map_err(cannot)?
        .promisc(promisc)
        .snaplen(opts.snaplen)
        .immediate_mode(true)
        .buffer_size(opts.buffer_bytes)
        .timeout(
            i32::try_from(opts.read_timeout.as_millis())
                .unwrap_or(i32::MAX)
                .max(1),
        )
        .open()
        .map_err(cannot)?;
    let dlt = cap.get_datalink();
    let link = u32::try_from(dlt.0)
        .ok()
        .and_then(LinkType::from_linktype)
        .ok_or_else(|| {
            let what = dlt.get_name().unwrap_or_else(|_| "unknown".into());
            invalid(
                key,
                format!(
                    "{name:?} delivers link type {} ({what}), which callwatch does not decode \
                     (Ethernet, Linux cooked SLL/SLL2, raw IP, BSD loopback)",
                    dlt.0
                ),
            )
        })?;
    cap.filter(bpf, true).map_err(|e| {
        invalid(
            "capture.bpf",
            format!(
                "{bpf:?} does not compile for {name:?}: {}",
                reason(&e.to_string())
            ),
        )
    })?;
    Ok(Opened {
        name: name.to_string(),
        index,
        link,
        cap,
    })
}

/// The reading threads; [`Running::stop`] ends them.
pub struct Running {
    stop: Arc<AtomicBool>,
    breaks: Vec<BreakLoop>,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("threads", &self.threads.len())
            .finish()
    }
}

impl Running {
    /// Stops every reading thread and waits for them (each within its read timeout):
    /// afterwards none holds a sender of the engine queue.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Release);
        for b in &self.breaks {
            b.breakloop();
        }
        let threads = self.threads;
        let joined = tokio::task::spawn_blocking(move || {
            for t in threads {
                if t.join().is_err() {
                    tracing::error!("a live capture thread panicked");
                }
            }
        })
        .await;
        if let Err(e) = joined {
            tracing::error!("joining the live capture threads: {e}");
        }
    }
}

/// How much a cumulative 32-bit `pcap_stats` figure grew since `last` (it wraps).
fn stat_delta(last: u32, now: u32) -> u64 {
    u64::from(now.wrapping_sub(last))
}

/// One interface's reading loop and its counters.
struct Reader {
    name: String,
    source: SourceId,
    label: &'static str,
    link: LinkType,
    tx: mpsc::Sender<IngestPacket>,
    stop: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    packets: Counter,
    queue_full: Counter,
    kernel_drops: Counter,
    interface_drops: Counter,
    decoder: Decoder,
    /// The decoder's counts already exported, by kind.
    exported: Vec<u64>,
    /// The last `pcap_stats` figures (libpcap's are cumulative 32-bit, they wrap).
    last_drop: u32,
    last_ifdrop: u32,
    stats_every: Duration,
}

impl Reader {
    fn new(
        (name, index, link): (&str, usize, LinkType),
        metrics: &Arc<Metrics>,
        tx: mpsc::Sender<IngestPacket>,
        stop: Arc<AtomicBool>,
        opts: &LiveOptions,
    ) -> Reader {
        // One label per configured interface, made once at start: bounded.
        let label: &'static str = source_label(name).leak();
        let (kernel_drops, interface_drops) = metrics.capture_drops(name);
        // Zero series from the start, so that rates and alerts see the first one.
        metrics.ingest_error(label, KIND_CAPTURE_READ);
        Reader {
            name: name.to_string(),
            source: source_id(index),
            label,
            link,
            tx,
            stop,
            metrics: metrics.clone(),
            packets: metrics.ingest_packets(label),
            queue_full: metrics.dropped(SINK_ENGINE_QUEUE),
            kernel_drops,
            interface_drops,
            decoder: Decoder::new(opts.decode.clone()),
            exported: vec![0; DecodeErrorKind::ALL.len()],
            last_drop: 0,
            last_ifdrop: 0,
            stats_every: opts.stats_every,
        }
    }

    fn run(mut self, cap: &mut Capture<Active>) {
        let mut next_stats = Instant::now() + self.stats_every;
        let mut failing = false;
        while !self.stop.load(Ordering::Acquire) {
            match cap.next_packet() {
                Ok(p) => {
                    failing = false;
                    // libpcap's timestamps are microseconds by default. `time_t` and
                    // `suseconds_t` are not i64 on every target: the casts are needed.
                    #[allow(clippy::unnecessary_cast)]
                    let at = CaptureTime::from_secs_micros(
                        p.header.ts.tv_sec as i64,
                        p.header.ts.tv_usec as i64,
                    );
                    if !self.frame(at, p.data) {
                        tracing::debug!(interface = %self.name, "engine queue closed");
                        break;
                    }
                }
                Err(pcap::Error::TimeoutExpired) => {}
                Err(e) => {
                    if self.stop.load(Ordering::Acquire) {
                        break;
                    }
                    // The interface went down or away: count, say so once, and try
                    // again each second (it may come back) until shutdown.
                    self.metrics
                        .ingest_error(self.label, KIND_CAPTURE_READ)
                        .inc();
                    if !failing {
                        tracing::warn!(interface = %self.name, "live capture read failed: {e}");
                    }
                    failing = true;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            let now = Instant::now();
            if now >= next_stats {
                self.export(cap);
                next_stats = now + self.stats_every;
            }
        }
        self.export(cap);
        tracing::info!(interface = %self.name, "live capture stopped");
    }

    /// Decodes one frame into the engine queue. False when the engine is gone.
    fn frame(&mut self, at: CaptureTime, data: &[u8]) -> bool {
        self.packets.inc();
        let received = Instant::now();
        let mut open = true;
        let (source, tx, queue_full) = (self.source, &self.tx, &self.queue_full);
        self.decoder.decode(self.link, at, data, &mut |d| {
            let p = IngestPacket {
                at,
                received,
                source,
                src: d.src,
                dst: d.dst,
                transport: d.transport,
                hint: PayloadHint::Unknown,
                payload: d.payload.to_vec(),
                correlation_id: None,
            };
            match tx.try_send(p) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    queue_full.inc();
                }
                Err(TrySendError::Closed(_)) => open = false,
            }
        });
        open
    }

    /// Exports the kernel's drop counts and the decoder's error counts since last time.
    fn export(&mut self, cap: &mut Capture<Active>) {
        match cap.stats() {
            Ok(s) => {
                self.kernel_drops
                    .inc_by(stat_delta(self.last_drop, s.dropped));
                self.interface_drops
                    .inc_by(stat_delta(self.last_ifdrop, s.if_dropped));
                self.last_drop = s.dropped;
                self.last_ifdrop = s.if_dropped;
            }
            Err(e) => tracing::debug!(interface = %self.name, "pcap_stats: {e}"),
        }
        let counters = self.decoder.counters();
        for ((kind, n), seen) in counters.iter().zip(self.exported.iter_mut()) {
            if n > *seen {
                self.metrics
                    .ingest_error(self.label, kind.as_str())
                    .inc_by(n - *seen);
                *seen = n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(interfaces: &[&str], bpf: &str) -> CaptureConfig {
        CaptureConfig {
            interfaces: interfaces.iter().map(|s| s.to_string()).collect(),
            bpf: bpf.to_string(),
            ..CaptureConfig::default()
        }
    }

    #[test]
    fn a_missing_interface_is_refused_with_the_key_and_libpcaps_reason() {
        let err = LiveCaptures::open(&capture(&["cwnosuch0"], "udp"), &LiveOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("`capture.interfaces`"), "{err}");
        assert!(err.contains("cannot open \"cwnosuch0\": "), "{err}");
        assert!(!err.ends_with(": "), "no reason given: {err}");
    }

    #[test]
    fn a_filter_that_does_not_compile_is_refused_with_its_key() {
        let err = check_filter("udp and port").unwrap_err();
        assert!(err.contains("syntax error"), "{err}");
        assert!(check_filter("udp or (tcp and port 5060)").is_ok());
        assert!(check_filter("").is_ok(), "an empty filter takes everything");
    }

    #[test]
    fn interface_names_must_be_distinct_and_not_blank() {
        assert!(check_interfaces(&["eth1".into(), "eth2".into()]).is_ok());
        assert!(check_interfaces(&["eth1".into(), "eth1".into()])
            .unwrap_err()
            .contains("twice"));
        assert!(check_interfaces(&["".into()]).is_err());
        assert!(check_interfaces(&["a\0b".into()]).is_err());
    }

    #[test]
    fn interfaces_are_sources_of_their_own_far_from_hep_agent_ids() {
        assert_eq!(source_id(0), SourceId(u32::MAX));
        assert_eq!(source_id(1), SourceId(u32::MAX - 1));
        assert_eq!(source_label("eth1"), "live:eth1");
    }

    #[test]
    fn pcap_statistics_are_exported_as_deltas_across_the_32_bit_wrap() {
        assert_eq!(stat_delta(0, 0), 0);
        assert_eq!(stat_delta(10, 25), 15);
        assert_eq!(stat_delta(u32::MAX - 1, 3), 5);
    }

    /// An Ethernet/IPv4/UDP frame from 10.0.0.1:5060 to 10.0.1.1:5062.
    fn udp_frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        let total = u16::try_from(20 + 8 + payload.len()).unwrap();
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0]);
        f[16..18].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
        f.extend_from_slice(&5060u16.to_be_bytes());
        f.extend_from_slice(&5062u16.to_be_bytes());
        f.extend_from_slice(&u16::try_from(8 + payload.len()).unwrap().to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn frames_reach_the_engine_queue_and_a_full_queue_drops_and_counts() {
        let metrics = Arc::new(Metrics::new(10_000, 3.6));
        let (tx, mut rx) = mpsc::channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let mut r = Reader::new(
            ("eth7", 2, LinkType::Ethernet),
            &metrics,
            tx,
            stop,
            &LiveOptions::default(),
        );
        let frame = udp_frame(b"OPTIONS sip:8001@x SIP/2.0\r\n\r\n");
        let at = CaptureTime::from_secs_micros(1_800_000_000, 5);
        assert!(r.frame(at, &frame));
        assert!(r.frame(at, &frame));
        let p = rx.try_recv().unwrap();
        assert_eq!(p.source, source_id(2));
        assert_eq!(p.at, at);
        assert_eq!(p.src, "10.0.0.1:5060".parse().unwrap());
        assert_eq!(p.dst, "10.0.1.1:5062".parse().unwrap());
        assert_eq!(p.hint, PayloadHint::Unknown);
        assert!(p.payload.starts_with(b"OPTIONS"));
        // Not Ethernet/IP at all: counted by the decoder's kind once exported.
        assert!(r.frame(at, &[0u8; 10]));
        let text = metrics.encode();
        assert!(
            text.contains(r#"callwatch_events_dropped_total{sink="engine_queue"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"callwatch_ingest_packets_total{source="live:eth7"} 3"#),
            "{text}"
        );
        assert!(text.contains(r#"callwatch_capture_kernel_drops_total{interface="eth7"} 0"#));
        // The engine is gone: the thread is told to stop.
        drop(rx);
        assert!(!r.frame(at, &frame));
    }

    #[test]
    fn no_interfaces_open_nothing() {
        let l = LiveCaptures::open(&capture(&[], "udp"), &LiveOptions::default()).unwrap();
        assert!(l.is_empty());
    }
}
