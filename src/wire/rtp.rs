//! RTP (being written)
