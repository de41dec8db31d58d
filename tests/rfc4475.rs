//! The RFC 4475 SIP torture messages against the verdicts of
//! `shared/reference/standards.md` §7: valid ones parse with the right fields, invalid
//! ones are rejected with a specific [`SipError`], and nothing panics, not even on every
//! truncated prefix of every message.
//!
//! The messages are read from `../shared/data/rfc4475/` beside the crate; the test fails
//! (never skips) when that folder or any file of the table is missing.
//!
//! Note: most of these `.dat` files have LF line ends while their Content-Length still
//! counts CRLF (e.g. wsinv: 150 announced, 142 present, 8 line breaks). The parser
//! accepts such LF-converted messages by counting each bare LF twice when the body is
//! short; clerr (9999 announced) stays truncated.

use std::collections::BTreeSet;
use std::path::PathBuf;

use callwatch::wire::sip::exercise::every_getter as exercise;
use callwatch::wire::sip::{
    CSeq, HeaderName, Method, NameAddr, Scheme, SipError, SipMessage, StartLine,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/rfc4475")
}

fn load(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Parses a message that must be valid, panicking with the error otherwise.
type MustParse = fn(&[u8]) -> SipMessage<'_>;

fn ok(name: &str) -> (Vec<u8>, MustParse) {
    (load(name), |b| {
        SipMessage::parse(b).unwrap_or_else(|e| panic!("expected Ok, got {e:?}"))
    })
}

/// Verdict per file: `None` = must parse, `Some(kind)` = must be rejected with `kind`.
const VERDICTS: &[(&str, Option<SipError>)] = &[
    // §3.1.1 valid messages (standards §7.1).
    ("wsinv", None),
    ("intmeth", None),
    ("esc01", None),
    ("escnull", None),
    ("esc02", None),
    ("lwsdisp", None),
    ("longreq", None),
    ("dblreq", None),
    ("semiuri", None),
    ("transports", None),
    ("mpart01", None),
    ("unreason", None),
    ("noreason", None),
    // §3.1.2 invalid messages (standards §7.2).
    ("badinv01", Some(SipError::BadVia)),
    ("clerr", Some(SipError::Truncated)),
    ("ncl", Some(SipError::BadContentLength)),
    ("scalar02", Some(SipError::BadCSeq)),
    ("scalarlg", Some(SipError::BadCSeq)),
    ("quotbal", Some(SipError::UnterminatedQuote)),
    ("ltgtruri", Some(SipError::BadUri)),
    ("lwsruri", Some(SipError::BadUri)),
    ("lwsstart", Some(SipError::BadStartLine)),
    ("trws", Some(SipError::BadStartLine)),
    ("escruri", Some(SipError::BadUri)),
    // Date is never read, so a bad Date does not make the message unusable.
    ("baddate", None),
    ("regbadct", Some(SipError::BadHeader)),
    ("badaspec", Some(SipError::BadUri)),
    // The file lacks the empty line ending the headers; with it the display name is
    // rejected (see `baddn_display_name_is_rejected`).
    ("baddn", Some(SipError::Truncated)),
    ("badvers", Some(SipError::BadVersion)),
    ("mismatch01", Some(SipError::CSeqMethodMismatch)),
    ("mismatch02", Some(SipError::CSeqMethodMismatch)),
    ("bigcode", Some(SipError::BadStatus)),
    // §3.2 transaction layer (standards §7.3).
    ("badbranch", None),
    // §3.3 application layer (standards §7.4).
    ("insuf", None),
    ("unkscm", None),
    ("novelsc", None),
    ("unksm2", None),
    ("bext01", None),
    ("invut", None),
    ("regaut01", None),
    ("multi01", Some(SipError::MultipleSingletonHeaders)),
    ("mcl01", Some(SipError::DuplicateContentLength)),
    ("bcast", None),
    ("zeromf", None),
    ("cparam01", None),
    ("cparam02", None),
    ("regescrt", None),
    ("sdp01", None),
    // §3.4 backward compatibility (standards §7.5).
    ("inv2543", None),
    // Not an RFC 4475 case: a draft-era INVITE shipped in the tarball, whose request
    // line has no SIP-Version.
    ("test", Some(SipError::NotSip)),
];

/// The views `parse` keeps from validation equal those parsed on demand.
fn same_views(validated: &SipMessage<'_>, lenient: &SipMessage<'_>) {
    assert_eq!(validated.from(), lenient.from());
    assert_eq!(validated.to(), lenient.to());
    assert_eq!(validated.cseq(), lenient.cseq());
    assert_eq!(validated.top_via(), lenient.top_via());
    assert_eq!(validated.contact(), lenient.contact());
}

#[test]
fn every_message_gets_its_verdict() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .unwrap_or_else(|e| panic!("RFC 4475 messages missing at {}: {e}", dir().display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "dat"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let in_table: BTreeSet<String> = VERDICTS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        on_disk, in_table,
        "the table must cover exactly the files on disk"
    );
    assert_eq!(VERDICTS.len(), 50);

    let mut wrong = Vec::new();
    for &(name, want) in VERDICTS {
        let raw = load(name);
        let got = SipMessage::parse(&raw).err();
        if got != want {
            wrong.push(format!("{name}: want {want:?}, got {got:?}"));
        }
        if let Ok(m) = SipMessage::parse_lenient(&raw) {
            exercise(&m);
        }
        if let Ok(m) = SipMessage::parse(&raw) {
            same_views(&m, &SipMessage::parse_lenient(&raw).unwrap());
        }
    }
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn no_prefix_of_any_message_panics() {
    for &(name, _) in VERDICTS {
        let raw = load(name);
        for end in 0..=raw.len() {
            let prefix = &raw[..end];
            if let Ok(m) = SipMessage::parse_lenient(prefix) {
                exercise(&m);
                assert!(m.len() <= end);
            }
        }
    }
}

#[test]
fn wsinv_whitespace_folding_and_compact_forms() {
    let (raw, parse) = ok("wsinv");
    let m = parse(&raw);
    assert!(m.was_folded());
    assert_eq!(m.method(), Some(Method::Invite));
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user, Some(&b"vivekg"[..]));
    assert_eq!(ruri.host, b"chair-dnrc.example.com");
    assert_eq!(ruri.param(b"unknownparam"), Some(&b""[..]));
    assert_eq!(m.max_forwards(), Some(68));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 9,
            method: Method::Invite
        })
    );
    assert_eq!(m.call_id(), Some(&b"wsinv.ndaksdj@192.0.2.1"[..]));
    let to = m.to().unwrap();
    assert_eq!(to.uri.user, Some(&b"vivekg"[..]));
    assert_eq!(to.tag(), Some(&b"1918181833n"[..]));
    let from = m.from().unwrap();
    assert_eq!(from.display, Some(&br#"J Rosenberg \\\""#[..]));
    assert_eq!(
        from.display_unescaped().as_deref(),
        Some(&br#"J Rosenberg \""#[..])
    );
    assert_eq!(from.uri.user, Some(&b"jdrosen"[..]));
    assert_eq!(from.tag(), Some(&b"98asjd8"[..]));
    assert_eq!(m.via_count(), 3);
    let vias: Vec<_> = m.vias().collect();
    assert_eq!(vias.len(), 3);
    assert_eq!(
        (vias[0].transport, vias[0].sent_by),
        (&b"UDP"[..], &b"192.0.2.2"[..])
    );
    assert_eq!(vias[0].branch, Some(&b"390skdjuw"[..]));
    assert_eq!(
        (vias[1].transport, vias[1].sent_by),
        (&b"TCP"[..], &b"spindle.example.com"[..])
    );
    assert_eq!(vias[1].branch, Some(&b"z9hG4bK9ikj8"[..]));
    assert_eq!(vias[2].sent_by, b"192.168.255.111");
    assert_eq!(vias[2].branch, Some(&b"z9hG4bK30239"[..]));
    assert_eq!(m.top_via(), Some(vias[0]));
    let contact = m.contact().unwrap();
    assert_eq!(contact.display, Some(&br#"Quoted string \"\""#[..]));
    assert_eq!(contact.param(b"newparam"), Some(&b"newvalue"[..]));
    assert_eq!(contact.param(b"secondparam"), Some(&b""[..]));
    assert_eq!(contact.param(b"q"), Some(&b"0.33"[..]));
    assert_eq!(m.header(HeaderName::Subject), Some(&b""[..]));
    assert_eq!(
        m.header_by_name(b"newfangledheader"),
        Some(&b"newfangled value  continued newfangled value"[..])
    );
    assert_eq!(
        m.header_by_name(b"UnknownHeaderWithUnusualValue"),
        Some(&b";;,,;;,;"[..])
    );
    assert_eq!(
        m.header(HeaderName::Route),
        Some(&b"<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"[..])
    );
    assert_eq!(m.content_type(), Some(&b"application/sdp"[..]));
    assert!(m
        .sdp()
        .is_some_and(|s| s.starts_with(b"v=0\n") && s.ends_with(b"a=rtpmap:31 LPC\n")));
}

#[test]
fn intmeth_bytes_stay_bytes() {
    let (raw, parse) = ok("intmeth");
    let m = parse(&raw);
    let method = b"!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(m.method(), Some(Method::Other(method)));
    assert_eq!(
        m.cseq(),
        Some(CSeq {
            seq: 139122385,
            method: Method::Other(method)
        })
    );
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        ruri.user,
        Some(&b"1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"[..])
    );
    assert_eq!(ruri.host, b"example.com");
    let to = m.to().unwrap();
    assert_eq!(to.display, Some(&b"BEL:\\\x07 NUL:\\\x00 DEL:\\\x7f"[..]));
    assert_eq!(
        to.display_unescaped().as_deref(),
        Some(&b"BEL:\x07 NUL:\x00 DEL:\x7f"[..])
    );
    let from = m.from().unwrap();
    assert_eq!(from.display, Some(&b"token1~` token2'+_ token3*%!.-"[..]));
    assert_eq!(from.tag(), Some(&b"_token~1'+`*%!-."[..]));
    assert!(from
        .param(b"fromParam''~+*_!.-%")
        .is_some_and(|v| v.starts_with(b"\xd1\x80")));
    assert_eq!(
        m.call_id(),
        Some(&br#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#[..])
    );
    assert_eq!(
        m.top_via().unwrap().branch,
        Some(&b"z9hG4bK-.!%66*_+`'~"[..])
    );
    assert_eq!(m.max_forwards(), Some(255));
    assert_eq!(
        m.header_by_name(b"extensionHeader-!.%*+_`'~"),
        Some(&b"\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b\xbb"[..])
    );
}

#[test]
fn escapes_in_uris() {
    let (raw, parse) = ok("esc01");
    let m = parse(&raw);
    let ruri = m.request_uri().unwrap();
    assert_eq!(
        ruri.user_unescaped().as_deref(),
        Some(&b"sips:user@example.com"[..])
    );
    assert_eq!(ruri.host, b"example.net");
    assert_eq!(
        m.to().unwrap().uri.user_unescaped().as_deref(),
        Some(&b"user"[..])
    );
    assert_eq!(
        m.from().unwrap().uri.user_unescaped().as_deref(),
        Some(&b"I have spaces"[..])
    );
    let contact = m.contact().unwrap();
    assert_eq!(
        contact.uri.user_unescaped().as_deref(),
        Some(&b"caller"[..])
    );
    assert_eq!(contact.uri.params, b"%6C%72;n%61me=v%61lue%25%34%31");
    assert_eq!(
        m.call_id(),
        Some(&b"esc01.239409asdfakjkn23onasd0-3234"[..])
    );
    assert_eq!(m.content_type(), Some(&b"application/sdp"[..]));

    let (raw, parse) = ok("escnull");
    let m = parse(&raw);
    assert_eq!(
        m.to().unwrap().uri.user_unescaped().as_deref(),
        Some(&b"null-\0-null"[..])
    );
    let contacts: Vec<_> = m
        .header_values(HeaderName::Contact)
        .map(|v| {
            NameAddr::parse(v)
                .unwrap()
                .uri
                .user_unescaped()
                .unwrap()
                .into_owned()
        })
        .collect();
    assert_eq!(contacts, vec![b"\0".to_vec(), b"\0\0".to_vec()]);

    let (raw, parse) = ok("esc02");
    let m = parse(&raw);
    assert_eq!(m.method(), Some(Method::Other(b"RE%47IST%45R")));
    assert_eq!(m.cseq().unwrap().method, Method::Other(b"RE%47IST%45R"));
    assert_eq!(m.to().unwrap().display, Some(&b"%Z%45"[..]));
    assert_eq!(m.headers(HeaderName::Contact).count(), 2);
    assert_eq!(
        m.header_by_name(b"C%6Fntact"),
        Some(&b"<sip:alias2@host2.example.com>"[..])
    );
    assert_eq!(
        m.top_via().unwrap().branch,
        Some(&b"z9hG4bK209%fzsnel234"[..])
    );
}

#[test]
fn other_valid_messages() {
    let (raw, parse) = ok("lwsdisp");
    let m = parse(&raw);
    assert_eq!(m.from().unwrap().display, Some(&b"caller"[..]));

    let (raw, parse) = ok("longreq");
    let m = parse(&raw);
    assert_eq!(m.cseq().unwrap().seq, 3882340);
    assert!(m.to().unwrap().display.is_some_and(|d| d.len() > 100));
    assert_eq!(m.via_count(), 34);
    assert_eq!(m.vias().nth(33).unwrap().sent_by, b"host.example.com");
    assert!(m
        .from()
        .unwrap()
        .tag()
        .is_some_and(|t| t.starts_with(b"12982982982")));
    assert!(m.call_id().is_some_and(|c| c.len() > 100));
    assert!(
        m.heap_allocated(),
        "more than 32 header lines spill the index"
    );

    let (raw, parse) = ok("dblreq");
    let m = parse(&raw);
    assert_eq!(m.method(), Some(Method::Register));
    assert_eq!(m.len(), 290);
    assert!(m.len() < raw.len());
    assert_eq!(m.body(), b"");
    assert_eq!(
        m.call_id(),
        Some(&b"dblreq.0ha0isndaksdj99sdfafnl3lk233412"[..])
    );

    let (raw, parse) = ok("semiuri");
    let m = parse(&raw);
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.user, Some(&b"user;par=u%40example.net"[..]));
    assert_eq!(ruri.host, b"example.com");
    assert_eq!(ruri.params, b"");

    let (raw, parse) = ok("transports");
    let m = parse(&raw);
    let transports: Vec<&[u8]> = m.vias().map(|v| v.transport).collect();
    assert_eq!(
        transports,
        [&b"UDP"[..], b"SCTP", b"TLS", b"UNKNOWN", b"TCP"]
    );

    let (raw, parse) = ok("unreason");
    let m = parse(&raw);
    assert_eq!(m.status(), Some(200));
    assert!(m
        .reason_phrase()
        .is_some_and(|r| r.starts_with(b"= 2**3 * 5**2 \xd0\xbd")));
    assert!(m.sdp().is_some());

    let (raw, parse) = ok("noreason");
    let m = parse(&raw);
    assert_eq!(
        *m.start_line(),
        StartLine::Response {
            code: 100,
            reason: b""
        }
    );
    assert_eq!(m.first_line(), b"SIP/2.0 100 ");
}

#[test]
fn mpart01_multipart_body() {
    let (raw, parse) = ok("mpart01");
    let m = parse(&raw);
    assert_eq!(m.body().len(), 553);
    assert!(m
        .content_type()
        .is_some_and(|c| c.starts_with(b"multipart/mixed")));
    // Its parts are text/plain and application/octet-stream: no SDP.
    assert_eq!(m.sdp(), None);
    // The same message with its text part labelled application/sdp yields that part.
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.contains("Content-Length: 553"));
    let relabelled = raw
        .windows(b"Content-Type: text/plain".len())
        .position(|w| w == b"Content-Type: text/plain")
        .map(|i| {
            let mut v = raw[..i].to_vec();
            v.extend_from_slice(b"Content-Type: application/sdp");
            v.extend_from_slice(&raw[i + b"Content-Type: text/plain".len()..]);
            v
        })
        .unwrap();
    let relabelled = {
        let s = relabelled;
        let i = s
            .windows(19)
            .position(|w| w == b"Content-Length: 553")
            .unwrap();
        let mut v = s[..i].to_vec();
        v.extend_from_slice(b"Content-Length: 558");
        v.extend_from_slice(&s[i + 19..]);
        v
    };
    let m = SipMessage::parse(&relabelled).unwrap();
    assert_eq!(m.sdp(), Some(&b"Hello"[..]));
}

#[test]
fn lenient_parse_of_invalid_messages_still_correlates() {
    let raw = load("badinv01");
    let m = SipMessage::parse_lenient(&raw).unwrap();
    assert_eq!(m.call_id(), Some(&b"badinv01.0ha0isndaksdjasdf3234nas"[..]));
    let raw = load("multi01");
    let m = SipMessage::parse_lenient(&raw).unwrap();
    assert_eq!(m.headers(HeaderName::CallId).count(), 2);
    let raw = load("mismatch01");
    let m = SipMessage::parse_lenient(&raw).unwrap();
    assert_eq!(m.method(), Some(Method::Options));
    assert_eq!(m.cseq().unwrap().method, Method::Invite);
}

#[test]
fn baddn_display_name_is_rejected() {
    let mut raw = load("baddn");
    raw.push(b'\n');
    assert_eq!(SipMessage::parse(&raw).err(), Some(SipError::BadHeader));
}

#[test]
fn baddate_is_kept() {
    let (raw, parse) = ok("baddate");
    let m = parse(&raw);
    assert_eq!(
        m.header_by_name(b"Date"),
        Some(&b"Fri, 01 Jan 2010 16:00:00 EST"[..])
    );
    assert!(m.sdp().is_some());
}

#[test]
fn application_layer_oddities_parse() {
    let (raw, parse) = ok("badbranch");
    let m = parse(&raw);
    let via = m.top_via().unwrap();
    assert_eq!(via.branch, Some(&b"z9hG4bK"[..]));
    assert!(
        !via.has_rfc3261_branch(),
        "bare cookie: fall back to RFC 2543 matching"
    );

    let (raw, parse) = ok("insuf");
    let m = parse(&raw);
    assert_eq!(m.call_id(), None);
    assert_eq!(
        m.require_dialog_headers(),
        Err(SipError::MissingHeader(HeaderName::CallId))
    );

    let (raw, parse) = ok("unkscm");
    let m = parse(&raw);
    let ruri = m.request_uri().unwrap();
    assert_eq!(ruri.scheme, b"nobodyKnowsThisScheme");
    assert_eq!(ruri.scheme_kind(), Scheme::Other);
    assert_eq!(ruri.host, b"totallyopaquecontent");

    let (raw, parse) = ok("novelsc");
    let m = parse(&raw);
    assert_eq!(m.request_uri().unwrap().scheme, b"soap.beep");

    let (raw, parse) = ok("unksm2");
    let m = parse(&raw);
    assert_eq!(m.to().unwrap().uri.scheme, b"isbn");
    assert_eq!(m.from().unwrap().uri.scheme, b"http");
    assert_eq!(m.from().unwrap().tag(), Some(&b"3234233"[..]));
    assert_eq!(m.contact().unwrap().uri.host, b"John_Smith");

    let (raw, parse) = ok("bext01");
    let m = parse(&raw);
    let require: Vec<_> = m.header_values(HeaderName::Require).collect();
    assert_eq!(
        require,
        [&b"nothingSupportsThis"[..], b"nothingSupportsThisEither"]
    );

    let (raw, parse) = ok("invut");
    let m = parse(&raw);
    assert_eq!(m.content_type(), Some(&b"application/unknownformat"[..]));
    assert_eq!(m.sdp(), None);

    let (raw, parse) = ok("regaut01");
    let m = parse(&raw);
    assert!(m.header_by_name(b"authorization").is_some());

    let (raw, parse) = ok("bcast");
    let m = parse(&raw);
    assert_eq!(m.via_count(), 2);
    assert_eq!(m.vias().nth(1).unwrap().sent_by, b"255.255.255.255");

    let (raw, parse) = ok("zeromf");
    let m = parse(&raw);
    assert_eq!(m.max_forwards(), Some(0));

    let (raw, parse) = ok("cparam01");
    let m = parse(&raw);
    let contact = m.contact().unwrap();
    assert_eq!(
        contact.param(b"unknownparam"),
        Some(&b""[..]),
        "addr-spec: header param"
    );
    assert_eq!(contact.uri.param(b"unknownparam"), None);

    let (raw, parse) = ok("cparam02");
    let m = parse(&raw);
    let contact = m.contact().unwrap();
    assert_eq!(
        contact.uri.param(b"unknownparam"),
        Some(&b""[..]),
        "name-addr: URI param"
    );
    assert_eq!(contact.param(b"unknownparam"), None);

    let (raw, parse) = ok("regescrt");
    let m = parse(&raw);
    let contact = m.contact().unwrap();
    assert_eq!(
        contact.uri.header(b"Route").as_deref(),
        Some(&b"<sip:sip.example.com>"[..])
    );

    let (raw, parse) = ok("sdp01");
    let m = parse(&raw);
    assert!(m.sdp().is_some_and(|s| s.starts_with(b"v=0")));
}

#[test]
fn inv2543_rfc2543_peer() {
    let (raw, parse) = ok("inv2543");
    let m = parse(&raw);
    assert_eq!(m.from().unwrap().tag(), None);
    assert_eq!(m.to().unwrap().tag(), None);
    let via = m.top_via().unwrap();
    assert_eq!(via.branch, None);
    assert!(!via.has_rfc3261_branch());
    assert_eq!(m.header(HeaderName::ContentLength), None);
    assert_eq!(
        m.body().len(),
        99,
        "no Content-Length on UDP: the rest of the datagram"
    );
    assert!(m.sdp().is_some());
    assert_eq!(m.require_dialog_headers(), Ok(()));
}

/// A typical PBX-to-agent INVITE (Asterisk style, 15 headers, SDP body).
const TYPICAL_INVITE: &[u8] = b"INVITE sip:1007@10.20.30.47:5062;transport=udp SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.20.30.1:5060;rport;branch=z9hG4bKPj6c1f9a4e-5c7b-4f0e-9d1a-2b3c4d5e6f70\r\n\
From: \"\xd5\xc5\xc8\xfd 13800138000\" <sip:13800138000@10.20.30.1>;tag=8d7a6c5b-4e3f-2a1b-9c8d-7e6f5a4b3c2d\r\n\
To: <sip:1007@10.20.30.47>\r\n\
Contact: <sip:asterisk@10.20.30.1:5060>\r\n\
Call-ID: 3f2e1d0c-9b8a-7f6e-5d4c-3b2a1f0e9d8c\r\n\
CSeq: 27461 INVITE\r\n\
Allow: OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, PUBLISH, INVITE, ACK, BYE, CANCEL, UPDATE, PRACK, MESSAGE, REFER\r\n\
Supported: 100rel, timer, replaces, norefersub\r\n\
Session-Expires: 1800\r\n\
Min-SE: 90\r\n\
P-Asserted-Identity: \"13800138000\" <sip:13800138000@10.20.30.1>\r\n\
Max-Forwards: 70\r\n\
User-Agent: Asterisk PBX 18.20.0\r\n\
Content-Type: application/sdp\r\n\
Content-Length:   265\r\n\
\r\n\
v=0\r\n\
o=- 1830470218 1830470218 IN IP4 10.20.30.1\r\n\
s=Asterisk\r\n\
c=IN IP4 10.20.30.1\r\n\
t=0 0\r\n\
m=audio 14986 RTP/AVP 8 0 18 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=maxptime:150\r\n\
a=sendrecv\r\n";

/// Throughput of `SipMessage::parse` (with validation) plus the getters the engine calls
/// per message. Run with
/// `cargo test --release --test rfc4475 -- --ignored --nocapture parse_throughput`.
#[test]
#[ignore = "timing, run in release mode"]
fn parse_throughput() {
    use std::hint::black_box;
    use std::time::Instant;

    let m = SipMessage::parse(TYPICAL_INVITE).unwrap();
    assert_eq!(m.body().len(), 265);
    assert!(!m.heap_allocated());

    // CALLWATCH_BENCH_ITERS lowers the count, e.g. to count instructions under valgrind.
    let n: u32 = std::env::var("CALLWATCH_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000);
    let t = Instant::now();
    for _ in 0..n {
        let m = SipMessage::parse(black_box(TYPICAL_INVITE)).unwrap();
        black_box(m.len());
    }
    let parse_only = t.elapsed();

    let t = Instant::now();
    for _ in 0..n {
        let m = SipMessage::parse_lenient(black_box(TYPICAL_INVITE)).unwrap();
        black_box(m.len());
    }
    let lenient = t.elapsed();

    let t = Instant::now();
    for _ in 0..n {
        let m = SipMessage::parse(black_box(TYPICAL_INVITE)).unwrap();
        black_box((m.call_id(), m.cseq(), m.from().and_then(|f| f.tag())));
        black_box((
            m.to().and_then(|t| t.tag()),
            m.top_via().and_then(|v| v.branch),
        ));
        black_box(m.sdp());
    }
    let with_getters = t.elapsed();

    let rate = |d: std::time::Duration| f64::from(n) / d.as_secs_f64();
    println!(
        "typical INVITE ({} bytes): framing only (parse_lenient) {:.0} ns",
        TYPICAL_INVITE.len(),
        lenient.as_nanos() as f64 / f64::from(n),
    );
    println!(
        "typical INVITE ({} bytes): parse {:.2} M msg/s ({:.0} ns), parse+getters {:.2} M msg/s ({:.0} ns)",
        TYPICAL_INVITE.len(),
        rate(parse_only) / 1e6,
        parse_only.as_nanos() as f64 / f64::from(n),
        rate(with_getters) / 1e6,
        with_getters.as_nanos() as f64 / f64::from(n),
    );
}

/// Per-component cost probe for profiling under valgrind: CALLWATCH_PROBE selects what
/// to loop over (framing, uri, from, via, contact, cseq, name, validate).
#[test]
#[ignore = "profiling aid"]
fn component_probe() {
    use std::hint::black_box;
    let which = std::env::var("CALLWATCH_PROBE").unwrap_or_default();
    let n = 10_000;
    let m = SipMessage::parse(TYPICAL_INVITE).unwrap();
    let from = m.header(HeaderName::From).unwrap();
    let via = m.header(HeaderName::Via).unwrap();
    let contact = m.header(HeaderName::Contact).unwrap();
    for _ in 0..n {
        match which.as_str() {
            "framing" => drop(black_box(SipMessage::parse_lenient(black_box(
                TYPICAL_INVITE,
            )))),
            "validate" => drop(black_box(black_box(&m).validate())),
            "uri" => drop(black_box(callwatch::wire::sip::Uri::parse(black_box(
                b"sip:13800138000@10.20.30.1",
            )))),
            "from" => drop(black_box(NameAddr::parse(black_box(from)))),
            "via" => drop(black_box(callwatch::wire::sip::Via::parse(black_box(via)))),
            "contact" => drop(black_box(NameAddr::parse(black_box(contact)))),
            "cseq" => drop(black_box(CSeq::parse(black_box(b"27461 INVITE")))),
            "name" => drop(black_box(HeaderName::from_bytes(black_box(
                b"Content-Type",
            )))),
            _ => {}
        }
    }
}
