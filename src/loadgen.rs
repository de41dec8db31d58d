//! `callwatch loadgen`: a bounded HEP v3 traffic generator for benchmarks, the demo and
//! tests. It plays call-centre stories ([`Story`]: answered, late answer, cancelled,
//! agent hang-up, survey transfer) between a switch and agents' phones, with the
//! messages a capture agent would report, stamped with the wall clock at sending, over
//! UDP or one TCP connection. With [`LoadgenOptions::rtcp_interval`] each answered call
//! also reports RTCP (HEP payload type 5, as rtpengine or an SBC does): a sender report
//! with SDES from each side every interval of its talk time, between the SDP addresses
//! of the call (RTP port + 1), so the engine attaches it to the leg. It only ever sends
//! to loopback addresses (127.0.0.0/8, ::1), starts at most `cps` calls a second with at
//! most `concurrent` in flight, stops starting calls after `duration`, and finishes the
//! calls in flight (each story is bounded, well under a minute at scale 1).
//!
//! Cost per packet: the generator is a plain loop on a thread of its own. A call keeps
//! only its parameters and its schedule ([`Msg`]s at offsets); each message is written
//! when it is due, SIP text and HEP chunks straight into one reused batch buffer (no
//! allocation per packet or per call once the slots exist), stamped with the wall clock
//! read once per batch. The loop wakes at most once a millisecond, and a batch leaves in
//! `sendmmsg` calls of up to [`MMSG`] datagrams (one write per batch over TCP).
//!
//! [`CallSpec`] builds the SIP text of one call; the daemon tests and the demo use it too.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{IoSlice, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use nix::errno::Errno;
use nix::sys::socket::{sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::engine::{Captured, PayloadHint, SourceId};
use crate::time::CaptureTime;
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

/// One message of a call's schedule, before its bytes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Msg {
    Invite,
    /// The phone's 100, 180, 200 (with SDP) or 487 to the INVITE.
    InviteResponse(u16),
    /// The switch's ACK of the answer (true, branch "ack") or of the 487 (false).
    Ack(bool),
    Cancel,
    CancelOk,
    Bye {
        by_agent: bool,
        cseq: u32,
    },
    ByeOk {
        by_agent: bool,
        cseq: u32,
    },
    /// The agent's REFER to the survey (96000) and the switch's 202.
    Refer,
    ReferAccepted,
    /// The switch's NOTIFY (sipfrag 100 while the transfer goes on, 200 when done).
    Notify {
        cseq: u32,
        done: bool,
    },
    NotifyOk {
        cseq: u32,
    },
    /// An RTCP compound report (SR about the other side's stream, then SDES CNAME) from
    /// one side's media address, `talk_ms` after the answer.
    Rtcp {
        from_phone: bool,
        talk_ms: u32,
    },
}

/// A message of the schedule: when (ms after the INVITE) and which way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    pub after_ms: u64,
    pub from_phone: bool,
    pub msg: Msg,
}

/// At most this many RTCP reports per side and call, whatever the interval.
pub const MAX_RTCP_PER_SIDE: u64 = 10_000;

/// The `branch` parameter of a Via: `z9hG4bK-{call_id}-{method lowercase}{cseq}{side}`.
struct Branch<'a> {
    method: &'a str,
    cseq: Option<u32>,
    side: &'a str,
}

const INV: Branch<'static> = Branch {
    method: "inv",
    cseq: None,
    side: "",
};

/// `io::Write` into a `Vec` cannot fail.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {
        let _ = write!($out, $($arg)*);
    };
}

/// Appends each piece (`&str`, `String`, `&[u8]`) in turn: the SIP text is assembled
/// from pieces, not through `fmt` (a third of loadgen's CPU when it was).
macro_rules! put {
    ($out:expr, $($piece:expr),+ $(,)?) => {
        { $( $out.extend_from_slice(AsRef::<[u8]>::as_ref(&$piece)); )+ }
    };
}

/// Appends `n` in decimal.
fn put_u(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The addresses of a call as text, rendered once per call.
#[derive(Clone, Debug, Default)]
struct Addrs {
    switch: String,
    switch_ip: String,
    phone: String,
    phone_ip: String,
}

impl Addrs {
    fn of(spec: &CallSpec) -> Addrs {
        let mut a = Addrs::default();
        a.render(spec);
        a
    }

    fn render(&mut self, spec: &CallSpec) {
        self.switch.clear();
        let _ = write!(self.switch, "{}", spec.switch);
        self.phone.clear();
        let _ = write!(self.phone, "{}", spec.phone);
        self.switch_ip.clear();
        let _ = write!(self.switch_ip, "{}", spec.switch.ip());
        self.phone_ip.clear();
        let _ = write!(self.phone_ip, "{}", spec.phone.ip());
    }
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
    /// The source and destination of a message: the phone's address to the switch's
    /// when it comes from the phone, else the other way round.
    pub fn ends(&self, from_phone: bool) -> (SocketAddr, SocketAddr) {
        if from_phone {
            (self.phone, self.switch)
        } else {
            (self.switch, self.phone)
        }
    }

    /// `step` as capture source 1 saw it on the switch's link, SIP over UDP, at
    /// `t0_ms` plus its offset: for feeding an engine directly (demo, tests, examples).
    pub fn captured<'a>(&self, step: &'a Step, t0_ms: i64) -> Captured<'a> {
        let (src, dst) = self.ends(step.from_phone);
        Captured {
            at: CaptureTime::from_millis(t0_ms + step.after_ms as i64),
            source: SourceId(1),
            src,
            dst,
            transport: crate::wire::Transport::Udp,
            hint: PayloadHint::Sip,
            payload: &step.sip,
            correlation_id: None,
        }
    }

    fn blank() -> CallSpec {
        CallSpec {
            call_id: String::new(),
            customer: String::new(),
            agent: String::new(),
            switch: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            phone: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            trying_ms: 0,
            ring_ms: 0,
            talk_ms: 0,
        }
    }

    fn write_via(&self, out: &mut Vec<u8>, a: &Addrs, branch: &Branch<'_>, from_phone: bool) {
        let host = if from_phone { &a.phone } else { &a.switch };
        put!(
            out,
            "Via: SIP/2.0/UDP ",
            host,
            ";branch=z9hG4bK-",
            self.call_id,
            "-"
        );
        out.extend(branch.method.bytes().map(|b| b.to_ascii_lowercase()));
        if let Some(n) = branch.cseq {
            put_u(out, u64::from(n));
        }
        put!(out, branch.side, "\r\n");
    }

    /// `<sip:{user}@{switch ip}>;tag={c|p}-{call_id}` of the customer or the agent.
    fn write_party(&self, out: &mut Vec<u8>, a: &Addrs, agent: bool, tagged: bool) {
        let user = if agent { &self.agent } else { &self.customer };
        put!(out, "<sip:", user, "@", a.switch_ip, ">");
        if tagged {
            let t = if agent { ";tag=p-" } else { ";tag=c-" };
            put!(out, t, self.call_id);
        }
    }

    fn hash(&self) -> u32 {
        self.call_id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
    }

    /// RTP port of one side: a different even port per call, as a switch allocates them.
    fn media_port(&self, from_phone: bool) -> u16 {
        let base = if from_phone { 30_000 } else { 10_000 };
        base + 2 * (self.hash() % 10_000) as u16
    }

    /// The RTP address one side announces in its SDP.
    pub fn media_addr(&self, from_phone: bool) -> SocketAddr {
        let ip = if from_phone {
            self.phone.ip()
        } else {
            self.switch.ip()
        };
        SocketAddr::new(ip, self.media_port(from_phone))
    }

    /// The SSRC of one side's RTP stream (never 0, the two sides differ).
    pub fn ssrc(&self, from_phone: bool) -> u32 {
        let salt = if from_phone { 0x5bd1_e995 } else { 0x1b87_3593 };
        (self.hash().wrapping_mul(0x9e37_79b9) ^ salt) | 1
    }

    fn write_sdp(&self, out: &mut Vec<u8>, a: &Addrs, from_phone: bool) {
        let port = self.media_port(from_phone);
        let ip = if from_phone {
            &a.phone_ip
        } else {
            &a.switch_ip
        };
        put!(
            out,
            "v=0\r\no=- 1 1 IN IP4 ",
            ip,
            "\r\ns=-\r\nc=IN IP4 ",
            ip
        );
        put!(out, "\r\nt=0 0\r\nm=audio ");
        put_u(out, u64::from(port));
        put!(
            out,
            " RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        );
    }

    /// After the head: `Content-Type` (when there is a body), `Content-Length`, the
    /// blank line and the body. The body is written first, then the two header lines
    /// after it, then rotated in front of it (in place, no allocation).
    fn write_tail(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>), content_type: &str) {
        let body_at = out.len();
        body(out);
        let body_len = out.len() - body_at;
        let tail_at = out.len();
        if body_len > 0 {
            put!(out, "Content-Type: ", content_type, "\r\n");
        }
        put!(out, "Content-Length: ");
        put_u(out, body_len as u64);
        put!(out, "\r\n\r\n");
        let tail_len = out.len() - tail_at;
        out[body_at..].rotate_right(tail_len);
    }

    fn write_invite(&self, out: &mut Vec<u8>, a: &Addrs) {
        put!(out, "INVITE sip:", self.agent, "@", a.phone, " SIP/2.0\r\n");
        self.write_via(out, a, &INV, false);
        put!(out, "Max-Forwards: 70\r\nFrom: ");
        self.write_party(out, a, false, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, true, false);
        put!(
            out,
            "\r\nCall-ID: ",
            self.call_id,
            "\r\nCSeq: 1 INVITE\r\nContact: <sip:",
            self.customer,
            "@",
            a.switch,
            ">\r\nUser-Agent: callwatch-loadgen\r\n"
        );
        Self::write_tail(out, |o| self.write_sdp(o, a, false), "application/sdp");
    }

    fn write_invite_response(&self, out: &mut Vec<u8>, a: &Addrs, code: u16, reason: &str) {
        put!(out, "SIP/2.0 ");
        put_u(out, u64::from(code));
        put!(out, " ", reason, "\r\n");
        self.write_via(out, a, &INV, false);
        put!(out, "From: ");
        self.write_party(out, a, false, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, true, code != 100);
        put!(
            out,
            "\r\nCall-ID: ",
            self.call_id,
            "\r\nCSeq: 1 INVITE\r\nContact: <sip:",
            self.agent,
            "@",
            a.phone,
            ">\r\n"
        );
        Self::write_tail(
            out,
            |o| {
                if code == 200 {
                    self.write_sdp(o, a, true)
                }
            },
            "application/sdp",
        );
    }

    fn write_ack(&self, out: &mut Vec<u8>, a: &Addrs, branch: &str) {
        put!(out, "ACK sip:", self.agent, "@", a.phone, " SIP/2.0\r\n");
        let b = Branch {
            method: branch,
            cseq: None,
            side: "",
        };
        self.write_via(out, a, &b, false);
        put!(out, "Max-Forwards: 70\r\nFrom: ");
        self.write_party(out, a, false, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, true, true);
        put!(out, "\r\nCall-ID: ", self.call_id, "\r\nCSeq: 1 ACK\r\n");
        Self::write_tail(out, |_| {}, "");
    }

    fn write_cancel(&self, out: &mut Vec<u8>, a: &Addrs) {
        put!(out, "CANCEL sip:", self.agent, "@", a.phone, " SIP/2.0\r\n");
        self.write_via(out, a, &INV, false);
        put!(out, "Max-Forwards: 70\r\nFrom: ");
        self.write_party(out, a, false, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, true, false);
        put!(out, "\r\nCall-ID: ", self.call_id, "\r\nCSeq: 1 CANCEL\r\n");
        Self::write_tail(out, |_| {}, "");
    }

    fn write_cancel_ok(&self, out: &mut Vec<u8>, a: &Addrs) {
        put!(out, "SIP/2.0 200 OK\r\n");
        self.write_via(out, a, &INV, false);
        put!(out, "From: ");
        self.write_party(out, a, false, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, true, true);
        put!(out, "\r\nCall-ID: ", self.call_id, "\r\nCSeq: 1 CANCEL\r\n");
        Self::write_tail(out, |_| {}, "");
    }

    #[allow(clippy::too_many_arguments)]
    fn write_request(
        &self,
        out: &mut Vec<u8>,
        a: &Addrs,
        method: &str,
        cseq: u32,
        by_agent: bool,
        extra: impl FnOnce(&mut Vec<u8>),
        body: impl FnOnce(&mut Vec<u8>),
        content_type: &str,
    ) {
        if by_agent {
            put!(
                out,
                method,
                " sip:",
                self.customer,
                "@",
                a.switch,
                " SIP/2.0\r\n"
            );
        } else {
            put!(
                out,
                method,
                " sip:",
                self.agent,
                "@",
                a.phone,
                " SIP/2.0\r\n"
            );
        }
        self.write_dialog_headers(out, a, method, cseq, by_agent, "Max-Forwards: 70\r\n");
        extra(out);
        Self::write_tail(out, body, content_type);
    }

    /// Via, From, To, Call-ID and CSeq of a request within the dialog or of its response
    /// (`between`: what goes after the Via, e.g. a request's Max-Forwards).
    fn write_dialog_headers(
        &self,
        out: &mut Vec<u8>,
        a: &Addrs,
        method: &str,
        cseq: u32,
        by_agent: bool,
        between: &str,
    ) {
        let branch = Branch {
            method,
            cseq: Some(cseq),
            side: if by_agent { "a" } else { "c" },
        };
        self.write_via(out, a, &branch, by_agent);
        put!(out, between, "From: ");
        self.write_party(out, a, by_agent, true);
        put!(out, "\r\nTo: ");
        self.write_party(out, a, !by_agent, true);
        put!(out, "\r\nCall-ID: ", self.call_id, "\r\nCSeq: ");
        put_u(out, u64::from(cseq));
        put!(out, " ", method, "\r\n");
    }

    fn write_response(
        &self,
        out: &mut Vec<u8>,
        a: &Addrs,
        code: u16,
        method: &str,
        cseq: u32,
        by_agent: bool,
    ) {
        let reason = if code == 202 { "Accepted" } else { "OK" };
        put!(out, "SIP/2.0 ");
        put_u(out, u64::from(code));
        put!(out, " ", reason, "\r\n");
        self.write_dialog_headers(out, a, method, cseq, by_agent, "");
        Self::write_tail(out, |_| {}, "");
    }

    /// The switch's initial INVITE to the phone.
    pub fn invite(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(1024);
        self.write_invite(&mut v, &Addrs::of(self));
        v
    }

    /// The phone's response to the INVITE (100 has no To tag).
    pub fn invite_response(&self, code: u16, reason: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(1024);
        self.write_invite_response(&mut v, &Addrs::of(self), code, reason);
        v
    }

    /// The switch's ACK of the answer (`branch` "ack") or of a failure (`branch` "inv").
    pub fn ack(&self, branch: &str) -> Vec<u8> {
        let mut v = Vec::with_capacity(512);
        self.write_ack(&mut v, &Addrs::of(self), branch);
        v
    }

    /// The switch's CANCEL of the INVITE.
    pub fn cancel(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(512);
        self.write_cancel(&mut v, &Addrs::of(self));
        v
    }

    /// The phone's 200 to the CANCEL.
    pub fn cancel_ok(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(512);
        self.write_cancel_ok(&mut v, &Addrs::of(self));
        v
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
        let mut v = Vec::with_capacity(512 + body.len());
        self.write_request(
            &mut v,
            &Addrs::of(self),
            method,
            cseq,
            by_agent,
            |o| o.extend_from_slice(extra.as_bytes()),
            |o| o.extend_from_slice(body.as_bytes()),
            content_type,
        );
        v
    }

    /// The response to an in-dialog request sent by `by_agent`'s side.
    pub fn response(&self, code: u16, method: &str, cseq: u32, by_agent: bool) -> Vec<u8> {
        let mut v = Vec::with_capacity(512);
        self.write_response(&mut v, &Addrs::of(self), code, method, cseq, by_agent);
        v
    }

    /// Appends the SIP text of `msg` (nothing for [`Msg::Rtcp`], which is not SIP).
    pub fn write_sip(&self, out: &mut Vec<u8>, msg: Msg) {
        self.write_sip_with(out, &Addrs::of(self), msg)
    }

    fn write_sip_with(&self, out: &mut Vec<u8>, a: &Addrs, msg: Msg) {
        match msg {
            Msg::Invite => self.write_invite(out, a),
            Msg::InviteResponse(code) => {
                let reason = match code {
                    100 => "Trying",
                    180 => "Ringing",
                    487 => "Request Terminated",
                    _ => "OK",
                };
                self.write_invite_response(out, a, code, reason)
            }
            Msg::Ack(answered) => self.write_ack(out, a, if answered { "ack" } else { "inv" }),
            Msg::Cancel => self.write_cancel(out, a),
            Msg::CancelOk => self.write_cancel_ok(out, a),
            Msg::Bye { by_agent, cseq } => {
                self.write_request(out, a, "BYE", cseq, by_agent, |_| {}, |_| {}, "")
            }
            Msg::ByeOk { by_agent, cseq } => {
                self.write_response(out, a, 200, "BYE", cseq, by_agent)
            }
            Msg::Refer => self.write_request(
                out,
                a,
                "REFER",
                1,
                true,
                |o| {
                    put!(
                        o,
                        "Refer-To: <sip:96000@",
                        a.switch_ip,
                        ">\r\nReferred-By: "
                    );
                    self.write_party(o, a, true, false);
                    put!(o, "\r\n");
                },
                |_| {},
                "",
            ),
            Msg::ReferAccepted => self.write_response(out, a, 202, "REFER", 1, true),
            Msg::Notify { cseq, done } => {
                let (frag, state) = if done {
                    ("200 OK", "terminated;reason=noresource")
                } else {
                    ("100 Trying", "active;expires=60")
                };
                self.write_request(
                    out,
                    a,
                    "NOTIFY",
                    cseq,
                    false,
                    |o| put!(o, "Event: refer\r\nSubscription-State: ", state, "\r\n"),
                    |o| put!(o, "SIP/2.0 ", frag, "\r\n"),
                    "message/sipfrag;version=2.0",
                )
            }
            Msg::NotifyOk { cseq } => self.write_response(out, a, 200, "NOTIFY", cseq, false),
            Msg::Rtcp { .. } => {}
        }
    }

    /// Appends the RTCP compound packet of [`Msg::Rtcp`]: a sender report (RFC 3550
    /// §6.4.1) with one report block about the other side's stream, then SDES with the
    /// sender's CNAME (§6.5), as a phone or a media relay sends every few seconds.
    /// `wall` (seconds, microseconds since the epoch) gives the NTP timestamp.
    pub fn write_rtcp(&self, out: &mut Vec<u8>, from_phone: bool, talk_ms: u32, wall: (u32, u32)) {
        let me = self.ssrc(from_phone);
        let peer = self.ssrc(!from_phone);
        let h = self.hash() ^ u32::from(from_phone);
        let packets = talk_ms / 20;
        // Sender report: V=2, one report block, PT 200, length 12 words (52 bytes).
        out.extend_from_slice(&[0x81, 200, 0, 12]);
        out.extend_from_slice(&me.to_be_bytes());
        let ntp_sec = wall.0.wrapping_add(2_208_988_800);
        let ntp_frac = ((u64::from(wall.1) << 32) / 1_000_000) as u32;
        out.extend_from_slice(&ntp_sec.to_be_bytes());
        out.extend_from_slice(&ntp_frac.to_be_bytes());
        out.extend_from_slice(&(h.wrapping_add(talk_ms.wrapping_mul(8))).to_be_bytes());
        out.extend_from_slice(&packets.to_be_bytes());
        out.extend_from_slice(&packets.wrapping_mul(160).to_be_bytes());
        // The block about the peer's stream: 0-1.2 % lost, 1-10 ms of jitter (8 kHz).
        let fraction = (h >> 8) % 4;
        let cumulative = (packets * fraction / 256) & 0x00ff_ffff;
        out.extend_from_slice(&peer.to_be_bytes());
        out.extend_from_slice(&((fraction << 24) | cumulative).to_be_bytes());
        out.extend_from_slice(&((h & 0xffff) + packets).to_be_bytes());
        out.extend_from_slice(&(8 + (h >> 16) % 72).to_be_bytes());
        let lsr = ((ntp_sec & 0xffff) << 16 | ntp_frac >> 16).wrapping_sub(1 << 16);
        out.extend_from_slice(&lsr.to_be_bytes());
        out.extend_from_slice(&(1u32 << 15).to_be_bytes());
        // SDES: one chunk, CNAME, end of list, padding to a 32-bit boundary.
        let sdes_at = out.len();
        out.extend_from_slice(&[0x81, 202, 0, 0]);
        out.extend_from_slice(&me.to_be_bytes());
        let cname_at = out.len();
        out.extend_from_slice(&[1, 0]);
        let side = if from_phone { &self.agent } else { "switch" };
        w!(out, "{side}@{}", self.media_addr(from_phone).ip());
        let cname_len = out.len() - cname_at - 2;
        out[cname_at + 1] = u8::try_from(cname_len).unwrap_or(u8::MAX);
        out.push(0);
        while (out.len() - sdes_at) % 4 != 0 {
            out.push(0);
        }
        let words = u16::try_from((out.len() - sdes_at) / 4 - 1).unwrap_or(u16::MAX);
        out[sdes_at + 2..sdes_at + 4].copy_from_slice(&words.to_be_bytes());
    }

    /// The schedule of the call for `story`, in time order, into `out` (cleared first).
    /// With `rtcp_interval_ms`, an answered call also reports RTCP from both sides every
    /// interval after the ACK until the call ends ([`MAX_RTCP_PER_SIDE`] at most).
    pub fn plan(&self, story: Story, rtcp_interval_ms: Option<u64>, out: &mut Vec<Planned>) {
        out.clear();
        let mut push = |after_ms: u64, from_phone: bool, msg: Msg| {
            out.push(Planned {
                after_ms,
                from_phone,
                msg,
            })
        };
        push(0, false, Msg::Invite);
        push(10, true, Msg::InviteResponse(100));
        let t180 = self.trying_ms.max(20);
        push(t180, true, Msg::InviteResponse(180));
        let answer = t180 + self.ring_ms;
        if story == Story::Cancelled {
            push(answer, false, Msg::Cancel);
            push(answer + 5, true, Msg::CancelOk);
            push(answer + 6, true, Msg::InviteResponse(487));
            push(answer + 8, false, Msg::Ack(false));
            return;
        }
        push(answer, true, Msg::InviteResponse(200));
        let ack = answer + 15;
        push(ack, false, Msg::Ack(true));
        let end = answer + self.talk_ms.max(100);
        if let Some(iv) = rtcp_interval_ms.filter(|&iv| iv > 0) {
            let mut k = 1;
            while ack + k * iv < end && k <= MAX_RTCP_PER_SIDE {
                let at = ack + k * iv;
                let talk_ms = u32::try_from(at - answer).unwrap_or(u32::MAX);
                for from_phone in [false, true] {
                    push(
                        at,
                        from_phone,
                        Msg::Rtcp {
                            from_phone,
                            talk_ms,
                        },
                    );
                }
                k += 1;
            }
        }
        match story {
            Story::Answered | Story::Late => {
                let (by_agent, cseq) = (false, 2);
                push(end, false, Msg::Bye { by_agent, cseq });
                push(end + 10, true, Msg::ByeOk { by_agent, cseq });
            }
            Story::AgentHangup => {
                let (by_agent, cseq) = (true, 1);
                push(end, true, Msg::Bye { by_agent, cseq });
                push(end + 10, false, Msg::ByeOk { by_agent, cseq });
            }
            Story::SurveyTransfer => {
                push(end, true, Msg::Refer);
                push(end + 10, false, Msg::ReferAccepted);
                push(
                    end + 20,
                    false,
                    Msg::Notify {
                        cseq: 2,
                        done: false,
                    },
                );
                push(end + 25, true, Msg::NotifyOk { cseq: 2 });
                push(
                    end + 900,
                    false,
                    Msg::Notify {
                        cseq: 3,
                        done: true,
                    },
                );
                push(end + 905, true, Msg::NotifyOk { cseq: 3 });
                let (by_agent, cseq) = (true, 2);
                push(end + 1000, true, Msg::Bye { by_agent, cseq });
                push(end + 1010, false, Msg::ByeOk { by_agent, cseq });
            }
            Story::Cancelled => {}
        }
    }

    /// Every SIP message of the call for `story`, in time order.
    pub fn steps(&self, story: Story) -> Vec<Step> {
        let mut plan = Vec::with_capacity(14);
        self.plan(story, None, &mut plan);
        let a = Addrs::of(self);
        plan.iter()
            .map(|p| {
                let mut sip = Vec::with_capacity(1024);
                self.write_sip_with(&mut sip, &a, p.msg);
                Step {
                    after_ms: p.after_ms,
                    from_phone: p.from_phone,
                    sip,
                }
            })
            .collect()
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
    /// Each answered call reports RTCP from both sides this often during its talk time
    /// (on the same clock as the scaled call, not scaled again; milliseconds count).
    /// None: SIP only.
    pub rtcp_interval: Option<Duration>,
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
            rtcp_interval: None,
        }
    }
}

impl LoadgenOptions {
    fn rtcp_interval_ms(&self) -> Option<u64> {
        self.rtcp_interval
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
    }

    /// The mean number of HEP packets of one call with these options (story mix, time
    /// scale, RTCP), from 4,096 calls drawn as the generator draws them: `cps` for an
    /// offered packet rate is that rate divided by this.
    pub fn mean_packets_per_call(&self) -> f64 {
        const CALLS: u64 = 4096;
        let mut rng = Rng::new(self.seed ^ 0x5eed);
        let mut spec = CallSpec::blank();
        let mut plan = Vec::new();
        let mut total = 0usize;
        for n in 0..CALLS {
            let story = draw_call_into(&mut rng, n, 0, self, &mut spec);
            spec.plan(story, self.rtcp_interval_ms(), &mut plan);
            total += plan.len();
        }
        total as f64 / CALLS as f64
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct LoadgenReport {
    pub calls_started: u64,
    pub calls_completed: u64,
    /// Calls not started because `concurrent` calls were in flight.
    pub calls_skipped: u64,
    /// Every packet handed to the socket (RTCP included), sent or failed.
    pub packets_sent: u64,
    /// Of `packets_sent`, RTCP reports (HEP payload type 5).
    pub rtcp_sent: u64,
    pub bytes_sent: u64,
    pub send_errors: u64,
    /// `sendmmsg` calls (UDP) or writes (TCP).
    pub send_calls: u64,
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
    let mut spec = CallSpec::blank();
    let story = draw_call_into(rng, n, run, opts, &mut spec);
    (story, spec)
}

/// [`draw_call`] into an existing spec, reusing its strings.
pub fn draw_call_into(
    rng: &mut Rng,
    n: u64,
    run: u64,
    opts: &LoadgenOptions,
    spec: &mut CallSpec,
) -> Story {
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
    spec.call_id.clear();
    let _ = write!(spec.call_id, "lg{run:x}-{n}");
    spec.customer.clear();
    let _ = write!(spec.customer, "13{:09}", rng.range(0, 999_999_999));
    spec.agent.clear();
    let _ = write!(spec.agent, "{agent}");
    spec.switch = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 10)), 5060);
    spec.phone = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 9, phone_host)), 5060);
    spec.trying_ms = scale(rng.range(50, 300));
    spec.ring_ms = scale(ring_ms);
    spec.talk_ms = scale(rng.range(5_000, 30_000));
    story
}

/// Wraps one SIP message in HEP v3, stamped with the wall clock.
pub fn hep_frame(spec: &CallSpec, step: &Step, capture_id: u32, auth: Option<&[u8]>) -> Vec<u8> {
    let (src, dst) = spec.ends(step.from_phone);
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

/// Appends one HEP v3 chunk (vendor 0).
fn put_chunk(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = u16::try_from(value.len() + 6).unwrap_or(u16::MAX);
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// Appends one planned message of `spec` as a HEP v3 frame, the same chunks in the same
/// order as [`HepBuilder::packet`] (then the auth key, then for RTCP the Call-ID as
/// correlation id, as rtpengine sends it), the payload written in place. True for RTCP.
pub fn write_frame(
    out: &mut Vec<u8>,
    spec: &CallSpec,
    p: &Planned,
    wall: (u32, u32),
    capture_id: u32,
    auth: Option<&[u8]>,
) -> bool {
    write_frame_with(out, spec, &Addrs::of(spec), p, wall, capture_id, auth)
}

/// [`write_frame`] with the call's addresses already rendered.
fn write_frame_with(
    out: &mut Vec<u8>,
    spec: &CallSpec,
    a: &Addrs,
    p: &Planned,
    wall: (u32, u32),
    capture_id: u32,
    auth: Option<&[u8]>,
) -> bool {
    let (src, dst, proto) = match p.msg {
        Msg::Rtcp { from_phone, .. } => {
            let rtcp = |a: SocketAddr| SocketAddr::new(a.ip(), a.port().wrapping_add(1));
            (
                rtcp(spec.media_addr(from_phone)),
                rtcp(spec.media_addr(!from_phone)),
                5u8,
            )
        }
        _ if p.from_phone => (spec.phone, spec.switch, 1),
        _ => (spec.switch, spec.phone, 1),
    };
    let start = out.len();
    out.extend_from_slice(b"HEP3\0\0");
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            put_chunk(out, 0x0001, &[2]);
            put_chunk(out, 0x0003, &s.octets());
            put_chunk(out, 0x0004, &d.octets());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                IpAddr::V6(a) => a.octets(),
            };
            put_chunk(out, 0x0001, &[10]);
            put_chunk(out, 0x0005, &v6(s));
            put_chunk(out, 0x0006, &v6(d));
        }
    }
    put_chunk(out, 0x0002, &[17]);
    put_chunk(out, 0x0007, &src.port().to_be_bytes());
    put_chunk(out, 0x0008, &dst.port().to_be_bytes());
    put_chunk(out, 0x0009, &wall.0.to_be_bytes());
    put_chunk(out, 0x000a, &wall.1.to_be_bytes());
    put_chunk(out, 0x000b, &[proto]);
    put_chunk(out, 0x000c, &capture_id.to_be_bytes());
    let payload_chunk = out.len();
    put_chunk(out, 0x000f, &[]);
    match p.msg {
        Msg::Rtcp {
            from_phone,
            talk_ms,
        } => spec.write_rtcp(out, from_phone, talk_ms, wall),
        m => spec.write_sip_with(out, a, m),
    }
    let len = u16::try_from(out.len() - payload_chunk).unwrap_or(u16::MAX);
    out[payload_chunk + 4..payload_chunk + 6].copy_from_slice(&len.to_be_bytes());
    if let Some(k) = auth {
        put_chunk(out, 0x000e, k);
    }
    if proto == 5 {
        put_chunk(out, 0x0011, spec.call_id.as_bytes());
    }
    let total = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start + 4..start + 6].copy_from_slice(&total.to_be_bytes());
    proto == 5
}

/// Most datagrams per `sendmmsg` call (and per batch buffer).
pub const MMSG: usize = 128;
/// A batch is sent when it holds this many bytes (TCP: one write).
const BATCH_BYTES: usize = 128 * 1024;
/// Most frames sent per wake-up before the loop looks at the clock again.
const SEND_BATCH: usize = 1024;
/// The loop wakes at most once per this (µs): what is due meanwhile leaves together.
const PACE_US: u64 = 1_000;
/// Longest sleep, so that a stop request is seen promptly.
const MAX_SLEEP_US: u64 = 50_000;

/// Frames waiting to be sent: the bytes back to back and where each one ends.
struct Batch {
    buf: Vec<u8>,
    ends: Vec<usize>,
}

enum Link {
    Udp {
        sock: std::net::UdpSocket,
        headers: MultiHeaders<SockaddrStorage>,
        /// No address per message: the socket is connected.
        addrs: Vec<Option<SockaddrStorage>>,
    },
    Tcp(std::net::TcpStream),
}

impl Link {
    fn connect(opts: &LoadgenOptions) -> anyhow::Result<Link> {
        if opts.tcp {
            let s = std::net::TcpStream::connect_timeout(&opts.target, Duration::from_secs(5))
                .with_context(|| format!("connecting to {}", opts.target))?;
            s.set_nodelay(true)?;
            return Ok(Link::Tcp(s));
        }
        let bind: SocketAddr = if opts.target.is_ipv4() {
            "127.0.0.1:0".parse()?
        } else {
            "[::1]:0".parse()?
        };
        let sock = std::net::UdpSocket::bind(bind)?;
        sock.connect(opts.target)?;
        Ok(Link::Udp {
            sock,
            headers: MultiHeaders::preallocate(MMSG, None),
            addrs: vec![None; MMSG],
        })
    }

    /// Sends the batch and empties it. UDP: `sendmmsg` until every frame is taken; a
    /// frame the kernel refuses (e.g. ECONNREFUSED after an ICMP from a closed port) is
    /// counted in `send_errors` and skipped. TCP: one write; an error ends the run.
    fn flush(&mut self, batch: &mut Batch, report: &mut LoadgenReport) -> anyhow::Result<()> {
        if batch.ends.is_empty() {
            return Ok(());
        }
        match self {
            Link::Udp {
                sock,
                headers,
                addrs,
            } => {
                let fd = sock.as_raw_fd();
                let mut from = 0usize;
                let mut eintr = 0u32;
                while from < batch.ends.len() {
                    let n = (batch.ends.len() - from).min(MMSG);
                    let mut iov = [[IoSlice::new(&[]); 1]; MMSG];
                    let mut at = if from == 0 { 0 } else { batch.ends[from - 1] };
                    for (slot, &end) in iov.iter_mut().zip(&batch.ends[from..from + n]) {
                        slot[0] = IoSlice::new(&batch.buf[at..end]);
                        at = end;
                    }
                    report.send_calls += 1;
                    let none: [ControlMessage<'_>; 0] = [];
                    match sendmmsg(fd, headers, &iov[..n], &addrs[..n], none, MsgFlags::empty()) {
                        Ok(r) => from += r.count().max(1),
                        Err(Errno::EINTR) if eintr < 100 => eintr += 1,
                        Err(_) => {
                            report.send_errors += 1;
                            from += 1;
                        }
                    }
                }
            }
            Link::Tcp(s) => {
                report.send_calls += 1;
                s.write_all(&batch.buf).context("sending HEP over TCP")?;
            }
        }
        batch.buf.clear();
        batch.ends.clear();
        Ok(())
    }
}

/// A call in flight: its parameters, its schedule and the next message.
struct Slot {
    spec: CallSpec,
    addrs: Addrs,
    plan: Vec<Planned>,
    next: usize,
    /// When the call started, µs after the run started.
    t0_us: u64,
}

/// Runs the generator until its duration is over and the calls in flight are done, or
/// until `shutdown` resolves. The generator runs on a blocking thread of its own
/// (`spawn_blocking`); this future only waits for it or for `shutdown`.
pub async fn run(
    opts: &LoadgenOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<LoadgenReport> {
    check_target(opts.target)?;
    if !(opts.cps > 0.0 && opts.cps <= 100_000.0) {
        bail!("--cps must be between 0 and 100000");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (o, s) = (opts.clone(), stop.clone());
    let mut task = tokio::task::spawn_blocking(move || generate(&o, &s));
    tokio::pin!(shutdown);
    tokio::select! {
        r = &mut task => return r.context("loadgen thread")?,
        _ = &mut shutdown => stop.store(true, Ordering::Relaxed),
    }
    task.await.context("loadgen thread")?
}

fn elapsed_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The generator loop (blocking): starts calls on schedule, sends what is due in
/// batches, sleeps until the next thing is due (at least [`PACE_US`] per turn).
fn generate(opts: &LoadgenOptions, stop: &AtomicBool) -> anyhow::Result<LoadgenReport> {
    let mut link = Link::connect(opts)?;
    let mut rng = Rng::new(opts.seed);
    let run_id = rng.next_u64() & 0xffff_ffff;
    let rtcp_ms = opts.rtcp_interval_ms();
    let auth = opts.auth_key.as_deref();
    let start = Instant::now();
    let stop_starting_us = opts
        .duration
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let interval_us = 1e6 / opts.cps;
    let mut next_call_us = 0f64;
    let mut slots: Vec<Slot> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    // (due µs, sequence, slot): each call has its next message in the heap.
    let mut due: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut seq = 0u64;
    let mut in_flight = 0usize;
    let mut report = LoadgenReport::default();
    let mut batch = Batch {
        buf: Vec::with_capacity(BATCH_BYTES + 64 * 1024),
        ends: Vec::with_capacity(MMSG),
    };
    let starting = |at: f64| stop_starting_us.is_none_or(|end| at < end as f64);
    while !stop.load(Ordering::Relaxed) {
        let now_us = elapsed_us(start);
        while next_call_us <= now_us as f64 && starting(next_call_us) {
            if in_flight >= opts.concurrent {
                report.calls_skipped += 1;
            } else {
                let slot = free.pop().unwrap_or_else(|| {
                    slots.push(Slot {
                        spec: CallSpec::blank(),
                        addrs: Addrs::default(),
                        plan: Vec::new(),
                        next: 0,
                        t0_us: 0,
                    });
                    slots.len() - 1
                });
                let s = &mut slots[slot];
                let story =
                    draw_call_into(&mut rng, report.calls_started, run_id, opts, &mut s.spec);
                s.spec.plan(story, rtcp_ms, &mut s.plan);
                s.addrs.render(&s.spec);
                s.next = 0;
                s.t0_us = next_call_us as u64;
                seq += 1;
                due.push(Reverse((s.t0_us, seq, slot)));
                report.by_story[Story::ALL.iter().position(|x| *x == story).unwrap_or(0)] += 1;
                report.calls_started += 1;
                in_flight += 1;
            }
            next_call_us += interval_us;
        }
        // One wall-clock reading per turn: every frame of it carries that time.
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = (
            u32::try_from(wall.as_secs()).unwrap_or(u32::MAX),
            wall.subsec_micros(),
        );
        let mut sent_now = 0usize;
        while let Some(&Reverse((t, _, slot))) = due.peek() {
            if t > now_us || sent_now >= SEND_BATCH {
                break;
            }
            due.pop();
            let s = &mut slots[slot];
            let Some(p) = s.plan.get(s.next).copied() else {
                continue;
            };
            let at = batch.buf.len();
            if write_frame_with(
                &mut batch.buf,
                &s.spec,
                &s.addrs,
                &p,
                stamp,
                opts.capture_id,
                auth,
            ) {
                report.rtcp_sent += 1;
            }
            batch.ends.push(batch.buf.len());
            report.packets_sent += 1;
            report.bytes_sent += (batch.buf.len() - at) as u64;
            sent_now += 1;
            s.next += 1;
            match s.plan.get(s.next) {
                Some(n) => {
                    seq += 1;
                    due.push(Reverse((s.t0_us + n.after_ms * 1000, seq, slot)));
                }
                None => {
                    free.push(slot);
                    in_flight -= 1;
                    report.calls_completed += 1;
                }
            }
            if batch.ends.len() >= MMSG || batch.buf.len() >= BATCH_BYTES {
                link.flush(&mut batch, &mut report)?;
            }
        }
        link.flush(&mut batch, &mut report)?;
        if sent_now >= SEND_BATCH {
            // Behind schedule: go on sending.
            continue;
        }
        let starting_over = !starting(next_call_us);
        if starting_over && report.window.is_zero() {
            report.window = start.elapsed();
            report.window_packets = report.packets_sent;
        }
        if starting_over && due.is_empty() {
            break;
        }
        let mut wake = due.peek().map(|Reverse((t, ..))| *t);
        if !starting_over {
            let next = next_call_us.ceil() as u64;
            wake = Some(wake.map_or(next, |w| w.min(next)));
        }
        let Some(wake) = wake else { break };
        let target = wake.max(now_us + PACE_US);
        let now = elapsed_us(start);
        if target > now {
            std::thread::sleep(Duration::from_micros((target - now).min(MAX_SLEEP_US)));
        }
    }
    if let Link::Tcp(s) = &link {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    report.elapsed = start.elapsed();
    Ok(report)
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
    use crate::wire::hep::{HepPacket, HepProto};
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

    /// The text the writers produce, for one call (the demo and the daemon tests build
    /// their calls with these methods).
    #[test]
    fn sip_text_of_a_call() {
        let opts = LoadgenOptions::default();
        let (_, spec) = draw_call(&mut Rng::new(5), 3, 0xab, &opts);
        let text = |v: Vec<u8>| String::from_utf8(v).unwrap();
        let invite = text(spec.invite());
        let want_head = format!(
            "INVITE sip:8004@10.1.9.5:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.0.10:5060;branch=z9hG4bK-lgab-3-inv\r\nMax-Forwards: 70\r\nFrom: <sip:{c}@10.1.0.10>;tag=c-lgab-3\r\nTo: <sip:8004@10.1.0.10>\r\nCall-ID: lgab-3\r\nCSeq: 1 INVITE\r\nContact: <sip:{c}@10.1.0.10:5060>\r\nUser-Agent: callwatch-loadgen\r\nContent-Type: application/sdp\r\nContent-Length: ",
            c = spec.customer
        );
        assert!(invite.starts_with(&want_head), "{invite}");
        let (_, body) = invite.split_once("\r\n\r\n").unwrap();
        assert!(invite.contains(&format!("Content-Length: {}\r\n", body.len())));
        assert!(body.starts_with("v=0\r\n") && body.ends_with("a=sendrecv\r\n"));
        assert_eq!(
            text(spec.response(202, "REFER", 1, true)),
            "SIP/2.0 202 Accepted\r\nVia: SIP/2.0/UDP 10.1.9.5:5060;branch=z9hG4bK-lgab-3-refer1a\r\nFrom: <sip:8004@10.1.0.10>;tag=p-lgab-3\r\nTo: <sip:".to_string()
                + &spec.customer
                + "@10.1.0.10>;tag=c-lgab-3\r\nCall-ID: lgab-3\r\nCSeq: 1 REFER\r\nContent-Length: 0\r\n\r\n"
        );
        let notify = text(spec.request(
            "NOTIFY",
            3,
            false,
            "Event: refer\r\n",
            "SIP/2.0 200 OK\r\n",
            "message/sipfrag;version=2.0",
        ));
        assert!(notify.starts_with("NOTIFY sip:8004@10.1.9.5:5060 SIP/2.0\r\n"));
        assert!(notify.ends_with(
            "CSeq: 3 NOTIFY\r\nEvent: refer\r\nContent-Type: message/sipfrag;version=2.0\r\nContent-Length: 16\r\n\r\nSIP/2.0 200 OK\r\n"
        ));
        assert_eq!(
            text(spec.invite_response(100, "Trying"))
                .matches("tag=")
                .count(),
            1
        );
    }

    /// Each story, fed to the engine, gives the outcome and violations it is named for.
    #[test]
    fn stories_mean_what_they_say_to_the_engine() {
        use crate::config::Config;
        use crate::engine::leg::Outcome;
        use crate::engine::{Engine, EngineSettings, Event, SourceId};
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
                engine.handle_packet(&spec.captured(&st, t0));
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

    /// `write_frame` writes, in place, the frame `HepBuilder` builds for the same stamp.
    #[test]
    fn a_written_frame_is_the_built_frame() {
        let opts = LoadgenOptions::default();
        let mut rng = Rng::new(3);
        let mut out = Vec::new();
        let mut plan = Vec::new();
        for n in 0..20 {
            let (story, spec) = draw_call(&mut rng, n, 1, &opts);
            spec.plan(story, None, &mut plan);
            let steps = spec.steps(story);
            assert_eq!(plan.len(), steps.len());
            for (p, st) in plan.iter().zip(&steps) {
                for auth in [None, Some(&b"k3y"[..])] {
                    out.clear();
                    out.extend_from_slice(b"previous frame");
                    assert!(!write_frame(
                        &mut out,
                        &spec,
                        p,
                        (1_800_000_123, 456_789),
                        7,
                        auth
                    ));
                    let (src, dst) = spec.ends(st.from_phone);
                    let mut b = HepBuilder::packet(src, dst, 1_800_000_123, 456_789, 1, 7, &st.sip);
                    if let Some(k) = auth {
                        b = b.chunk(0x000e, k);
                    }
                    assert_eq!(&out[14..], &b.build()[..], "{story:?} {p:?}");
                }
            }
        }
    }

    #[test]
    fn rtcp_reports_flow_between_the_sdp_addresses_during_the_talk() {
        let opts = LoadgenOptions {
            time_scale: 0.01,
            ..LoadgenOptions::default()
        };
        let mut rng = Rng::new(9);
        let mut plan = Vec::new();
        let mut out = Vec::new();
        let mut reports = 0;
        for n in 0..50 {
            let (story, spec) = draw_call(&mut rng, n, 1, &opts);
            spec.plan(story, Some(10), &mut plan);
            assert!(plan.windows(2).all(|w| w[0].after_ms <= w[1].after_ms));
            let rtcp: Vec<&Planned> = plan
                .iter()
                .filter(|p| matches!(p.msg, Msg::Rtcp { .. }))
                .collect();
            if story == Story::Cancelled {
                assert!(rtcp.is_empty());
                continue;
            }
            let ack = plan.iter().find(|p| p.msg == Msg::Ack(true)).unwrap();
            let bye = plan
                .iter()
                .find(|p| matches!(p.msg, Msg::Bye { .. } | Msg::Refer))
                .unwrap();
            // One per side every 10 ms strictly between the ACK and the end of the talk.
            let per_side = (bye.after_ms - ack.after_ms - 1) / 10;
            assert_eq!(rtcp.len() as u64, 2 * per_side, "{story:?}");
            assert!(rtcp
                .iter()
                .all(|p| p.after_ms > ack.after_ms && p.after_ms < bye.after_ms));
            for p in rtcp {
                let Msg::Rtcp { from_phone, .. } = p.msg else {
                    unreachable!()
                };
                out.clear();
                assert!(write_frame(
                    &mut out,
                    &spec,
                    p,
                    (1_800_000_000, 250_000),
                    4,
                    None
                ));
                let h = HepPacket::parse(&out).unwrap();
                assert_eq!(h.proto, HepProto::Rtcp);
                assert_eq!(h.correlation_id, Some(spec.call_id.as_bytes()));
                let rtcp_of = |a: SocketAddr| SocketAddr::new(a.ip(), a.port() + 1);
                assert_eq!(h.src, rtcp_of(spec.media_addr(from_phone)));
                assert_eq!(h.dst, rtcp_of(spec.media_addr(!from_phone)));
                assert_eq!(
                    crate::wire::rtp::classify(h.payload),
                    crate::wire::rtp::Classified::Rtcp
                );
                let packets: Vec<_> = crate::wire::rtcp::walk(h.payload)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(packets.len(), 2);
                let crate::wire::rtcp::RtcpPacket::SenderReport(sr) = &packets[0] else {
                    panic!("{packets:?}")
                };
                let blocks: Vec<_> = sr.reports.collect();
                assert_eq!(blocks.len(), 1);
                assert_eq!(blocks[0].ssrc, spec.ssrc(!from_phone));
                assert!(blocks[0].fraction_lost_pct() < 1.2);
                assert!(matches!(
                    packets[1],
                    crate::wire::rtcp::RtcpPacket::SourceDescription { chunk_count: 1 }
                ));
                reports += 1;
            }
        }
        assert!(reports > 500, "{reports}");
    }

    #[test]
    fn mean_packets_per_call_follows_the_mix() {
        let sip_only = LoadgenOptions::default().mean_packets_per_call();
        // 85 % of calls have 7 messages, 15 % (survey transfers) 13: 7.9.
        assert!((sip_only - 7.9).abs() < 0.15, "{sip_only}");
        let with_rtcp = LoadgenOptions {
            time_scale: 0.01,
            rtcp_interval: Some(Duration::from_millis(10)),
            ..LoadgenOptions::default()
        }
        .mean_packets_per_call();
        // Talk 50-300 ms: about (175 - 15) / 10 reports per side, two sides, on the 90 %
        // of calls that are answered: 28.8.
        assert!(
            (26.0..32.0).contains(&(with_rtcp - sip_only)),
            "{with_rtcp}"
        );
    }

    /// The generator over UDP to a socket on loopback: every packet arrives or is
    /// counted by the kernel as dropped at the receiving socket (a busy machine cannot
    /// always read 13,000 datagrams in a third of a second), in far fewer `sendmmsg`
    /// calls than packets, RTCP counted apart.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn run_sends_every_packet_in_batches() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let drops =
            crate::sources::hep::SocketDrops::of(&rx).expect("/proc/net/udp is readable on Linux");
        let opts = LoadgenOptions {
            target: rx.local_addr().unwrap(),
            cps: 2_000.0,
            duration: Some(Duration::from_millis(300)),
            time_scale: 0.01,
            rtcp_interval: Some(Duration::from_millis(20)),
            concurrent: 100_000,
            ..LoadgenOptions::default()
        };
        let reader = std::thread::spawn(move || {
            let (mut n, mut rtcp) = (0u64, 0u64);
            let mut buf = vec![0u8; 65_536];
            while let Ok(len) = rx.recv(&mut buf) {
                let p = HepPacket::parse(&buf[..len]).unwrap();
                n += 1;
                rtcp += u64::from(p.proto == HepProto::Rtcp);
            }
            // Read while the socket is open: its line in /proc goes with it.
            (n, rtcp, drops.total().unwrap())
        });
        let r = run(&opts, std::future::pending()).await.unwrap();
        let (got, rtcp, dropped) = reader.join().unwrap();
        assert_eq!(r.send_errors, 0);
        assert!(
            r.calls_started >= 500 && r.calls_completed == r.calls_started,
            "{r:?}"
        );
        assert_eq!(got + dropped, r.packets_sent, "{dropped} dropped, {r:?}");
        assert!(dropped * 10 < r.packets_sent, "{dropped} dropped, {r:?}");
        assert!(
            rtcp <= r.rtcp_sent && rtcp + dropped >= r.rtcp_sent,
            "{rtcp} RTCP received, {dropped} dropped, {r:?}"
        );
        assert!(r.rtcp_sent > r.packets_sent / 2, "{r:?}");
        assert!(r.send_calls * 4 < r.packets_sent, "{r:?}");
    }

    #[test]
    fn metric_sum_reads_exposition_lines() {
        let t = "# TYPE x counter\nx_total{a=\"1\",b=\"2\"} 3\nx_total{a=\"2\",b=\"2\"} 4\ny 1\n";
        assert_eq!(metric_sum(t, "x_total", &[("b", "2")]), 7.0);
        assert_eq!(metric_sum(t, "x_total", &[("a", "1")]), 3.0);
        assert_eq!(metric_sum(t, "y", &[]), 1.0);
    }
}
