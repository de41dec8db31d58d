//! Adapters that turn the world into timestamped packets for the engine: capture files
//! ([`pcap_file`]); HEP and live capture follow.

pub mod pcap_file;
