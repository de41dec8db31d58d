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
        // Dispatch on the length, then compare with lowercase names: at most five names
        // share a length, and the first byte usually settles it.
        use HeaderName as H;
        let candidates: &[(&[u8], HeaderName)] = match name.len() {
            2 => &[(b"to", H::To)],
            3 => &[(b"via", H::Via)],
            4 => &[(b"from", H::From), (b"cseq", H::CSeq), (b"rseq", H::Rseq)],
            5 => &[(b"event", H::Event), (b"route", H::Route)],
            6 => &[(b"reason", H::Reason)],
            7 => &[
                (b"call-id", H::CallId),
                (b"contact", H::Contact),
                (b"expires", H::Expires),
                (b"require", H::Require),
                (b"subject", H::Subject),
            ],
            8 => &[
                (b"refer-to", H::ReferTo),
                (b"replaces", H::Replaces),
                (b"identity", H::Identity),
            ],
            9 => &[(b"supported", H::Supported)],
            11 => &[(b"referred-by", H::ReferredBy)],
            12 => &[
                (b"content-type", H::ContentType),
                (b"max-forwards", H::MaxForwards),
                (b"record-route", H::RecordRoute),
                (b"allow-events", H::AllowEvents),
            ],
            13 => &[(b"identity-info", H::IdentityInfo)],
            14 => &[
                (b"content-length", H::ContentLength),
                (b"reject-contact", H::RejectContact),
                (b"accept-contact", H::AcceptContact),
            ],
            15 => &[
                (b"remote-party-id", H::RemotePartyId),
                (b"session-expires", H::SessionExpires),
            ],
            16 => &[(b"content-encoding", H::ContentEncoding)],
            18 => &[(b"subscription-state", H::SubscriptionState)],
            19 => &[
                (b"p-asserted-identity", H::PAssertedIdentity),
                (b"request-disposition", H::RequestDisposition),
            ],
            _ => &[],
        };
        for &(lower, id) in candidates {
            if lower.first() == Some(&first) && eq_folded(name, lower) {
                return id;
            }
        }
        HeaderName::Other
    }

    /// True when `name` (full or compact, any case) names this header.
    pub fn matches(self, name: &[u8]) -> bool {
        self != HeaderName::Other && HeaderName::from_bytes(name) == self
    }
}

/// `name` equals `lower` (already lowercase) ignoring ASCII case, eight bytes at a time.
fn eq_folded(name: &[u8], lower: &[u8]) -> bool {
    if name.len() != lower.len() {
        return false;
    }
    let (mut a, mut b) = (name, lower);
    while let (Some((x, ra)), Some((y, rb))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if lowercase8(u64::from_le_bytes(*x)) != u64::from_le_bytes(*y) {
            return false;
        }
        a = ra;
        b = rb;
    }
    a.iter().zip(b).all(|(&x, &y)| x.to_ascii_lowercase() == y)
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
