//! `callwatch loadgen`: a bounded HEP v3 traffic generator for benchmarks, the demo and
//! tests. It plays call-centre stories ([`Story`]: answered, late answer, cancelled,
//! agent hang-up, survey transfer) between a switch and agents' phones, with the
//! messages a capture agent would report, stamped with the wall clock at sending, over
//! UDP or one TCP connection. It only ever sends to loopback addresses (127.0.0.0/8,
//! ::1), starts at most `cps` calls a second with at most `concurrent` in flight, stops
//! starting calls after `duration`, and finishes the calls in flight (each story is
//! bounded, well under a minute).
//!
//! [`CallSpec`] builds the SIP text of one call; the daemon tests use it too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::wire::hep::HepBuilder;

/// The call-centre situations the generator plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Story {
    /// 180, answered within the threshold, the customer hangs up.
    Answered,
    /// 180, answered after 11-14 s (`late_answer`), the customer hangs up.
    Late,
    /// 180, the customer gives up (CANCEL, 487).
    Cancelled,
    /// Answered, then the agent hangs up without the survey (`agent_hangup_first`,
    /// `survey_missing`).
    AgentHangup,
    /// Answered, the agent transfers the customer to the survey (REFER 96000, NOTIFY
    /// 200), then leaves.
    SurveyTransfer,
}

impl Story {
    pub const ALL: [Story; 5] = [
        Story::Answered,
        Story::Late,
        Story::Cancelled,
        Story::AgentHangup,
        Story::SurveyTransfer,
    ];

    /// How often each story happens, in percent.
    fn weight(self) -> u64 {
        match self {
            Story::Answered => 50,
            Story::Late => 15,
            Story::Cancelled => 10,
            Story::AgentHangup => 10,
            Story::SurveyTransfer => 15,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Story::Answered => "answered",
            Story::Late => "late",
            Story::Cancelled => "cancelled",
            Story::AgentHangup => "agent_hangup",
            Story::SurveyTransfer => "survey_transfer",
        }
    }
}

/// A tiny deterministic generator (xorshift64*): loadgen runs are reproducible by seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// One message of a call: when (ms after the INVITE), which way, the SIP text.
#[derive(Clone, Debug)]
pub struct Step {
    pub after_ms: u64,
    pub from_phone: bool,
    pub sip: Vec<u8>,
}

/// One inbound call from the switch to an agent's phone.
#[derive(Clone, Debug)]
pub struct CallSpec {
    pub call_id: String,
    /// The caller's number as the switch presents it.
    pub customer: String,
    /// The agent's extension.
    pub agent: String,
    pub switch: SocketAddr,
    pub phone: SocketAddr,
    /// From the INVITE to the 180.
    pub trying_ms: u64,
    /// From the 180 to the answer or the CANCEL.
    pub ring_ms: u64,
    pub talk_ms: u64,
}

impl CallSpec {
    fn via(&self, branch: &str, from_phone: bool) -> String {
        let host = if from_phone { self.phone } else { self.switch };
        format!(
            "Via: SIP/2.0/UDP {host};branch=z9hG4bK-{}-{branch}\r\n",
            self.call_id
        )
    }

    fn customer_uri(&self) -> String {
        format!("sip:{}@{}", self.customer, self.switch.ip())
    }

    fn agent_uri(&self) -> String {
        format!("sip:{}@{}", self.agent, self.switch.ip())
    }

    /// RTP port of one side: a different even port per call, as a switch allocates them.
    fn media_port(&self, from_phone: bool) -> u16 {
        let h = self
            .call_id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let base = if from_phone { 30_000 } else { 10_000 };
        base + 2 * (h % 10_000) as u16
    }

    fn sdp(&self, from_phone: bool) -> String {
        let port = self.media_port(from_phone);
        let ip = if from_phone {
            self.phone.ip()
        } else {
            self.switch.ip()
        };
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        )
    }

    fn finish(head: String, body: &str, content_type: &str) -> Vec<u8> {
        let ct = if body.is_empty() {
            String::new()
        } else {
            format!("Content-Type: {content_type}\r\n")
        };
        format!("{head}{ct}Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    /// The switch's initial INVITE to the phone.
    pub fn invite(&self) -> Vec<u8> {
        let head = format!(
            "INVITE sip:{}@{} SIP/2.0\r\n{}Max-Forwards: 70\r\nFrom: <{}>;tag=c-{}\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:{}@{}>\r\nUser-Agent: callwatch-loadgen\r\n",
            self.agent,
            self.phone,
            self.via("inv", false),
            self.customer_uri(),
            self.call_id,
            self.agent_uri(),
            self.call_id,
            self.customer,
            self.switch,
        );
        Self::finish(head, &self.sdp(false), "application/sdp")
    }

    /// The phone's response to the INVITE (100 has no To tag).
    pub fn invite_response(&self, code: u16, reason: &str) -> Vec<u8> {
        let to_tag = if code == 100 {
            String::new()
        } else {
            format!(";tag=p-{}", self.call_id)
        };
        let head = format!(
            "SIP/2.0 {code} {reason}\r\n{}From: <{}>;tag=c-{}\r\nTo: <{}>{to_tag}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\nContact: <sip:{}@{}>\r\n",
            self.via("inv", false),
            self.customer_uri(),
            self.call_id,
            self.agent_uri(),
            self.call_id,
            self.agent,
            self.phone,
        );
        let body = if code == 200 {
            self.sdp(true)
        } else {
            String::new()
        };
        Self::finish(head, &body, "application/sdp")
    }

    /// The switch's ACK of the answer (`branch` "ack") or of a failure (`branch` "inv").
    pub fn ack(&self, branch: &str) -> Vec<u8> {
        let head = format!(
            "ACK sip:{}@{} SIP/2.0\r\n{}Max-Forwards: 70\r\nFrom: <{}>;tag=c-{}\r\nTo: <{}>;tag=p-{}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\n",
            self.agent,
            self.phone,
            self.via(branch, false),
            self.customer_uri(),
            self.call_id,
            self.agent_uri(),
            self.call_id,
            self.call_id,
        );
        Self::finish(head, "", "")
    }

    /// The switch's CANCEL of the INVITE.
    pub fn cancel(&self) -> Vec<u8> {
        let head = format!(
            "CANCEL sip:{}@{} SIP/2.0\r\n{}Max-Forwards: 70\r\nFrom: <{}>;tag=c-{}\r\nTo: <{}>\r\nCall-ID: {}\r\nCSeq: 1 CANCEL\r\n",
            self.agent,
            self.phone,
            self.via("inv", false),
            self.customer_uri(),
            self.call_id,
            self.agent_uri(),
            self.call_id,
        );
        Self::finish(head, "", "")
    }

    /// The phone's 200 to the CANCEL.
    pub fn cancel_ok(&self) -> Vec<u8> {
        let head = format!(
            "SIP/2.0 200 OK\r\n{}From: <{}>;tag=c-{}\r\nTo: <{}>;tag=p-{}\r\nCall-ID: {}\r\nCSeq: 1 CANCEL\r\n",
            self.via("inv", false),
            self.customer_uri(),
            self.call_id,
            self.agent_uri(),
            self.call_id,
            self.call_id,
        );
        Self::finish(head, "", "")
    }

    /// An in-dialog request; `by_agent` says which side sends it (its own CSeq space).
    pub fn request(
        &self,
        method: &str,
        cseq: u32,
        by_agent: bool,
        extra: &str,
        body: &str,
        content_type: &str,
    ) -> Vec<u8> {
        let (ruri, from, from_tag, to, to_tag) = if by_agent {
            (
                format!("sip:{}@{}", self.customer, self.switch),
                self.agent_uri(),
                format!("p-{}", self.call_id),
                self.customer_uri(),
                format!("c-{}", self.call_id),
            )
        } else {
            (
                format!("sip:{}@{}", self.agent, self.phone),
                self.customer_uri(),
                format!("c-{}", self.call_id),
                self.agent_uri(),
                format!("p-{}", self.call_id),
            )
        };
        let branch = format!(
            "{}{cseq}{}",
            method.to_ascii_lowercase(),
            if by_agent { "a" } else { "c" }
        );
        let head = format!(
            "{method} {ruri} SIP/2.0\r\n{}Max-Forwards: 70\r\nFrom: <{from}>;tag={from_tag}\r\nTo: <{to}>;tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n{extra}",
            self.via(&branch, by_agent),
            self.call_id,
        );
        Self::finish(head, body, content_type)
    }

    /// The response to an in-dialog request sent by `by_agent`'s side.
    pub fn response(&self, code: u16, method: &str, cseq: u32, by_agent: bool) -> Vec<u8> {
        let (from, from_tag, to, to_tag) = if by_agent {
            (
                self.agent_uri(),
                format!("p-{}", self.call_id),
                self.customer_uri(),
                format!("c-{}", self.call_id),
            )
        } else {
            (
                self.customer_uri(),
                format!("c-{}", self.call_id),
                self.agent_uri(),
                format!("p-{}", self.call_id),
            )
        };
        let branch = format!(
            "{}{cseq}{}",
            method.to_ascii_lowercase(),
            if by_agent { "a" } else { "c" }
        );
        let head = format!(
            "SIP/2.0 {code} {}\r\n{}From: <{from}>;tag={from_tag}\r\nTo: <{to}>;tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n",
            if code == 202 { "Accepted" } else { "OK" },
            self.via(&branch, by_agent),
            self.call_id,
        );
        Self::finish(head, "", "")
    }

    /// The messages up to and including the answer (or the CANCEL story's end).
    fn ringing(&self, steps: &mut Vec<Step>) -> u64 {
        steps.push(Step {
            after_ms: 0,
            from_phone: false,
            sip: self.invite(),
        });
        steps.push(Step {
            after_ms: 10,
            from_phone: true,
            sip: self.invite_response(100, "Trying"),
        });
        let t180 = self.trying_ms.max(20);
        steps.push(Step {
            after_ms: t180,
            from_phone: true,
            sip: self.invite_response(180, "Ringing"),
        });
        t180 + self.ring_ms
    }

    /// Every message of the call for `story`, in time order.
    pub fn steps(&self, story: Story) -> Vec<Step> {
        let mut s = Vec::with_capacity(14);
        let answer = self.ringing(&mut s);
        let step = |after_ms: u64, from_phone: bool, sip: Vec<u8>| Step {
            after_ms,
            from_phone,
            sip,
        };
        if story == Story::Cancelled {
            s.push(step(answer, false, self.cancel()));
            s.push(step(answer + 5, true, self.cancel_ok()));
            s.push(step(
                answer + 6,
                true,
                self.invite_response(487, "Request Terminated"),
            ));
            s.push(step(answer + 8, false, self.ack("inv")));
            return s;
        }
        s.push(step(answer, true, self.invite_response(200, "OK")));
        s.push(step(answer + 15, false, self.ack("ack")));
        let end = answer + self.talk_ms.max(100);
        match story {
            Story::Answered | Story::Late => {
                s.push(step(end, false, self.request("BYE", 2, false, "", "", "")));
                s.push(step(end + 10, true, self.response(200, "BYE", 2, false)));
            }
            Story::AgentHangup => {
                s.push(step(end, true, self.request("BYE", 1, true, "", "", "")));
                s.push(step(end + 10, false, self.response(200, "BYE", 1, true)));
            }
            Story::SurveyTransfer => {
                let refer_to = format!(
                    "Refer-To: <sip:96000@{}>\r\nReferred-By: <{}>\r\n",
                    self.switch.ip(),
                    self.agent_uri()
                );
                s.push(step(
                    end,
                    true,
                    self.request("REFER", 1, true, &refer_to, "", ""),
                ));
                s.push(step(end + 10, false, self.response(202, "REFER", 1, true)));
                let notify = |cseq: u32, frag: &str, state: &str| {
                    self.request(
                        "NOTIFY",
                        cseq,
                        false,
                        &format!("Event: refer\r\nSubscription-State: {state}\r\n"),
                        &format!("SIP/2.0 {frag}\r\n"),
                        "message/sipfrag;version=2.0",
                    )
                };
                s.push(step(
                    end + 20,
                    false,
                    notify(2, "100 Trying", "active;expires=60"),
                ));
                s.push(step(end + 25, true, self.response(200, "NOTIFY", 2, false)));
                s.push(step(
                    end + 900,
                    false,
                    notify(3, "200 OK", "terminated;reason=noresource"),
                ));
                s.push(step(
                    end + 905,
                    true,
                    self.response(200, "NOTIFY", 3, false),
                ));
                s.push(step(
                    end + 1000,
                    true,
                    self.request("BYE", 2, true, "", "", ""),
                ));
                s.push(step(end + 1010, false, self.response(200, "BYE", 2, true)));
            }
            Story::Cancelled => {}
        }
        s
    }
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct LoadgenOptions {
    pub target: SocketAddr,
    /// Calls started per second.
    pub cps: f64,
    /// Most calls in flight; a call due while at the cap is skipped (counted).
    pub concurrent: usize,
    /// How long calls are started; None runs until the shutdown future resolves (demo).
    pub duration: Option<Duration>,
    pub tcp: bool,
    /// HEP capture agent id (chunk 0x000c).
    pub capture_id: u32,
    /// HEP auth key (chunk 0x000e), when the collector wants one.
    pub auth_key: Option<Vec<u8>>,
    pub seed: u64,
    /// First and last agent extension.
    pub agents: (u32, u32),
    /// Ring times are drawn as for a 10 s rule scaled by this (1.0: 11-14 s late answers).
    pub time_scale: f64,
}

impl Default for LoadgenOptions {
    fn default() -> Self {
        LoadgenOptions {
            target: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9060),
            cps: 10.0,
            concurrent: 1000,
            duration: Some(Duration::from_secs(10)),
            tcp: false,
            capture_id: 1,
            auth_key: None,
            seed: 1,
            agents: (8001, 8099),
            time_scale: 1.0,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct LoadgenReport {
    pub calls_started: u64,
    pub calls_completed: u64,
    /// Calls not started because `concurrent` calls were in flight.
    pub calls_skipped: u64,
    pub packets_sent: u64,
    pub bytes_sent: u64,
    pub send_errors: u64,
    pub elapsed: Duration,
    /// Packets sent and time taken while calls were being started (the steady load,
    /// before the calls in flight wind down).
    pub window_packets: u64,
    pub window: Duration,
    pub by_story: [u64; 5],
}

impl LoadgenReport {
    pub fn packets_per_sec(&self) -> f64 {
        self.packets_sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The rate while calls were being started.
    pub fn window_packets_per_sec(&self) -> f64 {
        self.window_packets as f64 / self.window.as_secs_f64().max(1e-9)
    }
}

/// Loadgen only ever targets this machine.
pub fn check_target(target: SocketAddr) -> anyhow::Result<()> {
    if !target.ip().is_loopback() {
        bail!("refusing target {target}: loadgen only sends to 127.0.0.0/8 or ::1");
    }
    Ok(())
}

/// Draws one call of the generator.
pub fn draw_call(rng: &mut Rng, n: u64, run: u64, opts: &LoadgenOptions) -> (Story, CallSpec) {
    let total: u64 = Story::ALL.iter().map(|s| s.weight()).sum();
    let mut pick = rng.range(0, total - 1);
    let mut story = Story::Answered;
    for s in Story::ALL {
        if pick < s.weight() {
            story = s;
            break;
        }
        pick -= s.weight();
    }
    let scale = |ms: u64| ((ms as f64) * opts.time_scale).round() as u64;
    let (lo, hi) = opts.agents;
    let agent = lo + (n % u64::from(hi.saturating_sub(lo) + 1)) as u32;
    let phone_host = 1 + (agent % 250) as u8;
    let ring_ms = match story {
        Story::Late => rng.range(11_000, 14_000),
        Story::Cancelled => rng.range(3_000, 20_000),
        _ => rng.range(1_000, 8_000),
    };
    let spec = CallSpec {
        call_id: format!("lg{run:x}-{n}"),
        customer: format!("13{:09}", rng.range(0, 999_999_999)),
        agent: agent.to_string(),
        switch: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 10)), 5060),
        phone: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 9, phone_host)), 5060),
        trying_ms: scale(rng.range(50, 300)),
        ring_ms: scale(ring_ms),
        talk_ms: scale(rng.range(5_000, 30_000)),
    };
    (story, spec)
}

/// Wraps one SIP message in HEP v3, stamped with the wall clock.
pub fn hep_frame(spec: &CallSpec, step: &Step, capture_id: u32, auth: Option<&[u8]>) -> Vec<u8> {
    let (src, dst) = if step.from_phone {
        (spec.phone, spec.switch)
    } else {
        (spec.switch, spec.phone)
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let ts_sec = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
    let mut b = HepBuilder::packet(
        src,
        dst,
        ts_sec,
        now.subsec_micros(),
        1,
        capture_id,
        &step.sip,
    );
    if let Some(k) = auth {
        b = b.chunk(0x000e, k);
    }
    b.build()
}

/// One HEP frame encoded when its call starts; only its timestamp is written at sending.
#[derive(Clone, Debug)]
pub struct PreFrame {
    pub bytes: Vec<u8>,
    /// Offset of the 4-byte value of chunk 0x0009 (seconds); 0x000a (microseconds)
    /// follows 6 bytes after its end.
    ts_at: usize,
}

impl PreFrame {
    /// Encodes `step` of `spec` with a zero timestamp, to be stamped by [`PreFrame::stamp`].
    pub fn new(spec: &CallSpec, step: &Step, capture_id: u32, auth: Option<&[u8]>) -> PreFrame {
        let (src, dst) = if step.from_phone {
            (spec.phone, spec.switch)
        } else {
            (spec.switch, spec.phone)
        };
        let mut b = HepBuilder::packet(src, dst, 0, 0, 1, capture_id, &step.sip);
        if let Some(k) = auth {
            b = b.chunk(0x000e, k);
        }
        let bytes = b.build();
        let ts_at = chunk_value_at(&bytes, 0x0009).unwrap_or(0);
        PreFrame { bytes, ts_at }
    }

    /// Writes the capture time (seconds and microseconds since the epoch).
    pub fn stamp(&mut self, sec: u32, usec: u32) {
        let at = self.ts_at;
        if at == 0 || at + 14 > self.bytes.len() {
            return;
        }
        self.bytes[at..at + 4].copy_from_slice(&sec.to_be_bytes());
        self.bytes[at + 10..at + 14].copy_from_slice(&usec.to_be_bytes());
    }
}

/// Where the value of the first chunk of type `kind` starts in a HEP v3 frame.
fn chunk_value_at(frame: &[u8], kind: u16) -> Option<usize> {
    let mut at = 6;
    while at + 6 <= frame.len() {
        let t = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        let len = usize::from(u16::from_be_bytes([frame[at + 4], frame[at + 5]]));
        if t == kind {
            return Some(at + 6);
        }
        if len < 6 {
            return None;
        }
        at += len;
    }
    None
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream),
}

struct Call {
    frames: Vec<PreFrame>,
}

/// Most frames sent per wake-up before the loop looks at the clock again.
const SEND_BATCH: usize = 1024;

/// Runs the generator until its duration is over and the calls in flight are done, or
/// until `shutdown` resolves.
pub async fn run(
    opts: &LoadgenOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<LoadgenReport> {
    check_target(opts.target)?;
    if !(opts.cps > 0.0 && opts.cps <= 100_000.0) {
        bail!("--cps must be between 0 and 100000");
    }
    let mut link = if opts.tcp {
        let s = TcpStream::connect(opts.target)
            .await
            .with_context(|| format!("connecting to {}", opts.target))?;
        s.set_nodelay(true)?;
        Link::Tcp(s)
    } else {
        let bind: SocketAddr = if opts.target.is_ipv4() {
            "127.0.0.1:0".parse()?
        } else {
            "[::1]:0".parse()?
        };
        let s = UdpSocket::bind(bind).await?;
        s.connect(opts.target).await?;
        Link::Udp(s)
    };
    tokio::pin!(shutdown);
    let mut rng = Rng::new(opts.seed);
    let run_id = rng.next_u64() & 0xffff_ffff;
    let start = Instant::now();
    let stop_starting = opts.duration.map(|d| start + d);
    let interval = Duration::from_secs_f64(1.0 / opts.cps);
    let mut next_call = start;
    let mut calls: Vec<Option<Call>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // (due, sequence, call slot, step index)
    let mut due: BinaryHeap<Reverse<(Instant, u64, usize, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut in_flight = 0usize;
    let mut report = LoadgenReport::default();
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let auth = opts.auth_key.as_deref();
    loop {
        let now = Instant::now();
        while next_call <= now && stop_starting.is_none_or(|end| next_call < end) {
            if in_flight >= opts.concurrent {
                report.calls_skipped += 1;
            } else {
                let (story, spec) = draw_call(&mut rng, report.calls_started, run_id, opts);
                let steps = spec.steps(story);
                let frames = steps
                    .iter()
                    .map(|st| PreFrame::new(&spec, st, opts.capture_id, auth))
                    .collect();
                let slot = free.pop().unwrap_or_else(|| {
                    calls.push(None);
                    calls.len() - 1
                });
                for (i, st) in steps.iter().enumerate() {
                    seq += 1;
                    due.push(Reverse((
                        next_call + Duration::from_millis(st.after_ms),
                        seq,
                        slot,
                        i,
                    )));
                }
                calls[slot] = Some(Call { frames });
                report.by_story[Story::ALL.iter().position(|s| *s == story).unwrap_or(0)] += 1;
                report.calls_started += 1;
                in_flight += 1;
            }
            next_call += interval;
        }
        // One wall-clock reading per batch: every frame of it carries that time.
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let (sec, usec) = (
            u32::try_from(wall.as_secs()).unwrap_or(u32::MAX),
            wall.subsec_micros(),
        );
        let mut sent_now = 0usize;
        while let Some(Reverse((t, _, slot, i))) = due.peek().copied() {
            if t > now || sent_now >= SEND_BATCH {
                break;
            }
            due.pop();
            let Some(call) = calls.get_mut(slot).and_then(|c| c.as_mut()) else {
                continue;
            };
            let Some(frame) = call.frames.get_mut(i) else {
                continue;
            };
            frame.stamp(sec, usec);
            sent_now += 1;
            report.packets_sent += 1;
            report.bytes_sent += frame.bytes.len() as u64;
            match &mut link {
                Link::Udp(s) => {
                    if !send_udp(s, &frame.bytes).await {
                        report.send_errors += 1;
                    }
                }
                Link::Tcp(_) => out.extend_from_slice(&frame.bytes),
            }
            if i + 1 == call.frames.len() {
                calls[slot] = None;
                free.push(slot);
                in_flight -= 1;
                report.calls_completed += 1;
            }
            if out.len() >= 60 * 1024 {
                flush(&mut link, &mut out).await?;
            }
        }
        flush(&mut link, &mut out).await?;
        if sent_now >= SEND_BATCH {
            // Behind schedule: go on sending, but let the runtime breathe.
            tokio::task::yield_now().await;
            continue;
        }
        let starting_over = stop_starting.is_some_and(|end| next_call >= end);
        if starting_over && report.window.is_zero() {
            report.window = start.elapsed();
            report.window_packets = report.packets_sent;
        }
        if starting_over && due.is_empty() {
            break;
        }
        let mut wake = due.peek().map(|Reverse((t, ..))| *t);
        if !starting_over {
            wake = Some(wake.map_or(next_call, |w| w.min(next_call)));
        }
        let Some(wake) = wake else { break };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    if let Link::Tcp(mut s) = link {
        let _ = s.shutdown().await;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Sends one datagram without a wake-up per packet: a non-blocking send, waiting for
/// the socket only when its send buffer is full. False on an error.
async fn send_udp(s: &UdpSocket, frame: &[u8]) -> bool {
    for _ in 0..1000 {
        match s.try_send(frame) {
            Ok(_) => return true,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if s.writable().await.is_err() {
                    return false;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

async fn flush(link: &mut Link, out: &mut Vec<u8>) -> anyhow::Result<()> {
    if let (Link::Tcp(s), false) = (link, out.is_empty()) {
        s.write_all(out).await.context("sending HEP over TCP")?;
    }
    out.clear();
    Ok(())
}

/// Fetches `GET /metrics` from a loopback address (for the benchmark's summary).
pub async fn scrape(addr: SocketAddr) -> anyhow::Result<String> {
    check_target(addr)?;
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    Ok(text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or(text))
}

/// Sums the samples of `name` whose labels contain every `labels` pair.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, rest) = l.split_once(' ')?;
            let (n, lbl) = match series.split_once('{') {
                Some((n, lbl)) => (n, lbl.trim_end_matches('}')),
                None => (series, ""),
            };
            if n != name {
                return None;
            }
            let ok = labels
                .iter()
                .all(|(k, v)| lbl.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            if !ok {
                return None;
            }
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hep::HepPacket;
    use crate::wire::sip::SipMessage;

    #[test]
    fn refuses_targets_off_this_machine() {
        assert!(check_target("127.0.0.1:9060".parse().unwrap()).is_ok());
        assert!(check_target("127.8.9.10:9060".parse().unwrap()).is_ok());
        assert!(check_target("[::1]:9060".parse().unwrap()).is_ok());
        for bad in [
            "10.0.0.1:9060",
            "192.168.1.1:9060",
            "8.8.8.8:53",
            "[2001:db8::1]:9060",
            "0.0.0.0:9060",
        ] {
            assert!(check_target(bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_story_is_well_formed_sip_in_hep() {
        let opts = LoadgenOptions::default();
        let mut rng = Rng::new(7);
        for n in 0..50 {
            let (story, spec) = draw_call(&mut rng, n, 1, &opts);
            let steps = spec.steps(story);
            assert!(
                steps.windows(2).all(|w| w[0].after_ms <= w[1].after_ms),
                "{story:?}"
            );
            for st in &steps {
                let frame = hep_frame(&spec, st, 3, Some(b"k"));
                let p = HepPacket::parse(&frame).unwrap();
                assert_eq!(p.capture_id, 3);
                let m = SipMessage::parse(p.payload).unwrap_or_else(|e| {
                    panic!("{story:?}: {e:?}\n{}", String::from_utf8_lossy(&st.sip))
                });
                assert!(m.call_id().is_some() && m.cseq().is_some());
            }
        }
    }

    /// Each story, fed to the engine, gives the outcome and violations it is named for.
    #[test]
    fn stories_mean_what_they_say_to_the_engine() {
        use crate::config::Config;
        use crate::engine::leg::Outcome;
        use crate::engine::{Captured, Engine, EngineSettings, Event, PayloadHint, SourceId};
        use crate::time::CaptureTime;
        let cfg = Config::default().validate(None).unwrap();
        let opts = LoadgenOptions::default();
        let mut rng = Rng::new(11);
        let mut seen = std::collections::HashSet::new();
        for n in 0..200 {
            let (story, spec) = draw_call(&mut rng, n, 1, &opts);
            if !seen.insert(story) {
                continue;
            }
            let mut engine = Engine::new(EngineSettings::from_config(&cfg));
            let t0 = 1_800_000_000_000i64;
            for st in spec.steps(story) {
                let (src, dst) = if st.from_phone {
                    (spec.phone, spec.switch)
                } else {
                    (spec.switch, spec.phone)
                };
                engine.handle_packet(&Captured {
                    at: CaptureTime::from_millis(t0 + st.after_ms as i64),
                    source: SourceId(1),
                    src,
                    dst,
                    transport: crate::wire::Transport::Udp,
                    hint: PayloadHint::Sip,
                    payload: &st.sip,
                    correlation_id: None,
                });
            }
            engine.handle_timeout(SourceId(1), CaptureTime::from_millis(t0 + 120_000));
            let mut ended = None;
            while let Some(ev) = engine.poll_event() {
                if let Event::LegEnded { leg, .. } = ev {
                    ended = Some(leg);
                }
            }
            let leg = ended.unwrap_or_else(|| panic!("{story:?}: no leg ended"));
            let mut rules: Vec<&str> = leg.violations.iter().map(|v| v.rule.as_str()).collect();
            rules.sort();
            let (outcome, want): (Outcome, Vec<&str>) = match story {
                Story::Answered => (Outcome::Answered, vec![]),
                Story::Late => (Outcome::Answered, vec!["late_answer"]),
                Story::Cancelled if leg.ring_ms.unwrap_or(0) > 10_000 => {
                    (Outcome::Cancelled, vec!["late_answer"])
                }
                Story::Cancelled => (Outcome::Cancelled, vec![]),
                Story::AgentHangup => (
                    Outcome::Answered,
                    vec!["agent_hangup_first", "survey_missing"],
                ),
                Story::SurveyTransfer => (Outcome::Answered, vec![]),
            };
            assert_eq!(leg.outcome, Some(outcome), "{story:?}");
            assert_eq!(rules, want, "{story:?}: {leg:?}");
            if story == Story::SurveyTransfer {
                assert_eq!(leg.survey, crate::engine::leg::Survey::Transferred);
            }
        }
        assert_eq!(seen.len(), Story::ALL.len());
    }

    #[test]
    fn a_pre_encoded_frame_is_the_frame_with_its_stamp() {
        let opts = LoadgenOptions::default();
        let mut rng = Rng::new(3);
        let (story, spec) = draw_call(&mut rng, 0, 1, &opts);
        for st in spec.steps(story) {
            for auth in [None, Some(&b"k3y"[..])] {
                let mut f = PreFrame::new(&spec, &st, 7, auth);
                f.stamp(1_800_000_123, 456_789);
                let p = HepPacket::parse(&f.bytes).unwrap();
                assert_eq!((p.ts_sec, p.ts_usec), (1_800_000_123, 456_789));
                assert_eq!(p.capture_id, 7);
                assert_eq!(p.auth_key, auth);
                assert_eq!(p.payload, &st.sip[..]);
                let built = hep_frame(&spec, &st, 7, auth);
                assert_eq!(f.bytes.len(), built.len());
            }
        }
    }

    #[test]
    fn metric_sum_reads_exposition_lines() {
        let t = "# TYPE x counter\nx_total{a=\"1\",b=\"2\"} 3\nx_total{a=\"2\",b=\"2\"} 4\ny 1\n";
        assert_eq!(metric_sum(t, "x_total", &[("b", "2")]), 7.0);
        assert_eq!(metric_sum(t, "x_total", &[("a", "1")]), 3.0);
        assert_eq!(metric_sum(t, "y", &[]), 1.0);
    }
}
