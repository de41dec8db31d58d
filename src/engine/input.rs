//! What the engine eats: one captured SIP message or media packet with its capture
//! timestamp and addresses, from a capture file, a HEP agent or a live interface.

use std::net::SocketAddr;

use crate::time::CaptureTime;
use crate::wire::Transport;

/// Identifies the capture source (a file set, a HEP capture agent, an interface): each
/// keeps its own clock (SPEC §1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u32);

/// What the source already knows about the payload (HEP says it; a wire capture doesn't).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadHint {
    Unknown,
    Sip,
    Rtcp,
}

/// One captured packet, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Captured<'a> {
    pub at: CaptureTime,
    pub source: SourceId,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub hint: PayloadHint,
    pub payload: &'a [u8],
    /// HEP chunk 0x0011 (internal correlation id), when present.
    pub correlation_id: Option<&'a [u8]>,
}
