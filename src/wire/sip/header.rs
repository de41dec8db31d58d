//! Header names: the `HeaderName` ids the message index is keyed on, with the compact
//! forms of RFC 3261 §7.3.3 and the IANA registry mapped to their full names.
//!
//! [`HeaderName::from_bytes`] runs once per header line while
//! [`super::SipMessage::parse`] builds its index, so it dispatches on the length and
//! first byte before comparing, and never allocates. Names are case-insensitive
//! (RFC 3261 §7.3.1).

/// The headers the observer reads, by id. Every compact form (`i f t v m l c r b o e k s
/// x u a j d y n`) maps to its full name; anything else is `Other` and can still be read
/// with [`super::SipMessage::header_by_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    CallId,
    From,
    To,
    Via,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    ReferTo,
    ReferredBy,
    Replaces,
    Event,
    SubscriptionState,
    Expires,
    Reason,
    PAssertedIdentity,
    RemotePartyId,
    Supported,
    Require,
    Rseq,
    MaxForwards,
    Route,
    RecordRoute,
    Subject,
    ContentEncoding,
    SessionExpires,
    AllowEvents,
    AcceptContact,
    RejectContact,
    RequestDisposition,
    Identity,
    IdentityInfo,
    Other,
}

/// Number of `HeaderName` variants (for per-id counters).
pub(crate) const HEADER_NAME_COUNT: usize = HeaderName::Other as usize + 1;

impl HeaderName {
    /// The canonical full name.
    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::CallId => "Call-ID",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::Via => "Via",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::Replaces => "Replaces",
            HeaderName::Event => "Event",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::Expires => "Expires",
            HeaderName::Reason => "Reason",
            HeaderName::PAssertedIdentity => "P-Asserted-Identity",
            HeaderName::RemotePartyId => "Remote-Party-ID",
            HeaderName::Supported => "Supported",
            HeaderName::Require => "Require",
            HeaderName::Rseq => "RSeq",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Subject => "Subject",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::SessionExpires => "Session-Expires",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::AcceptContact => "Accept-Contact",
            HeaderName::RejectContact => "Reject-Contact",
            HeaderName::RequestDisposition => "Request-Disposition",
            HeaderName::Identity => "Identity",
            HeaderName::IdentityInfo => "Identity-Info",
            HeaderName::Other => "Other",
        }
    }

    /// The compact form (RFC 3261 §7.3.3 and the IANA SIP header registry), if any.
    pub fn compact(self) -> Option<u8> {
        Some(match self {
            HeaderName::CallId => b'i',
            HeaderName::From => b'f',
            HeaderName::To => b't',
            HeaderName::Via => b'v',
            HeaderName::Contact => b'm',
            HeaderName::ContentLength => b'l',
            HeaderName::ContentType => b'c',
            HeaderName::ReferTo => b'r',
            HeaderName::ReferredBy => b'b',
            HeaderName::Event => b'o',
            HeaderName::ContentEncoding => b'e',
            HeaderName::Supported => b'k',
            HeaderName::Subject => b's',
            HeaderName::SessionExpires => b'x',
            HeaderName::AllowEvents => b'u',
            HeaderName::AcceptContact => b'a',
            HeaderName::RejectContact => b'j',
            HeaderName::RequestDisposition => b'd',
            HeaderName::Identity => b'y',
            HeaderName::IdentityInfo => b'n',
            _ => return None,
        })
    }

    /// Classifies a header name (full or compact, any case).
    pub fn from_bytes(name: &[u8]) -> HeaderName {
        let first = match name.first() {
            Some(c) => c.to_ascii_lowercase(),
            None => return HeaderName::Other,
        };
        if name.len() == 1 {
            return match first {
                b'i' => HeaderName::CallId,
                b'f' => HeaderName::From,
                b't' => HeaderName::To,
                b'v' => HeaderName::Via,
                b'm' => HeaderName::Contact,
                b'l' => HeaderName::ContentLength,
                b'c' => HeaderName::ContentType,
                b'r' => HeaderName::ReferTo,
                b'b' => HeaderName::ReferredBy,
                b'o' => HeaderName::Event,
                b'e' => HeaderName::ContentEncoding,
                b'k' => HeaderName::Supported,
                b's' => HeaderName::Subject,
                b'x' => HeaderName::SessionExpires,
                b'u' => HeaderName::AllowEvents,
                b'a' => HeaderName::AcceptContact,
                b'j' => HeaderName::RejectContact,
                b'd' => HeaderName::RequestDisposition,
                b'y' => HeaderName::Identity,
                b'n' => HeaderName::IdentityInfo,
                _ => HeaderName::Other,
            };
        }
        // Dispatch on the length and the first byte to the one name that could match
        // (the last byte settles the two pairs that share both), then one folded
        // compare: a header line costs a jump and a few word compares, whatever its name.
        use HeaderName as H;
        let last = name.last().map_or(0, u8::to_ascii_lowercase);
        let (lower, id): (&[u8], HeaderName) = match (name.len(), first) {
            (2, b't') => (b"to", H::To),
            (3, b'v') => (b"via", H::Via),
            (4, b'f') => (b"from", H::From),
            (4, b'c') => (b"cseq", H::CSeq),
            (4, b'r') => (b"rseq", H::Rseq),
            (5, b'e') => (b"event", H::Event),
            (5, b'r') => (b"route", H::Route),
            (6, b'r') => (b"reason", H::Reason),
            (7, b'c') if last == b'd' => (b"call-id", H::CallId),
            (7, b'c') => (b"contact", H::Contact),
            (7, b'e') => (b"expires", H::Expires),
            (7, b'r') => (b"require", H::Require),
            (7, b's') => (b"subject", H::Subject),
            (8, b'r') if last == b'o' => (b"refer-to", H::ReferTo),
            (8, b'r') => (b"replaces", H::Replaces),
            (8, b'i') => (b"identity", H::Identity),
            (9, b's') => (b"supported", H::Supported),
            (11, b'r') => (b"referred-by", H::ReferredBy),
            (12, b'c') => (b"content-type", H::ContentType),
            (12, b'm') => (b"max-forwards", H::MaxForwards),
            (12, b'r') => (b"record-route", H::RecordRoute),
            (12, b'a') => (b"allow-events", H::AllowEvents),
            (13, b'i') => (b"identity-info", H::IdentityInfo),
            (14, b'c') => (b"content-length", H::ContentLength),
            (14, b'r') => (b"reject-contact", H::RejectContact),
            (14, b'a') => (b"accept-contact", H::AcceptContact),
            (15, b'r') => (b"remote-party-id", H::RemotePartyId),
            (15, b's') => (b"session-expires", H::SessionExpires),
            (16, b'c') => (b"content-encoding", H::ContentEncoding),
            (18, b's') => (b"subscription-state", H::SubscriptionState),
            (19, b'p') => (b"p-asserted-identity", H::PAssertedIdentity),
            (19, b'r') => (b"request-disposition", H::RequestDisposition),
            _ => return HeaderName::Other,
        };
        if eq_folded(name, lower) {
            return id;
        }
        HeaderName::Other
    }

    /// True when `name` (full or compact, any case) names this header.
    pub fn matches(self, name: &[u8]) -> bool {
        self != HeaderName::Other && HeaderName::from_bytes(name) == self
    }
}

/// `name` equals `lower` (already lowercase) ignoring ASCII case, a word at a time: the
/// last word may overlap the one before it (folding is per byte, so that is exact), and
/// names of 4 to 7 bytes are two overlapping 4-byte words.
fn eq_folded(name: &[u8], lower: &[u8]) -> bool {
    let n = name.len();
    if n != lower.len() {
        return false;
    }
    let eq = |at: usize, w: usize| -> bool {
        match (word(name, at, w), word(lower, at, w)) {
            (Some(x), Some(y)) => lowercase8(x) == y,
            _ => false,
        }
    };
    if n >= 8 {
        let mut at = 0;
        while at + 8 <= n {
            if !eq(at, 8) {
                return false;
            }
            at += 8;
        }
        at == n || eq(n - 8, 8)
    } else if n >= 4 {
        eq(0, 4) && eq(n - 4, 4)
    } else {
        name.iter()
            .zip(lower)
            .all(|(&x, &y)| x.to_ascii_lowercase() == y)
    }
}

/// `w` (4 or 8) bytes of `b` at `at`, little-endian, zero-extended; `None` past the end.
#[inline]
fn word(b: &[u8], at: usize, w: usize) -> Option<u64> {
    if w == 4 {
        let x: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(u32::from_le_bytes(x)))
    } else {
        let x: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(u64::from_le_bytes(x))
    }
}

/// ASCII lowercase of eight packed bytes (SWAR): adds 0x20 to exactly the bytes in
/// `A..=Z`, leaving every other byte, non-ASCII included, unchanged.
#[inline]
fn lowercase8(x: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = x & LOW7;
    // High bit set where the low 7 bits are >= 'A' (0x41), resp. > 'Z' (0x5A); no carry
    // crosses bytes because each byte is at most 0x7F + 0x3F.
    let ge_a = low + 0x3f3f_3f3f_3f3f_3f3f;
    let gt_z = low + 0x2525_2525_2525_2525;
    let upper = (ge_a & !gt_z) & !x & HIGH;
    x | (upper >> 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HeaderName; HEADER_NAME_COUNT - 1] = [
        HeaderName::CallId,
        HeaderName::From,
        HeaderName::To,
        HeaderName::Via,
        HeaderName::CSeq,
        HeaderName::Contact,
        HeaderName::ContentLength,
        HeaderName::ContentType,
        HeaderName::ReferTo,
        HeaderName::ReferredBy,
        HeaderName::Replaces,
        HeaderName::Event,
        HeaderName::SubscriptionState,
        HeaderName::Expires,
        HeaderName::Reason,
        HeaderName::PAssertedIdentity,
        HeaderName::RemotePartyId,
        HeaderName::Supported,
        HeaderName::Require,
        HeaderName::Rseq,
        HeaderName::MaxForwards,
        HeaderName::Route,
        HeaderName::RecordRoute,
        HeaderName::Subject,
        HeaderName::ContentEncoding,
        HeaderName::SessionExpires,
        HeaderName::AllowEvents,
        HeaderName::AcceptContact,
        HeaderName::RejectContact,
        HeaderName::RequestDisposition,
        HeaderName::Identity,
        HeaderName::IdentityInfo,
    ];

    #[test]
    fn every_full_name_round_trips_in_any_case() {
        for h in ALL {
            assert_eq!(HeaderName::from_bytes(h.as_str().as_bytes()), h, "{h:?}");
            let upper = h.as_str().to_ascii_uppercase();
            assert_eq!(HeaderName::from_bytes(upper.as_bytes()), h);
            let lower = h.as_str().to_ascii_lowercase();
            assert_eq!(HeaderName::from_bytes(lower.as_bytes()), h);
        }
    }

    #[test]
    fn every_compact_form_maps_to_its_full_name() {
        let mut seen = 0;
        for h in ALL {
            if let Some(c) = h.compact() {
                assert_eq!(HeaderName::from_bytes(&[c]), h);
                assert_eq!(HeaderName::from_bytes(&[c.to_ascii_uppercase()]), h);
                seen += 1;
            }
        }
        assert_eq!(seen, 20, "i f t v m l c r b o e k s x u a j d y n");
    }

    #[test]
    fn dispatch_agrees_with_a_plain_comparison() {
        let reference = |name: &[u8]| {
            ALL.iter()
                .copied()
                .find(|h| {
                    h.as_str().as_bytes().eq_ignore_ascii_case(name)
                        || (name.len() == 1
                            && h.compact()
                                .is_some_and(|c| c.eq_ignore_ascii_case(&name[0])))
                })
                .unwrap_or(HeaderName::Other)
        };
        for h in ALL {
            let base = h.as_str().as_bytes();
            for i in 0..base.len() {
                for c in [
                    0u8,
                    b'\r',
                    b'-',
                    b'_',
                    b'A',
                    b'z',
                    0x80,
                    0xc5,
                    base[i] ^ 0x20,
                    base[i] ^ 1,
                ] {
                    let mut m = base.to_vec();
                    m[i] = c;
                    assert_eq!(HeaderName::from_bytes(&m), reference(&m), "{m:?}");
                }
            }
            let mut longer = base.to_vec();
            longer.push(b'x');
            assert_eq!(HeaderName::from_bytes(&longer), reference(&longer));
            assert_eq!(HeaderName::from_bytes(&base[1..]), reference(&base[1..]));
        }
    }

    #[test]
    fn swar_lowercase_matches_std() {
        let bytes: Vec<u8> = (0u8..=255).collect();
        for chunk in bytes.chunks(8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap());
            let want: Vec<u8> = chunk.iter().map(u8::to_ascii_lowercase).collect();
            assert_eq!(lowercase8(x).to_le_bytes().to_vec(), want);
        }
    }

    #[test]
    fn unknown_names_are_other() {
        assert_eq!(HeaderName::from_bytes(b"C%6Fntact"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"X-Call-ID"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b""), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"z"), HeaderName::Other);
        // CR folds onto '-' under `| 0x20`; it must not alias.
        assert_eq!(HeaderName::from_bytes(b"Call\rID"), HeaderName::Other);
        assert_eq!(HeaderName::from_bytes(b"Call-Id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_bytes(b"CALL_ID"), HeaderName::Other);
        assert_eq!(
            HeaderName::from_bytes(b"CONTENT\rLENGTH"),
            HeaderName::Other
        );
        assert_eq!(
            HeaderName::from_bytes(b"content-length"),
            HeaderName::ContentLength
        );
        assert_eq!(
            HeaderName::from_bytes(b"Content-\xc5ength"),
            HeaderName::Other
        );
        assert!(HeaderName::CallId.matches(b"i"));
        assert!(!HeaderName::Other.matches(b"Foo"));
    }
}
