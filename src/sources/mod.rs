//! Adapters that turn the world into timestamped packets for the engine: capture files
//! ([`pcap_file`]), HEP capture agents ([`hep`]), and live interfaces through libpcap
//! (`live`, built with the cargo feature `live-capture`).

pub mod hep;
#[cfg(feature = "live-capture")]
pub mod live;
pub mod pcap_file;
