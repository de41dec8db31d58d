//! Media quality per RTP stream (being written)
