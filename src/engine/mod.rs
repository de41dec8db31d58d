//! The pure core: timestamped packets in, agent legs, measurements and violations out.
//! No I/O, no clock: time arrives with each packet (`handle_packet`) or as an explicit
//! `handle_timeout(now)`, and the engine says when it next needs to be called
//! (`poll_timeout`).

pub mod media;
