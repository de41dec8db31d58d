//! Whole-frame tests of [`Decoder`]: byte-array fixtures through every layer, and
//! property tests of the no-panic and bounded-memory contract.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;

use super::*;

// ---- fixture builders ---------------------------------------------------------------

const A4: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);
const B4: Ipv4Addr = Ipv4Addr::new(10, 1, 9, 20);

fn eth(ethertype: u16, l3: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(l3);
    f
}

fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, id: u16, frag: (usize, bool), p: &[u8]) -> Vec<u8> {
    let total = (20 + p.len()) as u16;
    let ff = ((frag.0 / 8) as u16) | if frag.1 { 0x2000 } else { 0 };
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&ff.to_be_bytes());
    v.extend_from_slice(&[64, proto, 0, 0]);
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(p);
    v
}

fn ip6(next: u8, p: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0, 0, 0];
    v.extend_from_slice(&(p.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 64]);
    v.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    v.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    v.extend_from_slice(p);
    v
}

fn udp(sport: u16, dport: u16, p: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + p.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(p);
    v
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
const PSH_ACK: u8 = 0x18;

fn tcp(sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, p: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(p);
    v
}

/// A TCP/IPv4/Ethernet frame from A:5060 to B:40000 (or the reverse with `back`).
fn tcp_frame(back: bool, seq: u32, ack: u32, flags: u8, p: &[u8]) -> Vec<u8> {
    let (s, d, sp, dp) = if back {
        (B4, A4, 40000, 5060)
    } else {
        (A4, B4, 5060, 40000)
    };
    eth(
        0x0800,
        &ip4(s, d, 6, 1, (0, false), &tcp(sp, dp, seq, ack, flags, p)),
    )
}

fn sip(cseq: u32, body: &str) -> String {
    format!(
        "INVITE sip:8001@10.1.9.20 SIP/2.0\r\nVia: SIP/2.0/TCP 10.1.2.3:5060\r\n\
         Call-ID: abc@10.1.2.3\r\nCSeq: {cseq} INVITE\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A body big enough to need IP fragmentation.
fn big_sdp() -> String {
    let mut s = String::from("v=0\r\no=- 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\n");
    for i in 0..120 {
        s.push_str(&format!(
            "a=candidate:{i} 1 udp 2130706431 10.1.2.3 {} typ host\r\n",
            20000 + i
        ));
    }
    s
}

#[derive(Debug, PartialEq, Eq)]
struct Out {
    src: SocketAddr,
    dst: SocketAddr,
    transport: Transport,
    payload: Vec<u8>,
}

struct Run {
    d: Decoder,
    out: Vec<Out>,
}

impl Run {
    fn new() -> Self {
        Self::with(DecodeLimits::default())
    }

    fn with(limits: DecodeLimits) -> Self {
        Run {
            d: Decoder::new(limits),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, link: LinkType, t_ms: i64, frame: &[u8]) -> usize {
        let before = self.out.len();
        let out = &mut self.out;
        self.d
            .decode(link, CaptureTime::from_millis(t_ms), frame, &mut |g| {
                out.push(Out {
                    src: g.src,
                    dst: g.dst,
                    transport: g.transport,
                    payload: g.payload.to_vec(),
                })
            });
        self.out.len() - before
    }

    fn eth(&mut self, t_ms: i64, frame: &[u8]) -> usize {
        self.feed(LinkType::Ethernet, t_ms, frame)
    }

    fn payloads(&self) -> Vec<String> {
        self.out
            .iter()
            .map(|o| String::from_utf8_lossy(&o.payload).into_owned())
            .collect()
    }

    fn count(&self, k: DecodeErrorKind) -> u64 {
        self.d.counters().get(k)
    }
}

fn fragments(whole_ip_payload: &[u8], size: usize, id: u16) -> Vec<Vec<u8>> {
    whole_ip_payload
        .chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let off = i * size;
            let more = off + c.len() < whole_ip_payload.len();
            eth(0x0800, &ip4(A4, B4, 17, id, (off, more), c))
        })
        .collect()
}

// ---- link layer and UDP -------------------------------------------------------------

#[test]
fn udp_over_ethernet_is_emitted_with_its_addresses() {
    let mut r = Run::new();
    let f = eth(
        0x0800,
        &ip4(A4, B4, 17, 1, (0, false), &udp(5060, 5062, b"OPTIONS")),
    );
    assert_eq!(r.eth(1, &f), 1);
    assert_eq!(
        r.out[0],
        Out {
            src: "10.1.2.3:5060".parse().unwrap(),
            dst: "10.1.9.20:5062".parse().unwrap(),
            transport: Transport::Udp,
            payload: b"OPTIONS".to_vec(),
        }
    );
    assert_eq!(r.d.counters().total(), 0);
}

#[test]
fn vlan_and_qinq_frames() {
    let inner = ip4(A4, B4, 17, 1, (0, false), &udp(1, 2, b"rtp"));
    let mut vlan = vec![0x00, 0x64, 0x08, 0x00];
    vlan.extend_from_slice(&inner);
    let mut qinq = vec![0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x08, 0x00];
    qinq.extend_from_slice(&inner);
    let mut r = Run::new();
    assert_eq!(r.eth(1, &eth(0x8100, &vlan)), 1);
    assert_eq!(r.eth(2, &eth(0x88a8, &qinq)), 1);
    assert_eq!(r.payloads(), vec!["rtp", "rtp"]);
}

#[test]
fn linux_cooked_v1_and_v2_frames() {
    let inner = ip4(A4, B4, 17, 1, (0, false), &udp(1, 2, b"x"));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&inner);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 2, 0, 0, 0, 0, 1, 0, 0,
    ];
    sll2.extend_from_slice(&inner);
    let mut r = Run::new();
    assert_eq!(r.feed(LinkType::LinuxSll, 1, &sll), 1);
    assert_eq!(r.feed(LinkType::LinuxSll2, 1, &sll2), 1);
    assert_eq!(r.feed(LinkType::RawIp, 1, &inner), 1);
    assert_eq!(r.feed(LinkType::Ipv4, 1, &inner), 1);
    let mut null = vec![2, 0, 0, 0];
    null.extend_from_slice(&inner);
    assert_eq!(r.feed(LinkType::Null, 1, &null), 1);
}

#[test]
fn ipv6_udp_with_extension_header() {
    let mut p = vec![17, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&udp(5060, 5060, b"REGISTER"));
    let mut r = Run::new();
    assert_eq!(r.eth(1, &eth(0x86dd, &ip6(60, &p))), 1);
    assert_eq!(r.out[0].src, "[2001:db8::1]:5060".parse().unwrap());
    assert_eq!(r.payloads(), vec!["REGISTER"]);
}

#[test]
fn ipv6_fragments_are_reassembled() {
    let body = big_sdp();
    let dgram = udp(5060, 5060, body.as_bytes());
    let mut r = Run::new();
    let n = dgram.len().div_ceil(1232);
    for (i, c) in dgram.chunks(1232).enumerate().rev() {
        let more = i + 1 < n;
        let word = (((i * 1232) / 8) as u16) << 3 | u16::from(more);
        let mut p = vec![17, 0];
        p.extend_from_slice(&word.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(c);
        r.eth(1, &eth(0x86dd, &ip6(44, &p)));
    }
    assert_eq!(r.payloads(), vec![body]);
    assert_eq!(r.d.memory(), DecodeMemory::default());
}

#[test]
fn non_ip_and_other_protocols_are_counted() {
    let mut r = Run::new();
    assert_eq!(r.eth(1, &eth(0x0806, &[0; 28])), 0);
    assert_eq!(
        r.eth(
            1,
            &eth(0x0800, &ip4(A4, B4, 1, 1, (0, false), &[8, 0, 0, 0]))
        ),
        0
    );
    assert_eq!(r.count(DecodeErrorKind::UnsupportedEthertype), 1);
    assert_eq!(r.count(DecodeErrorKind::UnsupportedIpProtocol), 1);
}

#[test]
fn udp_cut_by_snaplen_is_truncated_not_emitted() {
    let f = eth(
        0x0800,
        &ip4(A4, B4, 17, 1, (0, false), &udp(5060, 5060, &[b'x'; 400])),
    );
    let mut r = Run::new();
    assert_eq!(r.eth(1, &f[..200]), 0);
    assert_eq!(r.count(DecodeErrorKind::Truncated), 1);
    // The same with an IP length of 0 (offload): the UDP length is the one that lies.
    let mut f = f;
    f[16] = 0;
    f[17] = 0;
    assert_eq!(r.eth(1, &f[..200]), 0);
    assert_eq!(r.count(DecodeErrorKind::Truncated), 2);
}

// ---- IPv4 fragments -----------------------------------------------------------------

#[test]
fn fragmented_invite_in_order_is_one_datagram() {
    let body = big_sdp();
    let dgram = udp(5060, 5060, sip(1, &body).as_bytes());
    let mut r = Run::new();
    let frags = fragments(&dgram, 1480, 77);
    assert!(frags.len() >= 3);
    for f in &frags {
        r.eth(1, f);
    }
    assert_eq!(r.payloads(), vec![sip(1, &body)]);
    assert_eq!(r.d.counters().total(), 0);
    assert_eq!(r.d.memory(), DecodeMemory::default());
}

#[test]
fn fragments_in_reverse_order() {
    let dgram = udp(5060, 5060, big_sdp().as_bytes());
    let mut r = Run::new();
    for f in fragments(&dgram, 1480, 78).iter().rev() {
        r.eth(1, f);
    }
    assert_eq!(r.payloads(), vec![big_sdp()]);
}

#[test]
fn duplicate_and_overlapping_fragments() {
    let dgram = udp(5060, 5060, big_sdp().as_bytes());
    let mut r = Run::new();
    let f = fragments(&dgram, 1480, 79);
    r.eth(1, &f[0]);
    r.eth(1, &f[0]);
    // An overlapping piece carrying the same bytes as the first and second fragments.
    r.eth(
        1,
        &eth(
            0x0800,
            &ip4(A4, B4, 17, 79, (1000, true), &dgram[1000..2000]),
        ),
    );
    for x in &f[1..] {
        r.eth(1, x);
    }
    assert_eq!(r.payloads(), vec![big_sdp()]);
    assert_eq!(r.d.counters().total(), 0);
}

#[test]
fn missing_fragment_is_evicted_after_the_timeout_and_counted() {
    let dgram = udp(5060, 5060, big_sdp().as_bytes());
    let mut r = Run::new();
    let f = fragments(&dgram, 1480, 80);
    for x in f.iter().skip(1) {
        assert_eq!(r.eth(1_000, x), 0);
    }
    assert_eq!(r.d.memory().fragment_datagrams, 1);
    let other = eth(
        0x0800,
        &ip4(A4, B4, 17, 2, (0, false), &udp(1, 2, b"later")),
    );
    r.eth(30_999, &other);
    assert_eq!(r.count(DecodeErrorKind::FragmentTimeout), 0);
    r.eth(31_000, &other);
    assert_eq!(r.count(DecodeErrorKind::FragmentTimeout), 1);
    assert_eq!(r.d.memory().fragment_datagrams, 0);
    assert_eq!(r.payloads(), vec!["later", "later"]);
}

// ---- SIP over TCP -------------------------------------------------------------------

fn syn(r: &mut Run, isn: u32) {
    r.eth(0, &tcp_frame(false, isn, 0, SYN, b""));
}

#[test]
fn tcp_two_messages_in_one_segment() {
    let mut r = Run::new();
    syn(&mut r, 100);
    let s = format!("{}{}", sip(1, "v=0\r\n"), sip(2, ""));
    assert_eq!(
        r.eth(1, &tcp_frame(false, 101, 1, PSH_ACK, s.as_bytes())),
        2
    );
    assert_eq!(r.payloads(), vec![sip(1, "v=0\r\n"), sip(2, "")]);
    assert!(r.out.iter().all(|o| o.transport == Transport::Tcp));
    assert_eq!(r.out[0].src, "10.1.2.3:5060".parse().unwrap());
    assert_eq!(r.out[0].dst, "10.1.9.20:40000".parse().unwrap());
}

#[test]
fn tcp_one_message_over_three_segments() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let m = sip(1, &big_sdp());
    let b = m.as_bytes();
    let (one, two) = (1400, 2800);
    assert_eq!(r.eth(1, &tcp_frame(false, 1, 1, ACK, &b[..one])), 0);
    assert_eq!(
        r.eth(2, &tcp_frame(false, 1 + one as u32, 1, ACK, &b[one..two])),
        0
    );
    assert_eq!(
        r.eth(3, &tcp_frame(false, 1 + two as u32, 1, PSH_ACK, &b[two..])),
        1
    );
    assert_eq!(r.payloads(), vec![m]);
    assert_eq!(r.d.memory().tcp_bytes, 0);
}

#[test]
fn tcp_out_of_order_segments() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let m = sip(1, "hello");
    let b = m.as_bytes();
    r.eth(1, &tcp_frame(false, 51, 1, ACK, &b[50..]));
    assert!(r.out.is_empty());
    r.eth(2, &tcp_frame(false, 1, 1, ACK, &b[..50]));
    assert_eq!(r.payloads(), vec![m]);
    assert_eq!(r.d.counters().total(), 0);
}

#[test]
fn tcp_retransmission_is_ignored() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let m = sip(1, "");
    r.eth(1, &tcp_frame(false, 1, 1, PSH_ACK, m.as_bytes()));
    r.eth(2, &tcp_frame(false, 1, 1, PSH_ACK, m.as_bytes()));
    assert_eq!(r.payloads(), vec![m]);
}

#[test]
fn tcp_gap_resyncs_once_the_peer_acknowledges_past_it() {
    let mut r = Run::new();
    syn(&mut r, 0);
    // SDP bodies end in CRLF, so the message after the hole begins a line.
    let (m1, m2, m3) = (sip(1, "v=0\r\n"), sip(2, "v=0\r\n"), sip(3, ""));
    let all = format!("{m1}{m2}{m3}");
    let b = all.as_bytes();
    let lost = 30..m1.len() + 30;
    r.eth(1, &tcp_frame(false, 1, 1, ACK, &b[..lost.start]));
    r.eth(
        2,
        &tcp_frame(false, 1 + lost.end as u32, 1, ACK, &b[lost.end..]),
    );
    assert!(r.out.is_empty());
    // The phone acknowledges everything: the lost bytes will never be seen.
    r.eth(3, &tcp_frame(true, 1, 1 + b.len() as u32, ACK, b""));
    assert_eq!(r.payloads(), vec![m3]);
    assert_eq!(r.count(DecodeErrorKind::TcpGap), 1);
}

#[test]
fn tcp_gap_is_given_up_at_its_deadline_even_if_the_stream_stays_quiet() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let (m1, m2) = (sip(1, "one"), sip(2, ""));
    r.eth(
        1,
        &tcp_frame(false, 1 + m1.len() as u32, 1, ACK, m2.as_bytes()),
    );
    let udp_frame = eth(0x0800, &ip4(A4, B4, 17, 1, (0, false), &udp(1, 2, b"rtp")));
    r.eth(1_000, &udp_frame);
    assert_eq!(r.payloads(), vec!["rtp"]);
    r.eth(2_001, &udp_frame);
    assert_eq!(r.payloads(), vec!["rtp".to_string(), m2, "rtp".to_string()]);
    assert_eq!(r.count(DecodeErrorKind::TcpGap), 1);
}

#[test]
fn tcp_both_directions_are_separate_streams() {
    let mut r = Run::new();
    syn(&mut r, 0);
    r.eth(0, &tcp_frame(true, 500, 1, SYN | ACK, b""));
    let req = sip(1, "");
    let resp = "SIP/2.0 100 Trying\r\nCall-ID: abc@10.1.2.3\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
    r.eth(1, &tcp_frame(false, 1, 501, PSH_ACK, req.as_bytes()));
    r.eth(
        2,
        &tcp_frame(true, 501, 1 + req.len() as u32, PSH_ACK, resp.as_bytes()),
    );
    assert_eq!(r.payloads(), vec![req, resp.to_string()]);
    assert_eq!(r.out[1].src, "10.1.9.20:40000".parse().unwrap());
    assert_eq!(r.d.memory().tcp_streams, 2);
    r.eth(3, &tcp_frame(true, 0, 0, RST, b""));
    assert_eq!(r.d.memory().tcp_streams, 0);
}

#[test]
fn tcp_fin_closes_the_direction() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let m = sip(1, "");
    r.eth(1, &tcp_frame(false, 1, 1, PSH_ACK | FIN, m.as_bytes()));
    assert_eq!(r.payloads(), vec![m]);
    assert_eq!(r.d.memory().tcp_streams, 0);
}

#[test]
fn tcp_stream_that_is_not_sip_is_counted_once_and_dropped() {
    let mut r = Run::new();
    r.eth(0, &tcp_frame(false, 0, 0, SYN, b""));
    r.eth(
        1,
        &tcp_frame(false, 1, 1, PSH_ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
    );
    for i in 0..10u32 {
        r.eth(2, &tcp_frame(false, 30 + i * 10, 1, PSH_ACK, b"0123456789"));
    }
    // The server's answer is not looked at: the connection is known not to be SIP.
    r.eth(2, &tcp_frame(true, 0, 1, SYN | ACK, b""));
    r.eth(
        2,
        &tcp_frame(true, 1, 30, PSH_ACK, b"HTTP/1.1 200 OK\r\n\r\n"),
    );
    assert!(r.out.is_empty());
    assert_eq!(r.count(DecodeErrorKind::TcpNotSip), 1);
    assert_eq!(r.d.memory().tcp_streams, 0);
    // A new connection on the same addresses is looked at afresh.
    syn(&mut r, 9000);
    r.eth(
        3,
        &tcp_frame(false, 9001, 1, PSH_ACK, sip(1, "").as_bytes()),
    );
    assert_eq!(r.payloads(), vec![sip(1, "")]);
}

#[test]
fn tcp_stream_cap_evicts_and_counts() {
    let mut r = Run::with(DecodeLimits {
        max_tcp_streams: 2,
        ..DecodeLimits::default()
    });
    for port in 0..3u16 {
        let seg = tcp(6000 + port, 5060, 1, 1, ACK, b"INVITE sip:x SIP/2.0\r\n");
        r.eth(
            i64::from(port),
            &eth(0x0800, &ip4(A4, B4, 6, 1, (0, false), &seg)),
        );
        assert!(r.d.memory().tcp_streams <= 2);
    }
    assert_eq!(r.count(DecodeErrorKind::TcpStreamEvicted), 1);
}

#[test]
fn tcp_idle_stream_with_a_partial_message_times_out() {
    let mut r = Run::new();
    syn(&mut r, 0);
    r.eth(
        1,
        &tcp_frame(false, 1, 1, ACK, b"INVITE sip:x SIP/2.0\r\nCall"),
    );
    assert!(r.d.memory().tcp_bytes > 0);
    let udp_frame = eth(0x0800, &ip4(A4, B4, 17, 1, (0, false), &udp(1, 2, b"rtp")));
    r.eth(300_002, &udp_frame);
    assert_eq!(r.count(DecodeErrorKind::TcpStreamTimeout), 1);
    assert_eq!(r.d.memory(), DecodeMemory::default());
}

#[test]
fn tcp_segment_inside_fragmented_ip_is_reassembled_first() {
    let mut r = Run::new();
    syn(&mut r, 0);
    let m = sip(1, &big_sdp());
    let seg = tcp(5060, 40000, 1, 1, PSH_ACK, m.as_bytes());
    for (i, c) in seg.chunks(1480).enumerate() {
        let more = (i + 1) * 1480 < seg.len();
        r.eth(1, &eth(0x0800, &ip4(A4, B4, 6, 9, (i * 1480, more), c)));
    }
    assert_eq!(r.payloads(), vec![m]);
}

// ---- properties ---------------------------------------------------------------------

const LINKS: [LinkType; 8] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Ipv4,
    LinkType::Ipv6,
    LinkType::Null,
    LinkType::Loop,
];

fn small_limits() -> DecodeLimits {
    DecodeLimits {
        max_fragment_bytes: 8 << 10,
        max_fragment_datagrams: 4,
        fragment_timeout_us: 1_000_000,
        max_tcp_streams: 4,
        max_tcp_stream_bytes: 2 << 10,
        max_tcp_total_bytes: 6 << 10,
        tcp_idle_timeout_us: 5_000_000,
        tcp_gap_timeout_us: 500_000,
    }
}

fn within_caps(d: &Decoder) -> Result<(), TestCaseError> {
    let m = d.memory();
    let l = d.limits();
    prop_assert!(m.fragment_bytes <= l.max_fragment_bytes, "{m:?}");
    prop_assert!(m.fragment_datagrams <= l.max_fragment_datagrams, "{m:?}");
    prop_assert!(m.tcp_streams <= l.max_tcp_streams, "{m:?}");
    prop_assert!(m.tcp_bytes <= l.max_tcp_total_bytes, "{m:?}");
    Ok(())
}

/// A frame that gets past the headers often: valid Ethernet/IPv4 (or IPv6) with
/// random fragment fields and random UDP or TCP contents from a few ports.
fn plausible_frame() -> impl Strategy<Value = Vec<u8>> {
    let tcp_seg = (
        0u16..3,
        any::<u32>().prop_map(|s| s % 4096),
        any::<u8>(),
        prop::collection::vec(
            prop::sample::select(vec![
                b"INVITE sip:a SIP/2.0\r\n".to_vec(),
                b"SIP/2.0 200 OK\r\n".to_vec(),
                b"Call-ID: x\r\nCSeq: 1 BYE\r\n".to_vec(),
                b"Content-Length: 30\r\n".to_vec(),
                b"l: 99999\r\n".to_vec(),
                b"\r\n".to_vec(),
                b"garbage".to_vec(),
                vec![0x16, 0x03, 0x01],
            ]),
            0..6,
        ),
    )
        .prop_map(|(port, seq, flags, parts)| {
            let p: Vec<u8> = parts.concat();
            (6u8, tcp(5060, 40000 + port, seq, seq / 2, flags, &p))
        });
    let udp_dgram = prop::collection::vec(any::<u8>(), 0..64).prop_map(|p| (17u8, udp(1, 2, &p)));
    (
        prop_oneof![tcp_seg, udp_dgram],
        0u16..4,
        0usize..200,
        any::<bool>(),
        any::<bool>(),
        0usize..8,
    )
        .prop_map(|((proto, l4), id, off8, more, v6, cut)| {
            let frag = if off8 % 3 == 0 {
                (0, false)
            } else {
                (off8 * 8, more)
            };
            let mut f = if v6 {
                let mut p = vec![proto, 0];
                let word = ((frag.0 / 8) as u16) << 3 | u16::from(frag.1);
                p.extend_from_slice(&word.to_be_bytes());
                p.extend_from_slice(&u32::from(id).to_be_bytes());
                p.extend_from_slice(&l4);
                eth(
                    0x86dd,
                    &ip6(
                        if frag == (0, false) { proto } else { 44 },
                        if frag == (0, false) { &l4 } else { &p },
                    ),
                )
            } else {
                eth(0x0800, &ip4(A4, B4, proto, id, frag, &l4))
            };
            if cut == 0 {
                let n = f.len() / 2;
                f.truncate(n);
            }
            f
        })
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=50000 for a long run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_arbitrary_bytes_and_stays_within_caps(
        frames in prop::collection::vec(
            (0usize..8, 0i64..3_000_000, prop::collection::vec(any::<u8>(), 0..200)),
            1..40,
        )
    ) {
        let mut d = Decoder::new(small_limits());
        let mut t = 0i64;
        for (link, dt, bytes) in frames {
            t += dt;
            d.decode(LINKS[link], CaptureTime(t), &bytes, &mut |g| {
                assert!(g.payload.len() <= 1 << 16);
            });
            within_caps(&d)?;
        }
    }

    #[test]
    fn never_panics_on_plausible_frames_and_stays_within_caps(
        frames in prop::collection::vec((0i64..400_000, plausible_frame()), 1..120)
    ) {
        let limits = small_limits();
        let mut d = Decoder::new(limits.clone());
        let mut t = 0i64;
        for (dt, f) in frames {
            t += dt;
            d.decode(LinkType::Ethernet, CaptureTime(t), &f, &mut |g| {
                if g.transport == Transport::Tcp {
                    assert!(g.payload.len() <= limits.max_tcp_stream_bytes);
                }
            });
            within_caps(&d)?;
        }
    }

    #[test]
    fn fragments_in_any_order_reassemble_to_the_datagram(
        len in 9usize..4000,
        // At least 64-byte pieces: beyond 64 holes the datagram is refused on purpose.
        size8 in 8usize..200,
        seed in any::<u64>(),
        dup in any::<bool>(),
    ) {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
        let dgram = udp(5060, 5060, &payload);
        let mut frags = fragments(&dgram, size8 * 8, 5);
        if dup && frags.len() > 1 {
            let again = frags[0].clone();
            frags.push(again);
        }
        // Fisher-Yates with a tiny xorshift so the order is reproducible from the seed.
        let mut x = seed | 1;
        for i in (1..frags.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            frags.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut r = Run::new();
        for f in &frags {
            r.eth(1, f);
        }
        prop_assert_eq!(r.out.len(), 1);
        prop_assert_eq!(&r.out[0].payload, &payload);
        prop_assert_eq!(r.d.counters().total(), 0);
    }

    #[test]
    fn tcp_messages_survive_any_segmentation(
        cuts in prop::collection::vec(1usize..300, 0..12),
        reorder in any::<bool>(),
    ) {
        let msgs: Vec<String> = (1..5).map(|i| sip(i, &"b".repeat(i as usize * 37))).collect();
        let stream = msgs.concat();
        let b = stream.as_bytes();
        let mut bounds = vec![0usize];
        for c in cuts {
            let next = (bounds.last().copied().unwrap_or(0) + c).min(b.len());
            bounds.push(next);
        }
        bounds.push(b.len());
        bounds.dedup();
        let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        if reorder && segs.len() > 2 {
            segs.swap(0, 1);
        }
        let mut r = Run::new();
        syn(&mut r, 7);
        for (s, e) in segs {
            r.eth(1, &tcp_frame(false, 8 + s as u32, 1, ACK, &b[s..e]));
        }
        prop_assert_eq!(r.payloads(), msgs);
        prop_assert_eq!(r.d.counters().total(), 0);
    }
}
