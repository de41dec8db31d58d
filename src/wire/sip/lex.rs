//! Byte-level lexical helpers shared by the SIP parsers: the RFC 3261 §25.1 character
//! classes, trimming, quoted strings, and iteration over separated lists that respects
//! quotes and angle brackets.
//!
//! Everything here works on `&[u8]` from the wire, never assumes UTF-8 and never
//! indexes out of bounds (all access goes through `get`, iterators or `split_at_checked`).

use std::borrow::Cow;

/// Character classes, one bit each, looked up in one 256-entry table so that every
/// per-byte test in the hot path is a load and a mask.
const TOKEN: u8 = 1;
/// Never in a URI as carried by SIP: controls, SP, DEL, `<`, `>`, `"`.
const URI_FORBIDDEN: u8 = 2;
/// Hostname and IPv4 characters (`_` tolerated, seen in the field).
const HOST: u8 = 4;
/// Unquoted parameter value: visible, not `" < > , ;`.
const VALUE: u8 = 8;
/// Opens a quoted string or an angle-bracketed URI.
const OPENER: u8 = 16;
const COMMA: u8 = 32;
const SEMI: u8 = 64;
/// Delimiters inside a URI: `@`, `;`, `?`, `:`.
const URI_MARK: u8 = 128;

// Evaluated at compile time: an out-of-range index would be a build error.
#[allow(clippy::indexing_slicing)]
const fn class_table() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let mut k = 0;
        if c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
            )
        {
            k |= TOKEN;
        }
        if c <= b' ' || c == 0x7f || c == b'<' || c == b'>' || c == b'"' {
            k |= URI_FORBIDDEN;
        }
        if c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_' {
            k |= HOST;
        }
        if c > b' ' && c != 0x7f && !matches!(c, b'"' | b'<' | b'>' | b',' | b';') {
            k |= VALUE;
        }
        if c == b'"' || c == b'<' {
            k |= OPENER;
        }
        if c == b',' {
            k |= COMMA;
        }
        if c == b';' {
            k |= SEMI;
        }
        if c == b'@' || c == b';' || c == b'?' || c == b':' {
            k |= URI_MARK;
        }
        t[i] = k;
        i += 1;
    }
    t
}

static CLASS: [u8; 256] = class_table();

#[inline]
#[allow(clippy::indexing_slicing)] // a u8 always indexes a 256-entry table
fn class(c: u8) -> u8 {
    CLASS[usize::from(c)]
}

/// True for an RFC 3261 `token` character.
#[inline]
pub(crate) fn is_token_char(c: u8) -> bool {
    class(c) & TOKEN != 0
}

/// True for an octet that needs a closer look inside a URI: a delimiter (`@ ; ? :`) or
/// one that is never allowed (controls, SP, DEL, `<`, `>`, `"`). One test per octet.
#[inline]
pub(crate) fn is_uri_special(c: u8) -> bool {
    class(c) & (URI_MARK | URI_FORBIDDEN) != 0
}

/// True for an octet never allowed in a URI as carried by SIP.
#[inline]
pub(crate) fn is_uri_forbidden(c: u8) -> bool {
    class(c) & URI_FORBIDDEN != 0
}

/// True for a hostname or IPv4 character.
#[inline]
pub(crate) fn is_host_char(c: u8) -> bool {
    class(c) & HOST != 0
}

/// True when `b` is a non-empty `token`.
#[inline]
pub(crate) fn is_token(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| is_token_char(c))
}

/// Whitespace for trimming. CR and LF are included because a value read from a folded
/// header in the original buffer still holds the line break of its continuation.
#[inline]
pub(crate) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

#[inline]
pub(crate) fn trim_start(b: &[u8]) -> &[u8] {
    match b.iter().position(|&c| !is_ws(c)) {
        Some(i) => b.get(i..).unwrap_or_default(),
        None => &[],
    }
}

#[inline]
pub(crate) fn trim_end(b: &[u8]) -> &[u8] {
    match b.iter().rposition(|&c| !is_ws(c)) {
        Some(i) => b.get(..=i).unwrap_or_default(),
        None => &[],
    }
}

#[inline]
pub(crate) fn trim(b: &[u8]) -> &[u8] {
    trim_end(trim_start(b))
}

/// `b[start..end]`, or an empty slice when the range does not fit.
#[inline]
pub(crate) fn sub(b: &[u8], start: usize, end: usize) -> &[u8] {
    b.get(start..end).unwrap_or_default()
}

/// `b[start..]`, or an empty slice when `start` is past the end.
#[inline]
pub(crate) fn from(b: &[u8], start: usize) -> &[u8] {
    b.get(start..).unwrap_or_default()
}

/// Position of the first `c` in `b`. A plain loop: the slices searched here (URIs,
/// parameters, names) are a few dozen bytes, where `memchr`'s dispatch costs more than
/// it saves. Header lines and bodies still use `memchr`.
#[inline]
pub(crate) fn find(b: &[u8], c: u8) -> Option<usize> {
    b.iter().position(|&x| x == c)
}

/// Splits at the first `sep`: `(before, Some(after))`, or `(b, None)` without one.
#[inline]
pub(crate) fn split_once(b: &[u8], sep: u8) -> (&[u8], Option<&[u8]>) {
    match find(b, sep) {
        Some(i) => (sub(b, 0, i), Some(from(b, i + 1))),
        None => (b, None),
    }
}

/// ASCII case-insensitive prefix test.
#[inline]
pub(crate) fn starts_with_ic(b: &[u8], prefix: &[u8]) -> bool {
    b.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Length of the quoted string at the start of `b` (which must begin with `"`),
/// closing quote included, or `None` when it is not terminated inside `b`.
///
/// RFC 3261 `quoted-pair` (`\` + any octet) is honoured. When the strict scan finds no
/// closing quote, a second scan treats a `\` that directly follows a non-ASCII octet as
/// a literal byte: GBK (common in Chinese display names) has trail bytes equal to 0x5C,
/// and a phone that writes `"<GBK name>"` unescaped must not make the quote swallow the
/// rest of the header. A genuinely unbalanced quote (RFC 4475 quotbal) fails both scans.
pub(crate) fn quoted_len(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'"') {
        return None;
    }
    scan_quoted(b, false).or_else(|| scan_quoted(b, true))
}

fn scan_quoted(b: &[u8], gbk_tolerant: bool) -> Option<usize> {
    let mut i = 1;
    let mut prev = b'"';
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some(i + 1),
            b'\\' if !(gbk_tolerant && prev >= 0x80) => {
                // The escaped octet, whatever it is (NUL, BEL, DEL and `"` included).
                i += 2;
                prev = 0;
                continue;
            }
            _ => {}
        }
        prev = c;
        i += 1;
    }
    None
}

/// Finds the first `sep` in `b` that is outside a quoted string and outside `<...>`.
/// An unterminated quote or bracket hides every later separator.
pub(crate) fn find_top_level(b: &[u8], sep: u8) -> Option<usize> {
    let mut i = 0;
    loop {
        let j = i + match sep {
            b',' => from(b, i)
                .iter()
                .position(|&c| class(c) & (OPENER | COMMA) != 0)?,
            b';' => from(b, i)
                .iter()
                .position(|&c| class(c) & (OPENER | SEMI) != 0)?,
            _ => from(b, i)
                .iter()
                .position(|&c| c == sep || class(c) & OPENER != 0)?,
        };
        match b.get(j) {
            Some(b'"') if sep != b'"' => i = j + quoted_len(from(b, j))?,
            Some(b'<') if sep != b'<' => i = j + 2 + find(from(b, j + 1), b'>')?,
            _ => return Some(j),
        }
    }
}

/// Iterator over the pieces of `b` separated by a top-level `sep` (see
/// [`find_top_level`]). Pieces are returned untrimmed; an empty input yields one empty
/// piece, as `a,,b` yields an empty middle piece, so callers can reject empty elements.
pub(crate) struct TopLevelSplit<'a> {
    rest: Option<&'a [u8]>,
    /// `None`: the input is known to hold no separator (see [`TopLevelSplit::single`]).
    sep: Option<u8>,
}

impl<'a> Iterator for TopLevelSplit<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.rest?;
        let found = match self.sep {
            Some(sep) => find_top_level(rest, sep),
            None => None,
        };
        match found {
            Some(i) => {
                self.rest = Some(from(rest, i + 1));
                Some(sub(rest, 0, i))
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

pub(crate) fn split_top_level(b: &[u8], sep: u8) -> TopLevelSplit<'_> {
    TopLevelSplit {
        rest: Some(b),
        sep: Some(sep),
    }
}

impl<'a> TopLevelSplit<'a> {
    /// The split of a `b` known to hold no separator at all: `b` itself, once.
    pub(crate) fn single(b: &'a [u8]) -> TopLevelSplit<'a> {
        TopLevelSplit {
            rest: Some(b),
            sep: None,
        }
    }
}

/// One `name[=value]` parameter of a `;`-separated list, both trimmed.
/// `value` is `None` for a flag parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Param<'a> {
    pub name: &'a [u8],
    pub value: Option<&'a [u8]>,
}

/// Iterates over the parameters of a `;`-separated list (the text after the first `;`).
/// Empty elements (`;;`) are skipped here; [`scan_params`] rejects them.
pub(crate) fn params(b: &[u8]) -> impl Iterator<Item = Param<'_>> {
    split_top_level(b, b';').filter_map(|p| {
        let p = trim(p);
        if p.is_empty() {
            return None;
        }
        let (name, value) = split_once(p, b'=');
        Some(Param {
            name: trim(name),
            value: value.map(trim),
        })
    })
}

/// Value of the parameter `name` (case-insensitive) in a `;`-separated list: `Some(b"")`
/// for a flag, the inside of the quotes for a quoted-string value (escapes kept raw).
pub(crate) fn param<'a>(list: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    params(list)
        .find(|p| p.name.eq_ignore_ascii_case(name))
        .map(|p| unquote(p.value.unwrap_or_default()))
}

/// The inside of a quoted string, or `b` unchanged when it is not quoted.
pub(crate) fn unquote(b: &[u8]) -> &[u8] {
    match quoted_len(b) {
        Some(n) if n == b.len() => sub(b, 1, n - 1),
        _ => b,
    }
}

/// Octets allowed in an unquoted parameter value: visible, and not a separator.
#[inline]
fn is_value_char(c: u8) -> bool {
    class(c) & VALUE != 0
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

/// Checks a `;`-separated generic-param list (RFC 3261 `generic-param`): no empty
/// element, a token name, and a value that is a quoted string or a run of visible
/// octets without separators (token, host and IPv6 reference all fit). One pass.
/// (The parsers call [`scan_params`], which also picks out the parameter they read.)
#[cfg(test)]
pub(crate) fn validate_params(list: &[u8]) -> bool {
    scan_params(list, b"").is_some()
}

/// [`validate_params`] that also returns the value of the parameter `want`
/// (case-insensitive, as [`param`] would): `None` when the list is invalid,
/// `Some(None)` when valid without `want`.
pub(crate) fn scan_params<'a>(list: &'a [u8], want: &[u8]) -> Option<Option<&'a [u8]>> {
    let mut found = None;
    let mut i = 0;
    loop {
        i = skip_ws(list, i);
        let name_start = i;
        while list.get(i).copied().is_some_and(is_token_char) {
            i += 1;
        }
        if i == name_start {
            return None;
        }
        let wanted = found.is_none() && sub(list, name_start, i).eq_ignore_ascii_case(want);
        let mut value = &[][..];
        i = skip_ws(list, i);
        if list.get(i) == Some(&b'=') {
            i = skip_ws(list, i + 1);
            let value_start = i;
            match list.get(i) {
                Some(b'"') => {
                    let n = quoted_len(from(list, i))?;
                    i += n;
                    value = sub(list, value_start + 1, i - 1);
                }
                Some(&c) if is_value_char(c) => {
                    while list.get(i).copied().is_some_and(is_value_char) {
                        i += 1;
                    }
                    value = sub(list, value_start, i);
                }
                _ => return None,
            }
            i = skip_ws(list, i);
        }
        if wanted {
            found = Some(value);
        }
        match list.get(i) {
            None => return Some(found),
            Some(b';') => i += 1,
            Some(_) => return None,
        }
    }
}

#[inline]
fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (RFC 3261 §19.1.2, §25.1 `escaped`). Borrows when there is no
/// `%`; an invalid escape (`%ZK`) is kept literally. `%00` becomes a NUL byte.
pub(crate) fn unescape(b: &[u8]) -> Cow<'_, [u8]> {
    if find(b, b'%').is_none() {
        return Cow::Borrowed(b);
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hi = b.get(i + 1).copied().and_then(hex_val);
            let lo = b.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    Cow::Owned(out)
}

/// Parses an unsigned decimal number with overflow checking. Leading zeros are allowed
/// (RFC 4475 wsinv: `0068`); an empty string or any non-digit fails.
pub(crate) fn parse_u32(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    let mut n: u32 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u32::from(c - b'0'))?;
    }
    Some(n)
}

/// As [`parse_u32`], for lengths.
pub(crate) fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_including_folded_line_breaks() {
        assert_eq!(trim(b" \r\n a b \t"), b"a b");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }

    #[test]
    fn quoted_strings_honour_quoted_pairs() {
        assert_eq!(quoted_len(br#""a\"b" x"#), Some(6));
        assert_eq!(quoted_len(b"\"BEL:\\\x07 NUL:\\\x00\" <"), Some(15));
        assert_eq!(quoted_len(br#""open"#), None);
        assert_eq!(quoted_len(b"x"), None);
    }

    #[test]
    fn quoted_strings_tolerate_gbk_trail_backslash() {
        // 0x95 0x5C is one GBK character whose trail byte is a backslash.
        let v = b"\"\x95\x5c\" <sip:1@h>";
        assert_eq!(quoted_len(v), Some(4));
    }

    #[test]
    fn top_level_split_ignores_quoted_and_bracketed_separators() {
        let v = br#""a,b" <sip:x@h;p=1,2>;q=1, <sip:y@h>"#;
        let parts: Vec<&[u8]> = split_top_level(v, b',').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(trim(parts[1]), b"<sip:y@h>");
    }

    #[test]
    fn params_are_found_case_insensitively() {
        let list = b" newparam =  newvalue ;   secondparam ; q = 0.33; x=\"quoted\"";
        assert_eq!(param(list, b"NEWPARAM"), Some(&b"newvalue"[..]));
        assert_eq!(param(list, b"secondparam"), Some(&b""[..]));
        assert_eq!(param(list, b"q"), Some(&b"0.33"[..]));
        assert_eq!(param(list, b"x"), Some(&b"quoted"[..]));
        assert_eq!(param(list, b"none"), None);
        assert!(validate_params(list));
        assert_eq!(scan_params(list, b"q"), Some(Some(&b"0.33"[..])));
        assert_eq!(scan_params(list, b"X"), Some(Some(&b"quoted"[..])));
        assert_eq!(scan_params(list, b"SecondParam"), Some(Some(&b""[..])));
        assert_eq!(scan_params(list, b"none"), Some(None));
        assert_eq!(scan_params(b"a;;b", b"a"), None);
        assert!(!validate_params(b";;"));
        assert!(!validate_params(b"a="));
        assert!(!validate_params(b"a b=1"));
    }

    #[test]
    fn unescape_decodes_valid_escapes_only() {
        assert_eq!(&*unescape(b"abc"), b"abc");
        assert!(matches!(unescape(b"abc"), Cow::Borrowed(_)));
        assert_eq!(&*unescape(b"%75se%72"), b"user");
        assert_eq!(&*unescape(b"null-%00-null"), b"null-\0-null");
        assert_eq!(&*unescape(b"%ZK%4"), b"%ZK%4");
    }

    #[test]
    fn numbers_are_overflow_checked() {
        assert_eq!(parse_u32(b"0009"), Some(9));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b"36893488147419103232"), None);
        assert_eq!(parse_u32(b"-1"), None);
        assert_eq!(parse_u32(b""), None);
    }
}
