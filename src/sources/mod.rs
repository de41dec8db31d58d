//! Adapters that turn the world into timestamped packets for the engine: capture files
//! ([`pcap_file`]), HEP capture agents ([`hep`]); live capture follows.

pub mod hep;
pub mod pcap_file;
