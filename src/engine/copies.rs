//! Recognising the same SIP event seen again: UDP retransmissions and copies captured
//! on both sides of a proxy (same Call-ID, different Via). SPEC §2: copies are one event
//! when Call-ID, CSeq, method (or status code), From tag and the agent they concern
//! match; the engine keeps one [`Copies`] per agent leg, so Call-ID and agent are implied.

use smallvec::SmallVec;

/// A bounded set of event fingerprints already seen on one leg. The first
/// [`INLINE`] are kept inside the leg (an open leg has seen INVITE, 100, 180, 200 and
/// ACK: five), so most legs allocate nothing for them.
#[derive(Clone, Debug, Default)]
pub struct Copies {
    /// Oldest first.
    seen: SmallVec<[u64; INLINE]>,
}

/// Fingerprints kept inside the leg before the set moves to the heap.
const INLINE: usize = 5;

/// Events of a leg that can repeat are few (a leg rarely has more than a dozen
/// transactions); the oldest fingerprint is forgotten past this.
const CAP: usize = 64;

impl Copies {
    /// True the first time an event is seen, false for every later copy.
    pub fn first_time(&mut self, fingerprint: u64) -> bool {
        if self.seen.contains(&fingerprint) {
            return false;
        }
        if self.seen.len() == CAP {
            self.seen.remove(0);
        }
        self.seen.push(fingerprint);
        true
    }
}

/// FNV-1a over the parts, with a separator so that ("ab","c") differs from ("a","bc").
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_copy_is_not_new_and_the_set_stays_bounded() {
        let mut c = Copies::default();
        assert!(c.first_time(fingerprint(&[b"a", b"1"])));
        assert!(!c.first_time(fingerprint(&[b"a", b"1"])));
        assert_ne!(fingerprint(&[b"ab", b"c"]), fingerprint(&[b"a", b"bc"]));
        for i in 0..1000u32 {
            c.first_time(u64::from(i) + 10);
        }
        assert!(c.seen.len() <= CAP);
        // The oldest is forgotten first.
        assert!(c.first_time(fingerprint(&[b"a", b"1"])));
        assert!(!c.first_time(1009));
        assert!(c.first_time(10 + 1000 - CAP as u64));
    }
}
