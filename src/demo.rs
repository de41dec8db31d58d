//! `callwatch demo`: a simulated call centre feeding the daemon through its real ingest
//! path (HEP v3 over UDP to the daemon's own collector on 127.0.0.1), so that a newcomer
//! sees the wallboard live within seconds.
//!
//! The floor: four teams of nine agents ([`ROSTER_CSV`], names in Chinese, extensions
//! 8001-8036). Customers arrive at random (a Poisson process, busier for the first
//! seconds so the board fills up), wait in the switch's queue (not visible, as with a
//! real ACD) and are offered to the registered agent idle the longest. Each call is one
//! of the centre's everyday stories, played with the SIP a capture agent would report
//! ([`crate::loadgen::CallSpec`]): answered in a few seconds, now and then close to or
//! past the 10 s of Art. 60, abandoned while ringing, put on hold (rarely too long,
//! Art. 67), ended by the customer, by a survey transfer (Art. 76) or by the agent
//! without one (Art. 74, 76). Phones REGISTER and refresh; one phone unregisters and
//! comes back later, one lets its registration expire, one seat never registers.
//!
//! Bounded: at most [`MAX_ARRIVALS_PER_SEC`] new customers a second, [`MAX_QUEUE`]
//! waiting, one call per agent; it runs until `shutdown` and only sends to loopback.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::config::Validated;
use crate::engine::agents::Roster;
use crate::loadgen::{check_target, hep_frame, CallSpec, Rng, Step, Story};

/// The demo floor: `extension,agent_id,name,team` as a centre's roster CSV.
pub const ROSTER_CSV: &str = "extension,agent_id,name,team
8001,A1001,李娜,信用卡一组
8002,A1002,王伟,信用卡一组
8003,A1003,张敏,信用卡一组
8004,A1004,刘洋,信用卡一组
8005,A1005,陈静,信用卡一组
8006,A1006,杨帆,信用卡一组
8007,A1007,赵磊,信用卡一组
8008,A1008,黄丽,信用卡一组
8009,A1009,周杰,信用卡一组
8010,A2001,吴芳,信用卡二组
8011,A2002,徐强,信用卡二组
8012,A2003,孙悦,信用卡二组
8013,A2004,马超,信用卡二组
8014,A2005,朱琳,信用卡二组
8015,A2006,胡军,信用卡二组
8016,A2007,郭婷,信用卡二组
8017,A2008,何平,信用卡二组
8018,A2009,高翔,信用卡二组
8019,A3001,林雪,个人业务组
8020,A3002,罗刚,个人业务组
8021,A3003,梁颖,个人业务组
8022,A3004,宋涛,个人业务组
8023,A3005,郑红,个人业务组
8024,A3006,谢明,个人业务组
8025,A3007,韩冰,个人业务组
8026,A3008,唐亮,个人业务组
8027,A3009,冯佳,个人业务组
8028,A4001,于洁,对公业务组
8029,A4002,董浩,对公业务组
8030,A4003,萧然,对公业务组
8031,A4004,程琳,对公业务组
8032,A4005,曹阳,对公业务组
8033,A4006,袁媛,对公业务组
8034,A4007,邓凯,对公业务组
8035,A4008,许诺,对公业务组
8036,A4009,傅晓,对公业务组
";

/// Customers arriving per second, at most.
pub const MAX_ARRIVALS_PER_SEC: f64 = 2.0;
/// Customers waiting in the switch's queue, at most (more give up at once).
pub const MAX_QUEUE: usize = 50;
/// A queued customer gives up after this long.
const QUEUE_PATIENCE: Duration = Duration::from_secs(40);
/// A customer waiting longer than this goes to any team's agent.
const OVERFLOW: Duration = Duration::from_secs(8);
/// The phone that unregisters (Expires: 0) and comes back.
const DROPS_OFF: &str = "8012";
/// The phone that stops refreshing and expires.
const EXPIRES: &str = "8027";
/// Seconds of the registration that is let run out.
const EXPIRING_S: u32 = 90;
/// The seat with no phone registered since start (shown as unknown).
const NEVER_REGISTERS: &str = "8036";
/// The switch (its address only appears inside the HEP payloads).
const SWITCH: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 0, 10)), 5060);

/// The demo's roster.
pub fn roster() -> Roster {
    // The embedded CSV is well-formed (a unit test parses it).
    Roster::from_csv_bytes(ROSTER_CSV.as_bytes()).unwrap_or_default()
}

/// The configuration for the demo: the embedded roster unless one is configured.
pub fn prepare(mut cfg: Validated) -> Validated {
    if cfg.roster.is_empty() {
        cfg.roster = roster();
    }
    cfg
}

/// How the demo plays.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// The daemon's HEP collector (loopback only).
    pub target: SocketAddr,
    pub auth_key: Option<Vec<u8>>,
    pub capture_id: u32,
    pub seed: u64,
    /// Occupancy the arrival rate aims at (0.1..=1.0).
    pub occupancy: f64,
    /// Scales every duration (1.0: real ring, talk and hold times).
    pub time_scale: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            target: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9060),
            auth_key: None,
            capture_id: 1,
            seed: 1,
            occupancy: 0.75,
            time_scale: 1.0,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    pub calls: u64,
    pub abandoned_in_queue: u64,
    pub packets: u64,
    pub send_errors: u64,
}

/// How a call ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The customer gave up while it rang (CANCEL).
    Abandoned,
    /// The customer hung up.
    Customer,
    /// The agent transferred the customer to the survey (Art. 76), then left.
    Survey,
    /// The agent hung up without the survey (Art. 74, 76).
    AgentHangup,
}

/// One simulated call: who, how long, how it ends.
#[derive(Clone, Debug)]
pub struct DemoCall {
    pub spec: CallSpec,
    pub ending: Ending,
    /// (after the answer, length) of an agent hold.
    pub hold: Option<(u64, u64)>,
}

/// The phone of an extension (an address inside the HEP payloads only).
fn phone_of(ext: &str) -> SocketAddr {
    let n = ext.parse::<u32>().unwrap_or(0) % 200;
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 1, 9, 10 + n as u8)), 5060)
}

impl DemoCall {
    /// Draws a call for agent `ext`.
    pub fn draw(rng: &mut Rng, n: u64, run: u64, ext: &str, scale: f64) -> DemoCall {
        let s = |ms: u64| ((ms as f64) * scale).round() as u64;
        let roll = rng.range(0, 99);
        let (ring_ms, abandoned) = match roll {
            0..=3 => (rng.range(4_000, 20_000), true),
            4..=13 => (rng.range(10_500, 15_000), false),
            14..=21 => (rng.range(7_000, 9_900), false),
            _ => (rng.range(1_500, 6_500), false),
        };
        let ending = if abandoned {
            Ending::Abandoned
        } else {
            match rng.range(0, 99) {
                0..=61 => Ending::Survey,
                62..=83 => Ending::Customer,
                _ => Ending::AgentHangup,
            }
        };
        let mut talk_ms = rng.range(25_000, 120_000);
        let hold = match (ending, rng.range(0, 99)) {
            (Ending::Abandoned, _) => None,
            (_, 0..=1) => Some(rng.range(61_000, 72_000)),
            (_, 2..=17) => Some(rng.range(5_000, 30_000)),
            _ => None,
        }
        .map(|len| {
            let start = talk_ms * 3 / 10;
            talk_ms = talk_ms.max(start + len + 8_000);
            (s(start), s(len))
        });
        let customer = format!(
            "1{}{:09}",
            [3, 5, 7, 8, 9][rng.range(0, 4) as usize],
            rng.range(0, 999_999_999)
        );
        DemoCall {
            spec: CallSpec {
                call_id: format!("demo{run:x}-{n}"),
                customer,
                agent: ext.to_string(),
                switch: SWITCH,
                phone: phone_of(ext),
                trying_ms: s(rng.range(60, 250)),
                ring_ms: s(ring_ms),
                talk_ms: s(talk_ms),
            },
            ending,
            hold,
        }
    }

    fn hold_sdp(&self, direction: &str) -> String {
        let ip = self.spec.phone.ip();
        format!(
            "v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 31000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
        )
    }

    /// Every message of the call, in time order (ms after the INVITE).
    pub fn steps(&self) -> Vec<Step> {
        let story = match self.ending {
            Ending::Abandoned => Story::Cancelled,
            Ending::Customer => Story::Answered,
            Ending::Survey => Story::SurveyTransfer,
            Ending::AgentHangup => Story::AgentHangup,
        };
        let mut steps = self.spec.steps(story);
        if let Some((start, len)) = self.hold {
            let answer = self.spec.trying_ms.max(20) + self.spec.ring_ms;
            let contact = format!("Contact: <sip:{}@{}>\r\n", self.spec.agent, self.spec.phone);
            let sp = &self.spec;
            let mut reinvite = |at: u64, cseq: u32, dir: &str| {
                steps.push(Step {
                    after_ms: at,
                    from_phone: true,
                    sip: sp.request(
                        "INVITE",
                        cseq,
                        true,
                        &contact,
                        &self.hold_sdp(dir),
                        "application/sdp",
                    ),
                });
                steps.push(Step {
                    after_ms: at + 30,
                    from_phone: false,
                    sip: sp.response(200, "INVITE", cseq, true),
                });
                steps.push(Step {
                    after_ms: at + 45,
                    from_phone: true,
                    sip: sp.request("ACK", cseq, true, "", "", ""),
                });
            };
            reinvite(answer + start, 10, "sendonly");
            reinvite(answer + start + len, 11, "sendrecv");
            steps.sort_by_key(|s| s.after_ms);
        }
        steps
    }
}

/// A REGISTER of `ext`'s phone and the registrar's 200, asking for `expires` seconds.
pub fn register(ext: &str, cseq: u32, expires: u32) -> (Vec<u8>, Vec<u8>) {
    let phone = phone_of(ext);
    let via = format!("Via: SIP/2.0/UDP {phone};branch=z9hG4bK-reg-{ext}-{cseq}\r\n");
    let common = format!(
        "From: <sip:{ext}@{sw}>;tag=r-{ext}\r\nCall-ID: reg-{ext}@{ip}\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{ext}@{phone}>;expires={expires}\r\n",
        sw = SWITCH.ip(),
        ip = phone.ip(),
    );
    let req = format!(
        "REGISTER sip:{sw} SIP/2.0\r\n{via}Max-Forwards: 70\r\nTo: <sip:{ext}@{sw}>\r\n{common}Expires: {expires}\r\nUser-Agent: callwatch-demo\r\nContent-Length: 0\r\n\r\n",
        sw = SWITCH.ip(),
    );
    let resp = format!(
        "SIP/2.0 200 OK\r\n{via}To: <sip:{ext}@{sw}>;tag=reg-ok\r\n{common}Content-Length: 0\r\n\r\n",
        sw = SWITCH.ip(),
    );
    (req.into_bytes(), resp.into_bytes())
}

enum Action {
    Send(Arc<CallSpec>, Step),
    AgentFree(usize),
    /// (agent, expires, whether a refresh: skipped when the phone went off meanwhile)
    Register(usize, u32, bool),
    /// The phone's registration ran out: no more calls for it.
    Expired(usize),
}

struct Agent {
    ext: String,
    team: String,
    online: bool,
    busy: bool,
    idle_since: Instant,
    reg_cseq: u32,
}

struct Sim {
    rng: Rng,
    run: u64,
    opts: DemoOptions,
    start: Instant,
    agents: Vec<Agent>,
    /// Waiting customers: (arrived, team asked for).
    queue: VecDeque<(Instant, String)>,
    teams: Vec<String>,
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    actions: HashMap<u64, Action>,
    next_id: u64,
    report: DemoReport,
}

impl Sim {
    fn at(&mut self, when: Instant, a: Action) {
        self.next_id += 1;
        self.heap.push(Reverse((when, self.next_id)));
        self.actions.insert(self.next_id, a);
    }

    fn scaled(&self, ms: u64) -> Duration {
        Duration::from_millis(((ms as f64) * self.opts.time_scale).round() as u64)
    }

    /// Customers per second now: a busy start so the board fills up, then what keeps
    /// about `occupancy` of the registered agents on calls.
    fn arrival_rate(&self, now: Instant) -> f64 {
        let online = self.agents.iter().filter(|a| a.online).count() as f64;
        // Mean handling: ring ~5 s + talk ~75 s + wrap-up ~8 s.
        let handle_s = 88.0 * self.opts.time_scale;
        let steady = self.opts.occupancy.clamp(0.1, 1.0) * online / handle_s.max(0.1);
        let rate = if now.duration_since(self.start) < self.scaled(20_000) {
            steady * 4.0
        } else {
            steady
        };
        rate.clamp(0.05, MAX_ARRIVALS_PER_SEC)
    }

    fn next_gap(&mut self, now: Instant) -> Duration {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let secs = -(1.0 - u).max(1e-9).ln() / self.arrival_rate(now);
        Duration::from_secs_f64(secs.min(60.0))
    }

    fn start_call(&mut self, i: usize, now: Instant) {
        let n = self.report.calls;
        self.report.calls += 1;
        let call = DemoCall::draw(
            &mut self.rng,
            n,
            self.run,
            &self.agents[i].ext,
            self.opts.time_scale,
        );
        let steps = call.steps();
        let spec = Arc::new(call.spec);
        let mut last = 0;
        for st in steps {
            last = last.max(st.after_ms);
            self.at(
                now + Duration::from_millis(st.after_ms),
                Action::Send(spec.clone(), st),
            );
        }
        let wrap = self.rng.range(3_000, 10_000);
        let free = now + Duration::from_millis(last) + self.scaled(wrap);
        self.agents[i].busy = true;
        self.at(free, Action::AgentFree(i));
    }

    /// Offers each waiting customer, in arrival order, to the agent of its team idle
    /// the longest; after [`OVERFLOW`] in the queue, to any team.
    fn dispatch(&mut self, now: Instant) {
        let before = self.queue.len();
        self.queue
            .retain(|(t, _)| now.duration_since(*t) <= QUEUE_PATIENCE);
        self.report.abandoned_in_queue += (before - self.queue.len()) as u64;
        let mut waiting = std::mem::take(&mut self.queue);
        waiting.retain(|(t, team)| {
            let any = now.duration_since(*t) > OVERFLOW;
            let pick = self
                .agents
                .iter()
                .enumerate()
                .filter(|(_, a)| a.online && !a.busy && (any || a.team == *team))
                .min_by_key(|(_, a)| a.idle_since)
                .map(|(i, _)| i);
            match pick {
                Some(i) => {
                    self.start_call(i, now);
                    false
                }
                None => true,
            }
        });
        self.queue = waiting;
    }

    /// The REGISTER plan: every phone at start (but one), refreshes, one phone that
    /// unregisters and comes back, one whose registration runs out.
    fn plan_registrations(&mut self) {
        let start = self.start;
        for i in 0..self.agents.len() {
            let ext = self.agents[i].ext.clone();
            if ext == NEVER_REGISTERS {
                continue;
            }
            let first = start + Duration::from_millis(50 + 40 * i as u64);
            if ext == EXPIRES {
                // Registered for 90 s, not refreshed: offline by expiry, back later.
                self.at(first, Action::Register(i, EXPIRING_S, false));
                self.at(
                    first + Duration::from_secs(EXPIRING_S.into()),
                    Action::Expired(i),
                );
                self.at(
                    start + self.scaled(420_000),
                    Action::Register(i, 120, false),
                );
                continue;
            }
            self.at(first, Action::Register(i, 120, false));
            if ext == DROPS_OFF {
                self.at(start + self.scaled(30_000), Action::Register(i, 0, false));
                self.at(
                    start + self.scaled(240_000),
                    Action::Register(i, 120, false),
                );
            }
        }
    }

    async fn step(&mut self, sock: &UdpSocket, now: Instant) {
        while self.heap.peek().is_some_and(|Reverse((t, _))| *t <= now) {
            let Some(Reverse((_, id))) = self.heap.pop() else {
                break;
            };
            let Some(action) = self.actions.remove(&id) else {
                continue;
            };
            match action {
                Action::Send(spec, st) => {
                    let frame = hep_frame(
                        &spec,
                        &st,
                        self.opts.capture_id,
                        self.opts.auth_key.as_deref(),
                    );
                    self.report.packets += 1;
                    if sock.send(&frame).await.is_err() {
                        self.report.send_errors += 1;
                    }
                }
                Action::AgentFree(i) => {
                    self.agents[i].busy = false;
                    self.agents[i].idle_since = now;
                }
                Action::Register(i, _, true) if !self.agents[i].online => {}
                Action::Register(i, expires, _) => {
                    let a = &mut self.agents[i];
                    a.reg_cseq += 1;
                    a.online = expires > 0;
                    if a.online {
                        a.idle_since = now;
                    }
                    let (req, resp) = register(&a.ext, a.reg_cseq, expires);
                    let spec = Arc::new(CallSpec {
                        call_id: String::new(),
                        customer: String::new(),
                        agent: a.ext.clone(),
                        switch: SWITCH,
                        phone: phone_of(&a.ext),
                        trying_ms: 0,
                        ring_ms: 0,
                        talk_ms: 0,
                    });
                    let ext = a.ext.clone();
                    let mk = |sip, from_phone| Step {
                        after_ms: 0,
                        from_phone,
                        sip,
                    };
                    self.at(now, Action::Send(spec.clone(), mk(req, true)));
                    self.at(
                        now + Duration::from_millis(20),
                        Action::Send(spec, mk(resp, false)),
                    );
                    // Refresh well before expiry, except the phone meant to expire.
                    if expires > 0 && !(ext == EXPIRES && expires == EXPIRING_S) {
                        let refresh = self.rng.range(50_000, 70_000);
                        self.at(
                            now + Duration::from_millis(refresh),
                            Action::Register(i, 120, true),
                        );
                    }
                }
                Action::Expired(i) => self.agents[i].online = false,
            }
        }
    }
}

/// Plays the call centre into `opts.target` until `shutdown` resolves.
pub async fn run(
    opts: &DemoOptions,
    agents: &[(String, String)],
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<DemoReport> {
    check_target(opts.target)?;
    if !(opts.time_scale > 0.0 && opts.time_scale <= 10.0) {
        anyhow::bail!("demo time scale must be in (0, 10]");
    }
    let bind: SocketAddr = if opts.target.is_ipv4() {
        "127.0.0.1:0".parse()?
    } else {
        "[::1]:0".parse()?
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(opts.target)
        .await
        .with_context(|| format!("demo feed to {}", opts.target))?;
    let mut rng = Rng::new(opts.seed);
    let run = rng.next_u64() & 0xffff_ffff;
    let start = Instant::now();
    let mut sim = Sim {
        rng,
        run,
        opts: opts.clone(),
        start,
        teams: {
            let mut t: Vec<String> = agents.iter().map(|(_, t)| t.clone()).collect();
            t.sort();
            t.dedup();
            t
        },
        agents: agents
            .iter()
            .map(|(e, team)| Agent {
                ext: e.clone(),
                team: team.clone(),
                online: false,
                busy: false,
                idle_since: start,
                reg_cseq: 0,
            })
            .collect(),
        queue: VecDeque::new(),
        heap: BinaryHeap::new(),
        actions: HashMap::new(),
        next_id: 0,
        report: DemoReport::default(),
    };
    sim.plan_registrations();
    let mut next_arrival = start + Duration::from_millis(500);
    tokio::pin!(shutdown);
    loop {
        let now = Instant::now();
        while next_arrival <= now {
            if sim.queue.len() < MAX_QUEUE && !sim.teams.is_empty() {
                let team = sim.teams[sim.rng.range(0, sim.teams.len() as u64 - 1) as usize].clone();
                sim.queue.push_back((next_arrival, team));
            } else {
                sim.report.abandoned_in_queue += 1;
            }
            next_arrival += sim.next_gap(now);
        }
        sim.step(&sock, now).await;
        sim.dispatch(now);
        sim.step(&sock, now).await;
        let mut wake = next_arrival;
        if let Some(Reverse((t, _))) = sim.heap.peek() {
            wake = wake.min(*t);
        }
        // Look again at least every second (queue patience, agents freed).
        wake = wake.min(now + Duration::from_secs(1));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    Ok(sim.report)
}

/// The agents the demo plays, with their teams: the roster's agents among
/// 8001-8036 covered by `agents.extensions` (else those extensions, in one team).
pub fn extensions(cfg: &Validated) -> Vec<(String, String)> {
    let team = |e: &str| {
        cfg.roster
            .lookup(e)
            .and_then(|a| a.team.clone())
            .unwrap_or_else(|| "none".to_string())
    };
    let mut v: Vec<(String, String)> = (8001..=8036)
        .map(|n| n.to_string())
        .filter(|e| cfg.roster.lookup(e).is_some() && cfg.extensions.contains(e.as_bytes()))
        .map(|e| {
            let t = team(&e);
            (e, t)
        })
        .collect();
    if v.is_empty() {
        // A configured roster without the demo's extensions: play 8001-8036 anyway.
        v = (8001..=8036)
            .map(|n| n.to_string())
            .filter(|e| cfg.extensions.contains(e.as_bytes()))
            .map(|e| {
                let t = team(&e);
                (e, t)
            })
            .collect();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::leg::{Outcome, Survey};
    use crate::engine::registrations::RegState;
    use crate::engine::{Engine, EngineSettings, Event, SourceId};
    use crate::time::CaptureTime;

    fn feed(engine: &mut Engine, spec: &CallSpec, steps: &[Step], t0: i64) {
        for st in steps {
            engine.handle_packet(&spec.captured(st, t0));
        }
    }

    #[test]
    fn the_roster_has_four_teams_of_nine() {
        let r = roster();
        assert_eq!(r.len(), 36);
        assert_eq!(r.teams().len(), 4);
        assert_eq!(r.lookup("8001").unwrap().name.as_deref(), Some("李娜"));
        let cfg = prepare(Config::default().validate(None).unwrap());
        assert_eq!(extensions(&cfg).len(), 36);
    }

    /// Each kind of demo call means to the engine what it is meant to mean.
    #[test]
    fn demo_calls_mean_what_they_say_to_the_engine() {
        let cfg = prepare(Config::default().validate(None).unwrap());
        let mut rng = Rng::new(5);
        let mut seen_hold = false;
        let mut seen = std::collections::HashSet::new();
        for n in 0..400 {
            let call = DemoCall::draw(&mut rng, n, 1, "8003", 1.0);
            let key = (format!("{:?}", call.ending), call.hold.is_some());
            if !seen.insert(key) {
                continue;
            }
            let mut engine = Engine::new(EngineSettings::from_config(&cfg));
            let t0 = 1_800_000_000_000i64;
            feed(&mut engine, &call.spec, &call.steps(), t0);
            engine.handle_timeout(SourceId(1), CaptureTime::from_millis(t0 + 600_000));
            let (mut ended, mut held, mut resumed) = (None, false, false);
            while let Some(ev) = engine.poll_event() {
                match ev {
                    Event::LegEnded { leg, .. } => ended = Some(leg),
                    Event::LegHeld { .. } => held = true,
                    Event::LegResumed { .. } => resumed = true,
                    _ => {}
                }
            }
            let leg = ended.unwrap_or_else(|| panic!("{call:?}: no leg ended"));
            assert_eq!(leg.agent_name.as_deref(), Some("张敏"));
            let rules: Vec<&str> = leg.violations.iter().map(|v| v.rule.as_str()).collect();
            match call.ending {
                Ending::Abandoned => assert_eq!(leg.outcome, Some(Outcome::Cancelled)),
                Ending::Survey => assert_eq!(leg.survey, Survey::Transferred, "{leg:?}"),
                Ending::AgentHangup => {
                    assert!(rules.contains(&"agent_hangup_first"), "{rules:?}");
                    assert!(rules.contains(&"survey_missing"), "{rules:?}");
                }
                Ending::Customer => assert!(!rules.contains(&"agent_hangup_first")),
            }
            if let Some((_, len)) = call.hold {
                seen_hold = true;
                assert!(held && resumed, "{call:?}");
                assert_eq!(leg.holds.len(), 1);
                assert_eq!(rules.contains(&"long_hold"), len > 60_000, "{rules:?}");
            }
            let late = leg.ring_ms.is_some_and(|r| r > 10_000);
            assert_eq!(rules.contains(&"late_answer"), late, "{leg:?}");
        }
        assert!(seen_hold);
        assert!(seen.len() >= 6, "{seen:?}");
    }

    #[test]
    fn registrations_register_and_unregister_phones() {
        let cfg = prepare(Config::default().validate(None).unwrap());
        let mut engine = Engine::new(EngineSettings::from_config(&cfg));
        let spec = CallSpec {
            call_id: String::new(),
            customer: String::new(),
            agent: "8012".into(),
            switch: SWITCH,
            phone: phone_of("8012"),
            trying_ms: 0,
            ring_ms: 0,
            talk_ms: 0,
        };
        let t0 = 1_800_000_000_000i64;
        let steps = |cseq, exp, at| {
            let (req, resp) = register("8012", cseq, exp);
            vec![
                Step {
                    after_ms: at,
                    from_phone: true,
                    sip: req,
                },
                Step {
                    after_ms: at + 20,
                    from_phone: false,
                    sip: resp,
                },
            ]
        };
        feed(&mut engine, &spec, &steps(1, 120, 0), t0);
        feed(&mut engine, &spec, &steps(2, 0, 30_000), t0);
        let mut states = Vec::new();
        while let Some(ev) = engine.poll_event() {
            if let Event::AgentRegistration(c) = ev {
                assert_eq!(c.agent, "8012");
                states.push(c.state.as_str());
            }
        }
        assert_eq!(states, vec!["registered", "unregistered"]);
        assert!(!RegState::Unregistered.is_online());
    }

    #[test]
    fn phones_have_distinct_addresses() {
        let mut seen = std::collections::HashSet::new();
        for n in 8001..=8036 {
            assert!(seen.insert(phone_of(&n.to_string())));
        }
    }
}
