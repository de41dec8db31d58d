//! pcap and pcapng reading (being written)
