//! A table from a 64-bit key to a short list of 64-bit values, made for the engine's
//! indexes where nearly every key has one value: the legs of a Call-ID, the legs that
//! announced an RTP address. A key with one value is a 16-byte entry; a key with more
//! (an internal call: both agents' legs) has a marker there and its list in a second
//! table. A `HashMap<u64, SmallVec<[u64; 2]>>` spends 32 bytes on every entry instead.

use foldhash::HashMap;
use smallvec::SmallVec;

/// The value in `one` of a key whose values are in `many`: never a value (leg ids and
/// address owners are far below it).
const MANY: u64 = u64::MAX;

#[derive(Default)]
pub struct MultiMap {
    one: HashMap<u64, u64>,
    many: HashMap<u64, SmallVec<[u64; 2]>>,
}

impl MultiMap {
    /// The values of `key`, oldest first (empty when none).
    pub fn get(&self, key: u64) -> &[u64] {
        match self.one.get(&key) {
            None => &[],
            Some(&MANY) => self.many.get(&key).map_or(&[], |v| v.as_slice()),
            Some(v) => std::slice::from_ref(v),
        }
    }

    /// Changes the values of `key` with `f`; a key left with no value goes.
    pub fn update(&mut self, key: u64, f: impl FnOnce(&mut SmallVec<[u64; 4]>)) {
        let mut values: SmallVec<[u64; 4]> = SmallVec::from_slice(self.get(key));
        let was_many = values.len() > 1;
        f(&mut values);
        debug_assert!(!values.contains(&MANY));
        match values.as_slice() {
            [] => {
                self.one.remove(&key);
            }
            [v] => {
                self.one.insert(key, *v);
            }
            more => {
                self.one.insert(key, MANY);
                self.many.insert(key, SmallVec::from_slice(more));
                return;
            }
        }
        if was_many {
            self.many.remove(&key);
        }
    }

    /// Adds `value` to the values of `key`.
    pub fn push(&mut self, key: u64, value: u64) {
        match self.one.get(&key) {
            // The common case: a new key with one value.
            None => {
                self.one.insert(key, value);
            }
            _ => self.update(key, |v| v.push(value)),
        }
    }

    /// Takes `value` off the values of `key`.
    pub fn remove(&mut self, key: u64, value: u64) {
        self.update(key, |v| v.retain(|x| *x != value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_many_and_back() {
        let mut m = MultiMap::default();
        assert_eq!(m.get(7), &[] as &[u64]);
        m.push(7, 1);
        assert_eq!(m.get(7), &[1]);
        m.push(7, 2);
        m.push(7, 3);
        assert_eq!(m.get(7), &[1, 2, 3]);
        m.remove(7, 2);
        assert_eq!(m.get(7), &[1, 3]);
        m.remove(7, 1);
        assert_eq!(m.get(7), &[3]);
        assert!(m.many.is_empty());
        m.update(7, |v| {
            v.retain(|_| false);
            v.push(9);
        });
        assert_eq!(m.get(7), &[9]);
        m.remove(7, 9);
        assert_eq!(m.get(7), &[] as &[u64]);
        assert!(m.one.is_empty() && m.many.is_empty());
        m.push(8, 4);
        assert_eq!(m.get(8), &[4]);
    }
}
