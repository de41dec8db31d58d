//! Where SIP messages begin and end in a byte stream (RFC 3261 §7.5, §18.3, §20.14).
//!
//! Pure functions and a small resumable scanner over bytes handed in by
//! [`super::tcp_sip_stream`]: whether bytes can be the start line of a SIP message,
//! where the next such line is after a gap, and how long a message is once its header
//! block is complete (Content-Length, or its compact form `l`; absent means 0 on a
//! stream transport). Nothing here allocates.

use memchr::memchr_iter;

/// Does a SIP start line begin here?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Yes,
    No,
    /// The bytes so far are a prefix of a start line; more are needed to tell.
    NeedMore,
}

const STATUS_PREFIX: &[u8] = b"SIP/2.0 ";
/// Longest method name accepted; the longest registered one (SUBSCRIBE) has 9 letters.
const MAX_METHOD: usize = 32;
const SCHEMES: [&[u8]; 3] = [b"sip:", b"sips:", b"tel:"];

/// Whether `b` starts with a SIP start line: `SIP/2.0 ` (a response) or
/// `METHOD sip:` / `sips:` / `tel:` (a request; method in upper-case letters).
pub(crate) fn start_line(b: &[u8]) -> Verdict {
    match (status_line(b), request_line(b)) {
        (Verdict::Yes, _) | (_, Verdict::Yes) => Verdict::Yes,
        (Verdict::NeedMore, _) | (_, Verdict::NeedMore) => Verdict::NeedMore,
        _ => Verdict::No,
    }
}

/// Compares `b` with `prefix` as far as `b` goes.
fn prefix_verdict(b: &[u8], prefix: &[u8], ignore_case: bool) -> Verdict {
    let n = b.len().min(prefix.len());
    let (have, want) = (b.get(..n), prefix.get(..n));
    let same = match (have, want) {
        (Some(h), Some(w)) if ignore_case => h.eq_ignore_ascii_case(w),
        (Some(h), Some(w)) => h == w,
        _ => false,
    };
    if !same {
        Verdict::No
    } else if n == prefix.len() {
        Verdict::Yes
    } else {
        Verdict::NeedMore
    }
}

fn status_line(b: &[u8]) -> Verdict {
    prefix_verdict(b, STATUS_PREFIX, false)
}

fn request_line(b: &[u8]) -> Verdict {
    let method = b.iter().take_while(|c| c.is_ascii_uppercase()).count();
    if method > MAX_METHOD {
        return Verdict::No;
    }
    match b.get(method) {
        None => return Verdict::NeedMore,
        Some(b' ') if method > 0 => {}
        Some(_) => return Verdict::No,
    }
    let uri = b.get(method + 1..).unwrap_or_default();
    let mut verdict = Verdict::No;
    for scheme in SCHEMES {
        match prefix_verdict(uri, scheme, true) {
            Verdict::Yes => return Verdict::Yes,
            Verdict::NeedMore => verdict = Verdict::NeedMore,
            Verdict::No => {}
        }
    }
    verdict
}

/// Result of looking for the next start line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Search {
    /// A start line begins at this offset.
    Found(usize),
    /// None here: everything before `keep_from` can be discarded (the rest may be the
    /// beginning of one); `line_start` tells whether `data[keep_from..]`, or what comes
    /// next if nothing is kept, begins a line.
    NotFound { keep_from: usize, line_start: bool },
}

/// Finds the first line of `data` that is a SIP start line. `line_start` says whether
/// `data[0]` begins a line; other candidates are the bytes after each LF.
pub(crate) fn find_start(data: &[u8], line_start: bool) -> Search {
    let first = if line_start { Some(0) } else { None };
    let candidates = first
        .into_iter()
        .chain(memchr_iter(b'\n', data).map(|i| i + 1));
    for c in candidates {
        let rest = data.get(c..).unwrap_or_default();
        if rest.is_empty() {
            break;
        }
        match start_line(rest) {
            Verdict::Yes => return Search::Found(c),
            Verdict::NeedMore => {
                return Search::NotFound {
                    keep_from: c,
                    line_start: true,
                }
            }
            Verdict::No => {}
        }
    }
    Search::NotFound {
        keep_from: data.len(),
        line_start: data.last().map_or(line_start, |&c| c == b'\n'),
    }
}

/// What the header scanner found so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The whole message is present: this many bytes.
    Complete(usize),
    NeedMore,
    /// The message would be larger than the limit; `total` is its length when the
    /// header block was read (so that it can be skipped exactly), `None` when the
    /// header block itself is too long.
    TooLarge {
        total: Option<usize>,
    },
    /// A Content-Length that is not a number, or two that disagree.
    BadLength,
}

/// Resumable scan of one message's header block: each call continues where the last
/// stopped, so a message arriving in many segments is scanned once.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeaderScan {
    /// Offset of the next line to read, from the start of the message.
    pos: usize,
    /// Set once the empty line is found: where the body starts.
    body_at: Option<usize>,
    content_length: Option<usize>,
    call_id: bool,
    cseq: bool,
}

/// Longest Content-Length value read (10 digits is already above any cap).
const MAX_LENGTH_DIGITS: usize = 10;

impl HeaderScan {
    /// True when nothing of the current message was scanned yet.
    pub(crate) fn is_fresh(&self) -> bool {
        self.pos == 0
    }

    /// Whether the headers read include both Call-ID and CSeq, which any SIP request
    /// or response has (RFC 3261 §8.1.1); used to vet a message found by resync.
    pub(crate) fn has_dialog_headers(&self) -> bool {
        self.call_id && self.cseq
    }

    /// Continues scanning `msg`, the bytes of the current message received so far
    /// (starting at its start line), and says whether it is complete. `max` bounds the
    /// message size.
    pub(crate) fn advance(&mut self, msg: &[u8], max: usize) -> Scan {
        if self.body_at.is_none() {
            loop {
                let rest = msg.get(self.pos..).unwrap_or_default();
                let Some(nl) = memchr::memchr(b'\n', rest) else {
                    return if msg.len() >= max {
                        Scan::TooLarge { total: None }
                    } else {
                        Scan::NeedMore
                    };
                };
                let line = rest.get(..nl).unwrap_or_default();
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let first = self.pos == 0;
                self.pos = self.pos.saturating_add(nl + 1);
                if first {
                    continue;
                }
                if line.is_empty() {
                    self.body_at = Some(self.pos);
                    break;
                }
                if let Err(bad) = self.header_line(line) {
                    return bad;
                }
            }
        }
        let body_at = self.body_at.unwrap_or(self.pos);
        let total = match body_at.checked_add(self.content_length.unwrap_or(0)) {
            Some(t) if t <= max => t,
            total => return Scan::TooLarge { total },
        };
        if msg.len() >= total {
            Scan::Complete(total)
        } else {
            Scan::NeedMore
        }
    }

    fn header_line(&mut self, line: &[u8]) -> Result<(), Scan> {
        let Some(colon) = memchr::memchr(b':', line) else {
            return Ok(());
        };
        let name = trim(line.get(..colon).unwrap_or_default());
        let value = trim(line.get(colon + 1..).unwrap_or_default());
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            if value.is_empty()
                || value.len() > MAX_LENGTH_DIGITS
                || !value.iter().all(u8::is_ascii_digit)
            {
                return Err(Scan::BadLength);
            }
            let n = value.iter().fold(0usize, |n, d| {
                n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
            });
            if self.content_length.is_some_and(|old| old != n) {
                return Err(Scan::BadLength);
            }
            self.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"call-id") || name.eq_ignore_ascii_case(b"i") {
            self.call_id = true;
        } else if name.eq_ignore_ascii_case(b"cseq") {
            self.cseq = true;
        }
        Ok(())
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !matches!(c, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_lines() {
        assert_eq!(start_line(b"SIP/2.0 200 OK\r\n"), Verdict::Yes);
        assert_eq!(start_line(b"INVITE sip:8001@pbx SIP/2.0\r\n"), Verdict::Yes);
        assert_eq!(start_line(b"INVITE SIPS:8001@pbx"), Verdict::Yes);
        assert_eq!(start_line(b"MESSAGE tel:+8613800"), Verdict::Yes);
        assert_eq!(start_line(b"SUBSCRIBE sip:a"), Verdict::Yes);
        assert_eq!(start_line(b"SIP/2"), Verdict::NeedMore);
        assert_eq!(start_line(b"SUBSCR"), Verdict::NeedMore);
        assert_eq!(start_line(b"BYE si"), Verdict::NeedMore);
        assert_eq!(start_line(b""), Verdict::NeedMore);
        assert_eq!(start_line(b"GET / HTTP/1.1\r\n"), Verdict::No);
        assert_eq!(start_line(b"HTTP/1.1 200 OK\r\n"), Verdict::No);
        assert_eq!(start_line(b"\x16\x03\x01\x02\x00"), Verdict::No);
        assert_eq!(start_line(b"invite sip:a"), Verdict::No);
        assert_eq!(start_line(b" sip:a"), Verdict::No);
        assert_eq!(start_line(b"SIP/2.0\r\n"), Verdict::No);
        assert_eq!(start_line(&[b'A'; 40]), Verdict::No);
    }

    #[test]
    fn find_start_after_a_line_feed_only() {
        let d = b"ody text\r\nmore\r\nBYE sip:x SIP/2.0\r\n";
        assert_eq!(find_start(d, false), Search::Found(16));
        assert_eq!(find_start(b"BYE sip:x", true), Search::Found(0));
        assert_eq!(
            find_start(b"BYE sip:x", false),
            Search::NotFound {
                keep_from: 9,
                line_start: false
            }
        );
        assert_eq!(
            find_start(b"junk\r\nSIP/2", false),
            Search::NotFound {
                keep_from: 6,
                line_start: true
            }
        );
        assert_eq!(
            find_start(b"junk\r\n", false),
            Search::NotFound {
                keep_from: 6,
                line_start: true
            }
        );
    }

    fn scan_all(msg: &[u8]) -> Scan {
        HeaderScan::default().advance(msg, 1 << 16)
    }

    #[test]
    fn content_length_frames_the_body() {
        let m = b"SIP/2.0 200 OK\r\nContent-Length: 4\r\n\r\nbodyNEXT";
        assert_eq!(scan_all(m), Scan::Complete(m.len() - 4));
        let m = b"SIP/2.0 200 OK\r\nl:4\r\n\r\nbo";
        assert_eq!(scan_all(m), Scan::NeedMore);
        let m = b"SIP/2.0 200 OK\r\ncontent-LENGTH \t:  2 \r\n\r\nxy";
        assert_eq!(scan_all(m), Scan::Complete(m.len()));
    }

    #[test]
    fn missing_content_length_is_zero() {
        let m = b"OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\nINVITE";
        assert_eq!(scan_all(m), Scan::Complete(m.len() - 6));
    }

    #[test]
    fn bare_line_feeds_are_tolerated() {
        let m = b"SIP/2.0 200 OK\nl: 1\n\nx";
        assert_eq!(scan_all(m), Scan::Complete(m.len()));
    }

    #[test]
    fn bad_or_conflicting_lengths() {
        assert_eq!(
            scan_all(b"SIP/2.0 200 OK\r\nl: 1x\r\n\r\n"),
            Scan::BadLength
        );
        assert_eq!(scan_all(b"SIP/2.0 200 OK\r\nl: \r\n\r\n"), Scan::BadLength);
        assert_eq!(
            scan_all(b"SIP/2.0 200 OK\r\nl: 1\r\nContent-Length: 2\r\n\r\n"),
            Scan::BadLength
        );
        assert_eq!(
            scan_all(b"SIP/2.0 200 OK\r\nl: 99999999999\r\n\r\n"),
            Scan::BadLength
        );
        assert_eq!(
            HeaderScan::default().advance(b"SIP/2.0 200 OK\r\nl: 100\r\n\r\n", 50),
            Scan::TooLarge { total: Some(126) }
        );
        assert_eq!(
            HeaderScan::default().advance(b"SIP/2.0 200 OK\r\nX-Long: aaaaaaaaaa", 20),
            Scan::TooLarge { total: None }
        );
    }

    #[test]
    fn scan_resumes_where_it_stopped() {
        let m = b"INVITE sip:a SIP/2.0\r\nCall-ID: 1\r\nCSeq: 1 INVITE\r\nl: 3\r\n\r\nabc";
        let mut s = HeaderScan::default();
        for n in 0..m.len() {
            assert_eq!(s.advance(&m[..n], 1 << 16), Scan::NeedMore, "at {n}");
        }
        assert_eq!(s.advance(m, 1 << 16), Scan::Complete(m.len()));
        assert!(s.has_dialog_headers());
    }
}
