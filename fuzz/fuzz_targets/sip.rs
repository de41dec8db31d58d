//! Fuzz target for `wire::sip`: parses arbitrary bytes as a SIP message (strict and
//! lenient) and as each kind of header value, then calls every getter
//! (`wire::sip::exercise`), so any panic, overflow (debug assertions are on) or
//! out-of-bounds access surfaces. The SDP found in a message is fed to `wire::sdp` too.

#![no_main]

use callwatch::wire::sip::exercise::{every_addr_getter, every_getter, every_uri_getter};
use callwatch::wire::sip::{
    looks_like_sip, CSeq, HeaderName, Method, NameAddr, Replaces, SipMessage, Uri, Via,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = looks_like_sip(data);
    let _ = SipMessage::parse(data);
    if let Ok(m) = SipMessage::parse_lenient(data) {
        assert!(m.len() <= data.len());
        every_getter(&m);
    }
    if let Ok(u) = Uri::parse(data) {
        every_uri_getter(&u);
    }
    if let Ok(a) = NameAddr::parse(data) {
        every_addr_getter(&a);
    }
    if let Ok(v) = Via::parse(data) {
        let _ = (v.host_port(), v.has_rfc3261_branch(), v.param(b"received"));
    }
    let _ = CSeq::parse(data);
    let _ = Replaces::parse(data).map(Replaces::into_owned);
    let _ = HeaderName::from_bytes(data);
    let _ = Method::from_bytes(data).as_bytes().len();
});
