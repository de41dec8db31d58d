//! Packet → websocket-frame latency of the wallboard with many clients (issue 5), run by
//! a person against a running `callwatch run` (see `scripts/bench_wallboard.sh`, which
//! starts the daemon and `callwatch loadgen` around it). Not a test: it asserts nothing
//! and its figures depend on the machine's load.
//!
//! It connects `--clients` websocket clients to `GET /ws`, then plays probe calls of its
//! own into the daemon's HEP port (HEP v3 over UDP, built with the crate's
//! [`callwatch::loadgen::CallSpec`] and [`callwatch::loadgen::hep_frame`], capture agent
//! `--capture-id`, agents `--agent-base`..):
//!
//! - **packet → frame**: `--probes` INVITEs `--gap-ms` apart; the latency of one sample
//!   is the arrival of that probe's `leg.ringing` frame at one client minus the
//!   monotonic instant just before the INVITE left. Each probe is cancelled (CANCEL,
//!   200, 487, ACK) 300 ms later so that it never reaches the threshold.
//! - **threshold instant → frame**: `--threshold-probes` INVITEs that nobody answers
//!   (no 180 either: the ring starts at the INVITE), so `late_answer` is raised at
//!   send + `rules.late_answer.threshold_ms` (read from the snapshot); the latency is
//!   the `violation` frame's arrival minus that instant. It includes the daemon's
//!   source-clock grace (`EngineLoopOptions::grace`, 200 ms by default), which holds
//!   deadlines back on purpose so that a packet in flight is not beaten by its timer.
//!
//! Every client reads every frame, but looks into it only as far as needed: the `seq`
//! (a gap means frames were lost to it) and a byte search for the probes' Call-ID
//! prefix; only frames that carry a probe get their `type` read. So the clients cost
//! little next to the daemon (both share the machine; the 1-client run of the script
//! is the baseline to read the 1,000-client figures against).
//!
//! Reported: p50/p90/p99/max of both latencies over clients × probes, samples missing,
//! the spread between the first and the last client to get each probe (fan-out), the
//! clients that were disconnected (close 1013 = fell behind, the when-full policy) or
//! saw `seq` gaps, `callwatch_events_dropped_total{sink="wallboard"}` during the run,
//! and the CPU used by the daemon (`--daemon-pid`) and by this process over the
//! measurement.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use memchr::memmem;
use tokio::net::UdpSocket;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use callwatch::loadgen::{hep_frame, metric_sum, scrape, CallSpec, Step};

#[derive(Parser, Debug)]
#[command(about = "wallboard websocket latency with many clients (issue 5)")]
struct Args {
    /// The daemon's HTTP address (`http.listen`), loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The daemon's HEP address (`capture.hep_listen`), loopback.
    #[arg(long, default_value = "127.0.0.1:9060")]
    hep: SocketAddr,
    /// Websocket clients connected at once.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Probe INVITEs for the packet → frame latency.
    #[arg(long, default_value_t = 50)]
    probes: usize,
    /// Milliseconds between two probes.
    #[arg(long, default_value_t = 100)]
    gap_ms: u64,
    /// Unanswered probes for the threshold-instant → frame latency.
    #[arg(long, default_value_t = 10)]
    threshold_probes: usize,
    /// First agent extension of the probes (`agents.extensions` must cover
    /// probes + threshold probes from here).
    #[arg(long, default_value_t = 8500)]
    agent_base: u32,
    /// HEP capture agent id of the probes (its own source clock in the daemon).
    #[arg(long, default_value_t = 4242)]
    capture_id: u32,
    /// The daemon's process id, to report its CPU use over the measurement.
    #[arg(long)]
    daemon_pid: Option<u32>,
    /// Clock ticks per second of /proc/PID/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Connections opened at once while connecting.
    #[arg(long, default_value_t = 64)]
    connect_parallel: usize,
    /// A name for this run in the output.
    #[arg(long, default_value = "")]
    label: String,
}

/// What one client saw.
#[derive(Debug, Default)]
struct ClientReport {
    connected: bool,
    /// Arrival of each probe's frame, µs after `t0` (ringing probes, then threshold ones).
    arrivals: Vec<Option<u64>>,
    frames: u64,
    bytes: u64,
    seq_gaps: u64,
    /// Close code when the daemon closed the connection before the end.
    closed: Option<u16>,
    /// The connection broke (an error, or the end without a close frame).
    broken: bool,
}

/// Shared by the clients: where to look for probes.
struct Probe {
    /// The probes' Call-ID prefix, e.g. `wsprobe-kqzd-` (no digit runs: the daemon masks
    /// runs of 7+ digits in Call-IDs).
    marker: memmem::Finder<'static>,
    seq: memmem::FinderRev<'static>,
    ty: memmem::Finder<'static>,
    ringing: usize,
    threshold: usize,
}

impl Probe {
    /// The slot of a probe frame of the kind the slot waits for, else None.
    fn slot(&self, text: &[u8]) -> Option<usize> {
        let at = self.marker.find(text)? + self.marker.needle().len();
        let kind = *text.get(at)?;
        let digits = &text[at + 1..];
        let end = digits.iter().position(|b| !b.is_ascii_digit())?;
        let n: usize = std::str::from_utf8(&digits[..end]).ok()?.parse().ok()?;
        let t = self.ty.find(text)? + self.ty.needle().len();
        let ty = &text[t..];
        match kind {
            b'r' if n < self.ringing && ty.starts_with(b"leg.ringing\"") => Some(n),
            b't' if n < self.threshold && ty.starts_with(b"violation\"") => Some(self.ringing + n),
            _ => None,
        }
    }

    fn seq(&self, text: &[u8]) -> Option<u64> {
        let at = self.seq.rfind(text)? + self.seq.needle().len();
        let digits = &text[at..];
        let end = digits
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(digits.len());
        std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
    }
}

struct Shared {
    url: String,
    probe: Probe,
    t0: Instant,
    connected: AtomicUsize,
    settled: AtomicUsize,
    all_in: Notify,
    gate: Semaphore,
    clients: usize,
    /// The first client's snapshot, for the threshold.
    first_snapshot: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// One more client connected or given up on.
    fn settle(&self) {
        if self.settled.fetch_add(1, Ordering::AcqRel) + 1 == self.clients {
            self.all_in.notify_one();
        }
    }
}

async fn client(id: usize, sh: Arc<Shared>, mut stop: watch::Receiver<bool>) -> ClientReport {
    let mut rep = ClientReport {
        arrivals: vec![None; sh.probe.ringing + sh.probe.threshold],
        ..ClientReport::default()
    };
    let mut cfg = WebSocketConfig::default();
    cfg.read_buffer_size = 8 * 1024;
    let ws = {
        let _permit = sh.gate.acquire().await;
        let mut ws = None;
        for attempt in 0..5u64 {
            match tokio::time::timeout(
                Duration::from_secs(10),
                tokio_tungstenite::connect_async_with_config(&sh.url, Some(cfg), true),
            )
            .await
            {
                Ok(Ok((s, _))) => {
                    ws = Some(s);
                    break;
                }
                Ok(Err(e)) if attempt == 4 => eprintln!("ws_latency: client {id}: {e}"),
                Err(_) if attempt == 4 => eprintln!("ws_latency: client {id}: connect timed out"),
                _ => sleep(Duration::from_millis(200 * (attempt + 1))).await,
            }
        }
        ws
    };
    let Some(mut ws) = ws else {
        sh.settle();
        return rep;
    };
    // The snapshot first: then this client is in the hub.
    match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
        Ok(Some(Ok(Message::Text(t)))) => {
            rep.seq_gaps = 0;
            let mut last = sh.probe.seq(t.as_bytes());
            if id == 0 {
                *sh.first_snapshot.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(t.as_str().to_string());
            }
            rep.connected = true;
            sh.connected.fetch_add(1, Ordering::AcqRel);
            sh.settle();
            loop {
                let m = tokio::select! {
                    m = ws.next() => m,
                    _ = stop.changed() => break,
                };
                match m {
                    Some(Ok(Message::Text(t))) => {
                        let now = sh.t0.elapsed().as_micros() as u64;
                        let b = t.as_bytes();
                        rep.frames += 1;
                        rep.bytes += b.len() as u64;
                        if let Some(seq) = sh.probe.seq(b) {
                            if let Some(l) = last {
                                rep.seq_gaps += seq.saturating_sub(l + 1);
                            }
                            last = Some(seq);
                        }
                        if let Some(slot) = sh.probe.slot(b) {
                            rep.arrivals[slot].get_or_insert(now);
                        }
                    }
                    Some(Ok(Message::Close(c))) => {
                        rep.closed = Some(c.map_or(1005, |c| u16::from(c.code)));
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        rep.broken = true;
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
        }
        _ => {
            eprintln!("ws_latency: client {id}: no snapshot");
            sh.settle();
        }
    }
    rep
}

/// A probe call: Call-ID `wsprobe-<run>-<kind><n>`, its own agent.
fn probe_call(run: &str, kind: char, n: usize, agent: u32) -> CallSpec {
    CallSpec {
        call_id: format!("wsprobe-{run}-{kind}{n}"),
        customer: "13800000000".into(),
        agent: agent.to_string(),
        switch: "10.1.0.10:5060".parse().expect("literal address"),
        phone: SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::new(
                10,
                3,
                (agent / 250 % 250) as u8,
                (agent % 250) as u8 + 1,
            )),
            5060,
        ),
        trying_ms: 0,
        ring_ms: 0,
        talk_ms: 0,
    }
}

async fn send(udp: &UdpSocket, spec: &CallSpec, from_phone: bool, sip: Vec<u8>, capture_id: u32) {
    let step = Step {
        after_ms: 0,
        from_phone,
        sip,
    };
    if let Err(e) = udp.send(&hep_frame(spec, &step, capture_id, None)).await {
        eprintln!("ws_latency: sending HEP: {e}");
    }
}

/// CANCEL, its 200, the 487 and its ACK: the probe leg ends.
async fn cancel(udp: &UdpSocket, spec: &CallSpec, capture_id: u32) {
    send(udp, spec, false, spec.cancel(), capture_id).await;
    send(udp, spec, true, spec.cancel_ok(), capture_id).await;
    send(
        udp,
        spec,
        true,
        spec.invite_response(487, "Request Terminated"),
        capture_id,
    )
    .await;
    send(udp, spec, false, spec.ack("inv"), capture_id).await;
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: fields count from the last ')'.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

struct Summary {
    samples: usize,
    missing: usize,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    spread_p50: u64,
    spread_max: u64,
}

/// Latencies (µs) of one kind of probe over every connected client.
fn summarise(
    reports: &[ClientReport],
    slots: std::ops::Range<usize>,
    due: &[Option<u64>],
) -> Summary {
    let mut lat = Vec::new();
    let mut missing = 0;
    let mut spreads = Vec::new();
    for s in slots {
        let Some(d) = due[s] else { continue };
        let (mut first, mut last) = (u64::MAX, 0);
        for r in reports.iter().filter(|r| r.connected) {
            match r.arrivals[s] {
                Some(a) => {
                    lat.push(a.saturating_sub(d));
                    first = first.min(a);
                    last = last.max(a);
                }
                None => missing += 1,
            }
        }
        if last >= first {
            spreads.push(last - first);
        }
    }
    lat.sort_unstable();
    spreads.sort_unstable();
    Summary {
        samples: lat.len(),
        missing,
        p50: percentile(&lat, 0.50),
        p90: percentile(&lat, 0.90),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(0),
        spread_p50: percentile(&spreads, 0.50),
        spread_max: spreads.last().copied().unwrap_or(0),
    }
}

fn run_id() -> String {
    // Letters only: the daemon masks digit runs in Call-IDs.
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
        ^ u64::from(std::process::id()) << 32;
    (0..6)
        .map(|_| {
            let c = (b'a' + (x % 26) as u8) as char;
            x /= 26;
            c
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    for a in [args.http, args.hep] {
        callwatch::loadgen::check_target(a)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let run = run_id();
    let marker: &'static str = Box::leak(format!("wsprobe-{run}-").into_boxed_str());
    let sh = Arc::new(Shared {
        url: format!("ws://{}/ws", args.http),
        probe: Probe {
            marker: memmem::Finder::new(marker.as_bytes()),
            seq: memmem::FinderRev::new(b"\"seq\":"),
            ty: memmem::Finder::new(b"\"type\":\""),
            ringing: args.probes,
            threshold: args.threshold_probes,
        },
        t0: Instant::now(),
        connected: AtomicUsize::new(0),
        settled: AtomicUsize::new(0),
        all_in: Notify::new(),
        gate: Semaphore::new(args.connect_parallel.max(1)),
        clients: args.clients,
        first_snapshot: std::sync::Mutex::new(None),
    });
    let dropped_before = metric_sum(
        &scrape(args.http).await?,
        "callwatch_events_dropped_total",
        &[("sink", "wallboard")],
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect_start = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(i, sh.clone(), stop_rx.clone())))
        .collect();
    if args.clients > 0
        && tokio::time::timeout(Duration::from_secs(120), sh.all_in.notified())
            .await
            .is_err()
    {
        eprintln!("ws_latency: not every client connected within 120 s");
    }
    let connected = sh.connected.load(Ordering::Acquire);
    eprintln!(
        "ws_latency: {connected}/{} clients connected in {:.1} s",
        args.clients,
        connect_start.elapsed().as_secs_f64()
    );
    let threshold_ms: u64 = {
        let snap = sh
            .first_snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| anyhow::anyhow!("the first client got no snapshot"))?;
        let v: serde_json::Value = serde_json::from_str(&snap)?;
        v["config"]["threshold_ms"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("no config.threshold_ms in the snapshot"))?
    };
    // Let the connections settle (their snapshots sent) before measuring.
    sleep(Duration::from_secs(1)).await;

    let udp = UdpSocket::bind("127.0.0.1:0").await?;
    udp.connect(args.hep).await?;
    let pid = std::process::id().to_string();
    let daemon_pid = args.daemon_pid.map(|p| p.to_string());
    let cpu0 = (
        daemon_pid.as_deref().and_then(cpu_ticks),
        cpu_ticks(&pid),
        Instant::now(),
    );
    let nr = args.probes;
    let nt = args.threshold_probes;
    let mut due: Vec<Option<u64>> = vec![None; nr + nt];
    let ringing: Vec<CallSpec> = (0..nr)
        .map(|i| probe_call(&run, 'r', i, args.agent_base + i as u32))
        .collect();
    let late: Vec<CallSpec> = (0..nt)
        .map(|i| probe_call(&run, 't', i, args.agent_base + (nr + i) as u32))
        .collect();
    let gap = Duration::from_millis(args.gap_ms);
    // Threshold probes spread evenly over the ringing probes.
    let every = (nr / nt.max(1)).max(1);
    let start = Instant::now();
    let mut late_sent = 0;
    let mut last_late = None;
    for i in 0..nr.max(nt) {
        sleep_until(start + gap * i as u32).await;
        if i < nr {
            due[i] = Some(sh.t0.elapsed().as_micros() as u64);
            send(
                &udp,
                &ringing[i],
                false,
                ringing[i].invite(),
                args.capture_id,
            )
            .await;
        }
        if late_sent < nt && i % every == 0 {
            let t = late_sent;
            let sent = sh.t0.elapsed().as_micros() as u64;
            send(&udp, &late[t], false, late[t].invite(), args.capture_id).await;
            due[nr + t] = Some(sent + threshold_ms * 1000);
            last_late = Some(Instant::now());
            late_sent += 1;
        }
        // Ringing probes end 300 ms after their INVITE, long before the threshold.
        let back = (300 / args.gap_ms.max(1)) as usize;
        if i >= back && i - back < nr {
            cancel(&udp, &ringing[i - back], args.capture_id).await;
        }
    }
    let back = (300 / args.gap_ms.max(1)) as usize;
    sleep(Duration::from_millis(300)).await;
    for spec in ringing.iter().skip(nr.saturating_sub(back)) {
        cancel(&udp, spec, args.capture_id).await;
    }
    if let Some(l) = last_late {
        // The last violation is due at its send + threshold (+ the daemon's grace).
        sleep_until(l + Duration::from_millis(threshold_ms + 2_000)).await;
    } else {
        sleep(Duration::from_secs(1)).await;
    }
    for spec in &late {
        cancel(&udp, spec, args.capture_id).await;
    }
    sleep(Duration::from_millis(300)).await;
    let (d1, b1, t1) = (
        daemon_pid.as_deref().and_then(cpu_ticks),
        cpu_ticks(&pid),
        Instant::now(),
    );
    // Read before the clients leave: frames queued for a closing client count as lost.
    let dropped_after = metric_sum(
        &scrape(args.http).await?,
        "callwatch_events_dropped_total",
        &[("sink", "wallboard")],
    );
    let _ = stop_tx.send(true);
    let mut reports = Vec::with_capacity(tasks.len());
    for t in tasks {
        reports.push(t.await?);
    }

    let window = (t1 - cpu0.2).as_secs_f64();
    let pct = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!(
            "{:.0}%",
            (b - a) as f64 / args.clk_tck as f64 / window * 100.0
        ),
        _ => "-".into(),
    };
    let ring = summarise(&reports, 0..nr, &due);
    let thr = summarise(&reports, nr..nr + nt, &due);
    let connected_reports = reports.iter().filter(|r| r.connected).count();
    let lagged = reports.iter().filter(|r| r.closed == Some(1013)).count();
    let closed = reports.iter().filter(|r| r.closed.is_some()).count();
    let broken = reports.iter().filter(|r| r.broken).count();
    let gaps: u64 = reports.iter().map(|r| r.seq_gaps).sum();
    let with_gaps = reports.iter().filter(|r| r.seq_gaps > 0).count();
    let frames: u64 = reports.iter().map(|r| r.frames).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let label = if args.label.is_empty() {
        format!("{} clients", args.clients)
    } else {
        args.label.clone()
    };
    println!("## {label}");
    println!(
        "clients {connected_reports}/{}, window {window:.1} s, frames received {frames} ({:.0}/s per client, {:.0} bytes avg), threshold {threshold_ms} ms",
        args.clients,
        frames as f64 / window / connected_reports.max(1) as f64,
        bytes as f64 / frames.max(1) as f64,
    );
    println!("| measurement | samples | missing | p50 ms | p90 ms | p99 ms | max ms | fan-out spread p50 / max ms |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, s) in [
        ("packet → leg.ringing", &ring),
        ("threshold → violation", &thr),
    ] {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} / {} |",
            s.samples,
            s.missing,
            ms(s.p50),
            ms(s.p90),
            ms(s.p99),
            ms(s.max),
            ms(s.spread_p50),
            ms(s.spread_max)
        );
    }
    println!(
        "fell behind (closed 1013): {lagged}; closed otherwise: {}; broken: {broken}; clients with seq gaps: {with_gaps} ({gaps} frames); wallboard frames dropped (daemon counter): {}",
        closed - lagged,
        dropped_after - dropped_before
    );
    println!(
        "CPU over the window: daemon {}, bench {}",
        pct(cpu0.0, d1),
        pct(cpu0.1, b1)
    );
    println!(
        "RESULT label={:?} clients={connected_reports} ring_p50_ms={} ring_p90_ms={} ring_p99_ms={} ring_max_ms={} thr_p50_ms={} thr_p90_ms={} thr_p99_ms={} thr_max_ms={} missing={} lagged={lagged} dropped={} daemon_cpu={} bench_cpu={}",
        label,
        ms(ring.p50),
        ms(ring.p90),
        ms(ring.p99),
        ms(ring.max),
        ms(thr.p50),
        ms(thr.p90),
        ms(thr.p99),
        ms(thr.max),
        ring.missing + thr.missing,
        dropped_after - dropped_before,
        pct(cpu0.0, d1),
        pct(cpu0.1, b1),
    );
    Ok(())
}
