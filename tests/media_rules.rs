//! Media scenarios on simulated time (SPEC §3 "media", `poor_audio`, `one_way_audio`,
//! the media timeout): SIP with SDP and 20 ms G.711 RTP packets built here, fed to the
//! engine in capture-time order with explicit timestamps, checked against the leg
//! records, the violations and the engine's counters. Each test is one story, named as
//! a sentence.
//!
//! The cast: the switch signals from `10.0.0.1:5060` and anchors the customer's media
//! on `10.0.2.1:20000`; agent 8001's phone signals from `10.0.1.1:5060` and receives
//! its media on `10.0.1.1:30000`. The figures a stream must show are counted by hand
//! from the packets each test sends (Wireshark 4.0's rules, `docs/media-quality.md`).

use std::net::SocketAddr;

use callwatch::config::Config;
use callwatch::engine::leg::{EndReason, HangupBy, MediaRecord, Party, Survey};
use callwatch::engine::rules::RuleId;
use callwatch::engine::{
    Captured, Engine, EngineSettings, Event, LegRecord, PayloadHint, SourceId,
};
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;

const PBX: &str = "10.0.0.1:5060";
const PHONE: &str = "10.0.1.1:5060";
/// Where the switch receives the customer's side of the media.
const CUST_MEDIA: &str = "10.0.2.1:20000";
/// Where agent 8001's phone receives media.
const AGENT_MEDIA: &str = "10.0.1.1:30000";

/// Capture time origin of every story: 2027-01-15T08:00:00Z.
const EPOCH_US: i64 = 1_800_000_000_000_000;

/// 20 ms of G.711 at 8 kHz.
const PTIME_US: i64 = 20_000;
const SAMPLES: u32 = 160;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn time(ms: i64) -> CaptureTime {
    CaptureTime(EPOCH_US + ms * 1000)
}

fn engine_with(f: impl FnOnce(&mut Config)) -> Engine {
    let mut c = Config::default();
    f(&mut c);
    Engine::new(EngineSettings::from_config(&c.validate(None).unwrap()))
}

// ---- SDP, SIP, RTP ------------------------------------------------------------------

/// An audio SDP offering PCMU (and telephone-event) on `media`, with a direction.
fn sdp(media: &str, version: u32, direction: &str) -> String {
    let a = addr(media);
    format!(
        "v=0\r\no=- 1 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\na={direction}\r\n",
        ip = a.ip(),
        port = a.port()
    )
}

/// One SIP dialog between the switch and the phone of agent 8001.
struct Dialog {
    call_id: String,
    caller: String,
    caller_tag: String,
    callee: String,
    callee_tag: String,
}

/// The customer calls the agent (the switch is the caller's side).
fn inbound(call_id: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        caller: "13812345678".into(),
        caller_tag: format!("c-{call_id}"),
        callee: "8001".into(),
        callee_tag: format!("a-{call_id}"),
    }
}

/// The agent calls out (the phone is the caller).
fn outbound(call_id: &str) -> Dialog {
    Dialog {
        call_id: call_id.into(),
        caller: "8001".into(),
        caller_tag: format!("a-{call_id}"),
        callee: "13812345678".into(),
        callee_tag: format!("c-{call_id}"),
    }
}

impl Dialog {
    /// A message of the dialog. `caller_sent_request`: the request (or the request a
    /// response answers) was sent by the caller, so From carries the caller's tag.
    fn msg(
        &self,
        first: &str,
        cseq: u32,
        method: &str,
        caller_sent_request: bool,
        to_tag: bool,
        body: &str,
    ) -> Vec<u8> {
        let (fu, ft, tu, tt) = if caller_sent_request {
            (
                &self.caller,
                &self.caller_tag,
                &self.callee,
                &self.callee_tag,
            )
        } else {
            (
                &self.callee,
                &self.callee_tag,
                &self.caller,
                &self.caller_tag,
            )
        };
        let to = if to_tag {
            format!("<sip:{tu}@pbx>;tag={tt}")
        } else {
            format!("<sip:{tu}@pbx>")
        };
        let ctype = if body.is_empty() {
            ""
        } else {
            "Content-Type: application/sdp\r\n"
        };
        let branch = format!(
            "{}{method}{cseq}",
            if caller_sent_request { "r" } else { "e" }
        );
        format!(
            "{first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch}\r\n\
             From: <sip:{fu}@pbx>;tag={ft}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:{fu}@10.0.0.1>\r\nMax-Forwards: 70\r\n{ctype}Content-Length: {}\r\n\r\n{body}",
            self.call_id,
            body.len()
        )
        .into_bytes()
    }

    fn invite(&self, body: &str) -> Vec<u8> {
        self.msg(
            &format!("INVITE sip:{}@10.0.1.1 SIP/2.0", self.callee),
            1,
            "INVITE",
            true,
            false,
            body,
        )
    }

    /// The callee's response to the initial INVITE.
    fn invite_response(&self, code: u16, body: &str) -> Vec<u8> {
        self.msg(
            &format!("SIP/2.0 {code} Reason"),
            1,
            "INVITE",
            true,
            code != 100,
            body,
        )
    }

    /// An in-dialog request from the caller (`by_caller`) or the callee.
    fn request(&self, method: &str, cseq: u32, by_caller: bool, body: &str) -> Vec<u8> {
        let target = if by_caller {
            &self.callee
        } else {
            &self.caller
        };
        self.msg(
            &format!("{method} sip:{target}@10.0.0.1 SIP/2.0"),
            cseq,
            method,
            by_caller,
            true,
            body,
        )
    }

    /// The response to an in-dialog request sent by the caller (`by_caller`) or callee.
    fn response(&self, code: u16, cseq: u32, method: &str, by_caller: bool, body: &str) -> Vec<u8> {
        self.msg(
            &format!("SIP/2.0 {code} Reason"),
            cseq,
            method,
            by_caller,
            true,
            body,
        )
    }
}

/// A PCMU RTP packet: 12-byte header and 160 bytes of payload.
fn rtp(seq: u16, ts: u32, ssrc: u32, pt: u8, marker: bool) -> Vec<u8> {
    let mut p = Vec::with_capacity(172);
    p.push(0x80);
    p.push(if marker { 0x80 } else { 0 } | pt);
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// A deterministic pseudo-random sequence (xorshift64), so that "random" loss is the
/// same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// `k` distinct indices in `1..n-1` (never the first nor the last packet, so that
    /// expected stays `n`).
    fn pick(&mut self, k: usize, n: usize) -> Vec<usize> {
        let mut out = Vec::new();
        while out.len() < k {
            let i = 1 + (self.next() % (n as u64 - 2)) as usize;
            if !out.contains(&i) {
                out.push(i);
            }
        }
        out.sort_unstable();
        out
    }
}

// ---- the timeline ---------------------------------------------------------------------

/// A story: packets with capture times (µs after `EPOCH_US`), played in time order
/// (insertion order among equal times).
#[derive(Default)]
struct Story {
    packets: Vec<(i64, usize, SocketAddr, SocketAddr, Vec<u8>)>,
}

/// One RTP stream to put on the timeline: `count` packets every 20 ms from `start_ms`,
/// sequence numbers and timestamps running from `seq0`/`ts0`.
#[derive(Clone, Copy)]
struct Flow<'a> {
    src: &'a str,
    dst: &'a str,
    ssrc: u32,
    start_ms: i64,
    count: usize,
    seq0: u16,
    ts0: u32,
}

impl Story {
    fn sip(&mut self, ms: i64, src: &str, dst: &str, bytes: Vec<u8>) -> &mut Self {
        self.at_us(ms * 1000, src, dst, bytes)
    }

    fn at_us(&mut self, us: i64, src: &str, dst: &str, bytes: Vec<u8>) -> &mut Self {
        let n = self.packets.len();
        self.packets.push((us, n, addr(src), addr(dst), bytes));
        self
    }

    /// Puts a flow on the timeline, leaving out the packets whose index `drop` names.
    /// Returns how many packets were sent.
    fn flow_without(&mut self, f: Flow<'_>, drop: &[usize]) -> u64 {
        let mut sent = 0;
        for i in 0..f.count {
            if drop.contains(&i) {
                continue;
            }
            let seq = f.seq0.wrapping_add(i as u16);
            let ts = f.ts0.wrapping_add(SAMPLES * i as u32);
            let us = f.start_ms * 1000 + i as i64 * PTIME_US;
            self.at_us(us, f.src, f.dst, rtp(seq, ts, f.ssrc, 0, i == 0));
            sent += 1;
        }
        sent
    }

    fn flow(&mut self, f: Flow<'_>) -> u64 {
        self.flow_without(f, &[])
    }

    /// Both directions of an answered call's media, from `start_ms` for `count` packets
    /// each (the agent's packets 5 ms after the customer's). `seq_off` continues the
    /// sequences of an earlier `talk`; timestamps follow the sampling clock, which runs
    /// on through silences and holds.
    fn talk(&mut self, start_ms: i64, count: usize, seq_off: u16) {
        self.flow(Flow {
            src: CUST_MEDIA,
            dst: AGENT_MEDIA,
            ssrc: CUST_SSRC,
            start_ms,
            count,
            seq0: CUST_SEQ0 + seq_off,
            ts0: cust_ts(start_ms),
        });
        self.flow(Flow {
            src: AGENT_MEDIA,
            dst: CUST_MEDIA,
            ssrc: AGENT_SSRC,
            start_ms: start_ms + 5,
            count,
            seq0: AGENT_SEQ0 + seq_off,
            ts0: agent_ts(start_ms + 5),
        });
    }
}

const CUST_SSRC: u32 = 0xC057_0001;
const AGENT_SSRC: u32 = 0xA6E7_0001;
const CUST_SEQ0: u16 = 1000;
const AGENT_SEQ0: u16 = 30_000;

/// The customer side's RTP timestamp for a packet sent at `ms` (8 kHz clock).
fn cust_ts(ms: i64) -> u32 {
    (50_000 + 8 * (ms - 2020)) as u32
}

/// The agent's RTP timestamp for a packet sent at `ms`.
fn agent_ts(ms: i64) -> u32 {
    (9_000 + 8 * (ms - 2025)) as u32
}

/// An inbound call answered at 2 s: INVITE (the customer's SDP) at 0, 100, 180 at
/// 100 ms, 200 with the phone's SDP at 2000, ACK at 2010.
fn answered_inbound(story: &mut Story, d: &Dialog) {
    answered_inbound_at(story, d, 0);
}

/// The same, `t0` ms into the story.
fn answered_inbound_at(story: &mut Story, d: &Dialog, t0: i64) {
    story
        .sip(t0, PBX, PHONE, d.invite(&sdp(CUST_MEDIA, 1, "sendrecv")))
        .sip(t0 + 20, PHONE, PBX, d.invite_response(100, ""))
        .sip(t0 + 100, PHONE, PBX, d.invite_response(180, ""))
        .sip(
            t0 + 2000,
            PHONE,
            PBX,
            d.invite_response(200, &sdp(AGENT_MEDIA, 1, "sendrecv")),
        )
        .sip(t0 + 2010, PBX, PHONE, d.request("ACK", 1, true, ""));
}

/// The customer's side hangs up at `ms` (BYE from the switch, 200 from the phone).
fn customer_bye(story: &mut Story, d: &Dialog, cseq: u32, ms: i64) {
    story
        .sip(ms, PBX, PHONE, d.request("BYE", cseq, true, ""))
        .sip(ms + 10, PHONE, PBX, d.response(200, cseq, "BYE", true, ""));
}

/// The engine after a story, with everything it said.
struct Run {
    engine: Engine,
    ended: Vec<LegRecord>,
    events: Vec<Event>,
}

impl Run {
    fn new(engine: Engine) -> Run {
        Run {
            engine,
            ended: Vec::new(),
            events: Vec::new(),
        }
    }

    fn play(&mut self, story: &mut Story) -> &mut Self {
        story.packets.sort_by_key(|p| (p.0, p.1));
        for (us, _, src, dst, bytes) in story.packets.drain(..) {
            self.engine.handle_packet(&Captured {
                at: CaptureTime(EPOCH_US + us),
                source: SourceId(0),
                src,
                dst,
                transport: Transport::Udp,
                hint: PayloadHint::Unknown,
                payload: &bytes,
                correlation_id: None,
            });
            self.drain();
        }
        self
    }

    /// The capture clock reaches `ms` with no packet (live: the wall clock moved on).
    fn tick(&mut self, ms: i64) -> &mut Self {
        self.engine.handle_timeout(SourceId(0), time(ms));
        self.drain();
        self
    }

    fn finish(&mut self) -> &mut Self {
        self.engine.finish();
        self.drain();
        self
    }

    fn drain(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            if let Event::LegEnded { leg, .. } = &e {
                self.ended.push((**leg).clone());
            }
            self.events.push(e);
        }
    }

    fn only_leg(&self) -> &LegRecord {
        assert_eq!(self.ended.len(), 1, "legs: {:#?}", self.ended);
        &self.ended[0]
    }
}

fn rules_of(l: &LegRecord) -> Vec<RuleId> {
    let mut r: Vec<RuleId> = l.violations.iter().map(|v| v.rule).collect();
    r.sort();
    r
}

fn violation(l: &LegRecord, rule: RuleId) -> &callwatch::engine::rules::Violation {
    l.violations
        .iter()
        .find(|v| v.rule == rule)
        .unwrap_or_else(|| panic!("{} not raised: {:#?}", rule.as_str(), l.violations))
}

/// The streams of the leg that flow from `from`, in the order they were opened.
fn streams_from(l: &LegRecord, from: Party) -> Vec<&MediaRecord> {
    l.media.iter().filter(|m| m.from == from).collect()
}

fn stream<'a>(l: &'a LegRecord, src: &str, dst: &str, ssrc: u32) -> &'a MediaRecord {
    l.media
        .iter()
        .find(|m| m.src == addr(src) && m.dst == addr(dst) && m.ssrc == ssrc)
        .unwrap_or_else(|| {
            panic!(
                "no stream {src} -> {dst} ssrc {ssrc:#010x} in {:#?}",
                l.media
            )
        })
}

/// Packets, expected and lost of a stream, exactly.
fn counts(m: &MediaRecord) -> (u64, i64, i64) {
    (m.packets, m.expected, m.lost)
}

fn has_media_violation(l: &LegRecord) -> bool {
    l.violations
        .iter()
        .any(|v| v.rule == RuleId::PoorAudio || v.rule == RuleId::OneWayAudio)
}

// ---- clean call ------------------------------------------------------------------------

#[test]
fn clean_g711_call_both_ways_gives_two_streams_and_no_media_violation() {
    let d = inbound("m1");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 1500, 0); // 30 s each way
    customer_bye(&mut story, &d, 2, 33_000);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.end_reason, Some(EndReason::Bye));
    assert_eq!(l.media.len(), 2, "{:#?}", l.media);

    let c = stream(l, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC);
    let a = stream(l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC);
    assert_eq!(c.from, Party::Customer);
    assert_eq!(a.from, Party::Agent);
    for m in [c, a] {
        assert_eq!(m.codec.as_deref(), Some("PCMU"));
        assert_eq!(counts(m), (1500, 1500, 0));
        assert_eq!(m.loss_pct, 0.0);
        assert!(
            m.jitter_ms.abs() < 1e-9 && m.max_jitter_ms.abs() < 1e-9,
            "{m:?}"
        );
        assert!((m.max_delta_ms - 20.0).abs() < 1e-9, "{m:?}");
        let mos = m.mos.expect("a MOS for PCMU");
        assert!((mos - 4.4).abs() <= 0.1, "clean G.711 MOS {mos}");
    }
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
    assert_eq!(run.engine.stats().rtp_packets, 3000);
    assert_eq!(run.engine.stats().rtp_unmatched, 0);
}

// ---- poor_audio ------------------------------------------------------------------------

/// A 20 s call whose customer→agent stream loses 50 of its 1000 packets at random
/// (5.0 %); the agent→customer stream is clean.
fn lossy_call(f: impl FnOnce(&mut Config)) -> LegRecord {
    let d = inbound("m2");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    let lost = Rng(0x5eed_0001).pick(50, 1000);
    let sent = story.flow_without(
        Flow {
            src: CUST_MEDIA,
            dst: AGENT_MEDIA,
            ssrc: CUST_SSRC,
            start_ms: 2020,
            count: 1000,
            seq0: 7,
            ts0: 1234,
        },
        &lost,
    );
    assert_eq!(sent, 950);
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 2025,
        count: 1000,
        seq0: 65_000, // wraps through 65535 → 0 mid-call
        ts0: 4_294_960_000,
    });
    customer_bye(&mut story, &d, 2, 23_000);
    let mut run = Run::new(engine_with(f));
    run.play(&mut story);
    run.only_leg().clone()
}

#[test]
fn five_percent_random_loss_from_the_customer_is_poor_audio_with_the_figures() {
    let l = lossy_call(|_| {});
    let c = stream(&l, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC);
    assert_eq!(counts(c), (950, 1000, 50));
    assert!((c.loss_pct - 5.0).abs() < 1e-9, "{c:?}");
    // Evenly timed packets: no jitter; the largest gap is the longest run of losses.
    assert!(c.jitter_ms.abs() < 1e-9, "{c:?}");
    let mos = c.mos.expect("MOS");
    // G.107 with G.711 PLC at 5 % random loss: R 75.98 → MOS 3.86 (docs/media-quality.md).
    assert!((mos - 3.86).abs() < 0.02, "MOS {mos}");
    let a = stream(&l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC);
    assert_eq!(counts(a), (1000, 1000, 0), "the wrap is no loss");

    assert_eq!(rules_of(&l), vec![RuleId::PoorAudio]);
    let v = violation(&l, RuleId::PoorAudio);
    assert_eq!(
        v.detail, "customer audio: MOS 3.86, loss 5.0 %, jitter 0.0 ms",
        "the detail names the direction and the figures"
    );
    assert_eq!(
        Some(v.at),
        l.ended_at,
        "raised when the leg's figures are final"
    );
}

#[test]
fn the_audio_thresholds_come_from_the_configuration() {
    // 5.0 % is not more than a 5.0 % limit, and MOS 3.86 is above the default 3.6.
    let l = lossy_call(|c| c.rules.audio.max_loss_pct = 5.0);
    assert!(!has_media_violation(&l), "{:#?}", l.violations);
    let l = lossy_call(|c| c.rules.audio.max_loss_pct = 4.9);
    assert_eq!(rules_of(&l), vec![RuleId::PoorAudio]);
    // Loss tolerated, but the MOS floor raised above 3.86.
    let l = lossy_call(|c| {
        c.rules.audio.max_loss_pct = 10.0;
        c.rules.audio.min_mos = 3.9;
    });
    assert_eq!(rules_of(&l), vec![RuleId::PoorAudio]);
    assert!(
        violation(&l, RuleId::PoorAudio).detail.contains("MOS 3.86"),
        "{:?}",
        l.violations
    );
    let l = lossy_call(|c| {
        c.rules.audio.max_loss_pct = 10.0;
        c.rules.audio.min_mos = 3.8;
    });
    assert!(!has_media_violation(&l), "{:#?}", l.violations);
}

// ---- one_way_audio ---------------------------------------------------------------------

fn one_way_of(l: &LegRecord) -> Option<&callwatch::engine::rules::Violation> {
    l.violations.iter().find(|v| v.rule == RuleId::OneWayAudio)
}

#[test]
fn only_the_agents_audio_for_8s_after_answer_is_one_way_audio_5s_in() {
    let d = inbound("m3");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 2020,
        count: 400, // 8 s
        seq0: 1,
        ts0: 0,
    });
    customer_bye(&mut story, &d, 2, 10_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(
        rules_of(l),
        vec![RuleId::OneWayAudio],
        "{:#?}",
        l.violations
    );
    let v = one_way_of(l).unwrap();
    // The one-way period began with the first packet (2020 ms); the default min is 5000.
    let after = v.at.0 - time(2020).0;
    assert!(
        (5_000_000..=5_100_000).contains(&after),
        "raised {} ms after the one-way period began",
        after / 1000
    );
    assert!(v.detail.contains("agent"), "{}", v.detail);
    // Raised live, not at the end of the leg.
    let live = run.events.iter().any(|e| {
        matches!(e, Event::ViolationRaised { violation, .. }
            if violation.rule == RuleId::OneWayAudio && violation.at < time(10_500))
    });
    assert!(live);
    assert_eq!(
        streams_from(l, Party::Agent).len(),
        1,
        "the agent's stream is listed"
    );
    assert!(streams_from(l, Party::Customer).is_empty());
}

/// Both directions flow for 3 s after the answer; then the customer's RTP stops for
/// `silence_ms` while the agent's goes on; then both flow again for 2 s.
fn customer_silent_for(silence_ms: i64) -> (LegRecord, i64) {
    let d = inbound("m4");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    let before = 150; // 3 s
    let gap = (silence_ms / 20) as usize;
    let after = 100; // 2 s
    let total = before + gap + after;
    // The customer's stream: a muted microphone with silence suppression sends
    // nothing for the silence; the sequence goes on where it stopped, the timestamp
    // jumps with the sampling clock, the marker bit starts the new talk spurt.
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 2020,
        count: before,
        seq0: 1,
        ts0: cust_ts(2020),
    });
    let resume_ms = 2020 + (before + gap) as i64 * 20;
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: resume_ms,
        count: after,
        seq0: 1 + before as u16,
        ts0: cust_ts(resume_ms),
    });
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 2025,
        count: total,
        seq0: 1,
        ts0: 0,
    });
    let end = 2020 + total as i64 * 20 + 500;
    customer_bye(&mut story, &d, 2, end);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    // The customer's last packet before the silence.
    let last_customer_ms = 2020 + (before as i64 - 1) * 20;
    (run.only_leg().clone(), last_customer_ms)
}

#[test]
fn customer_audio_stopping_for_8s_mid_call_is_one_way_audio_5s_after_it_stopped() {
    let (l, stopped_ms) = customer_silent_for(8000);
    let v = one_way_of(&l).unwrap_or_else(|| panic!("no one_way_audio: {:#?}", l.violations));
    let after_ms = (v.at.0 - time(stopped_ms).0) / 1000;
    assert!(
        (5_000..=5_100).contains(&after_ms),
        "one_way_audio raised {after_ms} ms after the customer's audio stopped, \
         expected about 5000 (rules.one_way_audio.min_ms)"
    );
    assert!(v.detail.contains("agent"), "{}", v.detail);
}

#[test]
fn a_3s_one_way_stretch_is_no_violation() {
    let (l, _) = customer_silent_for(3000);
    assert!(one_way_of(&l).is_none(), "{:#?}", l.violations);
    assert!(!has_media_violation(&l), "{:#?}", l.violations);
}

#[test]
fn a_5_5s_one_way_stretch_is_one_way_audio() {
    // More than the 5000 ms minimum: SPEC §3 "for more than rules.one_way_audio.min_ms".
    let (l, _) = customer_silent_for(5500);
    assert!(
        one_way_of(&l).is_some(),
        "a 5.5 s one-way stretch was not flagged: {:#?}",
        l.violations
    );
}

#[test]
fn one_way_audio_during_an_agent_hold_is_no_violation() {
    let d = inbound("m5");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 100, 0); // both ways until 4 s
                              // The agent holds at 4.1 s: re-INVITE sendonly, the switch answers recvonly.
    story
        .sip(
            4100,
            PHONE,
            PBX,
            d.request("INVITE", 1, false, &sdp(AGENT_MEDIA, 2, "sendonly")),
        )
        .sip(
            4110,
            PBX,
            PHONE,
            d.response(200, 1, "INVITE", false, &sdp(CUST_MEDIA, 2, "recvonly")),
        )
        .sip(4120, PHONE, PBX, d.request("ACK", 1, false, ""));
    // On hold for 12 s: only the agent's phone sends (music on hold), the customer
    // side is silent as recvonly says.
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 4125,
        count: 600,
        seq0: AGENT_SEQ0 + 100,
        ts0: agent_ts(4125),
    });
    // Resume at 16.2 s, then both ways for 2 s.
    story
        .sip(
            16_200,
            PHONE,
            PBX,
            d.request("INVITE", 2, false, &sdp(AGENT_MEDIA, 3, "sendrecv")),
        )
        .sip(
            16_210,
            PBX,
            PHONE,
            d.response(200, 2, "INVITE", false, &sdp(CUST_MEDIA, 3, "sendrecv")),
        )
        .sip(16_220, PHONE, PBX, d.request("ACK", 2, false, ""));
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 16_240,
        count: 100,
        seq0: CUST_SEQ0 + 100,
        ts0: cust_ts(16_240),
    });
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 16_245,
        count: 100,
        seq0: AGENT_SEQ0 + 700,
        ts0: agent_ts(16_245),
    });
    customer_bye(&mut story, &d, 2, 19_000);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.holds.len(), 1, "{:#?}", l.holds);
    assert_eq!(l.holds[0].by, Party::Agent);
    assert!(one_way_of(l).is_none(), "{:#?}", l.violations);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn a_leg_whose_rtp_is_not_visible_raises_no_media_rule_and_never_times_out() {
    // HEP carries only SIP: the leg talks for 90 s with no RTP in sight.
    let d = inbound("m6");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    customer_bye(&mut story, &d, 2, 92_000);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert!(l.media.is_empty());
    assert_eq!(l.end_reason, Some(EndReason::Bye), "no media timeout");
    assert_eq!(l.ended_at, Some(time(92_000)));
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

// ---- stream identity and matching ------------------------------------------------------

#[test]
fn an_ssrc_change_mid_call_on_the_same_port_is_a_second_stream_of_the_leg() {
    let d = inbound("m7");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    // The switch re-anchors the customer's media: same addresses, new SSRC and sequence.
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: 0x11110001,
        start_ms: 2020,
        count: 250,
        seq0: 100,
        ts0: 0,
    });
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: 0x22220002,
        start_ms: 2020 + 250 * 20,
        count: 300,
        seq0: 40_000,
        ts0: 77_777,
    });
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 2025,
        count: 550,
        seq0: 1,
        ts0: 0,
    });
    customer_bye(&mut story, &d, 2, 13_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.media.len(), 3, "{:#?}", l.media);
    let from_customer = streams_from(l, Party::Customer);
    assert_eq!(from_customer.len(), 2);
    assert_eq!(from_customer[0].ssrc, 0x11110001);
    assert_eq!(from_customer[1].ssrc, 0x22220002);
    assert_eq!(counts(from_customer[0]), (250, 250, 0));
    assert_eq!(
        counts(from_customer[1]),
        (300, 300, 0),
        "not merged, no jump counted"
    );
    assert_eq!(
        counts(stream(l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC)),
        (550, 550, 0)
    );
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn rtp_between_addresses_no_sdp_announced_joins_no_leg_and_is_counted_unmatched() {
    let d = inbound("m8");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 250, 0);
    // Another conversation on the mirror port (a trunk's media, never signalled here).
    story.flow(Flow {
        src: "10.9.9.9:40000",
        dst: "10.9.9.8:42000",
        ssrc: 0xDEAD0001,
        start_ms: 2500,
        count: 40,
        seq0: 1,
        ts0: 0,
    });
    // And RTP sent to a port of the agent's phone that no SDP named.
    story.flow(Flow {
        src: "10.9.9.9:40002",
        dst: "10.0.1.1:31000",
        ssrc: 0xDEAD0002,
        start_ms: 3000,
        count: 10,
        seq0: 1,
        ts0: 0,
    });
    customer_bye(&mut story, &d, 2, 8000);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.media.len(), 2, "{:#?}", l.media);
    assert!(l.media.iter().all(|m| m.ssrc >> 16 != 0xDEAD));
    assert_eq!(run.engine.stats().rtp_packets, 550);
    assert_eq!(run.engine.stats().rtp_unmatched, 50);
}

#[test]
fn the_next_call_on_the_same_ports_with_the_same_ssrcs_gets_its_own_streams() {
    // Phones with a fixed RTP port and senders with a fixed SSRC (SIPp's
    // play_pcap_audio, some gateways): the second call, 5 s after the first one
    // ended, repeats the first call's stream keys while the first leg still lingers.
    let first = inbound("m16a");
    let second = inbound("m16b");
    let mut story = Story::default();
    answered_inbound(&mut story, &first);
    story.talk(2020, 250, 0);
    customer_bye(&mut story, &first, 2, 7_100);
    answered_inbound_at(&mut story, &second, 12_000);
    story.talk(14_020, 300, 0);
    customer_bye(&mut story, &second, 2, 20_100);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    assert_eq!(run.ended.len(), 2, "{:#?}", run.ended);
    let l2 = run
        .ended
        .iter()
        .find(|l| l.call_id == b"m16b")
        .expect("the second call's leg");
    assert_eq!(
        l2.media.len(),
        2,
        "the second call's RTP went to the first (ended) leg's streams and was lost: {:#?}",
        l2.media
    );
    assert_eq!(
        counts(stream(l2, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC)),
        (300, 300, 0)
    );
    assert_eq!(
        counts(stream(l2, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC)),
        (300, 300, 0)
    );
    assert_eq!(run.engine.stats().rtp_unmatched, 0);
    let l1 = run.ended.iter().find(|l| l.call_id == b"m16a").unwrap();
    assert_eq!(
        counts(stream(l1, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC)),
        (250, 250, 0)
    );
}

#[test]
fn one_way_audio_during_a_switch_side_hold_is_no_violation() {
    let d = inbound("m17");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 100, 0);
    // The switch holds the agent (the customer pressed hold on an IVR menu, a
    // supervisor barge...): a=sendonly from the switch, music on hold towards the
    // phone, the phone silent as its recvonly answer says.
    story
        .sip(
            4_100,
            PBX,
            PHONE,
            d.request("INVITE", 2, true, &sdp(CUST_MEDIA, 2, "sendonly")),
        )
        .sip(
            4_110,
            PHONE,
            PBX,
            d.response(200, 2, "INVITE", true, &sdp(AGENT_MEDIA, 2, "recvonly")),
        )
        .sip(4_120, PBX, PHONE, d.request("ACK", 2, true, ""));
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 4_140,
        count: 500,
        seq0: CUST_SEQ0 + 100,
        ts0: cust_ts(4_140),
    });
    customer_bye(&mut story, &d, 3, 14_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.holds.len(), 1, "{:#?}", l.holds);
    assert_eq!(l.holds[0].by, Party::Customer);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

// ---- media timeout ----------------------------------------------------------------------

fn short_media_timeout(c: &mut Config) {
    c.engine.media_timeout_ms = 5000;
}

#[test]
fn rtp_stopping_without_bye_ends_the_leg_at_last_rtp_plus_the_media_timeout() {
    let d = inbound("m9");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 500, 0); // 10 s; the last packet (agent's) at 2025 + 499·20 = 12005
    let last_rtp = 2025 + 499 * 20;
    let mut run = Run::new(engine_with(short_media_timeout));
    run.play(&mut story);
    run.tick(last_rtp + 4999);
    assert!(
        run.ended.is_empty(),
        "ended before the timeout: {:#?}",
        run.ended
    );
    run.tick(last_rtp + 5000);
    let l = run.only_leg().clone();
    assert_eq!(l.end_reason, Some(EndReason::Timeout));
    assert_eq!(l.ended_at, Some(time(last_rtp + 5000)));
    assert_eq!(l.hangup_by, HangupBy::None);
    assert_eq!(l.survey, Survey::NotRequired);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
    assert_eq!(l.media.len(), 2);

    // The agent's BYE, much later, changes nothing.
    let mut late = Story::default();
    late.sip(last_rtp + 9000, PHONE, PBX, d.request("BYE", 2, false, ""));
    run.play(&mut late).finish();
    assert_eq!(run.ended.len(), 1, "{:#?}", run.ended);
    assert!(!run.events.iter().any(|e| matches!(e,
        Event::ViolationRaised { violation, .. }
            if violation.rule == RuleId::AgentHangupFirst
                || violation.rule == RuleId::SurveyMissing)));
}

#[test]
fn the_media_timeout_does_not_run_during_a_hold() {
    let d = inbound("m10");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 100, 0); // until about 4 s
                              // The agent holds with a=inactive at 4.1 s: no RTP either way for 20 s.
    story
        .sip(
            4100,
            PHONE,
            PBX,
            d.request("INVITE", 1, false, &sdp(AGENT_MEDIA, 2, "inactive")),
        )
        .sip(
            4110,
            PBX,
            PHONE,
            d.response(200, 1, "INVITE", false, &sdp(CUST_MEDIA, 2, "inactive")),
        )
        .sip(4120, PHONE, PBX, d.request("ACK", 1, false, ""));
    story
        .sip(
            24_100,
            PHONE,
            PBX,
            d.request("INVITE", 2, false, &sdp(AGENT_MEDIA, 3, "sendrecv")),
        )
        .sip(
            24_110,
            PBX,
            PHONE,
            d.response(200, 2, "INVITE", false, &sdp(CUST_MEDIA, 3, "sendrecv")),
        )
        .sip(24_120, PHONE, PBX, d.request("ACK", 2, false, ""));
    story.talk(24_140, 100, 100);
    customer_bye(&mut story, &d, 2, 27_000);
    let mut run = Run::new(engine_with(short_media_timeout));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.end_reason, Some(EndReason::Bye), "{l:#?}");
    assert_eq!(l.hangup_by, HangupBy::Customer);
    assert_eq!(l.hold_ms, 20_000);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn after_a_hold_the_media_timeout_counts_from_the_resume() {
    // The hold lasted longer than the timeout; after the resume no RTP comes back. The
    // timeout counts time without RTP off hold: it ends the leg 5 s after the resume.
    let d = inbound("m11");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 100, 0); // the last packet at 2025 + 99·20 = 4005
    story
        .sip(
            4100,
            PHONE,
            PBX,
            d.request("INVITE", 1, false, &sdp(AGENT_MEDIA, 2, "inactive")),
        )
        .sip(
            4110,
            PBX,
            PHONE,
            d.response(200, 1, "INVITE", false, &sdp(CUST_MEDIA, 2, "inactive")),
        )
        .sip(4120, PHONE, PBX, d.request("ACK", 1, false, ""));
    story
        .sip(
            24_100,
            PHONE,
            PBX,
            d.request("INVITE", 2, false, &sdp(AGENT_MEDIA, 3, "sendrecv")),
        )
        .sip(
            24_110,
            PBX,
            PHONE,
            d.response(200, 2, "INVITE", false, &sdp(CUST_MEDIA, 3, "sendrecv")),
        )
        .sip(24_120, PHONE, PBX, d.request("ACK", 2, false, ""));
    let mut run = Run::new(engine_with(short_media_timeout));
    run.play(&mut story);
    run.tick(24_100 + 4_900);
    assert!(
        run.ended.is_empty(),
        "the leg timed out {:?} after the resume at 24.1 s, before the 5 s media timeout: {:#?}",
        run.ended
            .first()
            .and_then(|l| l.ended_at)
            .map(|t| (t.0 - time(24_100).0) / 1000),
        run.ended
    );
    run.tick(24_120 + 5_000);
    let l = run.only_leg();
    assert_eq!(l.end_reason, Some(EndReason::Timeout));
    let end = l.ended_at.expect("ended_at");
    assert!(
        end >= time(24_100 + 4_900) && end <= time(24_120 + 5_000),
        "ended at {} ms",
        (end.0 - EPOCH_US) / 1000
    );
}

// ---- early media and re-INVITEs ----------------------------------------------------------

#[test]
fn early_media_after_a_183_with_sdp_counts_in_the_legs_streams() {
    // The agent calls out; the network plays ringback (early media) for 6 s before the
    // customer answers. One-way flow before the answer is not one-way audio.
    let d = outbound("m12");
    let mut story = Story::default();
    story
        .sip(0, PHONE, PBX, d.invite(&sdp(AGENT_MEDIA, 1, "sendrecv")))
        .sip(20, PBX, PHONE, d.invite_response(100, ""))
        .sip(
            500,
            PBX,
            PHONE,
            d.invite_response(183, &sdp(CUST_MEDIA, 1, "sendrecv")),
        );
    // The customer side's stream runs on through the answer (one SSRC, one sequence):
    // 300 ringback packets then 250 of speech.
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 600,
        count: 550,
        seq0: 10,
        ts0: 0,
    });
    story
        .sip(
            6_590,
            PBX,
            PHONE,
            d.invite_response(200, &sdp(CUST_MEDIA, 1, "sendrecv")),
        )
        .sip(6_600, PHONE, PBX, d.request("ACK", 1, true, ""));
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 6_605,
        count: 250,
        seq0: 1,
        ts0: 0,
    });
    story
        .sip(11_700, PHONE, PBX, d.request("BYE", 2, true, ""))
        .sip(11_710, PBX, PHONE, d.response(200, 2, "BYE", true, ""));
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.answered_at, Some(time(6_590)));
    let c = stream(l, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC);
    assert_eq!(c.from, Party::Customer);
    assert_eq!(counts(c), (550, 550, 0), "early packets are counted");
    assert_eq!(
        counts(stream(l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC)),
        (250, 250, 0)
    );
    assert!(one_way_of(l).is_none(), "{:#?}", l.violations);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn early_media_from_the_agents_phone_before_the_200_is_in_its_stream() {
    let d = inbound("m13");
    let mut story = Story::default();
    story
        .sip(0, PBX, PHONE, d.invite(&sdp(CUST_MEDIA, 1, "sendrecv")))
        .sip(
            100,
            PHONE,
            PBX,
            d.invite_response(183, &sdp(AGENT_MEDIA, 1, "sendrecv")),
        );
    // The phone plays its greeting to the caller before the agent picks up.
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 120,
        count: 300,
        seq0: 1,
        ts0: 0,
    });
    story
        .sip(
            6_100,
            PHONE,
            PBX,
            d.invite_response(200, &sdp(AGENT_MEDIA, 1, "sendrecv")),
        )
        .sip(6_110, PBX, PHONE, d.request("ACK", 1, true, ""));
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 6_115,
        count: 100,
        seq0: 1,
        ts0: 0,
    });
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 120 + 300 * 20,
        count: 100,
        seq0: 301,
        ts0: 300 * SAMPLES,
    });
    customer_bye(&mut story, &d, 2, 8_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.ring_ms, Some(6_000), "the 183 starts the ring");
    let a = stream(l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC);
    assert_eq!(a.from, Party::Agent);
    assert_eq!(counts(a), (400, 400, 0));
    assert_eq!(
        counts(stream(l, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC)),
        (100, 100, 0)
    );
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn a_switch_reinvite_moving_the_media_to_a_new_port_gives_new_streams_of_the_same_leg() {
    const NEW_CUST_MEDIA: &str = "10.0.2.1:20002";
    let d = inbound("m14");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 150, 0); // until about 5 s
    story
        .sip(
            5_100,
            PBX,
            PHONE,
            d.request("INVITE", 2, true, &sdp(NEW_CUST_MEDIA, 2, "sendrecv")),
        )
        .sip(
            5_110,
            PHONE,
            PBX,
            d.response(200, 2, "INVITE", true, &sdp(AGENT_MEDIA, 2, "sendrecv")),
        )
        .sip(5_120, PBX, PHONE, d.request("ACK", 2, true, ""));
    story.flow(Flow {
        src: NEW_CUST_MEDIA,
        dst: AGENT_MEDIA,
        ssrc: 0xC0570002,
        start_ms: 5_140,
        count: 200,
        seq0: 5000,
        ts0: 0,
    });
    // The phone keeps its SSRC and sequence, now towards the new port.
    story.flow(Flow {
        src: AGENT_MEDIA,
        dst: NEW_CUST_MEDIA,
        ssrc: AGENT_SSRC,
        start_ms: 5_145,
        count: 200,
        seq0: AGENT_SEQ0 + 150,
        ts0: agent_ts(5_145),
    });
    customer_bye(&mut story, &d, 3, 9_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.media.len(), 4, "{:#?}", l.media);
    let c2 = stream(l, NEW_CUST_MEDIA, AGENT_MEDIA, 0xC0570002);
    let a2 = stream(l, AGENT_MEDIA, NEW_CUST_MEDIA, AGENT_SSRC);
    assert_eq!((c2.from, counts(c2)), (Party::Customer, (200, 200, 0)));
    assert_eq!((a2.from, counts(a2)), (Party::Agent, (200, 200, 0)));
    assert_eq!(
        counts(stream(l, CUST_MEDIA, AGENT_MEDIA, CUST_SSRC)),
        (150, 150, 0)
    );
    assert_eq!(
        counts(stream(l, AGENT_MEDIA, CUST_MEDIA, AGENT_SSRC)),
        (150, 150, 0)
    );
    assert_eq!(run.engine.stats().rtp_unmatched, 0);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}

#[test]
fn a_phone_reinvite_moving_its_media_to_a_new_port_gives_new_streams_of_the_same_leg() {
    const NEW_AGENT_MEDIA: &str = "10.0.1.1:30002";
    let d = inbound("m15");
    let mut story = Story::default();
    answered_inbound(&mut story, &d);
    story.talk(2020, 150, 0);
    story
        .sip(
            5_100,
            PHONE,
            PBX,
            d.request("INVITE", 1, false, &sdp(NEW_AGENT_MEDIA, 2, "sendrecv")),
        )
        .sip(
            5_110,
            PBX,
            PHONE,
            d.response(200, 1, "INVITE", false, &sdp(CUST_MEDIA, 2, "sendrecv")),
        )
        .sip(5_120, PHONE, PBX, d.request("ACK", 1, false, ""));
    story.flow(Flow {
        src: CUST_MEDIA,
        dst: NEW_AGENT_MEDIA,
        ssrc: CUST_SSRC,
        start_ms: 5_140,
        count: 200,
        seq0: CUST_SEQ0 + 150,
        ts0: cust_ts(5_140),
    });
    story.flow(Flow {
        src: NEW_AGENT_MEDIA,
        dst: CUST_MEDIA,
        ssrc: 0xA6E70002,
        start_ms: 5_145,
        count: 200,
        seq0: 1,
        ts0: 0,
    });
    customer_bye(&mut story, &d, 2, 9_500);
    let mut run = Run::new(engine_with(|_| {}));
    run.play(&mut story);
    let l = run.only_leg();
    assert_eq!(l.media.len(), 4, "{:#?}", l.media);
    let c2 = stream(l, CUST_MEDIA, NEW_AGENT_MEDIA, CUST_SSRC);
    let a2 = stream(l, NEW_AGENT_MEDIA, CUST_MEDIA, 0xA6E70002);
    assert_eq!((c2.from, counts(c2)), (Party::Customer, (200, 200, 0)));
    assert_eq!((a2.from, counts(a2)), (Party::Agent, (200, 200, 0)));
    assert_eq!(run.engine.stats().rtp_unmatched, 0);
    assert!(l.violations.is_empty(), "{:#?}", l.violations);
}
