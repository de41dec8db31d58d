//! Recognising the same SIP event seen again: UDP retransmissions and copies captured
//! on both sides of a proxy (same Call-ID, different Via). SPEC §2: copies are one event
//! when Call-ID, CSeq, method (or status code), From tag and the agent they concern
//! match; the engine keeps one [`Copies`] per agent leg, so Call-ID and agent are implied.

/// A bounded set of event fingerprints already seen on one leg.
#[derive(Clone, Debug, Default)]
pub struct Copies {
    seen: Vec<u64>,
    next: usize,
}

/// Events of a leg that can repeat are few (a leg rarely has more than a dozen
/// transactions); the oldest fingerprint is forgotten past this.
const CAP: usize = 64;

impl Copies {
    /// True the first time an event is seen, false for every later copy.
    pub fn first_time(&mut self, fingerprint: u64) -> bool {
        if self.seen.contains(&fingerprint) {
            return false;
        }
        if self.seen.len() < CAP {
            self.seen.push(fingerprint);
        } else {
            self.seen[self.next] = fingerprint;
            self.next = (self.next + 1) % CAP;
        }
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
    }
}
