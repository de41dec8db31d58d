//! Finds the SDP of a SIP body: the body itself when it is `application/sdp`, or the
//! `application/sdp` part of a `multipart/*` body (RFC 2046 §5.1; RFC 4475 mpart01;
//! SIP-I/SIP-T INVITEs carry SDP next to an ISUP part, RFC 3204).
//!
//! Input is the Content-Type value and the body from [`super::SipMessage`]; output is a
//! sub-slice of the body. Nesting is followed to a small fixed depth; nothing allocates.

use memchr::memmem;

use super::lex::{self, from, starts_with_ic, sub, trim};

/// Deepest multipart nesting followed (multipart/mixed inside multipart/alternative ...).
const MAX_DEPTH: u8 = 4;
/// RFC 2046 §5.1.1 limits boundaries to 70 characters; allow some slack.
const MAX_BOUNDARY: usize = 200;

/// The SDP in `body` given its Content-Type. With no Content-Type at all, a body that
/// starts with `v=` is taken as SDP (some gateways omit the header).
pub(crate) fn find_sdp<'b>(content_type: Option<&[u8]>, body: &'b [u8]) -> Option<&'b [u8]> {
    match content_type {
        Some(ct) => find(ct, body, 0),
        None if lex::trim_start(body).starts_with(b"v=") => Some(body),
        None => None,
    }
}

fn find<'b>(content_type: &[u8], body: &'b [u8], depth: u8) -> Option<&'b [u8]> {
    let (media, params) = lex::split_once(content_type, b';');
    let media = trim(media);
    if media.eq_ignore_ascii_case(b"application/sdp") {
        return Some(body);
    }
    if !starts_with_ic(media, b"multipart/") || depth >= MAX_DEPTH {
        return None;
    }
    let boundary = lex::param(params?, b"boundary")?;
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return None;
    }
    Parts::new(body, boundary).find_map(|part| {
        let (ct, content) = split_part(part);
        find(ct.unwrap_or(b"text/plain"), content, depth + 1)
    })
}

/// Iterator over the body parts between `--boundary` delimiter lines. The line break
/// before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
struct Parts<'b, 'p> {
    body: &'b [u8],
    boundary: &'p [u8],
    /// Offset just after the last delimiter's boundary text, or `None` when done.
    pos: Option<usize>,
}

impl<'b, 'p> Parts<'b, 'p> {
    fn new(body: &'b [u8], boundary: &'p [u8]) -> Self {
        let pos = next_delimiter(body, boundary, 0).map(|(_, end)| end);
        Parts {
            body,
            boundary,
            pos,
        }
    }
}

impl<'b> Iterator for Parts<'b, '_> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        let pos = self.pos?;
        let after = from(self.body, pos);
        // The close delimiter `--boundary--` ends the body.
        if after.starts_with(b"--") {
            self.pos = None;
            return None;
        }
        let start = match memchr::memchr(b'\n', after) {
            Some(i) => pos + i + 1,
            None => {
                self.pos = None;
                return None;
            }
        };
        match next_delimiter(self.body, self.boundary, start) {
            Some((line_start, end)) => {
                self.pos = Some(end);
                Some(sub(self.body, start, line_start.max(start)))
            }
            None => {
                // No closing delimiter: take the rest, as a lenient reader.
                self.pos = None;
                Some(from(self.body, start))
            }
        }
    }
}

/// Finds the next `--boundary` at the start of a line, at or after `pos`. Returns the
/// offset where its preceding line break starts and the offset after the boundary text.
fn next_delimiter(body: &[u8], boundary: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    let finder = memmem::Finder::new(boundary);
    loop {
        let p = pos + finder.find(from(body, pos))?;
        let dashes = p.checked_sub(2).filter(|&d| sub(body, d, p) == b"--");
        if let Some(d) = dashes {
            let at_line_start =
                d == 0 || d.checked_sub(1).and_then(|i| body.get(i)) == Some(&b'\n');
            if at_line_start {
                let mut line_start = d;
                if line_start > 0 && body.get(line_start - 1) == Some(&b'\n') {
                    line_start -= 1;
                    if line_start > 0 && body.get(line_start - 1) == Some(&b'\r') {
                        line_start -= 1;
                    }
                }
                return Some((line_start, p + boundary.len()));
            }
        }
        pos = p + 1;
    }
}

/// Splits a body part into its Content-Type (if any) and its content.
fn split_part(part: &[u8]) -> (Option<&[u8]>, &[u8]) {
    let mut content_type = None;
    let mut pos = 0;
    while let Some(rel) = memchr::memchr(b'\n', from(part, pos)) {
        let line = sub(part, pos, pos + rel);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += rel + 1;
        if line.is_empty() {
            return (content_type, from(part, pos));
        }
        let (name, value) = lex::split_once(line, b':');
        if let Some(v) = value {
            if trim(name).eq_ignore_ascii_case(b"Content-Type") && content_type.is_none() {
                content_type = Some(trim(v));
            }
        }
    }
    // Headers without a terminating empty line: no content.
    (content_type, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"--b1\r\nContent-Type: text/plain\r\n\r\nHello\r\n--b1\r\nContent-Type: application/SDP\r\n\r\nv=0\r\nc=IN IP4 192.0.2.1\r\n\r\n--b1--\r\n";

    #[test]
    fn plain_sdp_body() {
        assert_eq!(
            find_sdp(Some(b"application/sdp"), b"v=0\r\n"),
            Some(&b"v=0\r\n"[..])
        );
        assert_eq!(
            find_sdp(Some(b"Application/SDP ; charset=x"), b"v=0"),
            Some(&b"v=0"[..])
        );
        assert_eq!(find_sdp(Some(b"text/plain"), b"v=0"), None);
        assert_eq!(find_sdp(None, b"v=0\r\n"), Some(&b"v=0\r\n"[..]));
        assert_eq!(find_sdp(None, b"hello"), None);
    }

    #[test]
    fn sdp_part_of_multipart() {
        let sdp = find_sdp(Some(b"multipart/mixed;boundary=b1"), MIXED).unwrap();
        assert_eq!(sdp, b"v=0\r\nc=IN IP4 192.0.2.1\r\n");
        let sdp = find_sdp(Some(b"multipart/mixed; boundary=\"b1\""), MIXED).unwrap();
        assert_eq!(sdp, b"v=0\r\nc=IN IP4 192.0.2.1\r\n");
    }

    #[test]
    fn nested_multipart_and_lf_only() {
        let body = b"preamble\n--outer\nContent-Type: multipart/alternative; boundary=in\n\n--in\nContent-Type: application/sdp\n\nv=0\n--in--\n--outer--\n";
        let sdp = find_sdp(Some(b"multipart/mixed;boundary=outer"), body).unwrap();
        assert_eq!(sdp, b"v=0");
    }

    #[test]
    fn no_sdp_part_or_bad_multipart() {
        let body = b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--";
        assert_eq!(find_sdp(Some(b"multipart/mixed;boundary=b"), body), None);
        assert_eq!(find_sdp(Some(b"multipart/mixed"), body), None);
        assert_eq!(find_sdp(Some(b"multipart/mixed;boundary="), body), None);
        assert_eq!(find_sdp(Some(b"multipart/mixed;boundary=zz"), body), None);
        // Boundary text not at a line start is not a delimiter.
        let body = b"x--b\r\nContent-Type: application/sdp\r\n\r\nv=0";
        assert_eq!(find_sdp(Some(b"multipart/mixed;boundary=b"), body), None);
        // Unterminated last part is taken as is.
        let body = b"--b\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n";
        assert_eq!(
            find_sdp(Some(b"multipart/mixed;boundary=b"), body),
            Some(&b"v=0\r\n"[..])
        );
    }
}
