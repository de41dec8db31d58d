//! The link layer: from a captured frame to the IP packet it carries.
//!
//! Input is one frame as the capture file or interface gives it, with the file's (or
//! pcapng interface's) link type. Output is the network-layer bytes and the IP version
//! they claim, or the [`DecodeErrorKind`] that says why there is no IP packet. Handles
//! Ethernet II with any stack of 802.1Q / 802.1ad (QinQ) tags, MPLS label stacks, Linux
//! cooked capture v1 (SLL) and v2 (SLL2), raw IP and BSD null/loopback headers.

use super::bytes::{be16, be32, le32, u8_at};
use super::counters::DecodeErrorKind;
use super::LinkType;

/// The IP version at the start of [`L3::bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IpVersion {
    V4,
    V6,
}

/// The network-layer part of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct L3<'a> {
    pub version: IpVersion,
    pub bytes: &'a [u8],
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
/// Pre-standard QinQ tag some switches still emit.
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MULTICAST: u16 = 0x8848;

/// More tags than any real network stacks; past this the frame is refused rather than
/// walked (bounded work per frame).
const MAX_TAGS: usize = 8;

const ETHERNET_HEADER: usize = 14;
const SLL_HEADER: usize = 16;
const SLL2_HEADER: usize = 20;
const NULL_HEADER: usize = 4;

/// Strips the link header of `frame` as captured on a link of type `link`.
pub(crate) fn strip(link: LinkType, frame: &[u8]) -> Result<L3<'_>, DecodeErrorKind> {
    match link {
        LinkType::Ethernet => {
            let ethertype = be16(frame, 12).ok_or(DecodeErrorKind::Truncated)?;
            let rest = frame
                .get(ETHERNET_HEADER..)
                .ok_or(DecodeErrorKind::Truncated)?;
            by_ethertype(ethertype, rest)
        }
        // SLL: packet type, ARPHRD type, address length, 8 address bytes, protocol.
        LinkType::LinuxSll => {
            let protocol = be16(frame, 14).ok_or(DecodeErrorKind::Truncated)?;
            let rest = frame.get(SLL_HEADER..).ok_or(DecodeErrorKind::Truncated)?;
            by_ethertype(protocol, rest)
        }
        // SLL2: protocol first, then reserved, interface index, ARPHRD, packet type,
        // address length and 8 address bytes.
        LinkType::LinuxSll2 => {
            let protocol = be16(frame, 0).ok_or(DecodeErrorKind::Truncated)?;
            let rest = frame.get(SLL2_HEADER..).ok_or(DecodeErrorKind::Truncated)?;
            by_ethertype(protocol, rest)
        }
        LinkType::RawIp => by_version_nibble(frame),
        LinkType::Ipv4 => Ok(L3 {
            version: IpVersion::V4,
            bytes: frame,
        }),
        LinkType::Ipv6 => Ok(L3 {
            version: IpVersion::V6,
            bytes: frame,
        }),
        // The address family is in the byte order of the host that captured for NULL,
        // in network order for LOOP; reading both orders covers either.
        LinkType::Null | LinkType::Loop => {
            let le = le32(frame, 0).ok_or(DecodeErrorKind::Truncated)?;
            let be = be32(frame, 0).ok_or(DecodeErrorKind::Truncated)?;
            let rest = frame.get(NULL_HEADER..).ok_or(DecodeErrorKind::Truncated)?;
            match bsd_family(le).or_else(|| bsd_family(be)) {
                Some(version) => Ok(L3 {
                    version,
                    bytes: rest,
                }),
                None => Err(DecodeErrorKind::UnsupportedEthertype),
            }
        }
    }
}

/// AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD)
/// or 30 (macOS), and a capture file may come from any of them.
fn bsd_family(af: u32) -> Option<IpVersion> {
    match af {
        2 => Some(IpVersion::V4),
        10 | 24 | 28 | 30 => Some(IpVersion::V6),
        _ => None,
    }
}

fn by_version_nibble(bytes: &[u8]) -> Result<L3<'_>, DecodeErrorKind> {
    let first = u8_at(bytes, 0).ok_or(DecodeErrorKind::Truncated)?;
    let version = match first >> 4 {
        4 => IpVersion::V4,
        6 => IpVersion::V6,
        _ => return Err(DecodeErrorKind::BadIpHeader),
    };
    Ok(L3 { version, bytes })
}

/// Follows VLAN tags and MPLS labels from `ethertype` down to an IP header.
fn by_ethertype(mut ethertype: u16, mut rest: &[u8]) -> Result<L3<'_>, DecodeErrorKind> {
    for _ in 0..=MAX_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => {
                return Ok(L3 {
                    version: IpVersion::V4,
                    bytes: rest,
                })
            }
            ETHERTYPE_IPV6 => {
                return Ok(L3 {
                    version: IpVersion::V6,
                    bytes: rest,
                })
            }
            // 802.1Q / 802.1ad tag: 2 bytes TCI, then the inner ethertype.
            ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD => {
                ethertype = be16(rest, 2).ok_or(DecodeErrorKind::Truncated)?;
                rest = rest.get(4..).ok_or(DecodeErrorKind::Truncated)?;
            }
            ETHERTYPE_MPLS | ETHERTYPE_MPLS_MULTICAST => return below_mpls(rest),
            _ => return Err(DecodeErrorKind::UnsupportedEthertype),
        }
    }
    Err(DecodeErrorKind::UnsupportedEthertype)
}

/// MPLS (RFC 3032) has no "next protocol" field: after the label with the bottom-of-stack
/// bit, the first nibble tells IPv4 from IPv6 (anything else, e.g. a pseudowire, is
/// refused).
fn below_mpls(mut rest: &[u8]) -> Result<L3<'_>, DecodeErrorKind> {
    for _ in 0..MAX_TAGS {
        let label = be32(rest, 0).ok_or(DecodeErrorKind::Truncated)?;
        rest = rest.get(4..).ok_or(DecodeErrorKind::Truncated)?;
        if label & 0x100 != 0 {
            return by_version_nibble(rest).map_err(|e| match e {
                DecodeErrorKind::BadIpHeader => DecodeErrorKind::UnsupportedEthertype,
                other => other,
            });
        }
    }
    Err(DecodeErrorKind::UnsupportedEthertype)
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP4: [u8; 4] = [0x45, 0, 0, 20];
    const IP6: [u8; 4] = [0x60, 0, 0, 0];

    fn eth(ethertype: &[u8], rest: &[u8]) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        f.extend_from_slice(ethertype);
        f.extend_from_slice(rest);
        f
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        let f = eth(&[0x08, 0x00], &IP4);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Ok(L3 {
                version: IpVersion::V4,
                bytes: &IP4
            })
        );
        let f = eth(&[0x86, 0xdd], &IP6);
        assert_eq!(
            strip(LinkType::Ethernet, &f).map(|l| l.version),
            Ok(IpVersion::V6)
        );
    }

    #[test]
    fn single_vlan_tag() {
        let f = eth(&[0x81, 0x00], &[0x00, 0x64, 0x08, 0x00, 0x45, 0, 0, 20]);
        assert_eq!(strip(LinkType::Ethernet, &f).map(|l| l.bytes), Ok(&IP4[..]));
    }

    #[test]
    fn qinq_stacked_tags() {
        let f = eth(
            &[0x88, 0xa8],
            &[
                0x00, 0x0a, 0x81, 0x00, 0x00, 0x64, 0x86, 0xdd, 0x60, 0, 0, 0,
            ],
        );
        let l3 = strip(LinkType::Ethernet, &f);
        assert_eq!(
            l3.map(|l| (l.version, l.bytes)),
            Ok((IpVersion::V6, &IP6[..]))
        );
    }

    #[test]
    fn too_many_tags_are_refused() {
        let mut rest = Vec::new();
        for _ in 0..20 {
            rest.extend_from_slice(&[0x00, 0x01, 0x81, 0x00]);
        }
        let f = eth(&[0x81, 0x00], &rest);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Err(DecodeErrorKind::UnsupportedEthertype)
        );
    }

    #[test]
    fn vlan_tag_cut_short_is_truncated() {
        let f = eth(&[0x81, 0x00], &[0x00, 0x64, 0x08]);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Err(DecodeErrorKind::Truncated)
        );
    }

    #[test]
    fn arp_and_llc_are_not_ip() {
        let f = eth(&[0x08, 0x06], &[0; 28]);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Err(DecodeErrorKind::UnsupportedEthertype)
        );
        let f = eth(&[0x00, 0x26], &[0x42; 38]);
        assert_eq!(
            strip(LinkType::Ethernet, &f),
            Err(DecodeErrorKind::UnsupportedEthertype)
        );
    }

    #[test]
    fn mpls_bottom_of_stack_then_ip() {
        let f = eth(
            &[0x88, 0x47],
            &[
                0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40, 0x45, 0, 0, 20,
            ],
        );
        assert_eq!(strip(LinkType::Ethernet, &f).map(|l| l.bytes), Ok(&IP4[..]));
    }

    #[test]
    fn linux_cooked_v1() {
        // outgoing (4), ARPHRD_ETHER (1), 6 address bytes padded to 8, IPv4.
        let mut f = vec![0x00, 0x04, 0x00, 0x01, 0x00, 0x06];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&IP4);
        assert_eq!(strip(LinkType::LinuxSll, &f).map(|l| l.bytes), Ok(&IP4[..]));
        assert_eq!(
            strip(LinkType::LinuxSll, &f[..15]),
            Err(DecodeErrorKind::Truncated)
        );
    }

    #[test]
    fn linux_cooked_v1_with_vlan_inside() {
        let mut f = vec![0x00, 0x00, 0x00, 0x01, 0x00, 0x06, 2, 0, 0, 0, 0, 1, 0, 0];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x08, 0x00]);
        f.extend_from_slice(&IP4);
        assert_eq!(strip(LinkType::LinuxSll, &f).map(|l| l.bytes), Ok(&IP4[..]));
    }

    #[test]
    fn linux_cooked_v2() {
        // protocol, reserved, ifindex 3, ARPHRD_ETHER, host (0), address length 6.
        let mut f = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 3, 0x00, 0x01, 0x00, 0x06];
        f.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(&IP6);
        let l3 = strip(LinkType::LinuxSll2, &f);
        assert_eq!(
            l3.map(|l| (l.version, l.bytes)),
            Ok((IpVersion::V6, &IP6[..]))
        );
        assert_eq!(
            strip(LinkType::LinuxSll2, &f[..19]),
            Err(DecodeErrorKind::Truncated)
        );
    }

    #[test]
    fn raw_ip_by_version_nibble() {
        assert_eq!(
            strip(LinkType::RawIp, &IP6).map(|l| l.version),
            Ok(IpVersion::V6)
        );
        assert_eq!(
            strip(LinkType::RawIp, &IP4).map(|l| l.version),
            Ok(IpVersion::V4)
        );
        assert_eq!(
            strip(LinkType::RawIp, &[0x55]),
            Err(DecodeErrorKind::BadIpHeader)
        );
        assert_eq!(strip(LinkType::RawIp, &[]), Err(DecodeErrorKind::Truncated));
    }

    #[test]
    fn bsd_null_in_either_byte_order_and_loop() {
        let mut f = vec![2, 0, 0, 0];
        f.extend_from_slice(&IP4);
        assert_eq!(
            strip(LinkType::Null, &f).map(|l| l.version),
            Ok(IpVersion::V4)
        );
        let mut f = vec![0, 0, 0, 30];
        f.extend_from_slice(&IP6);
        assert_eq!(
            strip(LinkType::Loop, &f).map(|l| l.version),
            Ok(IpVersion::V6)
        );
        let f = [7, 0, 0, 0, 1];
        assert_eq!(
            strip(LinkType::Null, &f),
            Err(DecodeErrorKind::UnsupportedEthertype)
        );
    }
}
