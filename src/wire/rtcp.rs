//! RTCP (being written)
