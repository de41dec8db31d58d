//! Bounds-checked reads of big-endian fields from untrusted frame bytes.
//!
//! Every parser in [`super`] reads the wire through these helpers, so that a short or
//! lying frame yields `None` instead of a panic: there is no indexing on frame data
//! anywhere else in the decoder.

/// The byte at `at`, if present.
#[inline]
pub(crate) fn u8_at(b: &[u8], at: usize) -> Option<u8> {
    b.get(at).copied()
}

/// The big-endian `u16` at `at`, if the two bytes are present.
#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..)?
        .first_chunk::<2>()
        .map(|a| u16::from_be_bytes(*a))
}

/// The big-endian `u32` at `at`, if the four bytes are present.
#[inline]
pub(crate) fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|a| u32::from_be_bytes(*a))
}

/// The little-endian `u32` at `at`, if the four bytes are present.
#[inline]
pub(crate) fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?
        .first_chunk::<4>()
        .map(|a| u32::from_le_bytes(*a))
}

/// The `N` bytes at `at`, if present.
#[inline]
pub(crate) fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..)?.first_chunk::<N>().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end_of_the_slice() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(be16(&b, 3), Some(0x0405));
        assert_eq!(be16(&b, 4), None);
        assert_eq!(be32(&b, 1), Some(0x0203_0405));
        assert_eq!(be32(&b, 2), None);
        assert_eq!(le32(&b, 0), Some(0x0403_0201));
        assert_eq!(u8_at(&b, 5), None);
        assert_eq!(array::<2>(&b, usize::MAX), None);
    }
}
