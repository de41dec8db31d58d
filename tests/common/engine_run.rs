//! An [`Engine`] driven by hand: built from a [`Config`] the test adjusts, fed packets
//! and deadlines at explicit capture timestamps (milliseconds after a fixed instant), its
//! events collected as they come out, ended legs kept apart for the assertions.

use callwatch::config::Config;
use callwatch::engine::{
    Captured, Engine, EngineSettings, Event, LegRecord, PayloadHint, SourceId,
};
use callwatch::time::CaptureTime;
use callwatch::wire::Transport;

use super::sip_dialog::addr;

pub fn engine_with(f: impl FnOnce(&mut Config)) -> Engine {
    let mut c = Config::default();
    f(&mut c);
    Engine::new(EngineSettings::from_config(&c.validate(None).unwrap()))
}

pub fn engine() -> Engine {
    engine_with(|_| {})
}

pub struct Run {
    pub engine: Engine,
    pub ended: Vec<LegRecord>,
    pub events: Vec<Event>,
}

impl Run {
    pub fn new(engine: Engine) -> Run {
        Run {
            engine,
            ended: Vec::new(),
            events: Vec::new(),
        }
    }
    pub fn at(&mut self, ms: i64, src: &str, dst: &str, bytes: Vec<u8>) -> &mut Self {
        self.engine.handle_packet(&Captured {
            at: CaptureTime::from_millis(1_800_000_000_000 + ms),
            source: SourceId(0),
            src: addr(src),
            dst: addr(dst),
            transport: Transport::Udp,
            hint: PayloadHint::Unknown,
            payload: &bytes,
            correlation_id: None,
        });
        self.drain();
        self
    }
    pub fn tick(&mut self, ms: i64) -> &mut Self {
        self.engine.handle_timeout(
            SourceId(0),
            CaptureTime::from_millis(1_800_000_000_000 + ms),
        );
        self.drain();
        self
    }
    pub fn drain(&mut self) {
        while let Some(e) = self.engine.poll_event() {
            if let Event::LegEnded { leg, .. } = &e {
                self.ended.push((**leg).clone());
            }
            self.events.push(e);
        }
    }
    pub fn finish(&mut self) -> &mut Self {
        self.engine.finish();
        self.drain();
        self
    }
    pub fn only_leg(&self) -> &LegRecord {
        assert_eq!(self.ended.len(), 1, "legs: {:#?}", self.ended);
        &self.ended[0]
    }
}
