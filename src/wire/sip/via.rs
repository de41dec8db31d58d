//! One `via-parm` of a `Via` header (RFC 3261 §20.42, §25.1):
//! `SIP / 2.0 / transport sent-by ;params`.
//!
//! Input is one comma-separated element of a Via header value (already unfolded by
//! [`super::SipMessage`]); output borrows from it. LWS is allowed around every `/`,
//! `:`, `;` and `=` (RFC 4475 wsinv); unknown transports are kept (transports).

use super::lex::{self, from, sub, trim};
use super::uri::split_hostport;
use super::SipError;

/// A parsed `via-parm`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Via<'a> {
    /// As written: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `UNKNOWN`, ...
    pub transport: &'a [u8],
    /// `host[:port]`, trimmed.
    pub sent_by: &'a [u8],
    /// The `branch` parameter value (transaction id when it starts with `z9hG4bK`,
    /// RFC 3261 §8.1.1.7; RFC 4475 badbranch is exactly the cookie).
    pub branch: Option<&'a [u8]>,
    /// Parameters after the first `;` (excluded), trimmed.
    pub params: &'a [u8],
}

/// The RFC 3261 §8.1.1.7 magic cookie.
pub const BRANCH_COOKIE: &[u8] = b"z9hG4bK";

impl<'a> Via<'a> {
    /// Parses one `via-parm`.
    pub fn parse(b: &'a [u8]) -> Result<Via<'a>, SipError> {
        let b = trim(b);
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport; nearly
        // every Via starts with exactly `SIP/2.0/`, which the general walk below accepts
        // with the same transport after it.
        let rest = match b.strip_prefix(b"SIP/2.0/") {
            Some(rest) => rest,
            None => {
                let (name, rest) = token_then(b)?;
                if !name.eq_ignore_ascii_case(b"SIP") {
                    return Err(SipError::BadVia);
                }
                let rest = slash(rest)?;
                let (version, rest) = token_then(rest)?;
                if version.is_empty() {
                    return Err(SipError::BadVia);
                }
                slash(rest)?
            }
        };
        let (transport, rest) = token_then(rest)?;
        if transport.is_empty() || !rest.first().copied().is_some_and(lex::is_ws) {
            return Err(SipError::BadVia);
        }
        let (sent_by, params) = lex::split_once(rest, b';');
        let sent_by = trim(sent_by);
        if sent_by.is_empty() {
            return Err(SipError::BadVia);
        }
        // Validate the parameters and find the branch in one pass.
        let (params, branch) = match params.map(trim) {
            None => (&[][..], None),
            Some(p) => (p, lex::scan_params(p, b"branch").ok_or(SipError::BadVia)?),
        };
        let via = Via {
            transport,
            sent_by,
            branch,
            params,
        };
        if !is_plain_host_port(sent_by) {
            via.host_port().map_err(|_| SipError::BadVia)?;
        }
        Ok(via)
    }

    /// A Via parameter by name (case-insensitive): `received`, `rport`, `maddr`, ...
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        lex::param(self.params, name)
    }

    /// True when the branch is the RFC 3261 magic cookie followed by an id; otherwise
    /// RFC 2543 transaction matching applies (standards §1.2, §7.3: RFC 4475 badbranch
    /// is the bare cookie).
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch
            .is_some_and(|b| b.len() > BRANCH_COOKIE.len() && b.starts_with(BRANCH_COOKIE))
    }

    /// The sent-by host (IPv6 references keep their brackets) and port.
    pub fn host_port(&self) -> Result<(&'a [u8], Option<u16>), SipError> {
        let (h, p) = match self.sent_by.iter().rposition(|&c| c == b':') {
            // A ':' inside an IPv6 reference is not the port separator.
            Some(i) if !from(self.sent_by, i).contains(&b']') => (
                trim(sub(self.sent_by, 0, i)),
                Some(trim(from(self.sent_by, i + 1))),
            ),
            _ => (self.sent_by, None),
        };
        let (host, _) = split_hostport(h)?;
        let port = match p {
            None => None,
            Some(p) => Some(
                lex::parse_u32(p)
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or(SipError::BadVia)?,
            ),
        };
        Ok((host, port))
    }
}

/// True for the sent-by nearly every Via carries, `host` or `host:port` with hostname or
/// IPv4 characters and a port of 1 to 5 digits up to 65535: one pass, where
/// [`Via::host_port`] looks for the last `:`, trims both sides and splits the host again.
/// Every sent-by accepted here is one `host_port` accepts; anything else (IPv6
/// references, whitespace around the `:`, a port too long) is left to it.
fn is_plain_host_port(sent_by: &[u8]) -> bool {
    let host_len = sent_by
        .iter()
        .position(|&c| !lex::is_host_char(c))
        .unwrap_or(sent_by.len());
    if host_len == 0 {
        return false;
    }
    match sent_by.get(host_len) {
        None => true,
        Some(b':') => {
            let port = from(sent_by, host_len + 1);
            port.len() <= 5 && lex::parse_u32(port).is_some_and(|p| p <= u32::from(u16::MAX))
        }
        Some(_) => false,
    }
}

/// A token after optional LWS, and the rest after it.
fn token_then(b: &[u8]) -> Result<(&[u8], &[u8]), SipError> {
    let b = lex::trim_start(b);
    let n = b
        .iter()
        .position(|&c| !lex::is_token_char(c))
        .unwrap_or(b.len());
    Ok((sub(b, 0, n), from(b, n)))
}

/// Skips LWS, a `/`, and returns the rest.
fn slash(b: &[u8]) -> Result<&[u8], SipError> {
    match lex::trim_start(b).split_first() {
        Some((b'/', rest)) => Ok(rest),
        _ => Err(SipError::BadVia),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_via() {
        let v = Via::parse(b"SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKkdjuw;rport").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.sent_by, b"192.0.2.1:5060");
        assert_eq!(v.branch, Some(&b"z9hG4bKkdjuw"[..]));
        assert_eq!(v.params, b"branch=z9hG4bKkdjuw;rport");
        assert_eq!(v.param(b"rport"), Some(&b""[..]));
        assert!(v.has_rfc3261_branch());
        assert_eq!(v.host_port(), Ok((&b"192.0.2.1"[..], Some(5060))));
    }

    #[test]
    fn lws_everywhere() {
        // RFC 4475 wsinv, after unfolding.
        let v = Via::parse(b"SIP  /   2.0   /UDP      192.0.2.2;branch=390skdjuw").unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.sent_by, b"192.0.2.2");
        assert!(!v.has_rfc3261_branch());
        let v = Via::parse(b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=   z9hG4bK30239")
            .unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.sent_by, b"192.168.255.111");
        assert_eq!(v.branch, Some(&b"z9hG4bK30239"[..]));
        let v = Via::parse(b"SIP/2.0/TCP [2001:db8::1] : 5061 ;branch=z9hG4bKx").unwrap();
        assert_eq!(v.host_port(), Ok((&b"[2001:db8::1]"[..], Some(5061))));
    }

    #[test]
    fn the_usual_prefix_and_the_general_walk_agree() {
        // Same transport and sent-by whether the value starts with exactly `SIP/2.0/`
        // (the short way) or is spelled another accepted way (the general walk).
        for (usual, other) in [
            (
                &b"SIP/2.0/UDP h:5060;branch=z9hG4bK1"[..],
                &b"sip/2.0/UDP h:5060;branch=z9hG4bK1"[..],
            ),
            (b"SIP/2.0/ tcp\th", b"SIP / 2.0 / tcp\th"),
            (
                b"SIP/2.0/WS x.invalid;rport",
                b"SIP/02.0/WS x.invalid;rport",
            ),
        ] {
            let (a, b) = (Via::parse(usual).unwrap(), Via::parse(other).unwrap());
            assert_eq!(
                (a.transport, a.sent_by, a.branch),
                (b.transport, b.sent_by, b.branch)
            );
        }
        for bad in [
            &b"SIP/2.0/"[..],
            b"SIP/2.0/ ",
            b"SIP/2.0//UDP h",
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP;h",
        ] {
            assert_eq!(
                Via::parse(bad),
                Err(SipError::BadVia),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn no_branch() {
        let v = Via::parse(b"SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").unwrap();
        assert_eq!(v.branch, Some(BRANCH_COOKIE));
        assert!(!v.has_rfc3261_branch());
        let v = Via::parse(b"SIP/2.0/UDP iftgw.example.com").unwrap();
        assert_eq!(v.branch, None);
        assert_eq!(v.params, b"");
        assert!(!v.has_rfc3261_branch());
    }

    #[test]
    fn plain_sent_by_takes_the_short_check_only_when_host_port_agrees() {
        for sent_by in [
            &b"10.20.0.5"[..],
            b"10.20.0.5:5060",
            b"pbx_1.example.com:0",
            b"h:65535",
            b"h:00065535",
            b"h:65536",
            b"h:",
            b"h::5060",
            b"h:5:5060",
            b":5060",
            b"[2001:db8::1]:5060",
            b"h : 5060",
            b"h:50 60",
            b"h:+5060",
            b"h\xd5:5060",
        ] {
            let what = String::from_utf8_lossy(sent_by);
            let via = Via {
                transport: b"UDP",
                sent_by,
                branch: None,
                params: b"",
            };
            if is_plain_host_port(sent_by) {
                assert!(via.host_port().is_ok(), "{what}");
            }
            let mut raw = b"SIP/2.0/UDP ".to_vec();
            raw.extend_from_slice(sent_by);
            assert_eq!(Via::parse(&raw).is_ok(), via.host_port().is_ok(), "{what}");
        }
        assert!(is_plain_host_port(b"10.20.0.5:5060"));
        assert!(is_plain_host_port(b"pbx.example.com"));
        assert!(!is_plain_host_port(b"h:00065535"));
        assert!(!is_plain_host_port(b"h:65536"));
    }

    proptest::proptest! {
        #[test]
        fn short_check_never_accepts_what_host_port_rejects(
            sent_by in "[a0.:_\\[\\] +5-]{0,12}|[a-z.]{1,4}:[0-9]{0,7}"
        ) {
            let via = Via { transport: b"UDP", sent_by: sent_by.as_bytes(), branch: None, params: b"" };
            if is_plain_host_port(sent_by.as_bytes()) {
                proptest::prop_assert!(via.host_port().is_ok());
            }
        }
    }

    #[test]
    fn malformed_vias() {
        for bad in [
            &b""[..],
            b"SIP/2.0/UDP",
            b"SIP/2.0/UDP192.0.2.1",
            b"SIP/2.0 UDP 192.0.2.1",
            b"HTTP/1.1/TCP 192.0.2.1",
            b"SIP/2.0/UDP 192.0.2.15;;",
            b"SIP/2.0/UDP 192.0.2.15;",
            b"SIP/2.0/UDP ;branch=x",
            b"SIP/2.0/UDP a b;branch=x",
            b"SIP/2.0/UDP host:99999",
            b"SIP/2.0/UDP ho<st",
        ] {
            assert_eq!(
                Via::parse(bad),
                Err(SipError::BadVia),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
