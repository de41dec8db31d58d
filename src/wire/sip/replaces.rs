//! The `Replaces` header (RFC 3891 §6.1): which dialog an INVITE takes over in an
//! attended transfer.
//!
//! Input is either a `Replaces` header value or the %-unescaped `Replaces` header of a
//! Refer-To URI ([`super::Uri::replaces`]); the engine matches the result against its
//! dialogs by Call-ID and the unordered tag pair (standards §2.2).

use std::borrow::Cow;

use super::lex;

/// `callid;to-tag=...;from-tag=...[;early-only]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Replaces<'a> {
    pub call_id: Cow<'a, [u8]>,
    pub to_tag: Cow<'a, [u8]>,
    pub from_tag: Cow<'a, [u8]>,
    pub early_only: bool,
}

impl<'a> Replaces<'a> {
    /// Parses a Replaces value; `None` unless it has a non-empty Call-ID and both tags
    /// (RFC 3891 §6.1 makes `to-tag` and `from-tag` mandatory). Parameter names are
    /// case-insensitive; the Call-ID is compared byte-exact by the caller.
    pub fn parse(b: &'a [u8]) -> Option<Replaces<'a>> {
        let (call_id, params) = lex::split_once(lex::trim(b), b';');
        let call_id = lex::trim(call_id);
        if call_id.is_empty() || call_id.iter().any(|&c| lex::is_ws(c)) {
            return None;
        }
        let params = params.unwrap_or_default();
        let mut to_tag = None;
        let mut from_tag = None;
        let mut early_only = false;
        for p in lex::params(params) {
            if p.name.eq_ignore_ascii_case(b"to-tag") {
                to_tag = p.value;
            } else if p.name.eq_ignore_ascii_case(b"from-tag") {
                from_tag = p.value;
            } else if p.name.eq_ignore_ascii_case(b"early-only") {
                early_only = true;
            }
        }
        Some(Replaces {
            call_id: Cow::Borrowed(call_id),
            to_tag: Cow::Borrowed(to_tag.filter(|t| !t.is_empty())?),
            from_tag: Cow::Borrowed(from_tag.filter(|t| !t.is_empty())?),
            early_only,
        })
    }

    /// Detaches from the input (used when the input was a temporary unescaped copy).
    pub fn into_owned(self) -> Replaces<'static> {
        Replaces {
            call_id: Cow::Owned(self.call_id.into_owned()),
            to_tag: Cow::Owned(self.to_tag.into_owned()),
            from_tag: Cow::Owned(self.from_tag.into_owned()),
            early_only: self.early_only,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_header_value() {
        let r = Replaces::parse(b"425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only")
            .unwrap();
        assert_eq!(&*r.call_id, b"425928@bobster.example.org");
        assert_eq!(&*r.to_tag, b"7743");
        assert_eq!(&*r.from_tag, b"6472");
        assert!(r.early_only);
        assert!(matches!(r.call_id, Cow::Borrowed(_)));
    }

    #[test]
    fn lws_and_case_are_tolerated() {
        let r = Replaces::parse(b" abc ; From-Tag = 2 ;TO-TAG=1 ").unwrap();
        assert_eq!(&*r.call_id, b"abc");
        assert_eq!(&*r.to_tag, b"1");
        assert_eq!(&*r.from_tag, b"2");
        assert!(!r.early_only);
    }

    #[test]
    fn incomplete_values_are_none() {
        assert_eq!(Replaces::parse(b""), None);
        assert_eq!(Replaces::parse(b"abc"), None);
        assert_eq!(Replaces::parse(b"abc;to-tag=1"), None);
        assert_eq!(Replaces::parse(b"abc;to-tag=1;from-tag="), None);
        assert_eq!(Replaces::parse(b";to-tag=1;from-tag=2"), None);
    }

    #[test]
    fn into_owned_keeps_values() {
        let v = b"a;to-tag=1;from-tag=2".to_vec();
        let owned = Replaces::parse(&v).unwrap().into_owned();
        drop(v);
        assert_eq!(&*owned.call_id, b"a");
    }
}
