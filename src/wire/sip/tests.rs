//! Message-level unit tests of the SIP parser: framing, compact headers, folding, GBK
//! bytes, transfers, multipart SDP, every error kind, and property tests that no input
//! panics. The RFC 4475 verdict table lives in `tests/rfc4475.rs`.

use proptest::prelude::*;

use super::*;

const INVITE: &[u8] = b"INVITE sip:96000@pbx.bank.example;user=phone SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.1.2.3:5060;branch=z9hG4bK776asdhds;rport\r\n\
Via: SIP/2.0/TCP 10.9.9.9;branch=z9hG4bKold, SIP/2.0/UDP 10.9.9.8;branch=z9hG4bKolder\r\n\
Max-Forwards: 70\r\n\
To: <sip:96000@pbx.bank.example>\r\n\
From: \"Agent 7\" <sip:1007@pbx.bank.example>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.bank.example\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:1007@10.1.2.3:5060;transport=udp>;expires=60\r\n\
P-Asserted-Identity: \"Customer\" <sip:+8613800000000@trunk>, <tel:+8613800000000>\r\n\
X-Call-ID: upstream-42\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 33\r\n\
\r\n\
v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio\r\n";

fn parse(b: &[u8]) -> SipMessage<'_> {
    match SipMessage::parse(b) {
        Ok(m) => m,
        Err(e) => panic!("{e:?} for {:?}", String::from_utf8_lossy(b)),
    }
}

#[test]
fn typical_invite_fields() {
    let m = parse(INVITE);
    assert!(m.is_request());
    assert_eq!(m.method(), Some(Method::Invite));
    assert_eq!(m.status(), None);
    assert_eq!(
        m.first_line(),
        b"INVITE sip:96000@pbx.bank.example;user=phone SIP/2.0"
    );
    let uri = m.request_uri().unwrap();
    assert_eq!(uri.user, Some(&b"96000"[..]));
    assert_eq!(uri.param(b"user"), Some(&b"phone"[..]));
    assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.bank.example"[..]));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 314159,
            method: Method::Invite
        })
    );
    let from = m.from().unwrap();
    assert_eq!(from.display, Some(&b"Agent 7"[..]));
    assert_eq!(from.tag(), Some(&b"1928301774"[..]));
    assert_eq!(m.to().unwrap().tag(), None);
    let via = m.top_via().unwrap();
    assert_eq!(via.transport, b"UDP");
    assert_eq!(via.sent_by, b"10.1.2.3:5060");
    assert_eq!(via.branch, Some(&b"z9hG4bK776asdhds"[..]));
    assert_eq!(m.via_count(), 3);
    assert_eq!(m.vias().count(), 3);
    assert_eq!(m.contact().unwrap().uri.port, Some(5060));
    assert_eq!(m.contact().unwrap().param(b"expires"), Some(&b"60"[..]));
    let pai = m.p_asserted_identity().unwrap();
    assert_eq!(pai.uri.user, Some(&b"+8613800000000"[..]));
    assert_eq!(m.header_values(HeaderName::PAssertedIdentity).count(), 2);
    assert_eq!(m.header_by_name(b"x-call-id"), Some(&b"upstream-42"[..]));
    assert_eq!(m.header_by_name(b"Max-Forwards"), Some(&b"70"[..]));
    assert_eq!(m.max_forwards(), Some(70));
    assert_eq!(m.content_type(), Some(&b"application/sdp"[..]));
    assert_eq!(m.body(), b"v=0\r\nc=IN IP4 10.1.2.3\r\nm=audio\r\n");
    assert_eq!(m.sdp(), Some(m.body()));
    assert_eq!(m.len(), INVITE.len());
    assert_eq!(m.raw(), INVITE);
    assert!(!m.is_empty());
    assert_eq!(m.all_headers().count(), 12);
    assert!(m.require_dialog_headers().is_ok());
    assert!(!m.was_folded(), "no copy without folding");
    assert!(!m.heap_allocated(), "no heap for a typical message");
}

#[test]
fn response_fields() {
    let m = parse(b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nTo: <sip:a@b>;tag=x\r\nFrom: <sip:c@d>;tag=y\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
    assert!(!m.is_request());
    assert_eq!(m.status(), Some(180));
    assert_eq!(m.reason_phrase(), Some(&b"Ringing"[..]));
    assert_eq!(m.method(), None);
    assert_eq!(m.request_uri(), None);
    assert_eq!(m.to().unwrap().tag(), Some(&b"x"[..]));
    assert_eq!(m.body(), b"");
    assert_eq!(m.sdp(), None);
}

#[test]
fn compact_headers() {
    let m = parse(b"BYE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\nt: <sip:a@b>;tag=x\r\nf: <sip:c@d>;tag=y\r\ni: cid\r\nCSeq: 2 BYE\r\nm: <sip:c@10.0.0.1>\r\nl: 0\r\ns: hi\r\nk: replaces\r\no: refer\r\n\r\n");
    assert_eq!(m.call_id(), Some(&b"cid"[..]));
    assert_eq!(m.to().unwrap().tag(), Some(&b"x"[..]));
    assert_eq!(m.from().unwrap().tag(), Some(&b"y"[..]));
    assert_eq!(m.top_via().unwrap().branch, Some(&b"z9hG4bK1"[..]));
    assert_eq!(
        m.header(HeaderName::Contact),
        Some(&b"<sip:c@10.0.0.1>"[..])
    );
    assert_eq!(m.header(HeaderName::ContentLength), Some(&b"0"[..]));
    assert_eq!(m.header_by_name(b"Subject"), Some(&b"hi"[..]));
    assert_eq!(m.header_by_name(b"Call-ID"), Some(&b"cid"[..]));
    assert_eq!(m.header(HeaderName::Supported), Some(&b"replaces"[..]));
    assert_eq!(m.header(HeaderName::Event), Some(&b"refer"[..]));
}

#[test]
fn folded_headers_are_unfolded_in_one_copy() {
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\nTo:\r\n <sip:a@b>\r\nFrom: <sip:c@d>\r\n  ;\r\n\ttag = 98\r\nCall-ID: x\r\nCSeq: 0009\r\n  OPTIONS\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1 ,\r\n SIP/2.0/UDP g\r\nSubject: one\r\n two\r\nl: 0\r\n\r\n";
    let m = parse(raw);
    assert!(m.was_folded());
    assert_eq!(m.header(HeaderName::To), Some(&b"<sip:a@b>"[..]));
    assert_eq!(
        m.header(HeaderName::From),
        Some(&b"<sip:c@d>    ;  \ttag = 98"[..])
    );
    assert_eq!(m.from().unwrap().tag(), Some(&b"98"[..]));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 9,
            method: Method::Options
        })
    );
    assert_eq!(m.via_count(), 2);
    assert_eq!(m.header_by_name(b"subject"), Some(&b"one   two"[..]));
    // raw() is the original, not the copy; views kept from validation point into the copy.
    assert_eq!(m.raw(), &raw[..]);
    let lenient = SipMessage::parse_lenient(raw).unwrap();
    assert_eq!(m.from(), lenient.from());
    assert_eq!(m.top_via(), lenient.top_via());
    assert_eq!(m.call_id(), lenient.call_id());
    // Call-ID and Content-Type kept from validation, folded and in compact form.
    let raw = b"OPTIONS sip:a@b SIP/2.0\r\ni:\r\n  abc@h \r\nc: application/sdp\r\n ; x=1\r\nl: 3\r\n\r\nv=0";
    let m = parse(raw);
    assert_eq!(m.call_id(), Some(&b"abc@h"[..]));
    assert_eq!(m.content_type(), Some(&b"application/sdp   ; x=1"[..]));
    assert_eq!(m.sdp(), Some(&b"v=0"[..]));
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
    assert_eq!((m.call_id(), m.content_type()), (None, None));
    // LF-only folding: one space per LF.
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\nSubject: one\n two\nl: 0\n\n");
    assert_eq!(m.header_by_name(b"subject"), Some(&b"one  two"[..]));
}

/// The tag [`NameAddr::tag`] returns, computed the way it was before validation kept it:
/// by looking the parameter up in the address's parameters.
fn tag_by_lookup<'a>(a: &NameAddr<'a>) -> Option<&'a [u8]> {
    a.param(b"tag").filter(|t| !t.is_empty())
}

/// A From value, a To value, and the tags expected of each.
type TagCase<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, Option<&'a [u8]>);

#[test]
fn tags_are_kept_from_validation() {
    let cases: [TagCase<'_>; 8] = [
        // ";tag=" inside a quoted display name is not the tag.
        (
            b"\"Bob ;tag=fake\" <sip:b@h>;tag=real",
            b"\"x;tag=y\" <sip:a@b>",
            Some(b"real"),
            None,
        ),
        // Case-insensitive name, whitespace around '=', other parameters first.
        (
            b"<sip:c@d>;x=1 ; TAG = up;tag=second",
            b"sip:a@b;tag=spec;user=phone",
            Some(b"up"),
            Some(b"spec"),
        ),
        // GBK display names, one with a trail byte 0x5C before the closing quote.
        (
            b"\"\xd5\xc5\x95\x5c\" <sip:1002@pbx>;tag=b",
            b"\xd5\xc5\xc8\xfd <sip:1001@pbx>;tag=gbk",
            Some(b"b"),
            Some(b"gbk"),
        ),
        // A quoted tag value, and a flag tag (no value: no tag).
        (
            b"<sip:c@d>;tag=\"q;x\"",
            b"<sip:a@b>;tag",
            Some(b"q;x"),
            None,
        ),
        // An empty quoted tag is no tag.
        (b"<sip:c@d>;tag=\"\"", b"<sip:a@b>;Tag=1", None, Some(b"1")),
        // A `tag` URI parameter inside <> is not the header's tag.
        (
            b"<sip:c@d;tag=uri>",
            b"<sip:a@b;tag=uri>;tag=hdr",
            None,
            Some(b"hdr"),
        ),
        // Addr-spec forms: the parameters after the first ';' belong to the header.
        (
            b"sip:c@d;tag=as",
            b"tel:+123;tag=t",
            Some(b"as"),
            Some(b"t"),
        ),
        (b"sip:c@d", b"<sip:a@b>", None, None),
    ];
    for (from, to, from_tag, to_tag) in cases {
        for (f, t) in [("From", "To"), ("f", "t")] {
            let mut raw = b"BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n".to_vec();
            raw.extend_from_slice(format!("{f}: ").as_bytes());
            raw.extend_from_slice(from);
            raw.extend_from_slice(format!("\r\n{t}: ").as_bytes());
            raw.extend_from_slice(to);
            raw.extend_from_slice(b"\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n");
            let m = parse(&raw);
            let lenient = SipMessage::parse_lenient(&raw).unwrap();
            let what = String::from_utf8_lossy(&raw);
            for (got, by_lookup, lenient, want) in [
                (m.from(), m.from(), lenient.from(), from_tag),
                (m.to(), m.to(), lenient.to(), to_tag),
            ] {
                let got = got.unwrap();
                assert_eq!(got.tag(), want, "{what}");
                assert_eq!(tag_by_lookup(&by_lookup.unwrap()), want, "{what}");
                assert_eq!(lenient.unwrap().tag(), want, "{what}");
                assert_eq!(got, lenient.unwrap(), "{what}");
            }
        }
    }
    // Folded over three lines: the tag's offsets point into the unfolded copy.
    let raw = b"BYE sip:a@b SIP/2.0\r\nf: \"A;tag=no\"\r\n <sip:c@d>\r\n  ;\r\n\ttag\r\n = 98\r\nt: <sip:a@b>\r\n ;tag=7\r\ni: c\r\nCSeq: 2 BYE\r\nl: 0\r\n\r\n";
    let m = parse(raw);
    assert!(m.was_folded());
    assert_eq!(m.from().unwrap().tag(), Some(&b"98"[..]));
    assert_eq!(m.to().unwrap().tag(), Some(&b"7"[..]));
    assert_eq!(tag_by_lookup(&m.from().unwrap()), Some(&b"98"[..]));
    // Debug output has no trace of the kept tag.
    assert_eq!(
        format!("{:?}", NameAddr::parse(b"<sip:a@b>;tag=1").unwrap()),
        "NameAddr { display: None, uri: Uri { scheme: [115, 105, 112], user: Some([97]), \
         host: [98], port: None, params: [], headers: [] }, params: [116, 97, 103, 61, 49] }"
    );
}

#[test]
fn request_uri_headers_are_refused_after_the_user_part() {
    for (uri, ok) in [
        (&b"sip:a@b"[..], true),
        (b"sip:us?er@b", true),
        (b"sip:us?er@b;x?y", false),
        (b"sip:a@b?subject=x", false),
        (b"SIPS:a@b?", false),
        (b"sip:b?x", false),
        (b"sip:a@b@c?x", false),
        (b"tel:+1?x", true),
        (b"urn:x?y", true),
    ] {
        let mut raw = b"OPTIONS ".to_vec();
        raw.extend_from_slice(uri);
        raw.extend_from_slice(b" SIP/2.0\r\nl: 0\r\n\r\n");
        let got = SipMessage::parse(&raw).map(|m| m.request_uri().map(|u| u.scheme.len()));
        assert_eq!(
            got.is_ok(),
            ok,
            "{:?}: {got:?}",
            String::from_utf8_lossy(uri)
        );
        if !ok {
            assert_eq!(got, Err(SipError::BadUri));
        }
    }
}

#[test]
fn via_lines_whole_and_listed() {
    let via_line = |v: &str| format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {v}\r\nl: 0\r\n\r\n");
    // A comma inside a quoted parameter value: one element.
    let raw = via_line("SIP/2.0/UDP h;x=\"a, b\";branch=z9hG4bK1");
    let m = parse(raw.as_bytes());
    assert_eq!(m.via_count(), 1);
    assert_eq!(m.top_via().unwrap().param(b"x"), Some(&b"a, b"[..]));
    // A list: the top Via is the first element, every element is checked.
    let raw = via_line("SIP/2.0/UDP h;branch=z9hG4bK1 , SIP/2.0/TCP g");
    let m = parse(raw.as_bytes());
    assert_eq!(m.via_count(), 2);
    assert_eq!(m.top_via().unwrap().sent_by, b"h");
    let raw = via_line("SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP g;;");
    assert_eq!(
        SipMessage::parse(raw.as_bytes()).err(),
        Some(SipError::BadVia)
    );
    let raw = via_line("SIP/2.0/UDP h,");
    assert_eq!(
        SipMessage::parse(raw.as_bytes()).err(),
        Some(SipError::BadVia)
    );
}

#[test]
fn stray_cr_before_line_end_is_trimmed() {
    // Regression: a value ending in a stray CR ("1 INVITE\r\r\n") gave the CSeq kept from
    // validation an empty method.
    let raw = b"INVITE sip:a@b SIP/2.0\r\nCSeq: 1 INVITE\r\r\nCall-ID: x \r\r\nl: 0\r\n\r\n";
    let m = parse(raw);
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 1,
            method: Method::Invite
        })
    );
    assert_eq!(m.cseq(), SipMessage::parse_lenient(raw).unwrap().cseq());
    assert_eq!(m.call_id(), Some(&b"x"[..]));
}

#[test]
fn lf_only_messages() {
    let m = parse(b"SIP/2.0 200 OK\nCall-ID: x\nCSeq: 1 INVITE\nContent-Type: application/sdp\nContent-Length: 4\n\nv=0\n");
    assert_eq!(m.body(), b"v=0\n");
    // Content-Length counted with CRLF line ends, message converted to LF.
    let m = parse(b"SIP/2.0 200 OK\nContent-Length: 10\n\nv=0\nc=x\n");
    assert_eq!(m.body(), b"v=0\nc=x\n");
    // ...but not with CRLF messages, and not beyond what LF compensation explains.
    assert_eq!(
        SipMessage::parse(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nv=0\nc=x\n").unwrap_err(),
        SipError::Truncated
    );
    assert_eq!(
        SipMessage::parse(b"SIP/2.0 200 OK\nContent-Length: 11\n\nv=0\nc=x\n").unwrap_err(),
        SipError::Truncated
    );
}

#[test]
fn trailing_octets_and_keepalives() {
    let mut two = b"\r\n\r\nOPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n".to_vec();
    let first_len = two.len();
    two.extend_from_slice(b"BYE sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
    let m = parse(&two);
    assert_eq!(m.len(), first_len);
    assert_eq!(m.raw(), b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n\r\n");
    let next = parse(&two[m.len()..]);
    assert_eq!(next.method(), Some(Method::Bye));
    // Without Content-Length the body is the rest of the datagram.
    let m = parse(b"MESSAGE sip:a@b SIP/2.0\r\nContent-Type: text/plain\r\n\r\nhello");
    assert_eq!(m.body(), b"hello");
}

#[test]
fn gbk_display_names() {
    let raw = b"INVITE sip:1001@pbx SIP/2.0\r\nFrom: \"\xd5\xc5\xc8\xfd\" <sip:1002@pbx>;tag=1\r\nTo: \xc0\xee\xcb\xc4 <sip:1001@pbx>\r\nCall-ID: g\r\nCSeq: 1 INVITE\r\nl: 0\r\n\r\n";
    let m = parse(raw);
    assert_eq!(m.from().unwrap().display, Some(&b"\xd5\xc5\xc8\xfd"[..]));
    assert_eq!(m.to().unwrap().display, Some(&b"\xc0\xee\xcb\xc4"[..]));
    assert_eq!(m.from().unwrap().tag(), Some(&b"1"[..]));
}

#[test]
fn refer_with_escaped_replaces() {
    let raw = b"REFER sip:1007@10.1.2.3 SIP/2.0\r\nVia: SIP/2.0/UDP pbx;branch=z9hG4bKr\r\nFrom: <sip:pbx>;tag=a\r\nTo: <sip:1007@pbx>;tag=b\r\nCall-ID: r1\r\nCSeq: 5 REFER\r\nr: <sip:96000@pbx?Replaces=abc%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\nb: <sip:1007@pbx>\r\nContent-Length: 0\r\n\r\n";
    let m = parse(raw);
    let refer_to = m.refer_to().unwrap();
    assert_eq!(refer_to.uri.user, Some(&b"96000"[..]));
    assert_eq!(
        refer_to.uri.header(b"Replaces").as_deref(),
        Some(&b"abc@h;to-tag=1;from-tag=2"[..])
    );
    let r = m.refer_to_replaces().unwrap();
    assert_eq!(&*r.call_id, b"abc@h");
    assert_eq!(&*r.to_tag, b"1");
    assert_eq!(&*r.from_tag, b"2");
    assert_eq!(m.referred_by().unwrap().uri.user, Some(&b"1007"[..]));
    // And the INVITE that follows, with a Replaces header.
    let raw = b"INVITE sip:96000@pbx SIP/2.0\r\nReplaces: abc@h;to-tag=1;from-tag=2;early-only\r\nl: 0\r\n\r\n";
    let m = parse(raw);
    let r = m.replaces().unwrap();
    assert_eq!(&*r.call_id, b"abc@h");
    assert!(r.early_only);
}

#[test]
fn multipart_sdp() {
    let raw = b"INVITE sip:a@b SIP/2.0\r\nContent-Type: multipart/mixed;boundary=unique-boundary-1\r\nContent-Length: 156\r\n\r\n--unique-boundary-1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\nc=IN IP4 192.0.2.1\r\n\r\n--unique-boundary-1\r\nContent-Type: application/ISUP; version=nxv3\r\n\r\n\x01\x00\x49\r\n--unique-boundary-1--\r\n";
    let m = parse(raw);
    assert_eq!(m.body().len(), 156);
    assert_eq!(m.sdp(), Some(&b"v=0\r\nc=IN IP4 192.0.2.1\r\n"[..]));
}

#[test]
fn contact_star_and_lists() {
    let m = parse(b"REGISTER sip:r SIP/2.0\r\nContact: *\r\nExpires: 0\r\nl: 0\r\n\r\n");
    assert_eq!(m.contact(), None);
    let m = parse(b"REGISTER sip:r SIP/2.0\r\nContact: \"a,b\" <sip:1@h>;q=0.5, <sip:2@h>\r\nContact: sip:3@h;expires=1\r\nl: 0\r\n\r\n");
    assert_eq!(m.contact().unwrap().display, Some(&b"a,b"[..]));
    let all: Vec<_> = m.header_values(HeaderName::Contact).collect();
    assert_eq!(all.len(), 3);
    assert_eq!(
        NameAddr::parse(all[2]).unwrap().param(b"expires"),
        Some(&b"1"[..])
    );
}

#[test]
fn lenient_parse_keeps_call_id_of_malformed_messages() {
    let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15;;,;,,\r\nCall-ID: keep-me\r\nl: 0\r\n\r\n";
    assert_eq!(SipMessage::parse(raw).unwrap_err(), SipError::BadVia);
    let m = SipMessage::parse_lenient(raw).unwrap();
    assert_eq!(m.call_id(), Some(&b"keep-me"[..]));
    assert_eq!(m.top_via(), None);
    assert_eq!(m.validate(), Err(SipError::BadVia));
}

#[test]
fn missing_dialog_headers() {
    let m = parse(b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\nl: 0\r\n\r\n");
    assert_eq!(
        m.require_dialog_headers(),
        Err(SipError::MissingHeader(HeaderName::CallId))
    );
    assert_eq!(
        SipError::MissingHeader(HeaderName::CallId).as_str(),
        "sip_missing_header"
    );
    assert_eq!(
        SipError::MissingHeader(HeaderName::CallId).to_string(),
        "sip message lacks a Call-ID header"
    );
}

/// One input per error kind, each checked for its exact kind and label.
#[test]
fn every_error_kind() {
    let big_header = {
        let mut v = b"OPTIONS sip:a@b SIP/2.0\r\nX: ".to_vec();
        v.resize(MAX_MESSAGE_LEN + 10, b'a');
        v
    };
    let many_headers = {
        let mut v = b"OPTIONS sip:a@b SIP/2.0\r\n".to_vec();
        for _ in 0..=MAX_HEADERS {
            v.extend_from_slice(b"X: y\r\n");
        }
        v.extend_from_slice(b"\r\n");
        v
    };
    let cases: Vec<(&[u8], SipError, &str)> = vec![
        (b"", SipError::Empty, "sip_empty"),
        (b"\r\n\r\n", SipError::Empty, "sip_empty"),
        (b"\x80\x01\x02\x03\n", SipError::NotSip, "sip_not_sip"),
        (b"GET / HTTP/1.1\r\n\r\n", SipError::NotSip, "sip_not_sip"),
        (b"\x16\x03\x01", SipError::NotSip, "sip_not_sip"),
        (
            b"INVITE  sip:a@b  SIP/2.0\r\n\r\n",
            SipError::BadStartLine,
            "sip_bad_start_line",
        ),
        (
            b"INVITE sip:a@b SIP/2.0 \r\n\r\n",
            SipError::BadStartLine,
            "sip_bad_start_line",
        ),
        (
            b"INVITE SIP/2.0\r\n\r\n",
            SipError::BadStartLine,
            "sip_bad_start_line",
        ),
        (
            b"INV(TE sip:a@b SIP/2.0\r\n\r\n",
            SipError::BadStartLine,
            "sip_bad_start_line",
        ),
        (
            b"OPTIONS sip:a@b SIP/7.0\r\n\r\n",
            SipError::BadVersion,
            "sip_bad_version",
        ),
        (
            b"SIP/3.0 200 OK\r\n\r\n",
            SipError::BadVersion,
            "sip_bad_version",
        ),
        (
            b"SIP/2.0 4294967301 x\r\n\r\n",
            SipError::BadStatus,
            "sip_bad_status",
        ),
        (
            b"SIP/2.0 99 x\r\n\r\n",
            SipError::BadStatus,
            "sip_bad_status",
        ),
        (
            b"SIP/2.0 700 x\r\n\r\n",
            SipError::BadStatus,
            "sip_bad_status",
        ),
        (
            b"SIP/2.0 200x\r\n\r\n",
            SipError::BadStatus,
            "sip_bad_status",
        ),
        (b"SIP/2.0\r\n\r\n", SipError::BadStatus, "sip_bad_status"),
        (
            b"INVITE <sip:a@b> SIP/2.0\r\n\r\n",
            SipError::BadUri,
            "sip_bad_uri",
        ),
        (
            b"INVITE sip:a@b; lr SIP/2.0\r\n\r\n",
            SipError::BadUri,
            "sip_bad_uri",
        ),
        (
            b"INVITE sip:a@b?Route=x SIP/2.0\r\n\r\n",
            SipError::BadUri,
            "sip_bad_uri",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nNoColon\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nBad Name: x\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\n folded: start\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nFrom: Bell, A <sip:a@b>\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID:\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nContact: sip:a@b?x=y\r\n\r\n",
            SipError::BadHeader,
            "sip_bad_header",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;;\r\n\r\n",
            SipError::BadVia,
            "sip_bad_via",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 4294967296 OPTIONS\r\n\r\n",
            SipError::BadCSeq,
            "sip_bad_cseq",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nCSeq: 8 INVITE\r\n\r\n",
            SipError::CSeqMethodMismatch,
            "sip_cseq_method_mismatch",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nTo: \"open <sip:a@b>\r\n\r\n",
            SipError::UnterminatedQuote,
            "sip_unterminated_quote",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: -999\r\n\r\n",
            SipError::BadContentLength,
            "sip_bad_content_length",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 99999999999999999999999\r\n\r\n",
            SipError::BadContentLength,
            "sip_bad_content_length",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nContent-Length: 0\r\n\r\n",
            SipError::DuplicateContentLength,
            "sip_duplicate_content_length",
        ),
        // Two lengths: the first is checked first, then the second is an error.
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: x\r\nContent-Length: 0\r\n\r\n",
            SipError::BadContentLength,
            "sip_bad_content_length",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 70000\r\nContent-Length: 0\r\n\r\n",
            SipError::TooLarge,
            "sip_too_large",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\nX: 1\r\nl: x\r\nl: 0\r\n\r\n",
            SipError::DuplicateContentLength,
            "sip_duplicate_content_length",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\ni: 1\r\nCall-ID: 2\r\n\r\n",
            SipError::MultipleSingletonHeaders,
            "sip_multiple_singleton_headers",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 10\r\n\r\nabc",
            SipError::Truncated,
            "sip_truncated",
        ),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 0\r\n",
            SipError::Truncated,
            "sip_truncated",
        ),
        (b"OPTIONS sip:a@b SI", SipError::Truncated, "sip_truncated"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\nl: 70000\r\n\r\n",
            SipError::TooLarge,
            "sip_too_large",
        ),
        (&big_header, SipError::TooLarge, "sip_too_large"),
        (
            &many_headers,
            SipError::TooManyHeaders,
            "sip_too_many_headers",
        ),
    ];
    for (input, kind, label) in cases {
        let got = SipMessage::parse(input).err();
        assert_eq!(
            got,
            Some(kind),
            "{:?}",
            String::from_utf8_lossy(&input[..input.len().min(80)])
        );
        assert_eq!(kind.as_str(), label);
    }
}

#[test]
fn looks_like_sip_cheaply() {
    assert!(looks_like_sip(INVITE));
    assert!(looks_like_sip(b"SIP/2.0 200 OK\r\n"));
    assert!(looks_like_sip(b"OPTIONS sip:a@b SIP/2.0\n"));
    assert!(!looks_like_sip(b"GET / HTTP/1.1\r\n"));
    assert!(!looks_like_sip(b"\x80\x00\x00\x01"));
    assert!(!looks_like_sip(b"INVITE sip:a@b SIP/2.0"));
    assert!(!looks_like_sip(b""));
    assert!(!looks_like_sip(b" SIP/2.0\r\n"));
}

// -------------------------------------------------------------------------------------
// Property tests: no input panics, and well-formed inputs keep parsing.

use super::exercise::every_getter as exercise;

fn mutate(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(pos, op, byte) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let i = pos % v.len();
        match op % 4 {
            0 => v[i] = byte,
            1 => v.insert(i, byte),
            2 => {
                v.remove(i);
            }
            _ => v.truncate(i),
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = looks_like_sip(&bytes);
        if let Ok(m) = SipMessage::parse_lenient(&bytes) {
            exercise(&m);
        }
        let _ = SipMessage::parse(&bytes);
        let _ = Uri::parse(&bytes);
        let _ = NameAddr::parse(&bytes);
        let _ = Via::parse(&bytes);
        let _ = CSeq::parse(&bytes);
        let _ = Replaces::parse(&bytes);
    }

    #[test]
    fn never_panics_on_mutated_messages(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), prop_oneof![
            Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'"'), Just(b'<'), Just(b'>'),
            Just(b';'), Just(b','), Just(b':'), Just(b'%'), Just(b'\\'), Just(0u8), any::<u8>()
        ]), 1..8)
    ) {
        let v = mutate(INVITE, &edits);
        if let Ok(m) = SipMessage::parse_lenient(&v) {
            exercise(&m);
            prop_assert!(m.len() <= v.len());
        }
        if let Ok(m) = SipMessage::parse(&v) {
            // The views kept from validation equal those parsed on demand.
            let lenient = SipMessage::parse_lenient(&v).unwrap();
            prop_assert_eq!(m.from(), lenient.from());
            prop_assert_eq!(m.to(), lenient.to());
            prop_assert_eq!(m.cseq(), lenient.cseq());
            prop_assert_eq!(m.top_via(), lenient.top_via());
            prop_assert_eq!(m.contact(), lenient.contact());
            prop_assert_eq!(m.call_id(), lenient.call_id());
            prop_assert_eq!(m.call_id(), m.header(HeaderName::CallId));
            prop_assert_eq!(m.content_type(), lenient.content_type());
            prop_assert_eq!(m.content_type(), m.header(HeaderName::ContentType));
            // The tag kept from validation is the one a parameter lookup finds.
            for a in [m.from(), m.to(), m.contact()].into_iter().flatten() {
                prop_assert_eq!(a.tag(), tag_by_lookup(&a));
            }
        }
    }

    #[test]
    fn a_via_line_is_judged_as_its_elements_are(
        v in "SIP/2\\.0/UDP [a-z0-9.:\\[\\]]{1,8}(;[a-z]{1,6}(=([a-z0-9.,]{0,6}|\"[a-z ,;]{0,6}\"))?){0,3}[ ,;]{0,2}(, ?SIP/2\\.0/TCP [a-z.]{1,4}(;branch=z9hG4bK[a-z,]{0,4})?)?"
    ) {
        let raw = format!("OPTIONS sip:a@b SIP/2.0\r\nVia: {v}\r\nl: 0\r\n\r\n");
        // Each top-level element parsed on its own, as the parser did before it tried
        // the whole line first.
        let v = lex::trim(v.as_bytes());
        let elements: Result<Vec<Via<'_>>, SipError> =
            lex::split_top_level(v, b',').map(Via::parse).collect();
        let got = SipMessage::parse(raw.as_bytes());
        match elements {
            Ok(vias) => {
                let m = got.unwrap();
                prop_assert_eq!(m.top_via(), vias.first().copied());
                prop_assert_eq!(m.via_count(), vias.len());
            }
            Err(e) => prop_assert_eq!(got.err(), Some(e)),
        }
    }

    #[test]
    fn header_values_round_trip(
        name in "[A-Za-z][A-Za-z0-9-]{0,15}",
        value in "[!-~]([ !-~]{0,40}[!-~])?",
    ) {
        let raw = format!("OPTIONS sip:a@b SIP/2.0\r\nX-{name}: {value}\r\nl: 0\r\n\r\n");
        let m = SipMessage::parse_lenient(raw.as_bytes()).unwrap();
        let hname = format!("x-{name}");
        prop_assert_eq!(m.header_by_name(hname.as_bytes()), Some(value.as_bytes()));
    }

    #[test]
    fn cseq_round_trips(seq in any::<u32>(), zeros in 0usize..4) {
        let raw = format!("BYE sip:a@b SIP/2.0\r\nCSeq: {}{seq} BYE\r\nl: 0\r\n\r\n", "0".repeat(zeros));
        let m = SipMessage::parse(raw.as_bytes()).unwrap();
        prop_assert_eq!(m.cseq(), Some(CSeq { seq, method: Method::Bye }));
    }
}
