//! SIP request methods (RFC 3261 §7.1, §27.4 and the extension RFCs): a `Copy` enum
//! with the methods a call-centre observer acts on, and the raw token for the rest.
//!
//! Read from the request line and from `CSeq`; compared by the engine to match requests,
//! responses and transactions. Methods are case-sensitive (RFC 3261 §7.1), and are never
//! %-unescaped (RFC 4475 esc02: `RE%47IST%45R` is not REGISTER).

/// A SIP method. Unknown methods keep their raw token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Refer,
    Notify,
    Update,
    Register,
    Options,
    Prack,
    Info,
    Message,
    Subscribe,
    Publish,
    /// Any other token, byte-exact (e.g. RFC 4475 intmeth's
    /// `!interesting-Method0123456789_*+`.%indeed'~`).
    Other(&'a [u8]),
}

impl<'a> Method<'a> {
    /// Classifies a method token. Case-sensitive: `invite` is `Other(b"invite")`.
    pub fn from_bytes(b: &'a [u8]) -> Method<'a> {
        match b {
            b"INVITE" => Method::Invite,
            b"ACK" => Method::Ack,
            b"BYE" => Method::Bye,
            b"CANCEL" => Method::Cancel,
            b"REFER" => Method::Refer,
            b"NOTIFY" => Method::Notify,
            b"UPDATE" => Method::Update,
            b"REGISTER" => Method::Register,
            b"OPTIONS" => Method::Options,
            b"PRACK" => Method::Prack,
            b"INFO" => Method::Info,
            b"MESSAGE" => Method::Message,
            b"SUBSCRIBE" => Method::Subscribe,
            b"PUBLISH" => Method::Publish,
            other => Method::Other(other),
        }
    }

    /// The method token as it appears on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Method::Invite => b"INVITE",
            Method::Ack => b"ACK",
            Method::Bye => b"BYE",
            Method::Cancel => b"CANCEL",
            Method::Refer => b"REFER",
            Method::Notify => b"NOTIFY",
            Method::Update => b"UPDATE",
            Method::Register => b"REGISTER",
            Method::Options => b"OPTIONS",
            Method::Prack => b"PRACK",
            Method::Info => b"INFO",
            Method::Message => b"MESSAGE",
            Method::Subscribe => b"SUBSCRIBE",
            Method::Publish => b"PUBLISH",
            Method::Other(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_round_trip() {
        for m in [
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Cancel,
            Method::Refer,
            Method::Notify,
            Method::Update,
            Method::Register,
            Method::Options,
            Method::Prack,
            Method::Info,
            Method::Message,
            Method::Subscribe,
            Method::Publish,
        ] {
            assert_eq!(Method::from_bytes(m.as_bytes()), m);
        }
    }

    #[test]
    fn methods_are_case_sensitive_and_never_unescaped() {
        assert_eq!(Method::from_bytes(b"invite"), Method::Other(b"invite"));
        assert_eq!(
            Method::from_bytes(b"RE%47IST%45R"),
            Method::Other(b"RE%47IST%45R")
        );
        assert_eq!(Method::Other(b"FOO").as_bytes(), b"FOO");
    }
}
