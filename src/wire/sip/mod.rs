//! SIP (RFC 3261): a zero-copy, byte-oriented parser that never panics.
//!
//! Input is one SIP message as bytes: a UDP payload from [`crate::wire::decode`], a HEP
//! payload from [`crate::wire::hep`], or the head of a reassembled TCP stream. Output is
//! a [`SipMessage`] view that the engine queries for Call-ID, tags, CSeq, Via branch,
//! Contact, Refer-To/Replaces and the SDP body (handed to [`crate::wire::sdp`]).
//!
//! Contract (smoltcp style): no input makes any function here panic, read out of
//! bounds, or allocate from an untrusted length. SIP bytes stay bytes: display names may
//! be GBK, reason phrases any charset, and NUL is legal inside quoted strings (RFC 4475
//! intmeth). What is accepted and rejected is pinned by the RFC 4475 torture messages in
//! `tests/rfc4475.rs` (verdicts in `shared/reference/standards.md` §7).
//!
//! Layout: [`message`] frames and indexes a message; [`uri`], [`addr`], [`via`],
//! [`cseq`], [`replaces`] parse one header value each; [`header`] maps header names
//! (and compact forms) to ids; `lex` holds the shared character classes.

// Untrusted bytes: no panicking access outside tests (STYLE.md "untrusted bytes never
// panic").
#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

pub mod addr;
pub mod cseq;
pub mod exercise;
pub mod header;
mod lex;
pub mod message;
pub mod method;
mod multipart;
pub mod replaces;
pub mod uri;
pub mod via;

pub use addr::NameAddr;
pub use cseq::CSeq;
pub use header::HeaderName;
pub use message::{SipMessage, StartLine, MAX_HEADERS, MAX_MESSAGE_LEN};
pub use method::Method;
pub use replaces::Replaces;
pub use uri::{Scheme, Uri};
pub use via::{Via, BRANCH_COOKIE};

/// Why bytes are not an acceptable SIP message. Small and `Copy`: the engine counts
/// these by [`SipError::as_str`] and keeps the raw bytes for the inspector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SipError {
    /// Nothing but CR/LF (or nothing at all): a keep-alive, not a message.
    Empty,
    /// The first line is not a SIP start line at all.
    NotSip,
    /// Request line not `Method SP Request-URI SP SIP-Version` with single SPs.
    BadStartLine,
    /// `SIP/x.y` other than 2.0 (RFC 4475 badvers).
    BadVersion,
    /// Status code not three digits in 100..=699 (bigcode).
    BadStatus,
    /// Malformed URI (Request-URI or inside an address).
    BadUri,
    /// Malformed header line or value (no colon, bad name, bad display name, empty
    /// parameter, ...).
    BadHeader,
    /// Malformed Via value.
    BadVia,
    /// CSeq not `32-bit-number method` (scalar02, scalarlg).
    BadCSeq,
    /// CSeq method differs from the request method (mismatch01, mismatch02).
    CSeqMethodMismatch,
    /// A quoted string runs to the end of its header (quotbal).
    UnterminatedQuote,
    /// Content-Length not a non-negative number (ncl).
    BadContentLength,
    /// More than one Content-Length (mcl01): the body length is ambiguous.
    DuplicateContentLength,
    /// More than one Call-ID, From, To, CSeq, Max-Forwards or Content-Type (multi01).
    MultipleSingletonHeaders,
    /// The header section or the body is shorter than announced (clerr).
    Truncated,
    /// Longer than [`MAX_MESSAGE_LEN`].
    TooLarge,
    /// More than [`MAX_HEADERS`] header lines.
    TooManyHeaders,
    /// A header needed for dialog tracking is absent
    /// ([`SipMessage::require_dialog_headers`]; insuf).
    MissingHeader(HeaderName),
}

impl SipError {
    /// Snake-case kind, used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            SipError::Empty => "sip_empty",
            SipError::NotSip => "sip_not_sip",
            SipError::BadStartLine => "sip_bad_start_line",
            SipError::BadVersion => "sip_bad_version",
            SipError::BadStatus => "sip_bad_status",
            SipError::BadUri => "sip_bad_uri",
            SipError::BadHeader => "sip_bad_header",
            SipError::BadVia => "sip_bad_via",
            SipError::BadCSeq => "sip_bad_cseq",
            SipError::CSeqMethodMismatch => "sip_cseq_method_mismatch",
            SipError::UnterminatedQuote => "sip_unterminated_quote",
            SipError::BadContentLength => "sip_bad_content_length",
            SipError::DuplicateContentLength => "sip_duplicate_content_length",
            SipError::MultipleSingletonHeaders => "sip_multiple_singleton_headers",
            SipError::Truncated => "sip_truncated",
            SipError::TooLarge => "sip_too_large",
            SipError::TooManyHeaders => "sip_too_many_headers",
            SipError::MissingHeader(_) => "sip_missing_header",
        }
    }
}

impl std::fmt::Display for SipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SipError::MissingHeader(h) => write!(f, "sip message lacks a {} header", h.as_str()),
            e => f.write_str(e.as_str()),
        }
    }
}

impl std::error::Error for SipError {}

/// Cheap test on the first bytes (up to the first line break, at most 512 bytes): a
/// status line `SIP/2.0 ...`, or a method token, a SP, and a line ending in ` SIP/2.0`.
/// For telling SIP from RTP/STUN/other traffic on a port before parsing.
pub fn looks_like_sip(buf: &[u8]) -> bool {
    if buf.starts_with(b"SIP/2.0 ") {
        return true;
    }
    // A request starts with a method token: RTP and RTCP (first octet 0x80-0xBF),
    // STUN (0x00-0x01) and most binary payloads fail here without a scan for the line.
    if !buf.first().copied().is_some_and(lex::is_token_char) {
        return false;
    }
    let head = lex::sub(buf, 0, buf.len().min(512));
    let Some(lf) = memchr::memchr(b'\n', head) else {
        return false;
    };
    let line = lex::sub(head, 0, lf);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Some(sp) = memchr::memchr(b' ', line) else {
        return false;
    };
    let method = lex::sub(line, 0, sp);
    method.len() <= 32
        && lex::is_token(method)
        && line.len() > sp + 8
        && line.ends_with(b" SIP/2.0")
}

#[cfg(test)]
mod tests;
