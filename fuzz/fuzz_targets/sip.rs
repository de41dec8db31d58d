//! Fuzz target for `wire::sip`: parses arbitrary bytes as a SIP message (strict and
//! lenient) and as each kind of header value, then calls every getter, so any panic,
//! overflow (debug assertions are on) or out-of-bounds access surfaces. The SDP found in
//! a message is fed to `wire::sdp` too.

#![no_main]

use callwatch::wire::sdp::Sdp;
use callwatch::wire::sip::{
    looks_like_sip, CSeq, HeaderName, Method, NameAddr, Replaces, SipMessage, Uri, Via,
};
use libfuzzer_sys::fuzz_target;

fn exercise(m: &SipMessage<'_>, input_len: usize) {
    assert!(m.len() <= input_len);
    let _ = (
        m.raw(),
        m.start_line(),
        m.first_line(),
        m.is_request(),
        m.method(),
    );
    let _ = (
        m.status(),
        m.request_uri(),
        m.reason_phrase(),
        m.call_id(),
        m.cseq(),
    );
    let _ = (m.from(), m.to(), m.top_via(), m.via_count(), m.contact());
    let _ = (
        m.p_asserted_identity(),
        m.remote_party_id(),
        m.refer_to(),
        m.referred_by(),
    );
    let _ = (
        m.replaces(),
        m.refer_to_replaces(),
        m.max_forwards(),
        m.content_type(),
    );
    let _ = (
        m.body(),
        m.validate(),
        m.require_dialog_headers(),
        m.was_folded(),
    );
    let _ = (m.header(HeaderName::Event), m.header_by_name(b"X-Call-ID"));
    let _ = m.headers(HeaderName::Via).count() + m.vias().count();
    for (name, _) in m.all_headers() {
        let _ = m.header_by_name(name);
    }
    for v in m.header_values(HeaderName::Contact) {
        if let Ok(a) = NameAddr::parse(v) {
            let _ = (a.tag(), a.display_unescaped(), a.param(b"expires"));
            exercise_uri(&a.uri);
        }
    }
    if let Some(sdp) = m.sdp() {
        if let Ok(s) = Sdp::parse(sdp) {
            for media in &s.media {
                let _ = (media.is_hold(&s), media.effective_direction(&s));
            }
        }
    }
}

fn exercise_uri(u: &Uri<'_>) {
    let _ = (
        u.user_unescaped(),
        u.param(b"transport"),
        u.header(b"Replaces"),
    );
    let _ = (u.replaces(), u.host_ip(), u.scheme_kind());
}

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_sip(data);
    let _ = SipMessage::parse(data);
    if let Ok(m) = SipMessage::parse_lenient(data) {
        exercise(&m, data.len());
    }
    if let Ok(u) = Uri::parse(data) {
        exercise_uri(&u);
    }
    if let Ok(a) = NameAddr::parse(data) {
        let _ = (a.tag(), a.display_unescaped());
        exercise_uri(&a.uri);
    }
    if let Ok(v) = Via::parse(data) {
        let _ = (v.host_port(), v.has_rfc3261_branch(), v.param(b"received"));
    }
    let _ = CSeq::parse(data);
    let _ = Replaces::parse(data).map(Replaces::into_owned);
    let _ = HeaderName::from_bytes(data);
    let _ = Method::from_bytes(data).as_bytes().len();
});
