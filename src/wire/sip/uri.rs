//! URIs as SIP carries them (RFC 3261 §19.1, §25.1; RFC 3966 for `tel:`): a zero-copy
//! split into scheme, user, host, port, parameters and headers.
//!
//! Input is the Request-URI or the inside of a `name-addr`/`addr-spec`
//! ([`super::NameAddr`]); output borrows from it. Parts stay raw and %-escaped; the
//! accessors unescape on demand (RFC 3261 §19.1.4 compares unescaped). Unknown schemes
//! are kept (RFC 4475 unkscm, novelsc, unksm2) with everything after the `:` as `host`.

use std::borrow::Cow;
use std::net::IpAddr;

use super::lex::{self, from, split_once, sub};
use super::{Replaces, SipError};

/// A parsed URI. For `sip:`/`sips:`, `user` excludes any `:password`; for `tel:`, `user`
/// is the number and `host` is empty; for other schemes, `host` is the whole rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Uri<'a> {
    /// As written (compare with `eq_ignore_ascii_case`).
    pub scheme: &'a [u8],
    /// Raw user part, still %-escaped.
    pub user: Option<&'a [u8]>,
    /// Host as written; IPv6 references keep their brackets (see [`Uri::host_ip`]).
    pub host: &'a [u8],
    pub port: Option<u16>,
    /// Raw `uri-parameters` after the first `;` of the hostport (that `;` excluded).
    pub params: &'a [u8],
    /// Raw `headers` after the `?` (excluded), e.g. `Replaces=...&Require=replaces`.
    pub headers: &'a [u8],
}

/// The URI scheme, classified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other,
}

impl<'a> Uri<'a> {
    /// Parses a URI. Whitespace, control octets, `<`, `>` and `"` are rejected anywhere
    /// (RFC 4475 ltgtruri, lwsruri, badaspec); a `sip:`/`sips:` URI needs a host, and a
    /// port must fit 16 bits.
    pub fn parse(b: &'a [u8]) -> Result<Uri<'a>, SipError> {
        Uri::scan(b, false).map(|(uri, _, _)| uri)
    }

    /// [`Uri::parse`], also telling whether a `?` follows the first `@` (without an
    /// `@`: whether there is a `?` after the scheme at all), which in a `sip`/`sips`
    /// URI starts headers (RFC 3261 §19.1.1). The parse notes it anyway.
    pub(crate) fn parse_noting_question(b: &'a [u8]) -> Result<(Uri<'a>, bool), SipError> {
        Uri::scan(b, false).map(|(uri, _, question)| (uri, question))
    }

    /// The URI of a `<uri>` without looking for the `>` first: `b` is what follows the
    /// `<`, and the result is the URI before the first `>` with that `>`'s position,
    /// exactly as [`Uri::parse`] of the bytes before the first `>` would give it. An
    /// error says only that this short way failed (no `>`, or the URI before it is not
    /// acceptable); the caller then finds the `>` and calls [`Uri::parse`] for the
    /// verdict.
    pub(crate) fn parse_before_gt(b: &'a [u8]) -> Result<(Uri<'a>, usize), SipError> {
        Uri::scan(b, true).map(|(uri, gt, _)| (uri, gt))
    }

    /// [`Uri::parse`] of `b`, or with `to_gt` of `b` up to its first `>`; also returns
    /// where the URI ends and whether a `?` follows its first `@`.
    #[inline(always)]
    fn scan(b: &'a [u8], to_gt: bool) -> Result<(Uri<'a>, usize, bool), SipError> {
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ':'.
        let colon = b
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')))
            .ok_or(SipError::BadUri)?;
        let scheme = sub(b, 0, colon);
        let rest = from(b, colon + 1);
        if b.get(colon) != Some(&b':')
            || !scheme.first().is_some_and(u8::is_ascii_alphabetic)
            || rest.is_empty()
        {
            return Err(SipError::BadUri);
        }
        // One pass over the rest: reject forbidden octets and note the delimiters.
        let mut marks = Marks::default();
        let mut end = None;
        for (i, &c) in rest.iter().enumerate() {
            if lex::is_uri_special(c) {
                if lex::is_uri_forbidden(c) {
                    if to_gt && c == b'>' {
                        end = Some(i);
                        break;
                    }
                    return Err(SipError::BadUri);
                }
                marks.see(i, c);
            }
        }
        let rest = match end {
            Some(gt) => sub(rest, 0, gt),
            None if to_gt => return Err(SipError::BadHeader),
            None => rest,
        };
        // Where the URI ends in `b`.
        let len = colon + 1 + rest.len();
        if rest.is_empty() {
            return Err(SipError::BadUri);
        }
        let uri = match classify(scheme) {
            Scheme::Sip | Scheme::Sips => parse_sip(scheme, rest, &marks),
            Scheme::Tel => {
                let (number, params) = split_once(rest, b';');
                if number.is_empty() {
                    return Err(SipError::BadUri);
                }
                Ok(Uri {
                    scheme,
                    user: Some(number),
                    host: &[],
                    port: None,
                    params: params.unwrap_or_default(),
                    headers: &[],
                })
            }
            Scheme::Other => Ok(Uri {
                scheme,
                user: None,
                host: rest,
                port: None,
                params: &[],
                headers: &[],
            }),
        };
        let question = marks.question.is_some();
        uri.map(|uri| (uri, len, question))
    }

    /// The scheme, classified case-insensitively.
    pub fn scheme_kind(&self) -> Scheme {
        classify(self.scheme)
    }

    /// The user part with %-escapes decoded (RFC 4475 esc01, escnull: `%00` is a NUL
    /// byte, not a terminator). Borrows when there is nothing to decode.
    pub fn user_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        self.user.map(lex::unescape)
    }

    /// A URI parameter by name (case-insensitive): `Some(b"")` for a flag such as `lr`.
    /// The value is raw (still %-escaped).
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        lex::params(self.params)
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .map(|p| p.value.unwrap_or_default())
    }

    /// A URI header (`?name=value&...`) by name (case-insensitive, compared after
    /// unescaping), value %-unescaped: the `Replaces` of a Refer-To in an attended
    /// transfer (RFC 3891 §6, RFC 3515 §2.1).
    pub fn header(&self, name: &[u8]) -> Option<Cow<'a, [u8]>> {
        for h in self.headers.split(|&c| c == b'&') {
            let (hname, hvalue) = split_once(h, b'=');
            if lex::unescape(hname).eq_ignore_ascii_case(name) {
                return Some(lex::unescape(hvalue.unwrap_or_default()));
            }
        }
        None
    }

    /// The `Replaces` embedded in this URI's headers (attended transfer), owned when it
    /// had to be unescaped.
    pub fn replaces(&self) -> Option<Replaces<'a>> {
        match self.header(b"Replaces")? {
            Cow::Borrowed(v) => Replaces::parse(v),
            Cow::Owned(v) => Replaces::parse(&v).map(Replaces::into_owned),
        }
    }

    /// The host as an IP address, brackets of an IPv6 reference removed.
    pub fn host_ip(&self) -> Option<IpAddr> {
        let h = match (self.host.first(), self.host.last()) {
            (Some(b'['), Some(b']')) => sub(self.host, 1, self.host.len().saturating_sub(1)),
            _ => self.host,
        };
        std::str::from_utf8(h).ok()?.parse().ok()
    }
}

fn classify(scheme: &[u8]) -> Scheme {
    match scheme {
        [s, i, p] if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' => Scheme::Sip,
        [s, i, p, s2]
            if s | 0x20 == b's' && i | 0x20 == b'i' && p | 0x20 == b'p' && s2 | 0x20 == b's' =>
        {
            Scheme::Sips
        }
        [t, e, l] if t | 0x20 == b't' && e | 0x20 == b'e' && l | 0x20 == b'l' => Scheme::Tel,
        _ => Scheme::Other,
    }
}

/// Delimiter positions found by the single pass of [`Uri::parse`]. The user part may
/// hold `;`, `?` and `,` (RFC 3261 §25.1 `user-unreserved`; RFC 4475 semiuri, intmeth)
/// but never an unescaped `@`, so the first `@` ends it and the delimiters seen before
/// it are forgotten.
#[derive(Default)]
struct Marks {
    at: Option<usize>,
    /// First ':' before the '@' (user:password).
    user_colon: Option<usize>,
    /// First ';' or '?' after the '@' (or from the start without one).
    term: Option<usize>,
    /// First '?' after the '@'.
    question: Option<usize>,
}

impl Marks {
    #[inline]
    fn see(&mut self, i: usize, c: u8) {
        match c {
            b'@' if self.at.is_none() => {
                self.at = Some(i);
                self.term = None;
                self.question = None;
            }
            b':' if self.at.is_none() && self.user_colon.is_none() => self.user_colon = Some(i),
            b';' | b'?' => {
                if self.term.is_none() {
                    self.term = Some(i);
                }
                if c == b'?' && self.question.is_none() {
                    self.question = Some(i);
                }
            }
            _ => {}
        }
    }
}

/// `[userinfo "@"] hostport uri-parameters [headers]`, from the marks of one pass.
fn parse_sip<'a>(scheme: &'a [u8], rest: &'a [u8], m: &Marks) -> Result<Uri<'a>, SipError> {
    let (user, hp_start) = match m.at {
        Some(at) => {
            let user_end = m.user_colon.filter(|&c| c < at).unwrap_or(at);
            if user_end == 0 {
                return Err(SipError::BadUri);
            }
            (Some(sub(rest, 0, user_end)), at + 1)
        }
        None => (None, 0),
    };
    let hp_end = m.term.unwrap_or(rest.len());
    let (params, headers) = match (m.term, m.question) {
        (None, _) => (&[][..], &[][..]),
        (Some(t), Some(q)) if q == t => (&[][..], from(rest, q + 1)),
        (Some(t), Some(q)) => (sub(rest, t + 1, q), from(rest, q + 1)),
        (Some(t), None) => (from(rest, t + 1), &[][..]),
    };
    let (host, port) = split_hostport(sub(rest, hp_start, hp_end))?;
    Ok(Uri {
        scheme,
        user,
        host,
        port,
        params,
        headers,
    })
}

/// Splits `host[:port]`, accepting an IPv6 reference in brackets. The host must be
/// non-empty and made of hostname/IPv4 characters (`_` tolerated, seen in the field).
pub(crate) fn split_hostport(hp: &[u8]) -> Result<(&[u8], Option<u16>), SipError> {
    let (host, port) = if hp.first() == Some(&b'[') {
        let close = lex::find(hp, b']').ok_or(SipError::BadUri)?;
        let inner = sub(hp, 1, close);
        if inner.is_empty()
            || !inner
                .iter()
                .all(|&c| c.is_ascii_hexdigit() || c == b':' || c == b'.')
        {
            return Err(SipError::BadUri);
        }
        let after = from(hp, close + 1);
        let port = match after.split_first() {
            None => None,
            Some((b':', p)) => Some(p),
            Some(_) => return Err(SipError::BadUri),
        };
        (sub(hp, 0, close + 1), port)
    } else {
        // One pass: host characters up to an optional ':'.
        let end = hp
            .iter()
            .position(|&c| !lex::is_host_char(c))
            .unwrap_or(hp.len());
        let port = match hp.get(end) {
            None => None,
            Some(b':') => Some(from(hp, end + 1)),
            Some(_) => return Err(SipError::BadUri),
        };
        if end == 0 {
            return Err(SipError::BadUri);
        }
        (sub(hp, 0, end), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(
            lex::parse_u32(p)
                .and_then(|n| u16::try_from(n).ok())
                .ok_or(SipError::BadUri)?,
        ),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_uri_parts() {
        let u =
            Uri::parse(b"sip:alice:secret@pbx.example.com:5070;transport=tcp;lr?Subject=hi&X=%41")
                .unwrap();
        assert_eq!(u.scheme, b"sip");
        assert_eq!(u.scheme_kind(), Scheme::Sip);
        assert_eq!(u.user, Some(&b"alice"[..]));
        assert_eq!(u.host, b"pbx.example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(u.params, b"transport=tcp;lr");
        assert_eq!(u.param(b"TRANSPORT"), Some(&b"tcp"[..]));
        assert_eq!(u.param(b"lr"), Some(&b""[..]));
        assert_eq!(u.param(b"maddr"), None);
        assert_eq!(u.headers, b"Subject=hi&X=%41");
        assert_eq!(u.header(b"x").as_deref(), Some(&b"A"[..]));
        assert_eq!(u.header(b"nope"), None);
    }

    #[test]
    fn headers_without_params() {
        let u = Uri::parse(b"sip:h.example.com?a=b").unwrap();
        assert_eq!(u.user, None);
        assert_eq!(u.host, b"h.example.com");
        assert_eq!(u.params, b"");
        assert_eq!(u.headers, b"a=b");
    }

    #[test]
    fn user_part_may_hold_semicolons_and_escapes() {
        // RFC 4475 semiuri and esc01.
        let u = Uri::parse(b"sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user, Some(&b"user;par=u%40example.net"[..]));
        assert_eq!(u.host, b"example.com");
        assert_eq!(u.params, b"");
        let u = Uri::parse(b"sip:sips%3Auser%40example.com@example.net").unwrap();
        assert_eq!(
            u.user_unescaped().as_deref(),
            Some(&b"sips:user@example.com"[..])
        );
        let u = Uri::parse(b"sip:null-%00-null@example.com").unwrap();
        assert_eq!(u.user_unescaped().as_deref(), Some(&b"null-\0-null"[..]));
    }

    #[test]
    fn ipv6_hosts() {
        let u = Uri::parse(b"sip:[2001:db8::10]:5060").unwrap();
        assert_eq!(u.host, b"[2001:db8::10]");
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.host_ip(), "2001:db8::10".parse().ok());
        let u = Uri::parse(b"sip:1001@192.0.2.7").unwrap();
        assert_eq!(u.host_ip(), "192.0.2.7".parse().ok());
        assert!(Uri::parse(b"sip:[2001:db8::10").is_err());
        assert!(Uri::parse(b"sip:[2001:db8::10]x").is_err());
    }

    #[test]
    fn tel_and_unknown_schemes_are_kept() {
        let u = Uri::parse(b"tel:+1-201-555-0123;phone-context=example.com").unwrap();
        assert_eq!(u.scheme_kind(), Scheme::Tel);
        assert_eq!(u.user, Some(&b"+1-201-555-0123"[..]));
        assert_eq!(u.param(b"phone-context"), Some(&b"example.com"[..]));
        let u = Uri::parse(b"soap.beep://192.0.2.103:3002").unwrap();
        assert_eq!(u.scheme, b"soap.beep");
        assert_eq!(u.host, b"//192.0.2.103:3002");
        let u = Uri::parse(b"nobodyKnowsThisScheme:totallyopaquecontent").unwrap();
        assert_eq!(u.scheme_kind(), Scheme::Other);
    }

    #[test]
    fn malformed_uris_are_rejected() {
        for bad in [
            &b""[..],
            b"<sip:user@example.com>",
            b"sip:user@example.com; lr",
            b" sip:a@b",
            b"sip:",
            b"sip:@host",
            b"sip:user@",
            b"sip:user@host:99999",
            b"sip:user@host:5x",
            b"sip:user@ho st",
            b"1sip:user@host",
            b"nocolon",
            b"sip:a@b\"c",
        ] {
            assert_eq!(
                Uri::parse(bad),
                Err(SipError::BadUri),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// What `NameAddr::parse` did before [`Uri::parse_before_gt`]: find the first `>`,
    /// then parse what is before it.
    fn before_gt_the_long_way(b: &[u8]) -> Option<(Uri<'_>, usize)> {
        let gt = lex::find(b, b'>')?;
        Uri::parse(sub(b, 0, gt)).ok().map(|u| (u, gt))
    }

    #[test]
    fn uri_before_the_first_gt() {
        for b in [
            &b"sip:a@b>;tag=1"[..],
            b"sip:a@b;lr>",
            b"sips:[2001:db8::1]:5061;transport=tls?x=1>",
            b"tel:+123;p=1>x>",
            b"urn:service:sos>",
            b"sip:a@b",
            b"sip:>",
            b"sip:a b>",
            b"sip:a@b>x",
            b"s>p:a@b>",
            b">",
            b"",
            b"sip:a@b\">",
            b"sip:a@host:99999>",
        ] {
            assert_eq!(
                Uri::parse_before_gt(b).ok(),
                before_gt_the_long_way(b),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        assert_eq!(
            Uri::parse_before_gt(b"sip:a@b;lr>;tag=1").map(|(u, gt)| (u.params, gt)),
            Ok((&b"lr"[..], 10))
        );
    }

    proptest::proptest! {
        #[test]
        fn uri_before_gt_is_the_uri_before_the_first_gt(
            b in "(sip|sips|tel|x)?:?[a-z0-9@:;?=&%\\[\\]<>\" .-]{0,24}"
        ) {
            proptest::prop_assert_eq!(
                Uri::parse_before_gt(b.as_bytes()).ok(),
                before_gt_the_long_way(b.as_bytes())
            );
        }
    }

    #[test]
    fn escaped_replaces_in_refer_to() {
        let u = Uri::parse(b"sip:96000@pbx?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2").unwrap();
        assert_eq!(
            u.header(b"replaces").as_deref(),
            Some(&b"abc@h;to-tag=1;from-tag=2"[..])
        );
        let r = u.replaces().unwrap();
        assert_eq!(&*r.call_id, b"abc@h");
        assert_eq!(&*r.to_tag, b"1");
        assert_eq!(&*r.from_tag, b"2");
        assert!(!r.early_only);
    }
}
