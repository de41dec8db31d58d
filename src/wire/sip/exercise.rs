//! Calls every getter of a parsed message, URI and header view and throws the answers
//! away, so that a panic, an overflow or an out-of-bounds slice anywhere behind them
//! surfaces. One body for the parser's property tests, the RFC 4475 test and the
//! `sip` fuzz target: a getter added to the parser is added here once.

use super::{HeaderName, NameAddr, SipMessage, Uri};
use crate::wire::sdp::Sdp;

/// Every getter of `m`, of the headers it names, of their addresses and URIs, and of
/// the SDP body it carries.
pub fn every_getter(m: &SipMessage<'_>) {
    let _ = (m.len(), m.raw(), m.start_line(), m.first_line());
    let _ = (m.is_request(), m.method(), m.status());
    let _ = (m.request_uri(), m.reason_phrase(), m.call_id(), m.cseq());
    let _ = (m.from(), m.to(), m.top_via(), m.via_count(), m.contact());
    let _ = (m.p_asserted_identity(), m.remote_party_id());
    let _ = (m.refer_to(), m.referred_by(), m.replaces());
    let _ = (m.refer_to_replaces(), m.max_forwards(), m.content_type());
    let _ = (m.body(), m.validate(), m.require_dialog_headers());
    let _ = (m.was_folded(), m.header(HeaderName::Event));
    let _ = m.header_by_name(b"X-Call-ID");
    let _ = m.headers(HeaderName::Via).count() + m.vias().count();
    for (name, _) in m.all_headers() {
        let _ = m.header_by_name(name);
    }
    for a in [m.from(), m.to()].into_iter().flatten() {
        every_addr_getter(&a);
    }
    for v in m.header_values(HeaderName::Contact) {
        if let Ok(a) = NameAddr::parse(v) {
            every_addr_getter(&a);
        }
    }
    if let Some(Ok(s)) = m.sdp().map(Sdp::parse) {
        for media in &s.media {
            let _ = (media.is_hold(&s), media.effective_direction(&s));
        }
    }
}

/// Every getter of a name-addr and of its URI.
pub fn every_addr_getter(a: &NameAddr<'_>) {
    let _ = (a.tag(), a.display_unescaped(), a.param(b"expires"));
    every_uri_getter(&a.uri);
}

/// Every getter of a URI.
pub fn every_uri_getter(u: &Uri<'_>) {
    let _ = (u.user_unescaped(), u.param(b"transport"), u.param(b"user"));
    let _ = (u.header(b"Replaces"), u.replaces());
    let _ = (u.host_ip(), u.scheme_kind());
}
