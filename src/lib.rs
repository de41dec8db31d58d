//! callwatch: watches the SIP signalling and RTP media of call-centre agents and checks
//! every call against the centre's service rules.
//!
//! The folders are the data path (see `ARCHITECTURE.md`): [`wire`] parses bytes,
//! [`engine`] turns timestamped packets into agent legs, measurements and violations,
//! [`sources`] read the world (capture files, HEP, live interfaces) into timestamped
//! packets, [`report`] renders legs for people and programs, and [`config`] is the typed,
//! validated configuration. `wire` and `engine` do no I/O and read no clock.

pub mod analyze;
pub mod api;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod engine;
pub mod loadgen;
pub mod report;
pub mod sinks;
pub mod sources;
pub mod store;
pub mod time;
pub mod wire;
