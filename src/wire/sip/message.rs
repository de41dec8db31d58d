//! One SIP message (RFC 3261 §7): start line, a header index built once, and the body
//! framed by Content-Length.
//!
//! Input is a UDP datagram, a HEP payload or the head of a reassembled TCP stream;
//! output is a [`SipMessage`] that borrows the input and answers header queries by
//! slicing. Parsing is one pass of `memchr` over the header lines plus the validation of
//! the headers the engine relies on; a typical message allocates nothing (the index is a
//! `SmallVec` of 32 slots). Folded headers (a line break followed by SP/HT) are the one
//! exception: then one copy of the header section is made in which those line breaks are
//! blanked, so every value stays a plain slice with the offsets of the original.

use std::borrow::Cow;

use smallvec::SmallVec;

use super::header::{HeaderName, HEADER_NAME_COUNT};
use super::lex::{self, from, sub};
use super::uri::Scheme;
use super::{multipart, CSeq, Method, NameAddr, Replaces, SipError, Uri, Via};

/// Largest message accepted (standards §7.1 longreq): anything longer is
/// [`SipError::TooLarge`]. UDP datagrams cannot exceed it; over TCP it bounds the work a
/// peer can cause.
pub const MAX_MESSAGE_LEN: usize = 65_536;

/// Most header lines accepted in one message ([`SipError::TooManyHeaders`]).
pub const MAX_HEADERS: usize = 256;

/// The first line of a message (RFC 3261 §7.1, §7.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StartLine<'a> {
    Request {
        method: Method<'a>,
        uri: Uri<'a>,
    },
    /// `code` is 100..=699; `reason` is raw bytes (any charset) and may be empty.
    Response {
        code: u16,
        reason: &'a [u8],
    },
}

/// A byte range of the message. Offsets fit `u32` because messages are capped at
/// [`MAX_MESSAGE_LEN`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Offsets come from a buffer already cut to [`MAX_MESSAGE_LEN`], so they fit.
    #[allow(clippy::cast_possible_truncation)]
    fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }

    fn of(self, b: &[u8]) -> &[u8] {
        sub(b, self.start as usize, self.end as usize)
    }
}

#[derive(Clone, Copy, Debug)]
struct HeaderSlot {
    id: HeaderName,
    name: Span,
    /// Trimmed value, possibly spanning folded lines.
    value: Span,
}

/// A parsed SIP message. See the module documentation.
#[derive(Clone, Debug)]
pub struct SipMessage<'a> {
    /// The message as received, from its start line to the end of its body.
    raw: &'a [u8],
    /// Bytes of the input used, including CRLF keep-alives skipped before the start line.
    consumed: usize,
    /// The header section: `raw` itself, or its unfolded copy.
    text: Cow<'a, [u8]>,
    start: StartLine<'a>,
    first_line: Span,
    headers: SmallVec<[HeaderSlot; 32]>,
    /// Into `raw`.
    body: Span,
    /// What validation parsed, kept as offsets so the getters need not parse again.
    /// `None` after [`SipMessage::parse_lenient`].
    parsed: Option<Parsed>,
}

impl<'a> SipMessage<'a> {
    /// Parses one message at the start of `buf` and validates it
    /// ([`SipMessage::parse_lenient`] then [`SipMessage::validate`]).
    ///
    /// Octets after the body are ignored (RFC 4475 dblreq; [`SipMessage::len`] says
    /// where the next message would start on a stream). Without Content-Length the body
    /// is the rest of `buf`, which is right for UDP only (RFC 3261 §18.3: the header is
    /// mandatory on streams).
    pub fn parse(buf: &'a [u8]) -> Result<SipMessage<'a>, SipError> {
        SipMessage::frame(buf, true)
    }

    /// Frames the message (start line, header lines, Content-Length, body) without
    /// validating header values. For correlation of messages that [`SipMessage::parse`]
    /// rejects (e.g. taking the Call-ID of RFC 4475 badinv01); such a message must not
    /// drive call state.
    pub fn parse_lenient(buf: &'a [u8]) -> Result<SipMessage<'a>, SipError> {
        SipMessage::frame(buf, false)
    }

    /// Framing, then (when `validate`) the checks of [`SipMessage::validate`] on the
    /// parts before the message is assembled: the ~1 KB value is written once, in the
    /// caller's slot, instead of being built, moved out and moved again.
    #[inline(always)]
    fn frame(buf: &'a [u8], validate: bool) -> Result<SipMessage<'a>, SipError> {
        // RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives).
        let lead = buf
            .iter()
            .position(|&c| c != b'\r' && c != b'\n')
            .ok_or(SipError::Empty)?;
        let b = from(buf, lead);
        let scan = sub(b, 0, b.len().min(MAX_MESSAGE_LEN));

        // One searcher for every line break of the header section.
        let mut breaks = memchr::memchr_iter(b'\n', scan);
        let lf = match breaks.next() {
            Some(i) => i,
            None if b.len() >= MAX_MESSAGE_LEN => return Err(SipError::TooLarge),
            None if could_start_sip(b) => return Err(SipError::Truncated),
            None => return Err(SipError::NotSip),
        };
        let line = sub(b, 0, lf);
        let crlf = line.last() == Some(&b'\r');
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = parse_start_line(line)?;

        let mut headers: SmallVec<[HeaderSlot; 32]> = SmallVec::new();
        let mut folded = false;
        let mut count = 0usize;
        let mut pos = lf + 1;
        let header_end = loop {
            let nl = match breaks.next() {
                Some(i) => i,
                None if b.len() >= MAX_MESSAGE_LEN => return Err(SipError::TooLarge),
                None => return Err(SipError::Truncated),
            };
            let line_end = if nl > pos && b.get(nl - 1) == Some(&b'\r') {
                nl - 1
            } else {
                nl
            };
            let line = sub(b, pos, line_end);
            match line.first() {
                None => break nl + 1,
                Some(b' ' | b'\t') => {
                    // A continuation line (RFC 3261 §7.3.1): extend the previous value.
                    let last = headers.last_mut().ok_or(SipError::BadHeader)?;
                    last.value.end = Span::new(0, line_end).end;
                    folded = true;
                }
                Some(_) => {
                    // name = token, then optional SP/HT, then ':' (RFC 3261 HCOLON).
                    let name_len = line
                        .iter()
                        .position(|&c| !lex::is_token_char(c))
                        .unwrap_or(line.len());
                    let mut colon = name_len;
                    while matches!(line.get(colon), Some(b' ' | b'\t')) {
                        colon += 1;
                    }
                    if name_len == 0 || line.get(colon) != Some(&b':') {
                        return Err(SipError::BadHeader);
                    }
                    let name = sub(line, 0, name_len);
                    count += 1;
                    if count > MAX_HEADERS {
                        return Err(SipError::TooManyHeaders);
                    }
                    // Trimmed here (SP, HT and stray CRs, as for folded values, which are
                    // trimmed again below).
                    let raw_value = from(line, colon + 1);
                    let lead = raw_value
                        .iter()
                        .position(|&c| !lex::is_ws(c))
                        .unwrap_or(raw_value.len());
                    let trail = raw_value
                        .iter()
                        .rev()
                        .position(|&c| !lex::is_ws(c))
                        .unwrap_or(0);
                    let value_start = pos + colon + 1 + lead;
                    let value_end = line_end.saturating_sub(trail).max(value_start);
                    headers.push(HeaderSlot {
                        id: HeaderName::from_bytes(name),
                        name: Span::new(pos, pos + name.len()),
                        value: Span::new(value_start, value_end),
                    });
                }
            }
            pos = nl + 1;
        };

        if folded {
            for h in headers.iter_mut() {
                h.value = trimmed(b, h.value);
            }
        }

        let mut content_length = None;
        for h in headers.iter().filter(|h| h.id == HeaderName::ContentLength) {
            if content_length.is_some() {
                return Err(SipError::DuplicateContentLength);
            }
            let n = lex::parse_u64(h.value.of(b)).ok_or(SipError::BadContentLength)?;
            let n = usize::try_from(n)
                .ok()
                .filter(|&n| n <= MAX_MESSAGE_LEN)
                .ok_or(SipError::TooLarge)?;
            content_length = Some(n);
        }
        let rest = from(b, header_end);
        let body_len = match content_length {
            None => rest.len(),
            Some(n) if n <= rest.len() => n,
            // A LF-only message whose Content-Length still counts CRLF line ends: the
            // RFC 4475 files as shipped here, and captures that went through a text tool.
            Some(n) if !crlf => lf_counted_len(rest, n).ok_or(SipError::Truncated)?,
            Some(_) => return Err(SipError::Truncated),
        };
        let total = header_end + body_len;
        if total > MAX_MESSAGE_LEN {
            return Err(SipError::TooLarge);
        }
        let raw = sub(b, 0, total);

        let text = if folded {
            Cow::Owned(unfold(sub(b, 0, header_end)))
        } else {
            Cow::Borrowed(sub(b, 0, header_end))
        };
        let mut parsed = None;
        if validate {
            check_parts(&text, &start, &headers, parsed.insert(Parsed::default()))?;
        }
        Ok(SipMessage {
            raw,
            consumed: lead + total,
            text,
            start,
            first_line: Span::new(0, line.len()),
            headers,
            body: Span::new(header_end, total),
            parsed,
        })
    }

    /// Checks the headers the engine relies on (standards §7.2, §7.4): at most one
    /// Call-ID, From, To, CSeq, Max-Forwards and Content-Type (multi01); a well-formed
    /// Call-ID, From, To (quotbal, badaspec, baddn), CSeq within 32 bits and naming the
    /// request's method (scalar02, scalarlg, mismatch01/02), every Via value (badinv01)
    /// and every Contact value (regbadct). Missing headers are not an error here (insuf);
    /// see [`SipMessage::require_dialog_headers`].
    pub fn validate(&self) -> Result<(), SipError> {
        self.check().map(|_| ())
    }

    /// [`SipMessage::validate`], keeping what it parsed.
    fn check(&self) -> Result<Parsed, SipError> {
        let mut parsed = Parsed::default();
        check_parts(&self.text, &self.start, &self.headers, &mut parsed)?;
        Ok(parsed)
    }

    /// Checks that Call-ID, From, To, CSeq and Via are present (RFC 3261 §8.1.1): what
    /// dialog tracking needs (RFC 4475 insuf lacks them).
    pub fn require_dialog_headers(&self) -> Result<(), SipError> {
        for id in [
            HeaderName::CallId,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CSeq,
            HeaderName::Via,
        ] {
            if self.header(id).is_none() {
                return Err(SipError::MissingHeader(id));
            }
        }
        Ok(())
    }

    /// True when some header was folded, so the header section was copied once.
    pub fn was_folded(&self) -> bool {
        matches!(self.text, Cow::Owned(_))
    }

    /// True when parsing allocated (a folded copy, or more than 32 header lines).
    pub fn heap_allocated(&self) -> bool {
        self.was_folded() || self.headers.spilled()
    }

    /// Bytes of the input this message used (start line to end of body, plus any CRLF
    /// keep-alives before it). The next message of a stream starts there.
    pub fn len(&self) -> usize {
        self.consumed
    }

    /// Always false: a parsed message has at least a start line.
    pub fn is_empty(&self) -> bool {
        self.consumed == 0
    }

    /// The message bytes as received (not the unfolded copy), without leading CRLFs.
    pub fn raw(&self) -> &[u8] {
        self.raw
    }

    pub fn start_line(&self) -> &StartLine<'_> {
        &self.start
    }

    /// The raw first line without its line break (for a SIP ladder).
    pub fn first_line(&self) -> &[u8] {
        self.first_line.of(self.raw)
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request method; `None` for responses.
    pub fn method(&self) -> Option<Method<'_>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI; `None` for responses.
    pub fn request_uri(&self) -> Option<Uri<'_>> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code; `None` for requests.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response, raw bytes; `None` for requests.
    pub fn reason_phrase(&self) -> Option<&[u8]> {
        match self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header of that name (compact forms included), trimmed and unfolded.
    pub fn header(&self, name: HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.id == name)
            .map(|h| h.value.of(&self.text))
    }

    /// The first header whose name equals `name` case-insensitively; a known name (or
    /// compact form) also finds the other spelling, e.g. `Subject` finds `s:`.
    pub fn header_by_name(&self, name: &[u8]) -> Option<&[u8]> {
        let id = HeaderName::from_bytes(name);
        self.headers
            .iter()
            .find(|h| {
                h.id == id
                    && (id != HeaderName::Other || h.name.of(&self.text).eq_ignore_ascii_case(name))
            })
            .map(|h| h.value.of(&self.text))
    }

    /// Every header line of that name, in order.
    pub fn headers(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.id == name)
            .map(|h| h.value.of(&self.text))
    }

    /// Every header line whose name equals `name` (see [`SipMessage::header_by_name`]).
    pub fn headers_by_name<'s>(&'s self, name: &'s [u8]) -> impl Iterator<Item = &'s [u8]> + 's {
        let id = HeaderName::from_bytes(name);
        self.headers
            .iter()
            .filter(move |h| {
                h.id == id
                    && (id != HeaderName::Other || h.name.of(&self.text).eq_ignore_ascii_case(name))
            })
            .map(|h| h.value.of(&self.text))
    }

    /// Every comma-separated element of every header line of that name, trimmed (for
    /// list headers: Via, Contact, Route, Supported, P-Asserted-Identity ...). Commas in
    /// quoted strings and `<>` do not split.
    pub fn header_values(&self, name: HeaderName) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers(name)
            .flat_map(|v| lex::split_top_level(v, b','))
            .map(lex::trim)
            .filter(|v| !v.is_empty())
    }

    /// All header lines as (name, value), in order; names as written.
    pub fn all_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.headers
            .iter()
            .map(|h| (h.name.of(&self.text), h.value.of(&self.text)))
    }

    pub fn call_id(&self) -> Option<&[u8]> {
        match &self.parsed {
            Some(p) => p.call_id.map(|v| v.of(&self.text)),
            None => self.header(HeaderName::CallId),
        }
    }

    pub fn cseq(&self) -> Option<CSeq<'_>> {
        match &self.parsed {
            Some(p) => p.cseq.map(|(seq, method)| CSeq {
                seq,
                method: Method::from_bytes(method.of(&self.text)),
            }),
            None => CSeq::parse(self.header(HeaderName::CSeq)?).ok(),
        }
    }

    pub fn from(&self) -> Option<NameAddr<'_>> {
        match &self.parsed {
            Some(p) => p.from.map(|a| a.get(&self.text)),
            None => NameAddr::parse(self.header(HeaderName::From)?).ok(),
        }
    }

    pub fn to(&self) -> Option<NameAddr<'_>> {
        match &self.parsed {
            Some(p) => p.to.map(|a| a.get(&self.text)),
            None => NameAddr::parse(self.header(HeaderName::To)?).ok(),
        }
    }

    /// The first value of the first Via header (the hop that sent this message).
    pub fn top_via(&self) -> Option<Via<'_>> {
        if let Some(p) = &self.parsed {
            return p.top_via.map(|v| v.get(&self.text));
        }
        let first = lex::split_top_level(self.header(HeaderName::Via)?, b',').next()?;
        Via::parse(first).ok()
    }

    /// Every Via value in order, malformed ones skipped (they only occur after
    /// [`SipMessage::parse_lenient`]).
    pub fn vias(&self) -> impl Iterator<Item = Via<'_>> + '_ {
        self.header_values(HeaderName::Via)
            .filter_map(|v| Via::parse(v).ok())
    }

    /// Number of Via values over all Via header lines.
    pub fn via_count(&self) -> usize {
        self.header_values(HeaderName::Via).count()
    }

    /// The first Contact value; `None` for `Contact: *`.
    pub fn contact(&self) -> Option<NameAddr<'_>> {
        if let Some(p) = &self.parsed {
            return p.contact.map(|a| a.get(&self.text));
        }
        NameAddr::parse(self.header_values(HeaderName::Contact).next()?).ok()
    }

    /// The first P-Asserted-Identity value (RFC 3325 §9.1; it may list a sip and a tel
    /// identity).
    pub fn p_asserted_identity(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header_values(HeaderName::PAssertedIdentity).next()?).ok()
    }

    /// The first Remote-Party-ID value (pre-RFC 3325 PBXs).
    pub fn remote_party_id(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header_values(HeaderName::RemotePartyId).next()?).ok()
    }

    /// The Refer-To target (RFC 3515 §2.1).
    pub fn refer_to(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header(HeaderName::ReferTo)?).ok()
    }

    /// The Referred-By party (RFC 3892).
    pub fn referred_by(&self) -> Option<NameAddr<'_>> {
        NameAddr::parse(self.header(HeaderName::ReferredBy)?).ok()
    }

    /// The `Replaces` header of an INVITE (RFC 3891).
    pub fn replaces(&self) -> Option<Replaces<'_>> {
        Replaces::parse(self.header(HeaderName::Replaces)?)
    }

    /// The `Replaces` carried inside the Refer-To URI of a REFER (attended transfer).
    pub fn refer_to_replaces(&self) -> Option<Replaces<'_>> {
        self.refer_to()?.uri.replaces()
    }

    /// Max-Forwards as a number (`None` when absent or not a number).
    pub fn max_forwards(&self) -> Option<u32> {
        lex::parse_u32(self.header(HeaderName::MaxForwards)?)
    }

    pub fn content_type(&self) -> Option<&[u8]> {
        match &self.parsed {
            Some(p) => p.content_type.map(|v| v.of(&self.text)),
            None => self.header(HeaderName::ContentType),
        }
    }

    /// The body (Content-Length octets, or the rest of the datagram without it).
    pub fn body(&self) -> &[u8] {
        self.body.of(self.raw)
    }

    /// The SDP: an `application/sdp` body or the `application/sdp` part of a
    /// `multipart/*` body (RFC 4475 mpart01).
    pub fn sdp(&self) -> Option<&[u8]> {
        let body = self.body();
        if body.is_empty() {
            return None;
        }
        multipart::find_sdp(self.content_type(), body)
    }
}

/// [`SipMessage::check`] on the parts of a message (so that [`SipMessage::parse`] can
/// validate before it assembles the message). Fills `parsed` (a default one) in place:
/// returned by value it was one more copy of a few hundred bytes per message.
fn check_parts(
    text: &[u8],
    start: &StartLine<'_>,
    headers: &[HeaderSlot],
    parsed: &mut Parsed,
) -> Result<(), SipError> {
    // One pass over the index; a singleton seen twice fails at once.
    let mut seen = [false; HEADER_NAME_COUNT];
    for h in headers {
        let v = h.value.of(text);
        match h.id {
            HeaderName::CallId
            | HeaderName::From
            | HeaderName::To
            | HeaderName::CSeq
            | HeaderName::MaxForwards
            | HeaderName::ContentType => {
                if let Some(s) = seen.get_mut(h.id as usize) {
                    if *s {
                        return Err(SipError::MultipleSingletonHeaders);
                    }
                    *s = true;
                }
            }
            _ => {}
        }
        match h.id {
            // No early exit: a fold without branches is vectorised (Call-IDs are long).
            HeaderName::CallId
                if v.is_empty() || v.iter().fold(false, |ws, &c| ws | lex::is_ws(c)) =>
            {
                return Err(SipError::BadHeader);
            }
            // Singletons (checked above): the one value is the first.
            HeaderName::CallId => parsed.call_id = Some(h.value),
            HeaderName::ContentType => parsed.content_type = Some(h.value),
            HeaderName::From => parsed.from = Some(AddrSpans::of(text, &NameAddr::parse(v)?)),
            HeaderName::To => parsed.to = Some(AddrSpans::of(text, &NameAddr::parse(v)?)),
            HeaderName::CSeq => {
                let cseq = CSeq::parse(v)?;
                if let StartLine::Request { method, .. } = start {
                    if cseq.method != *method {
                        return Err(SipError::CSeqMethodMismatch);
                    }
                }
                // The method token ends the (trimmed) value; known methods carry
                // no slice, so take it from the text.
                let vt = lex::trim(v);
                let method_start = vt.iter().rposition(|&c| lex::is_ws(c)).map_or(0, |i| i + 1);
                parsed.cseq = Some((cseq.seq, span_of(text, from(vt, method_start))));
            }
            HeaderName::Via => {
                // A Via value that parses whole is one element: no part of a via-parm may
                // hold a comma outside a quoted string. That is the usual line, taken
                // without a search for commas; only a line that fails whole (a list, or
                // a bad value) is split, and its verdict is the split's.
                if let Ok(via) = Via::parse(v) {
                    if !parsed.has_via {
                        parsed.has_via = true;
                        parsed.top_via = Some(ViaSpans::of(text, &via));
                    }
                    continue;
                }
                for part in list_elements(v) {
                    let via = Via::parse(part)?;
                    if !parsed.has_via {
                        parsed.has_via = true;
                        parsed.top_via = Some(ViaSpans::of(text, &via));
                    }
                }
            }
            HeaderName::Contact if v != b"*" => {
                for part in list_elements(v) {
                    let contact = NameAddr::parse(part)?;
                    if !parsed.has_contact {
                        parsed.has_contact = true;
                        parsed.contact = Some(AddrSpans::of(text, &contact));
                    }
                }
            }
            HeaderName::Contact => parsed.has_contact = true,
            _ => {}
        }
    }
    Ok(())
}

/// The values [`SipMessage::validate`] parsed, as offsets into the header text: the
/// getters the engine calls on every message rebuild their views from these instead of
/// parsing again. Plain offsets, because the text may be the message's own unfolded copy.
#[derive(Clone, Copy, Debug, Default)]
struct Parsed {
    /// The Call-ID and Content-Type values (singletons), so that their getters do not
    /// walk the header index.
    call_id: Option<Span>,
    content_type: Option<Span>,
    from: Option<AddrSpans>,
    to: Option<AddrSpans>,
    /// CSeq number and method token.
    cseq: Option<(u32, Span)>,
    top_via: Option<ViaSpans>,
    has_via: bool,
    /// First Contact value; `None` for `Contact: *` or no Contact.
    contact: Option<AddrSpans>,
    has_contact: bool,
}

/// Where `part`, a sub-slice of `text`, lies in it. Slices that are not inside `text`
/// (only ever empty constants) map to an empty span.
fn span_of(text: &[u8], part: &[u8]) -> Span {
    let offset = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    match offset.checked_add(part.len()) {
        Some(end) if end <= text.len() => Span::new(offset, end),
        _ => Span::default(),
    }
}

#[derive(Clone, Copy, Debug)]
struct UriSpans {
    scheme: Span,
    user: Option<Span>,
    host: Span,
    port: Option<u16>,
    params: Span,
    headers: Span,
}

impl UriSpans {
    fn of(text: &[u8], u: &Uri<'_>) -> UriSpans {
        UriSpans {
            scheme: span_of(text, u.scheme),
            user: u.user.map(|x| span_of(text, x)),
            host: span_of(text, u.host),
            port: u.port,
            params: span_of(text, u.params),
            headers: span_of(text, u.headers),
        }
    }

    fn get<'t>(&self, text: &'t [u8]) -> Uri<'t> {
        Uri {
            scheme: self.scheme.of(text),
            user: self.user.map(|x| x.of(text)),
            host: self.host.of(text),
            port: self.port,
            params: self.params.of(text),
            headers: self.headers.of(text),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct AddrSpans {
    display: Option<Span>,
    uri: UriSpans,
    params: Span,
    /// The `tag` parameter found while `params` were validated.
    tag: Option<Span>,
}

impl AddrSpans {
    fn of(text: &[u8], a: &NameAddr<'_>) -> AddrSpans {
        AddrSpans {
            display: a.display.map(|d| span_of(text, d)),
            uri: UriSpans::of(text, &a.uri),
            params: span_of(text, a.params),
            // A flag `tag` is the empty constant, outside `text`: an empty span.
            tag: a.raw_tag().map(|t| span_of(text, t)),
        }
    }

    fn get<'t>(&self, text: &'t [u8]) -> NameAddr<'t> {
        NameAddr::from_parts(
            self.display.map(|d| d.of(text)),
            self.uri.get(text),
            self.params.of(text),
            self.tag.map(|t| t.of(text)),
        )
    }
}

#[derive(Clone, Copy, Debug)]
struct ViaSpans {
    transport: Span,
    sent_by: Span,
    branch: Option<Span>,
    params: Span,
}

impl ViaSpans {
    fn of(text: &[u8], v: &Via<'_>) -> ViaSpans {
        ViaSpans {
            transport: span_of(text, v.transport),
            sent_by: span_of(text, v.sent_by),
            branch: v.branch.map(|b| span_of(text, b)),
            params: span_of(text, v.params),
        }
    }

    fn get<'t>(&self, text: &'t [u8]) -> Via<'t> {
        Via {
            transport: self.transport.of(text),
            sent_by: self.sent_by.of(text),
            branch: self.branch.map(|b| b.of(text)),
            params: self.params.of(text),
        }
    }
}

/// The comma-separated elements of a list header value, as
/// [`lex::split_top_level`] gives them; a value without any comma (nearly every Via and
/// Contact) is its one element, found with one `memchr` instead of a quote- and
/// bracket-aware walk.
fn list_elements(v: &[u8]) -> lex::TopLevelSplit<'_> {
    if memchr::memchr(b',', v).is_none() {
        lex::TopLevelSplit::single(v)
    } else {
        lex::split_top_level(v, b',')
    }
}

/// The span with whitespace (line breaks of folds included) removed at both ends.
fn trimmed(b: &[u8], s: Span) -> Span {
    let v = s.of(b);
    let lead = v.iter().position(|&c| !lex::is_ws(c)).unwrap_or(v.len());
    let trail = v.iter().rev().position(|&c| !lex::is_ws(c)).unwrap_or(0);
    let start = s.start as usize + lead;
    let end = (s.end as usize).saturating_sub(trail).max(start);
    Span::new(start, end)
}

/// Copy of the header section in which each line break followed by SP/HT becomes
/// spaces (CR LF → two spaces, bare LF → one), keeping every offset.
fn unfold(head: &[u8]) -> Vec<u8> {
    let mut out = head.to_vec();
    for i in memchr::memchr_iter(b'\n', head) {
        if matches!(head.get(i + 1), Some(b' ' | b'\t')) {
            if let Some(c) = out.get_mut(i) {
                *c = b' ';
            }
            if let Some(c) = i.checked_sub(1).and_then(|j| out.get_mut(j)) {
                if *c == b'\r' {
                    *c = b' ';
                }
            }
        }
    }
    out
}

/// Body length of a LF-only message whose Content-Length `n` counts each line break as
/// CRLF (2 octets): walks the body counting a bare LF twice. `None` when the body is
/// shorter even so (truly truncated, RFC 4475 clerr).
fn lf_counted_len(body: &[u8], n: usize) -> Option<usize> {
    let mut need = n;
    let mut prev = 0u8;
    for (i, &c) in body.iter().enumerate() {
        if need == 0 {
            return Some(i);
        }
        let cost = if c == b'\n' && prev != b'\r' { 2 } else { 1 };
        need = need.saturating_sub(cost);
        prev = c;
    }
    (need == 0).then_some(body.len())
}

/// True when a partial first line could still become a SIP start line.
fn could_start_sip(b: &[u8]) -> bool {
    lex::starts_with_ic(b, b"SIP/")
        || b"SIP/".starts_with(b)
        || b.iter()
            .position(|&c| c == b' ')
            .map_or(b.iter().all(|&c| lex::is_token_char(c)), |sp| {
                lex::is_token(sub(b, 0, sp))
            })
}

fn check_version(v: &[u8]) -> Result<(), SipError> {
    if v == b"SIP/2.0" || v.eq_ignore_ascii_case(b"SIP/2.0") {
        Ok(())
    } else if lex::starts_with_ic(v, b"SIP/") {
        Err(SipError::BadVersion)
    } else {
        Err(SipError::BadStartLine)
    }
}

/// `Request-Line = Method SP Request-URI SP SIP-Version` or
/// `Status-Line = SIP-Version SP Status-Code SP Reason-Phrase` (RFC 3261 §25.1).
/// Strict about single SPs (RFC 4475 lwsstart, trws) and the Request-URI (ltgtruri,
/// lwsruri, escruri); the status code is exactly three digits in 100..=699 (bigcode).
fn parse_start_line(line: &[u8]) -> Result<StartLine<'_>, SipError> {
    if lex::starts_with_ic(line, b"SIP/") {
        let (version, rest) = lex::split_once(line, b' ');
        check_version(version)?;
        let rest = rest.ok_or(SipError::BadStatus)?;
        let digits = rest
            .iter()
            .position(|c| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits != 3 {
            return Err(SipError::BadStatus);
        }
        let code = lex::parse_u32(sub(rest, 0, 3))
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or(SipError::BadStatus)?;
        let reason = match from(rest, 3).split_first() {
            None => &[][..],
            Some((b' ', reason)) => reason,
            Some(_) => return Err(SipError::BadStatus),
        };
        return Ok(StartLine::Response { code, reason });
    }
    parse_request_line(line).map_err(|e| {
        if memchr::memmem::find(line, b"SIP/").is_none() {
            SipError::NotSip
        } else {
            e
        }
    })
}

fn parse_request_line(line: &[u8]) -> Result<StartLine<'_>, SipError> {
    let sp1 = memchr::memchr(b' ', line).ok_or(SipError::BadStartLine)?;
    let sp2 = memchr::memrchr(b' ', line).ok_or(SipError::BadStartLine)?;
    let method = sub(line, 0, sp1);
    if !lex::is_token(method) || sp2 <= sp1 {
        return Err(SipError::BadStartLine);
    }
    let version = from(line, sp2 + 1);
    if version.is_empty() {
        return Err(SipError::BadStartLine);
    }
    check_version(version)?;
    let uri_raw = sub(line, sp1 + 1, sp2);
    if uri_raw.is_empty()
        || uri_raw.first().copied().is_some_and(lex::is_ws)
        || uri_raw.last().copied().is_some_and(lex::is_ws)
    {
        return Err(SipError::BadStartLine);
    }
    // RFC 3261 §19.1.1: no headers in a SIP Request-URI. The user part may hold a '?',
    // so only one after the '@' counts.
    let (uri, question) = Uri::parse_noting_question(uri_raw)?;
    if question && matches!(uri.scheme_kind(), Scheme::Sip | Scheme::Sips) {
        return Err(SipError::BadUri);
    }
    Ok(StartLine::Request {
        method: Method::from_bytes(method),
        uri,
    })
}
