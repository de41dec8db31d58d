//! The pure core: timestamped packets in, agent legs, measurements and violations out.
//! No I/O, no clock: time arrives with each packet ([`Engine::handle_packet`]) or as an
//! explicit [`Engine::handle_timeout`], and the engine says when it next needs to be
//! called ([`Engine::poll_timeout`]). Results are drained with [`Engine::poll_event`].
//!
//! Start reading at [`core`]; [`leg`] is the record it produces, [`rules`] the rule
//! decisions (one file per rule id).

pub mod agents;
pub mod copies;
pub mod core;
pub mod event;
pub mod hold;
pub mod input;
pub mod leg;
pub mod media;
mod multimap;
mod record;
pub mod registrations;
pub mod rules;
pub mod stats;
pub mod timers;
pub mod transfer;

pub use self::core::{Engine, EngineSettings};
pub use event::Event;
pub use input::{Captured, PayloadHint, SourceId};
pub use leg::LegRecord;
