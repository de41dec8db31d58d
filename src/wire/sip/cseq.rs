//! The `CSeq` header (RFC 3261 §20.16): a 32-bit sequence number and a method.
//!
//! Input is the trimmed, unfolded header value; output is a `Copy` view. The number is
//! overflow-checked (RFC 4475 scalar02, scalarlg) and may have leading zeros (wsinv).

use super::lex::{self, from, sub};
use super::{Method, SipError};

/// A parsed `CSeq` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: Method<'a>,
}

impl<'a> CSeq<'a> {
    /// Parses `1*DIGIT LWS Method`.
    pub fn parse(b: &'a [u8]) -> Result<CSeq<'a>, SipError> {
        let b = lex::trim(b);
        let digits = b
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(b.len());
        let seq = lex::parse_u32(sub(b, 0, digits)).ok_or(SipError::BadCSeq)?;
        let rest = from(b, digits);
        if !rest.first().copied().is_some_and(lex::is_ws) {
            return Err(SipError::BadCSeq);
        }
        let method = lex::trim(rest);
        if !lex::is_token(method) {
            return Err(SipError::BadCSeq);
        }
        Ok(CSeq {
            seq,
            method: Method::from_bytes(method),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_number_and_method() {
        assert_eq!(
            CSeq::parse(b"0009    INVITE"),
            Ok(CSeq {
                seq: 9,
                method: Method::Invite
            })
        );
        assert_eq!(
            CSeq::parse(b" 4294967295 RE%47IST%45R "),
            Ok(CSeq {
                seq: u32::MAX,
                method: Method::Other(b"RE%47IST%45R")
            })
        );
    }

    #[test]
    fn rejects_overflow_and_junk() {
        for bad in [
            &b"36893488147419103232 REGISTER"[..],
            b"9292394834772304023312 OPTIONS",
            b"4294967296 INVITE",
            b"INVITE",
            b"1",
            b"1INVITE",
            b"-1 INVITE",
            b"1 INVITE BYE",
            b"1 INV,ITE",
            b"",
        ] {
            assert_eq!(
                CSeq::parse(bad),
                Err(SipError::BadCSeq),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
