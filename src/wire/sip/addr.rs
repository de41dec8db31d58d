//! Address headers (`From`, `To`, `Contact`, `Refer-To`, `Referred-By`,
//! `P-Asserted-Identity`, ...): one `name-addr` or `addr-spec` plus header parameters
//! (RFC 3261 §20.10, §25.1).
//!
//! Input is one header value (one comma-separated element for list headers); output
//! borrows from it. Display names stay raw bytes: quoted ones may hold any octet (NUL,
//! BEL and DEL in RFC 4475 intmeth; GBK or UTF-8 names in the field).

use std::borrow::Cow;

use super::lex::{self, from, sub, trim};
use super::{SipError, Uri};

/// A `name-addr` (`"Display" <uri>;params`) or bare `addr-spec` (`uri;params`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NameAddr<'a> {
    /// The display name without quotes, raw (quoted-pair escapes kept). `None` when
    /// absent; `Some(b"")` for `"" <uri>`.
    pub display: Option<&'a [u8]>,
    pub uri: Uri<'a>,
    /// Header parameters after the URI, after their first `;` (excluded), trimmed.
    pub params: &'a [u8],
    /// The `tag` parameter as [`NameAddr::param`] finds it in `params`, taken during
    /// the validation pass over `params` so that [`NameAddr::tag`] (read on every
    /// message) does not scan them again. A function of `params`: equality and hashing
    /// are unchanged by it.
    tag: Option<&'a [u8]>,
}

// By hand so that the cached tag stays out of it: the same text as before it existed.
impl std::fmt::Debug for NameAddr<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameAddr")
            .field("display", &self.display)
            .field("uri", &self.uri)
            .field("params", &self.params)
            .finish()
    }
}

impl<'a> NameAddr<'a> {
    /// Parses one address. In a bare `addr-spec` the URI ends at the first `;`, so
    /// what follows are header parameters (RFC 3261 §20.10), and a URI with `?` headers
    /// must use `<>` (RFC 4475 regbadct). Inside `<>` no whitespace is allowed (badaspec);
    /// an unquoted display name is tokens and whitespace (baddn), non-ASCII octets being
    /// tolerated since phones send unquoted GBK/UTF-8 names.
    pub fn parse(b: &'a [u8]) -> Result<NameAddr<'a>, SipError> {
        let b = trim(b);
        let (display, rest) = if b.first() == Some(&b'"') {
            let n = lex::quoted_len(b).ok_or(SipError::UnterminatedQuote)?;
            let rest = lex::trim_start(from(b, n));
            if rest.first() != Some(&b'<') {
                return Err(SipError::BadHeader);
            }
            (Some(sub(b, 1, n - 1)), rest)
        } else {
            match lex::find(b, b'<') {
                Some(lt) => {
                    let d = trim(sub(b, 0, lt));
                    if !d
                        .iter()
                        .all(|&c| lex::is_token_char(c) || lex::is_ws(c) || c >= 0x80)
                    {
                        return Err(SipError::BadHeader);
                    }
                    (if d.is_empty() { None } else { Some(d) }, from(b, lt))
                }
                None => return parse_addr_spec(b),
            }
        };
        // `rest` starts with '<'. The URI is parsed up to the first '>' in one pass;
        // only when that fails is the '>' looked for, for the error of the general way.
        let inner = from(rest, 1);
        let (uri, gt) = match Uri::parse_before_gt(inner) {
            Ok(found) => found,
            Err(_) => {
                let gt = lex::find(inner, b'>').ok_or(SipError::BadHeader)?;
                (Uri::parse(sub(inner, 0, gt))?, gt)
            }
        };
        let after = lex::trim_start(from(inner, gt + 1));
        let (params, tag) = match after.split_first() {
            None => (&[][..], None),
            Some((b';', p)) => {
                let p = trim(p);
                (p, lex::scan_params(p, b"tag").ok_or(SipError::BadHeader)?)
            }
            Some(_) => return Err(SipError::BadHeader),
        };
        Ok(NameAddr {
            display,
            uri,
            params,
            tag,
        })
    }

    /// An address from parts already validated by [`NameAddr::parse`], `tag` being
    /// what it found in `params` (for views rebuilt from stored offsets).
    pub(crate) fn from_parts(
        display: Option<&'a [u8]>,
        uri: Uri<'a>,
        params: &'a [u8],
        tag: Option<&'a [u8]>,
    ) -> NameAddr<'a> {
        NameAddr {
            display,
            uri,
            params,
            tag,
        }
    }

    /// The `tag` value as parsing found it (`Some(b"")` for an empty or flag `tag`).
    pub(crate) fn raw_tag(&self) -> Option<&'a [u8]> {
        self.tag
    }

    /// A header parameter by name (case-insensitive): `Some(b"")` for a flag, the inside
    /// of the quotes for a quoted value.
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        lex::param(self.params, name)
    }

    /// The `tag` parameter; `None` when absent or empty (RFC 2543 peers, RFC 4475
    /// inv2543).
    pub fn tag(&self) -> Option<&'a [u8]> {
        self.tag.filter(|t| !t.is_empty())
    }

    /// The display name with quoted-pair escapes (`\"`, `\\`) resolved. Borrows when
    /// there is nothing to resolve. Bytes are returned as they are (GBK stays GBK).
    pub fn display_unescaped(&self) -> Option<Cow<'a, [u8]>> {
        let d = self.display?;
        if lex::find(d, b'\\').is_none() {
            return Some(Cow::Borrowed(d));
        }
        let mut out = Vec::with_capacity(d.len());
        let mut it = d.iter();
        while let Some(&c) = it.next() {
            if c == b'\\' {
                if let Some(&n) = it.next() {
                    out.push(n);
                    continue;
                }
            }
            out.push(c);
        }
        Some(Cow::Owned(out))
    }
}

fn parse_addr_spec(b: &[u8]) -> Result<NameAddr<'_>, SipError> {
    let (uri, params) = lex::split_once(b, b';');
    let uri = Uri::parse(trim(uri))?;
    if !uri.headers.is_empty() || lex::find(uri.host, b'?').is_some() {
        return Err(SipError::BadHeader);
    }
    let (params, tag) = match params.map(trim) {
        None => (&[][..], None),
        Some(p) => (p, lex::scan_params(p, b"tag").ok_or(SipError::BadHeader)?),
    };
    Ok(NameAddr {
        display: None,
        uri,
        params,
        tag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_display_name_with_escapes() {
        let a = NameAddr::parse(
            br#""J Rosenberg \\\""       <sip:jdrosen@example.com>  ;  tag = 98asjd8"#,
        )
        .unwrap();
        assert_eq!(a.display, Some(&br#"J Rosenberg \\\""#[..]));
        assert_eq!(
            a.display_unescaped().as_deref(),
            Some(&br#"J Rosenberg \""#[..])
        );
        assert_eq!(a.uri.user, Some(&b"jdrosen"[..]));
        assert_eq!(a.tag(), Some(&b"98asjd8"[..]));
    }

    #[test]
    fn unquoted_display_names() {
        // RFC 4475 lwsdisp: no space before '<'.
        let a = NameAddr::parse(b"caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(a.display, Some(&b"caller"[..]));
        assert_eq!(a.tag(), Some(&b"323"[..]));
        let a =
            NameAddr::parse(b"token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(a.display, Some(&b"token1~` token2'+_ token3*%!.-"[..]));
        // RFC 4475 baddn: a comma is not a token character.
        assert_eq!(
            NameAddr::parse(b"Bell, Alexander <sip:a.g.bell@example.com>;tag=43"),
            Err(SipError::BadHeader)
        );
    }

    #[test]
    fn gbk_display_names_stay_bytes() {
        // "张三" in GBK, quoted and unquoted.
        let a = NameAddr::parse(b"\"\xd5\xc5\xc8\xfd\" <sip:1001@pbx>;tag=a").unwrap();
        assert_eq!(a.display, Some(&b"\xd5\xc5\xc8\xfd"[..]));
        let a = NameAddr::parse(b"\xd5\xc5\xc8\xfd <sip:1001@pbx>").unwrap();
        assert_eq!(a.display, Some(&b"\xd5\xc5\xc8\xfd"[..]));
        // A GBK trail byte 0x5C just before the closing quote.
        let a = NameAddr::parse(b"\"\xd5\xc5\x95\x5c\" <sip:1002@pbx>;tag=b").unwrap();
        assert_eq!(a.display, Some(&b"\xd5\xc5\x95\x5c"[..]));
        assert_eq!(a.tag(), Some(&b"b"[..]));
    }

    #[test]
    fn addr_spec_params_belong_to_the_header() {
        let a = NameAddr::parse(b"sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(a.display, None);
        assert_eq!(a.uri.params, b"");
        assert_eq!(a.param(b"unknownparam"), Some(&b""[..]));
        let a = NameAddr::parse(b"<sip:+19725552222@gw1.example.net;unknownparam>").unwrap();
        assert_eq!(a.uri.param(b"unknownparam"), Some(&b""[..]));
        assert_eq!(a.params, b"");
        let a = NameAddr::parse(b"isbn:2983792873").unwrap();
        assert_eq!(a.uri.scheme, b"isbn");
    }

    #[test]
    fn empty_tag_is_none() {
        let a = NameAddr::parse(b"<sip:a@b>;tag=").unwrap_err();
        assert_eq!(a, SipError::BadHeader);
        let a = NameAddr::parse(b"<sip:+13035551111@ift.client.example.net;user=phone>").unwrap();
        assert_eq!(a.tag(), None);
    }

    #[test]
    fn malformed_addresses() {
        assert_eq!(
            NameAddr::parse(b"\"Mr. J. User <sip:j.user@example.com>"),
            Err(SipError::UnterminatedQuote)
        );
        assert_eq!(
            NameAddr::parse(b"\"Watson, Thomas\" < sip:t.watson@example.org >"),
            Err(SipError::BadUri)
        );
        assert_eq!(
            NameAddr::parse(b"sip:user@example.com?Route=%3Csip:sip.example.com%3E"),
            Err(SipError::BadHeader)
        );
        assert_eq!(
            NameAddr::parse(b"\"Joe\" <sip:joe@example.org>;;;;"),
            Err(SipError::BadHeader)
        );
        assert_eq!(
            NameAddr::parse(b"<sip:joe@example.org"),
            Err(SipError::BadHeader)
        );
        assert_eq!(
            NameAddr::parse(b"<sip:joe@example.org> x"),
            Err(SipError::BadHeader)
        );
        assert_eq!(
            NameAddr::parse(b"<sip:joe@example.org>;"),
            Err(SipError::BadHeader)
        );
        assert_eq!(
            NameAddr::parse(b"\"x\" sip:joe@example.org"),
            Err(SipError::BadHeader)
        );
        assert_eq!(NameAddr::parse(b""), Err(SipError::BadUri));
        // An escaped header inside <> is fine (RFC 4475 regescrt).
        let a = NameAddr::parse(b"<sip:user@example.com?Route=%3Csip:sip.example.com%3E>").unwrap();
        assert_eq!(
            a.uri.header(b"route").as_deref(),
            Some(&b"<sip:sip.example.com>"[..])
        );
    }
}
