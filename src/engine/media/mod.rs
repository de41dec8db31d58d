//! Media quality per RTP stream: what the `media` figures of a leg record say and what
//! the `poor_audio` and `one_way_audio` rules read.
//!
//! Input: RTP headers parsed by [`crate::wire::rtp`] with their capture times, one
//! stream (source and destination address and port plus SSRC) at a time, and the
//! payload types the leg's SDP negotiated. Output: [`StreamFigures`] (packets,
//! expected, lost, loss %, delta and jitter) that agree with Wireshark 4.0's
//! `tshark -z rtp,streams` on the same capture, and an estimated MOS from a simplified
//! ITU-T G.107 E-model. No I/O, no clock, no allocation per packet. The method, its
//! sources and its limits are written up in `docs/media-quality.md`.
//!
//! - [`codec`]: payload type numbers, codecs and RTP clock rates;
//! - [`stats`]: the per-stream statistics;
//! - [`mos`]: R factor and MOS;
//! - [`leg`]: the streams of one agent leg and the one-way-audio tracker;
//! - [`slab`]: every leg's media with the leg facts an RTP packet needs, in one slab.

pub mod codec;
pub mod leg;
pub mod mos;
pub mod slab;
pub mod slots;
pub mod stats;

pub use codec::{CodecId, PayloadInfo, PayloadMap};
pub use mos::{estimate_mos, mos_from_r, r_factor, CodecImpairment, DelayModel};
pub use stats::{RtpStreamStats, StreamFigures};
