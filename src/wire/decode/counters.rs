//! Why the decoder could not use a frame (or part of one), by kind.
//!
//! Every frame the decoder drops or every piece of state it throws away is counted here
//! exactly once, under a stable snake_case label that the metrics sink exports as
//! `callwatch_ingest_errors_total{kind="..."}`. Some kinds are not faults of the
//! capture but traffic callwatch does not read (ARP, ICMP, TLS on a SIP port); they are
//! counted all the same so that an operator can see where the packets went.

/// One reason for dropping a frame or decoder state. Small and `Copy`: counting one
/// never allocates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeErrorKind {
    /// A header, or the length one announces, runs past the captured bytes (snaplen).
    Truncated,
    /// The capture's link type is not one the decoder reads.
    UnsupportedLink,
    /// Not IP at the link layer: ARP, LLDP, 802.3/LLC (STP), too many VLAN tags, ...
    UnsupportedEthertype,
    /// An IPv4 or IPv6 header that contradicts itself (IHL < 5, bad version, ...).
    BadIpHeader,
    /// An IP protocol other than UDP and TCP (ICMP, ESP, SCTP, ...), or an IPv6
    /// extension header chain too long to follow.
    UnsupportedIpProtocol,
    /// A UDP header whose length field is below 8.
    BadUdp,
    /// A TCP header whose data offset is below 5 words.
    BadTcp,
    /// A fragmented datagram still missing pieces when its time ran out.
    FragmentTimeout,
    /// A fragmented datagram dropped to make room (datagram count or byte cap).
    FragmentEvicted,
    /// A fragment overlapping data already held with other bytes, or contradicting the
    /// datagram's end; the first data received is kept (RFC 815 holes are only filled).
    FragmentOverlap,
    /// A datagram that would exceed 65535 bytes, the byte cap or the piece limit.
    FragmentTooLarge,
    /// A TCP stream's state dropped to make room for another (stream count or byte cap).
    TcpStreamEvicted,
    /// A TCP stream idle past its timeout while holding an incomplete message.
    TcpStreamTimeout,
    /// A SIP message (or out-of-order data) larger than the per-stream byte cap.
    TcpBufferOverflow,
    /// Bytes of a TCP stream that were never captured; the stream resynchronises at
    /// the next SIP start line.
    TcpGap,
    /// A TCP connection that does not carry SIP (counted once per connection, by the
    /// first direction found out).
    TcpNotSip,
    /// A TCP stream that carried SIP but then had bytes where a message should start,
    /// or a message with an unreadable Content-Length; it resynchronises.
    SipFraming,
}

impl DecodeErrorKind {
    /// Every kind, in label order of the metric export.
    pub const ALL: &'static [DecodeErrorKind] = &[
        DecodeErrorKind::Truncated,
        DecodeErrorKind::UnsupportedLink,
        DecodeErrorKind::UnsupportedEthertype,
        DecodeErrorKind::BadIpHeader,
        DecodeErrorKind::UnsupportedIpProtocol,
        DecodeErrorKind::BadUdp,
        DecodeErrorKind::BadTcp,
        DecodeErrorKind::FragmentTimeout,
        DecodeErrorKind::FragmentEvicted,
        DecodeErrorKind::FragmentOverlap,
        DecodeErrorKind::FragmentTooLarge,
        DecodeErrorKind::TcpStreamEvicted,
        DecodeErrorKind::TcpStreamTimeout,
        DecodeErrorKind::TcpBufferOverflow,
        DecodeErrorKind::TcpGap,
        DecodeErrorKind::TcpNotSip,
        DecodeErrorKind::SipFraming,
    ];

    /// The snake_case label used for `callwatch_ingest_errors_total{kind}`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::Truncated => "truncated",
            DecodeErrorKind::UnsupportedLink => "unsupported_link",
            DecodeErrorKind::UnsupportedEthertype => "unsupported_ethertype",
            DecodeErrorKind::BadIpHeader => "bad_ip_header",
            DecodeErrorKind::UnsupportedIpProtocol => "unsupported_ip_protocol",
            DecodeErrorKind::BadUdp => "bad_udp",
            DecodeErrorKind::BadTcp => "bad_tcp",
            DecodeErrorKind::FragmentTimeout => "fragment_timeout",
            DecodeErrorKind::FragmentEvicted => "fragment_evicted",
            DecodeErrorKind::FragmentOverlap => "fragment_overlap",
            DecodeErrorKind::FragmentTooLarge => "fragment_too_large",
            DecodeErrorKind::TcpStreamEvicted => "tcp_stream_evicted",
            DecodeErrorKind::TcpStreamTimeout => "tcp_stream_timeout",
            DecodeErrorKind::TcpBufferOverflow => "tcp_buffer_overflow",
            DecodeErrorKind::TcpGap => "tcp_gap",
            DecodeErrorKind::TcpNotSip => "tcp_not_sip",
            DecodeErrorKind::SipFraming => "sip_framing",
        }
    }

    /// Position in [`Self::ALL`] (a test checks that `ALL` follows declaration order).
    fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const KINDS: usize = DecodeErrorKind::SipFraming as usize + 1;

/// How many times each [`DecodeErrorKind`] happened since the decoder was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounters {
    counts: [u64; KINDS],
}

impl DecodeCounters {
    /// The count for one kind.
    pub fn get(&self, kind: DecodeErrorKind) -> u64 {
        self.counts.get(kind.index()).copied().unwrap_or(0)
    }

    /// Every kind with its count (zeros included, so a metric series exists from the
    /// start), in the order of [`DecodeErrorKind::ALL`].
    pub fn iter(&self) -> impl Iterator<Item = (DecodeErrorKind, u64)> + '_ {
        DecodeErrorKind::ALL.iter().map(move |&k| (k, self.get(k)))
    }

    /// The sum over all kinds.
    pub fn total(&self) -> u64 {
        self.counts.iter().fold(0u64, |a, &c| a.saturating_add(c))
    }

    pub(crate) fn bump(&mut self, kind: DecodeErrorKind) {
        if let Some(c) = self.counts.get_mut(kind.index()) {
            *c = c.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_kind_once_in_declaration_order() {
        assert_eq!(DecodeErrorKind::ALL.len(), KINDS);
        for (i, k) in DecodeErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
        }
        let mut labels: Vec<_> = DecodeErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), KINDS);
        assert!(labels
            .iter()
            .all(|l| l.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
    }

    #[test]
    fn bump_counts_one_kind() {
        let mut c = DecodeCounters::default();
        c.bump(DecodeErrorKind::TcpGap);
        c.bump(DecodeErrorKind::TcpGap);
        assert_eq!(c.get(DecodeErrorKind::TcpGap), 2);
        assert_eq!(c.get(DecodeErrorKind::Truncated), 0);
        assert_eq!(c.total(), 2);
        assert_eq!(c.iter().count(), KINDS);
    }
}
