//! SDP (being written)
